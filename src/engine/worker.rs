//! The engine thread: loads the model, measures the projector, then hands
//! over to the continuous batcher.

use super::batcher::Batcher;
use super::error::EngineError;
use super::families;
use super::gguf_meta::GgufMeta;
use super::job::{Queue, Shared};
use super::model::{Backend, EngineConfig, ModelInfo, Status, Vocab};
use super::pieces::{Loader, Preprocessor};
use super::projector;
use super::sampling::SamplingDefaults;
use crate::vision::ProjectorProfile;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::mtmd::{MtmdContext, MtmdContextParams};
use llama_cpp_2::token::LlamaToken;
use std::ffi::CString;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;

/// llama.cpp's backend may be initialised once per process; tests start
/// several servers in one process, so it lives in a static.
fn backend(backends_dir: Option<&Path>) -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            pin_mmap_threshold();
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            super::cpu::load_backends(backends_dir)?;
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Makes every large allocation fresh, zeroed pages from then on. llama.cpp's
/// Pixtral graph multiplies a never-written buffer by zero to clear it
/// (`[IMG_BREAK]` rows), which gives NaN when the buffer holds stale heap
/// bytes; glibc's default threshold grows after big frees (decoded images), so
/// a compute buffer could land on such bytes. A fixed threshold also returns
/// freed image buffers to the system at once.
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a setting of glibc's allocator; it is
    // called once, before llama.cpp allocates anything.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn run(mut config: EngineConfig, queue: &Queue, shared: &Shared) {
    if let Err(msg) = serve(&mut config, queue, shared) {
        tracing::error!("{msg}");
        shared.set_status(Status::Failed(msg));
    }
}

/// Loads, says it is ready, then batches until the queue closes. An error
/// is a failed load.
fn serve(config: &mut EngineConfig, queue: &Queue, shared: &Shared) -> Result<(), String> {
    let backend =
        backend(config.backends_dir.as_deref()).map_err(|e| format!("llama.cpp backend: {e}"))?;
    let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
    // Shared with the prompt tokenizer, which runs on the HTTP side.
    let model = LlamaModel::load_from_file(backend, &config.model, &params)
        .map(Arc::new)
        .map_err(|e| format!("cannot load {}: {e}", config.model.display()))?;
    if let Some(chosen) = config.embeddings {
        config.embeddings = Some(super::pooling::resolve(&model, chosen)?);
    }
    check_kv_widths(config)?;
    let ctx = new_context(backend, &model, config)?;
    let draft_model = match config.draft_model.as_deref() {
        Some(path) => Some(load_draft(backend, path, &model, &params)?),
        None => None,
    };
    let drafter = match &draft_model {
        Some(m) => Some(super::drafter::Drafter::new(
            m,
            new_context(backend, m, config)?,
            config.parallel,
            config.batch_size as usize,
        )),
        None => None,
    };
    let media_marker = format!("<__tessera_media_{}__>", uuid::Uuid::new_v4().simple());
    let vision = match config.mmproj.clone() {
        None => None,
        Some(path) => Some(load_projector(config, &path, &model, &media_marker)?),
    };
    let info = facts(config, &model, ctx.n_ctx(), vision.as_ref(), media_marker);
    if let Some(hook) = config.on_loaded.take() {
        hook(&info)?;
    }
    tracing::info!("{}", info.summary(&config.model));
    let _ = shared.info.set(info);
    shared.set_status(Status::Ready);
    let mut batcher = Batcher::new(
        shared,
        &model,
        ctx,
        vision.map(|v| v.preprocessor),
        config.batch_size as usize,
        config.parallel,
        config.image_cache_bytes,
    );
    batcher.draft_max = config.draft_max;
    batcher.drafter = drafter;
    batcher.run(queue);
    Ok(())
}

/// The draft model, which must speak the model's vocabulary: its guesses
/// are token ids of the model's.
fn load_draft(
    backend: &LlamaBackend,
    path: &Path,
    model: &LlamaModel,
    params: &LlamaModelParams,
) -> Result<LlamaModel, String> {
    let draft = LlamaModel::load_from_file(backend, path, params)
        .map_err(|e| format!("--model-draft: cannot load {}: {e}", path.display()))?;
    if draft.n_vocab() != model.n_vocab() {
        return Err(format!(
            "--model-draft: {} has {} tokens in its vocabulary, the model {}; a draft model must share the model's tokenizer",
            path.display(),
            draft.n_vocab(),
            model.n_vocab()
        ));
    }
    Ok(draft)
}

