//! Every option: a flag, a `TESSERA_*` environment variable and a default
//! that works on a laptop. `--help` lists them all.

mod audio;
mod cache;
mod check;
mod embeddings;
mod models;
mod rooms;
mod speculation;
mod store;
mod video;

pub use audio::AudioArgs;
pub use cache::{CacheArgs, CacheType, FlashAttn};
pub use embeddings::{EmbeddingArgs, Pooling};
pub use models::ModelsArgs;
pub use speculation::SpeculationArgs;
pub use store::StoreArgs;
pub use video::VideoArgs;

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;

fn default_threads() -> i32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i32)
        .unwrap_or(4)
}

/// Also a `Parser`, so tests build a config exactly as the CLI does, and
/// `Serialize`, so a router hands its runners the same settings as flags.
#[derive(Debug, Clone, Parser, serde::Serialize)]
#[command(name = "tessera")]
pub struct Config {
    /// Path to the GGUF language model.
    #[arg(help_heading = "Model", long, short = 'm', env = "TESSERA_MODEL")]
    pub model: Option<PathBuf>,

    /// Path to the GGUF vision projector (mmproj). Without it, images are refused.
    #[arg(help_heading = "Model", long, env = "TESSERA_MMPROJ")]
    pub mmproj: Option<PathBuf>,

    /// Hugging Face repository to serve, `owner/name[:quant]`: the quant tag
    /// picks the GGUF (default Q4_K_M, then Q8_0, then the first) and the
    /// repository's mmproj comes with it. Used when --model is not given
    /// [default: ggml-org/SmolVLM-256M-Instruct-GGUF].
    #[arg(help_heading = "Model", long, env = "TESSERA_HF_REPO", conflicts_with_all = ["model", "demo"])]
    pub hf_repo: Option<String>,

    /// Never touch the network: serve --hf-repo from the model cache only
    /// (also when HF_HUB_OFFLINE=1).
    #[arg(help_heading = "Model", long, env = "TESSERA_OFFLINE")]
    pub offline: bool,

    /// Model cache, in huggingface_hub's layout, shared with Python tools
    /// and llama.cpp [default: $HF_HUB_CACHE, $HF_HOME/hub, or
    /// ~/.cache/huggingface/hub].
    #[arg(help_heading = "Model", long, env = "HF_HUB_CACHE")]
    pub hf_cache: Option<PathBuf>,

