//! The engine thread: loads the model, measures the projector, then hands
//! over to the continuous batcher.

use super::batcher::Batcher;
use super::{Backend, EngineConfig, ModelInfo, Queue, Shared, Status};
use crate::engine::projector;
use crate::engine::prompt::ChatTemplate;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::mtmd::{MtmdContext, MtmdContextParams};
use llama_cpp_2::token::LlamaToken;
use std::ffi::CString;
use std::num::NonZeroU32;
use std::path::Path;
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

pub(super) fn run(config: EngineConfig, queue: &Queue, shared: &Shared) {
    let fail = |msg: String| {
        tracing::error!("{msg}");
        shared.set_status(Status::Failed(msg));
    };
    let backend = match backend(config.backends_dir.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(format!("llama.cpp backend: {e}")),
    };
    let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
    // Shared with the prompt tokenizer, which runs on the HTTP side.
    let model = match LlamaModel::load_from_file(backend, &config.model, &params) {
        Ok(m) => std::sync::Arc::new(m),
        Err(e) => return fail(format!("cannot load {}: {e}", config.model.display())),
    };
    let n_ctx = if config.ctx_size == 0 {
        model.n_ctx_train()
    } else {
        config.ctx_size
    };
    let threads = config.threads.max(1);
    // One KV stream per sequence (not unified): each request gets
    // ctx_size / parallel cells, as llama-server's slots do.
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_seq_max(config.parallel.max(1) as u32)
        .with_kv_unified(false)
        .with_n_batch(config.batch_size)
        .with_n_ubatch(config.batch_size.min(512))
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = match model.new_context(backend, ctx_params) {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot create a context of {n_ctx} tokens: {e}")),
    };
    let media_marker = format!("<__tessera_media_{}__>", uuid::Uuid::new_v4().simple());
    let mtmd = match &config.mmproj {
        None => None,
        Some(path) => {
            let params = MtmdContextParams {
                use_gpu: config.mmproj_offload,
                print_timings: false,
                n_threads: threads,
                media_marker: CString::new(media_marker.clone()).unwrap_or_default(),
                image_min_tokens: -1,
                image_max_tokens: config.image_max_tokens,
            };
            let load: super::pieces::Loader = {
                let path = path.to_str().map(str::to_string);
                Box::new(move |model: &LlamaModel| {
                    let p = path
                        .as_deref()
                        .ok_or_else(|| "the mmproj path is not valid UTF-8".to_string())?;
                    MtmdContext::init_from_file(p, model, &params).map_err(|e| e.to_string())
                })
            };
            match load(&model) {
                Ok(m) if m.support_vision() => Some(std::sync::Arc::new(
                    super::pieces::Preprocessor::new(m, media_marker.clone(), model.clone(), load),
                )),
                Ok(_) => return fail(format!("{} has no vision encoder", path.display())),
                Err(e) => return fail(format!("cannot load mmproj {}: {e}", path.display())),
            }
        }
    };
    // The mmproj's GGUF keys, read once: its family here, its sizes for pricing.
    let mmproj_meta = match config
        .mmproj
        .as_deref()
        .map(super::gguf_meta::GgufMeta::open)
    {
        Some(Err(e)) => return fail(format!("cannot measure the projector's prices: {e}")),
        Some(Ok(m)) => Some(m),
        None => None,
    };
    let projector = mmproj_meta
        .as_ref()
        .and_then(|m| m.str("clip.projector_type"));
    // A user token cap makes mtmd skip the longest-edge rule.
    let longest_edge = config.image_max_tokens <= 0
        && projector
            .as_deref()
            .and_then(super::families::family)
            .is_some_and(|f| f.longest_edge_slicing);
    let profile = match (&mtmd, &mmproj_meta) {
        (Some(m), Some(meta)) => {
            match projector::measure(&m.read(), &media_marker, meta, config.tiles, longest_edge) {
                Ok(p) => Some(p),
                Err(e) => return fail(format!("cannot measure the projector's prices: {e}")),
            }
        }
        _ => None,
    };
    if let Some(w) = projector
        .as_deref()
        .and_then(super::families::untested_warning)
    {
        tracing::warn!("{w}");
    }
    let mrope = mtmd.as_ref().is_some_and(|m| m.read().decode_use_mrope());
    let fence = super::fence::TextFence::random();
    let vocab = model.vocab();
    let piece =
        |t: LlamaToken| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    let bos = piece(vocab.bos());
    let eos = piece(vocab.eos());
    let template = match &config.chat_template {
        Some((path, source)) => match ChatTemplate::from_file(path, source, bos.clone(), eos) {
            Ok(t) => t,
            Err(e) => return fail(e),
        },
        None => {
            let src = model
                .chat_template(None)
                .ok()
                .and_then(|t| t.to_string().ok());
            ChatTemplate::new(src, bos.clone(), eos)
        }
    };
    let backend = Backend::detect(config.n_gpu_layers, model.n_layer());
    let parallel = config.parallel.max(1);
    let bos_text = (vocab.should_add_bos() && !bos.is_empty()).then_some(bos);
    let tokenizer = super::tokenize::PromptTokenizer::new(
        model.clone(),
        fence.clone(),
        media_marker.clone(),
        bos_text,
        ctx.n_ctx() / parallel as u32,
    );
    let info = ModelInfo {
        n_ctx: ctx.n_ctx(),
        parallel: config.parallel.max(1) as u32,
        vision: mtmd.is_some(),
        profile,
        projector,
        mrope,
        template,
        media_marker,
        fence,
        tokenizer,
        preprocessor: mtmd.clone(),
        backend,
        sampling: super::sampling::SamplingDefaults::from_model(&model),
        n_vocab: model.n_vocab().max(0) as u32,
    };
    tracing::info!("{}", info.summary(&config.model));
    let _ = shared.info.set(info);
    shared.set_status(Status::Ready);

    let mut batcher = Batcher::new(
        shared,
        &model,
        ctx,
        mtmd,
        config.batch_size as usize,
        parallel,
        config.image_cache_bytes,
    );
    batcher.run(queue);
}