/// Quantized cache types store blocks of 32 values: llama.cpp cannot make
/// a cache of them for narrower heads, and says only "null reference".
fn check_kv_widths(config: &EngineConfig) -> Result<(), String> {
    let Some(shape) = super::gguf_meta::KvShape::of(&config.model) else {
        return Ok(());
    };
    let info = config.kv.info;
    for (flag, name, width) in [
        ("--cache-type-k", info.type_k, shape.key),
        ("--cache-type-v", info.type_v, shape.value),
    ] {
        let quantized = !matches!(name, "f32" | "f16" | "bf16");
        if quantized && width % 32 != 0 {
            return Err(format!(
                "{flag} {name} needs heads whose width is a multiple of 32; this model's are {width} wide: use f16"
            ));
        }
    }
    Ok(())
}

/// One KV stream per sequence (not unified): each request gets
/// ctx_size / parallel cells, as llama-server's slots do.
fn new_context<'m>(
    backend: &LlamaBackend,
    model: &'m LlamaModel,
    config: &EngineConfig,
) -> Result<LlamaContext<'m>, String> {
    let n_ctx = if config.ctx_size == 0 {
        model.n_ctx_train()
    } else {
        config.ctx_size
    };
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_seq_max(config.parallel as u32)
        .with_kv_unified(false)
        .with_n_batch(config.batch_size)
        .with_n_ubatch(config.batch_size.min(512))
        .with_n_threads(config.threads)
        .with_n_threads_batch(config.threads)
        .with_type_k(config.kv.type_k)
        .with_type_v(config.kv.type_v)
        .with_flash_attention_policy(config.kv.flash_attn);
    // An embedding input is decoded whole, in one ubatch.
    let params = match config.embeddings {
        Some(pooling) => params
            .with_embeddings(true)
            .with_pooling_type(pooling)
            .with_n_ubatch(config.batch_size),
        None => params,
    };
    model
        .new_context(backend, params)
        .map_err(|e| format!("cannot create a context of {n_ctx} tokens: {e}"))
}

/// The projector, loaded and measured.
struct Vision {
    preprocessor: Arc<Preprocessor>,
    /// Its image prices (projectors with a vision encoder).
    profile: Option<ProjectorProfile>,
    /// The vision family's `clip.projector_type` (an omni file's vision half
    /// named as its vision-only sibling).
    projector: Option<String>,
    /// The audio encoder's sample rate (projectors with one that is served).
    audio_rate: Option<u32>,
    /// Why a projector's audio encoder is not served.
    audio_off: Option<String>,
}

