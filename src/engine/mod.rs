//! The engine owns llama.cpp. One dedicated thread holds the model, the
//! context and the mtmd (vision) context; async handlers talk to it only
//! through channels. Dropping a job's event receiver cancels the job at the
//! next token.

mod batcher;
pub mod channel;
pub mod cpu;
mod embed;
pub mod embed_cache;
pub mod families;
pub mod fence;
pub mod gguf_meta;
pub mod grammar;
pub mod jinja;
pub mod logprobs;
pub mod pieces;
pub mod projector;
pub mod prompt;
pub mod queue;
pub mod reasoning;
mod request;
pub mod sampling;
pub mod scheduler;
pub mod text;
pub mod tokenize;
pub mod tools;
mod worker;

use crate::metrics::Metrics;
use crate::vision::ProjectorProfile;
use prompt::ChatTemplate;
use queue::JobQueue;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;

pub use request::{EngineError, Event, FinishReason, GenerateRequest, PromptUsage};
pub use sampling::SamplingParams;

/// Everything the engine needs to load a model.
#[derive(Clone)]
pub struct EngineConfig {
    /// Where the engine records TTFT, token counts, queue depth, ...
    pub metrics: Arc<Metrics>,
    pub model: PathBuf,
    pub mmproj: Option<PathBuf>,
    /// 0 = the model's training context.
    pub ctx_size: u32,
    pub batch_size: u32,
    pub threads: i32,
    pub n_gpu_layers: u32,
    pub mmproj_offload: bool,
    pub max_queue: usize,
    /// Sequences decoded together (continuous batching).
    pub parallel: usize,
    /// Upper bound on tokens per image for dynamic-resolution projectors; -1 = model default.
    pub image_max_tokens: i32,
    pub tiles: projector::TileSettings,
    /// `--chat-template-file`: its path and source, already checked to compile.
    pub chat_template: Option<(String, String)>,
    /// `--image-cache-mb` in bytes: projector output kept per image piece.
    pub image_cache_bytes: usize,
    /// `--backends-dir`: where `dynamic-backends` builds find ggml's CPU
    /// variants.
    pub backends_dir: Option<PathBuf>,
}

/// What the loaded model can do, known once loading finishes.
#[derive(Debug)]
pub struct ModelInfo {
    pub n_ctx: u32,
    /// Sequences decoded together; each holds `n_ctx / parallel` cells.
    pub parallel: u32,
    pub vision: bool,
    /// The projector's prices, measured at start-up (vision models only).
    pub profile: Option<ProjectorProfile>,
    /// `clip.projector_type` of the mmproj (vision models only).
    pub projector: Option<String>,
    /// Whether the model uses M-RoPE, where an image takes fewer RoPE
    /// positions than KV cells.
    pub mrope: bool,
    pub template: ChatTemplate,
    /// Per-process random marker for image positions in the rendered prompt;
    /// user text cannot forge it.
    pub media_marker: String,
    /// Per-process fence around client text: tokenized without special tokens.
    pub fence: fence::TextFence,
    /// Turns rendered prompts into tokens on the caller's thread.
    pub tokenizer: tokenize::PromptTokenizer,
    /// Turns image pieces into encoder input on the caller's thread
    /// (vision models only).
    pub preprocessor: Option<Arc<pieces::Preprocessor>>,
    pub backend: Backend,
    /// What a request gets for sampling fields it leaves out.
    pub sampling: sampling::SamplingDefaults,
    pub n_vocab: u32,
}

/// Where the model runs, as llama.cpp reports its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `CPU`, or the GPU backend and device, e.g. `CUDA (NVIDIA H200)`.
    pub name: String,
    /// Layers on the GPU (repeating layers plus the output layer).
    pub offloaded_layers: u32,
    pub layers: u32,
    /// What ggml's CPU kernels were compiled for (`cpu::cpu_features`).
    pub cpu_features: Vec<String>,
}

impl Backend {
    /// Offload happens only with a GPU device; llama.cpp then places up to
    /// `n_gpu_layers` of the model's layers (plus its output layer) there.
    pub fn detect(n_gpu_layers: u32, n_layer: u32) -> Backend {
        let gpu = llama_cpp_2::list_llama_ggml_backend_devices()
            .into_iter()
            .find(|d| {
                matches!(
                    d.device_type,
                    llama_cpp_2::LlamaBackendDeviceType::Gpu
                        | llama_cpp_2::LlamaBackendDeviceType::IntegratedGpu
                )
            });
        let layers = n_layer + 1;
        let cpu_features = cpu::cpu_features();
        match gpu {
            Some(d) => Backend {
                name: format!("{} ({})", d.backend, d.description),
                offloaded_layers: n_gpu_layers.min(layers),
                layers,
                cpu_features,
            },
            None => Backend {
                name: "CPU".into(),
                offloaded_layers: 0,
                layers,
                cpu_features,
            },
        }
    }
}

