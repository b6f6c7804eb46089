//! The engine owns llama.cpp. One dedicated thread holds the model, the
//! context and the mtmd (vision) context; async handlers talk to it only
//! through channels. Dropping a job's event receiver cancels the job at the
//! next token.

mod batcher;
pub mod channel;
pub mod cpu;
pub mod drafter;
mod embed;
pub mod embed_cache;
mod error;
pub mod families;
pub mod gguf_meta;
mod job;
pub mod logprobs;
mod model;
pub mod pieces;
pub mod pooling;
pub mod projector;
pub mod queue;
pub mod reasoning;
mod request;
pub mod sampling;
pub mod scheduler;
pub mod speculate;
pub mod text;
mod worker;

use job::{Job, Shared, Submitter};
use queue::JobQueue;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;

pub use error::EngineError;
pub use model::{
    Backend, EmbeddingInfo, EngineConfig, KvCache, KvCacheInfo, ModelInfo, OnLoaded, Status, Vocab,
};
pub use request::{Event, FinishReason, GenerateRequest, PromptUsage, TokenizedPrompt};
pub use sampling::{Grammar, SamplingParams};

/// A cheap, cloneable handle on the engine thread.
#[derive(Clone)]
pub struct Engine {
    queue: Arc<Submitter>,
    shared: Arc<Shared>,
    max_queue: usize,
    /// The engine thread, joined by `stop`.
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Engine {
    /// Spawns the engine thread, which loads the model in the background:
    /// the server can answer `/health` with 503 meanwhile.
    pub fn start(config: EngineConfig) -> Engine {
        let max_queue = config.max_queue;
        let queue = Arc::new(JobQueue::new(max_queue, config.metrics.queue_depth.clone()));
        let shared = Arc::new(Shared {
            status: watch::Sender::new(Status::Loading),
            info: OnceLock::new(),
            metrics: config.metrics.clone(),
            #[cfg(feature = "testing")]
            fault: Default::default(),
            active: watch::Sender::new(0),
        });
        let (worker_shared, worker_queue) = (shared.clone(), queue.clone());
        let spawned = std::thread::Builder::new()
            .name("tessera-engine".into())
            .spawn(move || worker::supervise(config, worker_queue, worker_shared));
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                shared.set_status(Status::Failed(format!("cannot start engine thread: {e}")));
                None
            }
        };
        Engine {
            queue: Arc::new(Submitter(queue)),
            shared,
            max_queue,
            thread: Arc::new(std::sync::Mutex::new(thread)),
        }
    }

    /// Closes the queue and waits (at most `within`) for the engine thread
    /// to free its model and contexts. Why: on a GPU, buffers freed while
    /// the process is already exiting meet a CUDA runtime that has shut
    /// down, and ggml aborts ("driver shutting down"); freed here, they go
    /// while everything is alive.
    pub async fn stop(&self, within: std::time::Duration) {
        for job in self.queue.0.close() {
            job.fail(EngineError::Dead("the server is shutting down".into()));
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let joined = tokio::task::spawn_blocking(move || t.join());
            if tokio::time::timeout(within, joined).await.is_err() {
                tracing::warn!("the engine thread did not stop within {within:?}");
            }
        }
    }

    /// Resolves when the engine has died after loading (the process should
    /// then exit non-zero so that its supervisor restarts it), with why.
    pub async fn died(&self) -> String {
        let mut rx = self.shared.status.subscribe();
        match rx.wait_for(|s| matches!(s, Status::Dead(_))).await {
            Ok(s) => match &*s {
                Status::Dead(e) => e.clone(),
                _ => String::new(),
            },
            Err(_) => std::future::pending().await,
        }
    }

    /// Resolves once exactly `n` sequences are generating.
    pub async fn wait_active(&self, n: usize) {
        let mut rx = self.shared.active.subscribe();
        let _ = rx.wait_for(|a| *a == n).await;
    }

    /// Test hook: makes the engine thread panic outside its guards at its
    /// next turn, as a bug would, to check what the server does then.
    #[cfg(feature = "testing")]
    pub fn inject_engine_panic(&self) {
        self.shared.fault.store(true, Ordering::Relaxed);
    }

    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    /// Resolves once loading has finished, with `Ready` or `Failed`.
    pub async fn wait_ready(&self) -> Status {
        let mut rx = self.shared.status.subscribe();
        let status = rx.wait_for(|s| *s != Status::Loading).await;
        status.map(|s| s.clone()).unwrap_or_else(|_| self.status())
    }

    /// Tokens sampled since start, across all jobs, cancelled ones included.
    pub fn generated_tokens(&self) -> u64 {
        self.shared
            .metrics
            .completion_tokens
            .load(Ordering::Relaxed)
    }

    /// Model facts; `None` until the model has loaded.
    pub fn info(&self) -> Option<&ModelInfo> {
        self.shared.info.get()
    }

    /// Queues a generation of `request.n` choices. Fails at once when the
    /// model is not ready or the queue is full; otherwise each choice's
    /// events arrive on its receiver, in choice order. The prompt is
    /// evaluated once; the choices share its cells from the first sampled
    /// token on. Past `deadline`, a queued job fails and a running one ends.
    pub fn submit(
        &self,
        request: GenerateRequest,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<channel::EventReceiver>, EngineError> {
        match self.status() {
            Status::Ready => {}
            Status::Loading => return Err(EngineError::Loading),
            Status::Failed(e) => return Err(EngineError::Unavailable(e)),
            Status::Dead(e) => return Err(EngineError::Dead(e)),
        }
        let (choices, receivers) = (0..request.n.max(1)).map(|_| channel::channel()).unzip();
        let job = Job {
            request,
            choices,
            deadline,
            submitted: std::time::Instant::now(),
            span: tracing::Span::current(),
        };
        self.queue.0.push(job).map_err(|(why, _)| match why {
            queue::Refused::Full => EngineError::QueueFull(self.max_queue),
            queue::Refused::Closed => EngineError::Dead("the job queue is closed".into()),
        })?;
        Ok(receivers)
    }
}
