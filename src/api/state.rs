//! What every handler shares: the engine, the preparer, and the server's
//! settings.

use crate::engine::Engine;
use std::sync::Arc;

pub struct AppState {
    pub engine: Engine,
    pub model_id: String,
    pub created: u64,
    /// Turns parsed requests into engine jobs.
    pub preparer: crate::prepare::Preparer,
    /// Whole-request deadline (queueing included).
    pub request_timeout: Option<std::time::Duration>,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Who may call what (`--api-key`, `--metrics-public`).
    pub gate: super::auth::Gate,
    /// Stored responses (`/v1/responses` with `store`).
    pub store: Arc<super::store::ResponseStore>,
}

pub type SharedState = Arc<AppState>;

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
