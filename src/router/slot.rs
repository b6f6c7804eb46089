//! One model's place in the pool: its spec, its state and what the
//! pool's rules read (last use, crashes, backoff).

use super::registry::ModelSpec;
use super::runner::{Launch, Runner};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

/// A model's state, as `/v1/models` reports it.
#[derive(Clone)]
pub enum State {
    Unloaded,
    Loading,
    Loaded(Arc<Runner>),
    /// Load failed or the runner kept crashing; `retry_at` is when a
    /// request may try again on its own (None: only an admin load).
    Failed {
        reason: String,
        retry_at: Option<Instant>,
    },
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Unloaded => "unloaded",
            State::Loading => "loading",
            State::Loaded(_) => "loaded",
            State::Failed { .. } => "failed",
        }
    }
}

pub struct Slot {
    pub spec: ModelSpec,
    /// Estimated bytes when loaded (files plus KV cache).
    pub bytes: u64,
    /// How its runner starts: flags and environment, fixed at start.
    pub launch: Launch,
    pub in_flight: AtomicUsize,
    pub(super) inner: Mutex<SlotInner>,
}

pub(super) struct SlotInner {
    pub(super) state: State,
    pub(super) last_used: Instant,
    pub(super) crashes: Vec<Instant>,
    /// Not before this may a crashed model load again.
    pub(super) backoff_until: Option<Instant>,
    /// Filled from the runner's `/v1/models` once loaded.
    pub(super) info: Option<serde_json::Value>,
}

/// 1, 2, 4 ... 30 seconds.
pub(super) fn backoff(crashes: usize) -> Duration {
    Duration::from_secs((1u64 << crashes.saturating_sub(1).min(5)).min(30))
}
