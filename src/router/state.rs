//! What every route of the front shares, and how a request's `model`
//! finds its slot.

use super::pool::{Pool, Slot};
use crate::api::auth::ApiKeys;
use crate::api::error::ApiError;
use std::sync::Arc;
use std::time::Duration;

/// What every route of the front shares.
pub struct RouterState {
    pub(super) pool: Arc<Pool>,
    /// What the front sends its runners as their API key.
    pub(super) runner_key: String,
    pub(super) http: reqwest::Client,
    /// How long a request waits for its model to load (or for room).
    pub(super) load_timeout: Duration,
    /// What the admin routes take: `--admin-key`, else the API keys.
    pub(super) admin: ApiKeys,
    pub(super) created: u64,
}

impl RouterState {
    /// The model a request names: the only one when it names none.
    pub(super) fn slot_for(&self, model: Option<&str>) -> Result<Arc<Slot>, ApiError> {
        let ids = || self.pool.ids().join(", ");
        let Some(name) = model else {
            if let [only] = self.pool.slots.as_slice() {
                return Ok(only.clone());
            }
            return Err(ApiError::invalid(format!(
                "`model` is required: this server serves {}",
                ids()
            ))
            .param("model"));
        };
        self.pool.find(name).ok_or_else(|| {
            ApiError::not_found(format!(
                "the model `{name}` does not exist; this server serves {}",
                ids()
            ))
            .param("model")
            .code("model_not_found")
        })
    }
}
