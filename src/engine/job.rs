//! A queued generation and the state the engine thread shares with the
//! handle: what both sides of the seam hold, apart from either.

use super::channel;
use super::error::EngineError;
use super::model::{ModelInfo, Status};
use super::queue::{self, JobQueue};
use super::request::{Event, GenerateRequest};
use crate::metrics::Metrics;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;

pub(super) struct Job {
    pub(super) request: GenerateRequest,
    /// One sender per choice (`n`); the batcher takes them out when it
    /// starts the job.
    pub(super) choices: Vec<channel::EventSender>,
    /// Past it, a queued job fails and a running one ends with `length`.
    pub(super) deadline: Option<std::time::Instant>,
    /// When it was queued, for time to first token.
    pub(super) submitted: std::time::Instant,
    /// The request's span (its id, model, ...): the engine's log lines
    /// about this job are written inside it.
    pub(super) span: tracing::Span,
}

impl queue::Queued for Job {
    fn departed(&self) -> bool {
        self.choices.iter().all(channel::EventSender::is_closed)
    }
    fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline
    }
    fn expire(self) {
        self.fail(EngineError::Timeout);
    }
}

impl Job {
    /// Tells every choice that the job failed before it started.
    pub(super) fn fail(&self, error: EngineError) {
        for c in &self.choices {
            let _ = c.send(Event::Failed(error.clone()));
        }
    }
}

pub(super) struct Shared {
    pub(super) status: watch::Sender<Status>,
    pub(super) info: OnceLock<ModelInfo>,
    pub(super) metrics: Arc<Metrics>,
    /// Test hook: the engine thread panics outside its guards at its next turn.
    #[cfg(feature = "testing")]
    pub(super) fault: std::sync::atomic::AtomicBool,
    /// Sequences generating now, for waiters (the gauge is in `metrics`).
    pub(super) active: watch::Sender<usize>,
}

pub(super) type Queue = JobQueue<Job>;

/// Closes the queue when the last [`Engine`] handle goes, so the engine
/// thread finishes its work and exits (freeing the model).
pub(super) struct Submitter(pub(super) Arc<Queue>);

impl Drop for Submitter {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Shared {
    pub(super) fn set_status(&self, status: Status) {
        self.status.send_replace(status);
    }

    pub(super) fn set_active(&self, n: usize) {
        self.active.send_replace(n);
        self.metrics
            .active_sequences
            .store(n as u64, Ordering::Relaxed);
    }

    pub(super) fn count_token(&self) {
        Metrics::add(&self.metrics.completion_tokens, 1);
    }
}