    /// Base URL of the Hugging Face hub (or a mirror).
    #[arg(
        help_heading = "Model",
        long,
        env = "HF_ENDPOINT",
        default_value = "https://huggingface.co"
    )]
    pub hf_endpoint: String,

    /// Token for gated or private repositories.
    #[arg(help_heading = "Model", long, env = "HF_TOKEN", hide_env_values = true)]
    pub hf_token: Option<String>,

    /// Serve Tessera's own generated tiny model (no network, no files
    /// needed) to try the API in seconds. Its answers are noise.
    #[arg(help_heading = "Model", long, env = "TESSERA_DEMO")]
    pub demo: bool,

    /// Where --demo writes its model (default: tessera/demo in the user's
    /// cache folder, `$XDG_CACHE_HOME` or `~/.cache`).
    #[arg(
        help_heading = "Model",
        long,
        env = "TESSERA_DEMO_DIR",
        value_name = "DIR"
    )]
    pub demo_dir: Option<std::path::PathBuf>,

    /// Model id reported by the API (default: the model file name without .gguf).
    #[arg(help_heading = "Model", long, env = "TESSERA_ALIAS")]
    pub alias: Option<String>,

    /// Jinja chat template to use instead of the model's own
    /// (`tokenizer.chat_template`); it must compile, or the server refuses to start.
    #[arg(help_heading = "Model", long, env = "TESSERA_CHAT_TEMPLATE_FILE")]
    pub chat_template_file: Option<PathBuf>,

    /// Address to listen on.
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_HOST",
        default_value = "127.0.0.1"
    )]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_PORT",
        default_value_t = 8080
    )]
    pub port: u16,

    /// Total context size in tokens, shared out evenly among the --parallel
    /// sequences (0 = the model's training context).
    #[arg(
        help_heading = "Performance",
        long,
        short = 'c',
        env = "TESSERA_CTX_SIZE", value_parser = clap::value_parser!(u32).range(0..=16_777_216),
        default_value_t = 16384
    )]
    pub ctx_size: u32,

    /// Requests decoded together (continuous batching); each gets ctx-size / parallel tokens.
    #[arg(
        help_heading = "Performance",
        long,
        short = 'p',
        env = "TESSERA_PARALLEL", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256),
        default_value_t = 4
    )]
    pub parallel: usize,

    /// Logical batch size for prompt processing, in tokens.
    #[arg(
        help_heading = "Performance",
        long,
        short = 'b',
        env = "TESSERA_BATCH_SIZE", value_parser = clap::value_parser!(u32).range(32..=1_048_576),
        default_value_t = 2048
    )]
    pub batch_size: u32,

    /// CPU threads for generation and image encoding (default: all cores).
    #[arg(help_heading = "Performance", long, short = 't', env = "TESSERA_THREADS", value_parser = clap::value_parser!(i32).range(1..=1024), default_value_t = default_threads())]
    pub threads: i32,

    /// Directory of ggml's CPU backend libraries (builds with `dynamic-backends`; default: beside the executable, else where the build put them; ignored by other builds).
    #[arg(help_heading = "Performance", long, env = "TESSERA_BACKENDS_DIR")]
    pub backends_dir: Option<PathBuf>,

    /// Layers to offload to the GPU (CUDA/Metal builds; ignored on CPU builds).
    #[arg(
        help_heading = "Performance",
        long,
        short = 'n',
        env = "TESSERA_N_GPU_LAYERS",
        default_value_t = 999
    )]
    pub n_gpu_layers: u32,

    /// Keep the vision projector on the CPU even when a GPU is available.
    #[arg(help_heading = "Performance", long, env = "TESSERA_NO_MMPROJ_OFFLOAD")]
    pub no_mmproj_offload: bool,

    /// Seconds a request may take, queueing included (0 = no limit). A
    /// queued request then fails with 503; a running one ends with `length`.
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_REQUEST_TIMEOUT", value_parser = clap::value_parser!(u64).range(0..=604_800),
        default_value_t = 600
    )]
    pub request_timeout: u64,

    /// Seconds running streams may take to finish after SIGTERM/Ctrl-C.
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_SHUTDOWN_GRACE", value_parser = clap::value_parser!(u64).range(0..=3600),
        default_value_t = 30
    )]
    pub shutdown_grace: u64,

    /// Open client connections at most (lowered to what the open-file limit
    /// allows). Past it a few more get one request each: `/health` is
    /// answered, anything else a 503.
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_MAX_CONNECTIONS",
        default_value_t = 1024,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000)
    )]
    pub max_connections: usize,

    /// Seconds a client may take to send its request headers (and a new
    /// connection its first bytes, an HTTP/2 peer to answer a ping); a
    /// slower one is disconnected (slowloris, idle sockets).
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_HEADER_READ_TIMEOUT",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub header_read_timeout: u64,

    /// Seconds a client may take to send its whole request body; a slower
    /// one gets a 400 (a slow drip cannot hold a request open).
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_BODY_READ_TIMEOUT",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub body_read_timeout: u64,

    /// Requests that may wait for the engine before new ones get 429.
    #[arg(
        help_heading = "Server",
        long,
        env = "TESSERA_MAX_QUEUE", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000),
        default_value_t = 64
    )]
    pub max_queue: usize,

    /// Fewest tokens an image gets on dynamic-resolution projectors (its own tokens, as llama-server counts them; -1 = the model's minimum); a request may ask for fewer.
    #[arg(help_heading = "Performance", long, env = "TESSERA_IMAGE_MIN_TOKENS", value_parser = clap::value_parser!(i32).range(-1..=65_536), default_value_t = -1, allow_hyphen_values = true)]
    pub image_min_tokens: i32,

    /// Most tokens one image may take with dynamic-resolution projectors (its own tokens, as llama-server counts them; -1 = model default); also the most a request may ask for.
    #[arg(help_heading = "Performance", long, env = "TESSERA_IMAGE_MAX_TOKENS", value_parser = clap::value_parser!(i32).range(-1..=65_536), default_value_t = -1, allow_hyphen_values = true)]
    pub image_max_tokens: i32,

    /// Largest encoded image accepted, in bytes.
    #[arg(help_heading = "Vision", long, env = "TESSERA_MAX_IMAGE_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_073_741_824), default_value_t = 20 * 1024 * 1024)]
    pub max_image_bytes: usize,

    /// Largest image accepted, in pixels (checked from the header, before decoding).
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_MAX_IMAGE_PIXELS", value_parser = clap::value_parser!(u64).range(1..=4_294_967_296),
        default_value_t = 178_956_970
    )]
    pub max_image_pixels: u64,

    /// MiB of image memory in flight across all requests (decoding,
    /// tiling, pieces waiting for the engine); requests wait for their share.
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_MAX_DECODE_MEMORY",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u64).range(16..=1_048_576)
    )]
    pub max_decode_memory: u64,

    /// MiB of projector output kept per image piece, so the same image in
    /// another conversation skips the vision encoder (0 = off).
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_IMAGE_CACHE_MB",
        default_value_t = 256,
        value_parser = clap::value_parser!(u64).range(0..=1_048_576)
    )]
    pub image_cache_mb: u64,

    /// Most images in one request.
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_MAX_IMAGES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256),
        default_value_t = 16
    )]
    pub max_images: usize,

    /// Most encoded image bytes in one request, all images together.
    #[arg(help_heading = "Vision", long, env = "TESSERA_MAX_REQUEST_IMAGE_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4_294_967_296), default_value_t = 50 * 1024 * 1024)]
    pub max_request_image_bytes: usize,

    /// Refuse remote (http/https) image URLs altogether; only data URLs are accepted.
    #[arg(help_heading = "Vision", long, env = "TESSERA_NO_REMOTE_IMAGES")]
    pub no_remote_images: bool,

    /// Also fetch plain http:// image URLs (https:// is always allowed).
    #[arg(help_heading = "Vision", long, env = "TESSERA_ALLOW_HTTP_IMAGE_URLS")]
    pub allow_http_image_urls: bool,

    /// Fetch image URLs that resolve to loopback, private, link-local or metadata addresses.
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_ALLOW_PRIVATE_IMAGE_URLS"
    )]
    pub allow_private_image_urls: bool,

    /// Non-public addresses or CIDR blocks to fetch images from anyway
    /// (e.g. a LAN image server, `10.0.0.5` or `10.1.0.0/16`); comma-separated.
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_IMAGE_FETCH_ALLOW_IP",
        value_delimiter = ','
    )]
    pub image_fetch_allow_ip: Vec<String>,

    /// Seconds one remote image may take to download.
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_IMAGE_FETCH_TIMEOUT", value_parser = clap::value_parser!(u64).range(1..=3600),
        default_value_t = 10
    )]
    pub image_fetch_timeout: u64,

    /// Redirects followed when fetching a remote image.
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_IMAGE_FETCH_MAX_REDIRECTS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=20),
        default_value_t = 3
    )]
    pub image_fetch_max_redirects: usize,

    /// Fewest tiles in a `high`-detail grid (the `internvl` tiling only).
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_MIN_TILES", value_parser = clap::value_parser!(u32).range(1..=64),
        default_value_t = 1
    )]
    pub min_tiles: u32,

    /// Most tiles in a `high`-detail grid (the thumbnail is extra).
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_MAX_TILES", value_parser = clap::value_parser!(u32).range(1..=64),
        default_value_t = 12
    )]
    pub max_tiles: u32,

    /// How an image is shaped for the model: `native` is the family's own geometry (one whole image at dynamic resolution or the native square, or the projector's slices); `fit` scales down only and covers the image with the fewest tiles; `internvl` stretches it to the grid of the closest aspect ratio; `openai` uses OpenAI's `high` geometry. Requests may choose per image. Default: `native` for known families, `fit` otherwise.
    #[arg(help_heading = "Vision", long, env = "TESSERA_TILING", value_enum)]
    pub tiling: Option<crate::vision::TilingPolicy>,

    /// Tile side in pixels for the tile policies (0 = automatic: the projector's native size, or 448 px, at most 16x16 tokens, for dynamic-resolution projectors).
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_TILE_SIZE", value_parser = clap::value_parser!(u32).range(0..=4096),
        default_value_t = 0
    )]
    pub tile_size: u32,

    /// Most tokens the global thumbnail may take (dynamic-resolution projectors).
    #[arg(
        help_heading = "Vision",
        long,
        env = "TESSERA_THUMBNAIL_TOKENS", value_parser = clap::value_parser!(u32).range(1..=4096),
        default_value_t = 75
    )]
    pub thumbnail_tokens: u32,

    /// API key clients must send as `Authorization: Bearer KEY`; repeat or
    /// comma-separate for several. Without any key, the API is open.
    #[arg(
        help_heading = "Security",
        long,
        env = "TESSERA_API_KEY",
        value_delimiter = ','
    )]
    pub api_key: Vec<String>,

    /// File with one API key per line (`#` comments allowed), added to --api-key.
    #[arg(help_heading = "Security", long, env = "TESSERA_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Serve /metrics without an API key.
    #[arg(help_heading = "Security", long, env = "TESSERA_METRICS_PUBLIC")]
    pub metrics_public: bool,

    /// Do not serve the playground page at `/ui` (`/` redirects there).
    #[arg(
        help_heading = "Server",
        long,
        visible_alias = "no-webui",
        env = "TESSERA_NO_UI"
    )]
    pub no_ui: bool,

    /// Origins allowed by CORS (comma-separated, `*` for any). Off by default.
    #[arg(
        help_heading = "Security",
        long,
        env = "TESSERA_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origin: Vec<String>,

    /// Log format: `text` (human-readable) or `json` (one object per line).
    #[arg(help_heading = "Logging", long, env = "TESSERA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Also log rendered prompts (off by default: no prompt text in logs; image bytes never).
    #[arg(help_heading = "Logging", long, env = "TESSERA_LOG_PROMPTS")]
    pub log_prompts: bool,

    /// Folder `file://` image URLs are read from (relative to it; nothing
    /// outside it). Off by default: `file://` URLs are refused.
    #[arg(help_heading = "Vision", long, env = "TESSERA_MEDIA_PATH")]
    pub media_path: Option<PathBuf>,

    /// Largest request body, in bytes (413 beyond it).
    #[arg(help_heading = "Server", long, env = "TESSERA_MAX_BODY_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=4_294_967_296), default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,

    #[command(flatten)]
    #[serde(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    #[serde(flatten)]
    pub embedding: EmbeddingArgs,

    #[command(flatten)]
    #[serde(flatten)]
    pub video: VideoArgs,

    #[command(flatten)]
    #[serde(flatten)]
    pub audio: AudioArgs,

    #[command(flatten)]
    #[serde(flatten)]
    pub speculation: SpeculationArgs,

    #[command(flatten)]
    #[serde(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    #[serde(skip)]
    pub models: ModelsArgs,
}