impl ModelInfo {
    /// The one start-up line: what is served, how, and on what.
    pub fn summary(&self, model: &std::path::Path) -> String {
        let file = |p: &std::path::Path| {
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let vision = match (&self.projector, &self.profile) {
            (Some(p), Some(prof)) => format!(
                "projector {p} ({} px tiles, {} tokens each)",
                prof.tile_size, prof.tile_tokens
            ),
            _ => "no vision projector (text only)".into(),
        };
        format!(
            "model ready: {}; {vision}; context {} tokens = {} sequences x {}; positions {}; \
             backend {}, {}/{} layers offloaded; chat template {}",
            file(model),
            self.n_ctx,
            self.parallel,
            self.n_ctx / self.parallel.max(1),
            if self.mrope { "M-RoPE" } else { "plain" },
            self.backend.name,
            self.backend.offloaded_layers,
            self.backend.layers,
            self.template.origin.name(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Loading,
    Ready,
    /// Loading failed.
    Failed(String),
    /// The engine died after loading; only a restart helps.
    Dead(String),
}

struct Job {
    request: GenerateRequest,
    /// One sender per choice (`n`); the batcher takes them out when it
    /// starts the job.
    choices: Vec<channel::EventSender>,
    /// Past it, a queued job fails and a running one ends with `length`.
    deadline: Option<std::time::Instant>,
    /// When it was queued, for time to first token.
    submitted: std::time::Instant,
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
    fn fail(&self, error: EngineError) {
        for c in &self.choices {
            let _ = c.send(Event::Failed(error.clone()));
        }
    }
}

struct Shared {
    status: watch::Sender<Status>,
    info: OnceLock<ModelInfo>,
    metrics: Arc<Metrics>,
    /// Test hook: the engine thread panics outside its guards at its next turn.
    fault: std::sync::atomic::AtomicBool,
    /// Sequences generating now, for waiters (the gauge is in `metrics`).
    active: watch::Sender<usize>,
}

type Queue = JobQueue<Job>;

/// Closes the queue when the last [`Engine`] handle goes, so the engine
/// thread finishes its work and exits (freeing the model).
struct Submitter(Arc<Queue>);

impl Drop for Submitter {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A cheap, cloneable handle on the engine thread.
#[derive(Clone)]
pub struct Engine {
    queue: Arc<Submitter>,
    shared: Arc<Shared>,
    max_queue: usize,
}

impl Engine {
    /// Spawns the engine thread, which loads the model in the background:
    /// the server can answer `/health` with 503 meanwhile.
    pub fn start(config: EngineConfig) -> Engine {
        let max_queue = config.max_queue.max(1);
        let queue = Arc::new(JobQueue::new(max_queue, config.metrics.queue_depth.clone()));
        let shared = Arc::new(Shared {
            status: watch::Sender::new(Status::Loading),
            info: OnceLock::new(),
            metrics: config.metrics.clone(),
            fault: Default::default(),
            active: watch::Sender::new(0),
        });
        let (worker_shared, worker_queue) = (shared.clone(), queue.clone());
        let spawned = std::thread::Builder::new()
            .name("tessera-engine".into())
            .spawn(move || supervise(config, worker_queue, worker_shared));
        if let Err(e) = spawned {
            shared.set_status(Status::Failed(format!("cannot start engine thread: {e}")));
        }
        Engine {
            queue: Arc::new(Submitter(queue)),
            shared,
            max_queue,
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
    #[doc(hidden)]
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
        };
        self.queue.0.push(job).map_err(|(why, _)| match why {
            queue::Refused::Full => EngineError::QueueFull(self.max_queue),
            queue::Refused::Closed => EngineError::Dead("the job queue is closed".into()),
        })?;
        Ok(receivers)
    }
}

impl Shared {
    fn set_status(&self, status: Status) {
        self.status.send_replace(status);
    }

    fn set_active(&self, n: usize) {
        self.active.send_replace(n);
        self.metrics
            .active_sequences
            .store(n as u64, Ordering::Relaxed);
    }

    fn count_token(&self) {
        Metrics::add(&self.metrics.completion_tokens, 1);
    }
}

/// Runs the engine thread and turns any way it can die into a truthful
/// status: `/health` then answers 503, queued clients get a 503, and
/// [`Engine::died`] resolves. (A llama.cpp abort kills the whole process
/// instead; the supervisor sees that exit directly.)
fn supervise(config: EngineConfig, queue: Arc<Queue>, shared: Arc<Shared>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        worker::run(config, &queue, &shared)
    }));
    let why = match outcome {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            format!("the engine thread panicked: {msg}")
        }
        Ok(()) if queue.is_closed() => return, // the server is shutting down
        Ok(()) => match &*shared.status.borrow() {
            Status::Failed(_) => return, // loading failed; already reported
            _ => "the engine thread stopped unexpectedly".to_string(),
        },
    };
    tracing::error!("{why}; the server cannot recover and answers 503 until restarted");
    shared.set_status(Status::Dead(why.clone()));
    for job in queue.close() {
        job.fail(EngineError::Dead(why.clone()));
    }
}