fn load_projector(
    config: &EngineConfig,
    path: &Path,
    model: &Arc<LlamaModel>,
    media_marker: &str,
) -> Result<Vision, String> {
    let params = MtmdContextParams {
        use_gpu: config.mmproj_offload,
        print_timings: false,
        n_threads: config.threads,
        media_marker: CString::new(media_marker).unwrap_or_default(),
        image_min_tokens: -1,
        image_max_tokens: config.image_max_tokens,
    };
    let load: Loader = {
        let path = path.to_str().map(str::to_string);
        Box::new(move |model: &LlamaModel| {
            let p = path
                .as_deref()
                .ok_or_else(|| "the mmproj path is not valid UTF-8".to_string())?;
            MtmdContext::init_from_file(p, model, &params).map_err(|e| e.to_string())
        })
    };
    let mtmd = load(model).map_err(|e| format!("cannot load mmproj {}: {e}", path.display()))?;
    let (sees, hears) = (mtmd.support_vision(), mtmd.support_audio());
    if !sees && !hears {
        return Err(format!(
            "{} has neither a vision nor an audio encoder",
            path.display()
        ));
    }
    let mut audio_rate = mtmd.get_audio_sample_rate().filter(|_| hears);
    let preprocessor = Arc::new(Preprocessor::new(
        mtmd,
        media_marker.to_string(),
        model.clone(),
        load,
    ));
    // The mmproj's GGUF keys, read once: its family here, its sizes for pricing.
    let measure_failed = |e: String| format!("cannot measure the projector's prices: {e}");
    let meta = GgufMeta::open(path).map_err(|e| measure_failed(e.to_string()))?;
    let projector = meta
        .str("clip.projector_type")
        .or_else(|| meta.str("clip.vision.projector_type"))
        .map(|p| families::vision_name(&p).to_string());
    let audio_off = audio_rate.and_then(|_| audio_refused(&meta));
    if let Some(why) = &audio_off {
        tracing::warn!("{why}");
        audio_rate = None;
    }
    if !sees {
        return Ok(Vision {
            preprocessor,
            profile: None,
            projector,
            audio_rate,
            audio_off,
        });
    }
    let family = projector.as_deref().and_then(families::family);
    // A user token cap makes mtmd skip the longest-edge rule.
    let longest_edge =
        config.image_max_tokens <= 0 && family.is_some_and(|f| f.longest_edge_slicing);
    let profile = projector::measure(
        &preprocessor.read(),
        media_marker,
        &meta,
        config.tiles,
        longest_edge,
    )
    .map_err(|e| measure_failed(e.to_string()))?;
    if let Some(w) = projector.as_deref().and_then(families::untested_warning) {
        tracing::warn!("{w}");
    }
    Ok(Vision {
        preprocessor,
        profile: Some(profile),
        projector,
        audio_rate,
        audio_off,
    })
}

/// Why this projector's audio is not served, if it is not: the pinned
/// mtmd would abort the process on its first clip.
fn audio_refused(meta: &GgufMeta) -> Option<String> {
    let kind = meta
        .str("clip.audio.projector_type")
        .or_else(|| meta.str("clip.projector_type"))?;
    let stack = meta.u32("clip.audio.projector.stack_factor").unwrap_or(0);
    let (counted, made) = families::audio_miscount(&kind, stack)?;
    Some(format!(
        "audio is off for this model: the pinned llama.cpp counts a {kind} audio window as \
         {counted} tokens but its encoder makes {made}, and aborts on the mismatch"
    ))
}

/// The plain facts the HTTP side gets.
fn facts(
    config: &EngineConfig,
    model: &Arc<LlamaModel>,
    n_ctx: u32,
    vision: Option<&Vision>,
    media_marker: String,
) -> ModelInfo {
    let vocab = model.vocab();
    let piece =
        |t: LlamaToken| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    ModelInfo {
        n_ctx,
        parallel: config.parallel as u32,
        vision: vision.is_some_and(|v| v.profile.is_some()),
        profile: vision.and_then(|v| v.profile),
        audio_rate: vision.and_then(|v| v.audio_rate),
        audio_off: vision.and_then(|v| v.audio_off.clone()),
        projector: vision.and_then(|v| v.projector.clone()),
        mrope: vision.is_some_and(|v| v.preprocessor.read().decode_use_mrope()),
        media_marker,
        chat_template: model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok()),
        bos: piece(vocab.bos()),
        eos: piece(vocab.eos()),
        vocab: Vocab(model.clone()),
        preprocessor: vision.map(|v| v.preprocessor.clone()),
        backend: Backend::detect(config.n_gpu_layers, model.n_layer()),
        sampling: SamplingDefaults::from_model(model),
        n_vocab: model.n_vocab().max(0) as u32,
        kv_cache: config.kv.info,
        embeddings: config.embeddings.map(|p| super::model::EmbeddingInfo {
            pooling: super::pooling::name(p),
            n_embd: model.n_embd().max(0) as u32,
            max_tokens: config
                .batch_size
                .min(n_ctx / (config.parallel.max(1) as u32)),
        }),
    }
}

/// Runs the engine thread and turns any way it can die into a truthful
/// status: `/health` then answers 503, queued clients get a 503, and
/// [`Engine::died`] resolves. (A llama.cpp abort kills the whole process
/// instead; the supervisor sees that exit directly.)
pub(super) fn supervise(config: EngineConfig, queue: Arc<Queue>, shared: Arc<Shared>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(config, &queue, &shared)
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
