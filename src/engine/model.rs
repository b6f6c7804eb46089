//! What the engine loads and what it then knows: the settings to load a
//! model with, and the plain facts it hands the HTTP side once loaded.

use super::pieces::Preprocessor;
use super::sampling::SamplingDefaults;
use crate::metrics::Metrics;
use crate::vision::ProjectorProfile;
use llama_cpp_2::model::LlamaModel;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything the engine needs to load a model.
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
    pub tiles: super::projector::TileSettings,
    /// `--image-cache-mb` in bytes: projector output kept per image piece.
    pub image_cache_bytes: usize,
    /// `--backends-dir`: where `dynamic-backends` builds find ggml's CPU
    /// variants.
    pub backends_dir: Option<PathBuf>,
    /// Runs on the engine thread once the model is loaded, before the
    /// engine says it is ready: what the HTTP side builds from the model's
    /// facts (template, tokenizer) exists before the first request. An
    /// error fails the load.
    pub on_loaded: Option<OnLoaded>,
    /// `--embeddings`: the context pools embeddings (this pooling, or the
    /// model's when unspecified) and serves only embedding jobs.
    pub embeddings: Option<llama_cpp_2::context::params::LlamaPoolingType>,
    pub kv: KvCache,
    /// Tokens guessed per sequence and step; 0 = off.
    pub draft_max: usize,
    /// `--model-draft`: the model that guesses (else prompt lookup does).
    pub draft_model: Option<PathBuf>,
}

/// The KV cache's element types and flash attention, as llama.cpp takes
/// them, and what `/v1/models` says of them.
#[derive(Debug, Clone, Copy)]
pub struct KvCache {
    pub type_k: llama_cpp_2::context::params::KvCacheType,
    pub type_v: llama_cpp_2::context::params::KvCacheType,
    /// `llama_flash_attn_type`: -1 auto, 0 off, 1 on.
    pub flash_attn: i32,
    pub info: KvCacheInfo,
}

/// The cache as configured: its types' names, flash attention, and its
/// size from the model's shape (all sequences, every cell).
#[derive(Debug, Clone, Copy, Default)]
pub struct KvCacheInfo {
    pub type_k: &'static str,
    pub type_v: &'static str,
    pub flash_attn: &'static str,
    pub bytes: u64,
}

pub type OnLoaded = Box<dyn FnOnce(&ModelInfo) -> Result<(), String> + Send>;

/// What the loaded model can do, known once loading finishes.
#[derive(Debug)]
pub struct ModelInfo {
    pub n_ctx: u32,
    /// Sequences decoded together; each holds `n_ctx / parallel` cells.
    pub parallel: u32,
    /// The projector has a vision encoder.
    pub vision: bool,
    /// The projector's audio encoder's sample rate (audio models only).
    pub audio_rate: Option<u32>,
    /// Why the projector's audio encoder is not served, where it is not.
    pub audio_off: Option<String>,
    /// The projector's prices, measured at start-up (vision models only).
    pub profile: Option<ProjectorProfile>,
    /// `clip.projector_type` of the mmproj (vision models only).
    pub projector: Option<String>,
    /// Whether the model uses M-RoPE, where an image takes fewer RoPE
    /// positions than KV cells.
    pub mrope: bool,
    /// Per-process random marker for image positions in the rendered prompt;
    /// user text cannot forge it.
    pub media_marker: String,
    /// `tokenizer.chat_template` of the model file, if it has one.
    pub chat_template: Option<String>,
    /// The vocabulary's BOS and EOS pieces, as templates print them.
    pub bos: String,
    pub eos: String,
    /// For tokenizing on the caller's thread (the one live object besides
    /// the preprocessor that crosses the seam: llama.cpp's tokenizer only
    /// reads the vocabulary).
    pub vocab: Vocab,
    /// Turns image pieces into encoder input on the caller's thread
    /// (vision models only).
    pub preprocessor: Option<Arc<Preprocessor>>,
    pub backend: Backend,
    /// What a request gets for sampling fields it leaves out.
    pub sampling: SamplingDefaults,
    pub n_vocab: u32,
    /// Started with `--embeddings`.
    pub embeddings: Option<EmbeddingInfo>,
    pub kv_cache: KvCacheInfo,
}

/// What an embeddings server pools and how large its vectors are.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingInfo {
    /// `mean`, `cls` or `last`.
    pub pooling: &'static str,
    pub n_embd: u32,
    /// The most tokens one input may have: it is decoded in one batch,
    /// as pooling over the whole input needs.
    pub max_tokens: u32,
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
        let cpu_features = super::cpu::cpu_features();
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
            _ if self.audio_rate.is_some() => "no vision encoder".into(),
            _ => "no vision projector (text only)".into(),
        };
        let vision = match self.audio_rate {
            Some(rate) => format!("{vision}; audio at {rate} Hz"),
            None => vision,
        };
        format!(
            "model ready: {}; {vision}; context {} tokens = {} sequences x {}; positions {}; \
             backend {}, {}/{} layers offloaded",
            file(model),
            self.n_ctx,
            self.parallel,
            self.n_ctx / self.parallel,
            if self.mrope { "M-RoPE" } else { "plain" },
            self.backend.name,
            self.backend.offloaded_layers,
            self.backend.layers,
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

/// The loaded model's vocabulary, shared read-only with the HTTP side.
#[derive(Clone)]
pub struct Vocab(pub(super) Arc<LlamaModel>);

impl Vocab {
    pub fn model(&self) -> &LlamaModel {
        &self.0
    }
}

impl std::fmt::Debug for Vocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocab").finish_non_exhaustive()
    }
}
