//! The engine thread: loads the model, then serves jobs one after another.
//! (Continuous batching across sequences is a later step; the job queue and
//! event protocol already fit it.)

use super::text::TextAssembler;
use super::{
    EngineConfig, EngineError, Event, FinishReason, Job, ModelInfo, PromptUsage, Shared, Status,
};
use crate::engine::projector;
use crate::engine::prompt::ChatTemplate;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunks, MtmdInputText, MtmdTokenizeError,
};
use llama_cpp_2::token::LlamaToken;
use std::ffi::CString;
use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// llama.cpp's backend may be initialised once per process; tests start
/// several servers in one process, so it lives in a static.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Everything loaded, borrowed by the per-job code.
struct Loaded<'m> {
    shared: &'m Shared,
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    mtmd: Option<MtmdContext>,
    n_batch: u32,
    /// The media marker, to split the prompt as mtmd does.
    marker: String,
    /// BOS text to strip from a rendered prompt when tokenisation adds BOS itself.
    bos_text: Option<String>,
}

pub(super) fn run(config: EngineConfig, mut rx: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    let fail = |msg: String| {
        tracing::error!("{msg}");
        shared.set_status(Status::Failed(msg));
    };
    let backend = match backend() {
        Ok(b) => b,
        Err(e) => return fail(format!("llama.cpp backend: {e}")),
    };
    let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
    let model = match LlamaModel::load_from_file(backend, &config.model, &params) {
        Ok(m) => m,
        Err(e) => return fail(format!("cannot load {}: {e}", config.model.display())),
    };
    let n_ctx = if config.ctx_size == 0 {
        model.n_ctx_train()
    } else {
        config.ctx_size
    };
    let threads = config.threads.max(1);
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
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
            let loaded = path
                .to_str()
                .ok_or_else(|| "the mmproj path is not valid UTF-8".to_string())
                .and_then(|p| {
                    MtmdContext::init_from_file(p, &model, &params).map_err(|e| e.to_string())
                });
            match loaded {
                Ok(m) if m.support_vision() => Some(m),
                Ok(_) => return fail(format!("{} has no vision encoder", path.display())),
                Err(e) => return fail(format!("cannot load mmproj {}: {e}", path.display())),
            }
        }
    };
    let profile = match (&mtmd, &config.mmproj) {
        (Some(m), Some(path)) => match projector::measure(m, &media_marker, path, config.tiles) {
            Ok(p) => Some(p),
            Err(e) => return fail(format!("cannot measure the projector's prices: {e}")),
        },
        _ => None,
    };
    let media_marker_copy = media_marker.clone();
    let vocab = model.vocab();
    let piece =
        |t: LlamaToken| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    let bos = piece(vocab.bos());
    let eos = piece(vocab.eos());
    let template_src = model
        .chat_template(None)
        .ok()
        .and_then(|t| t.to_string().ok());
    let info = ModelInfo {
        n_ctx: ctx.n_ctx(),
        n_ctx_train: model.n_ctx_train(),
        vision: mtmd.is_some(),
        profile,
        template: ChatTemplate::new(template_src, bos.clone(), eos),
        media_marker,
    };
    tracing::info!(
        n_ctx = info.n_ctx,
        vision = info.vision,
        template_fallback = info.template.is_fallback,
        "model loaded"
    );
    let _ = shared.info.set(info);
    shared.set_status(Status::Ready);

    let mut loaded = Loaded {
        shared: &shared,
        model: &model,
        ctx,
        mtmd,
        n_batch: config.batch_size,
        marker: media_marker_copy,
        bos_text: (vocab.should_add_bos() && !bos.is_empty()).then_some(bos),
    };
    while let Some(job) = rx.blocking_recv() {
        if job.events.is_closed() {
            continue; // the client left while queued
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| loaded.generate(&job)));
        let error = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => EngineError::Internal("the request panicked; the engine recovered".into()),
        };
        let _ = job.events.send(Event::Failed(error));
    }
}

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(e.to_string())
}

/// A tokenized prompt, ready to evaluate.
enum Prepared {
    Text(Vec<LlamaToken>),
    Chunks(MtmdInputChunks),
}

impl Loaded<'_> {
    /// Tokenizes the prompt (images preprocessed, not yet encoded) and counts
    /// it: total tokens from mtmd's chunks; image positions as the total
    /// minus the text between markers, tokenized exactly as mtmd does.
    fn prepare(&self, job: &Job) -> Result<(Prepared, PromptUsage), EngineError> {
        let mut prompt = job.request.prompt.as_str();
        if let Some(bos) = &self.bos_text {
            prompt = prompt.strip_prefix(bos.as_str()).unwrap_or(prompt);
        }
        let vocab = self.model.vocab();
        let Some(mtmd) = self.mtmd.as_ref() else {
            let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
            let usage = PromptUsage {
                prompt_tokens: tokens.len() as u32,
                ..Default::default()
            };
            return Ok((Prepared::Text(tokens), usage));
        };
        let bitmaps = job
            .request
            .images
            .iter()
            .map(|img| MtmdBitmap::from_image_data(img.width, img.height, &img.rgb))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Image(e.to_string()))?;
        let refs: Vec<&MtmdBitmap> = bitmaps.iter().collect();
        let text = MtmdInputText {
            text: prompt.to_string(),
            add_special: true,
            parse_special: true,
        };
        let chunks = mtmd.tokenize(text, &refs).map_err(|e| match e {
            MtmdTokenizeError::ImagePreprocessingError => {
                EngineError::Image("preprocessing failed".into())
            }
            other => internal(other),
        })?;
        let total = chunks.total_tokens() as u32;
        let specials = u32::from(vocab.should_add_bos()) + u32::from(vocab.should_add_eos());
        let text_tokens: u32 = prompt
            .split(self.marker.as_str())
            .map(|seg| vocab.tokenize(seg.as_bytes(), false, true).len() as u32)
            .sum::<u32>()
            + specials;
        let usage = PromptUsage {
            prompt_tokens: total,
            image_tokens: total.saturating_sub(text_tokens),
            cached_tokens: 0,
        };
        Ok((Prepared::Chunks(chunks), usage))
    }

    /// Puts a prepared prompt into sequence 0; returns the next position.
    fn eval(&mut self, prepared: &Prepared, usage: PromptUsage) -> Result<i32, EngineError> {
        let n_ctx = self.ctx.n_ctx();
        // KV cells are what fill up; with M-RoPE positions run slower than cells.
        let cells = match prepared {
            Prepared::Text(t) => t.len() as u32,
            Prepared::Chunks(c) => usage.prompt_tokens.max(c.total_positions().max(0) as u32),
        };
        if cells == 0 || cells >= n_ctx {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: usage.prompt_tokens,
                n_ctx,
            });
        }
        match prepared {
            Prepared::Text(tokens) => {
                let step = self.n_batch.max(1) as usize;
                let mut batch = LlamaBatch::new(step, 1);
                for (i, slice) in tokens.chunks(step).enumerate() {
                    batch.clear();
                    let last_slice = (i + 1) * step >= tokens.len();
                    for (j, t) in slice.iter().enumerate() {
                        let pos = (i * step + j) as i32;
                        let logits = last_slice && j + 1 == slice.len();
                        batch.add(*t, pos, &[0], logits).map_err(internal)?;
                    }
                    self.ctx.decode(&mut batch).map_err(internal)?;
                }
                Ok(tokens.len() as i32)
            }
            Prepared::Chunks(chunks) => {
                let mtmd = self
                    .mtmd
                    .as_mut()
                    .ok_or_else(|| internal("no vision context"))?;
                chunks
                    .eval_chunks(mtmd, &mut self.ctx, 0, 0, self.n_batch as i32, true)
                    .map_err(internal)
            }
        }
    }

    fn generate(&mut self, job: &Job) -> Result<(), EngineError> {
        let (prepared, usage) = self.prepare(job)?;
        let send = |e: Event| job.events.send(e).is_ok();
        if job.request.count_only {
            send(Event::Started(usage));
            return self.finish(job, FinishReason::Length, 0, None);
        }
        self.ctx.clear_kv_cache();
        let mut n_past = self.eval(&prepared, usage)?;
        if !send(Event::Started(usage)) {
            return Ok(());
        }
        let n_ctx = self.ctx.n_ctx() as i32;
        let vocab = self.model.vocab();
        let mut sampler = job.request.sampling.sampler();
        let mut text = TextAssembler::new(job.request.stop.clone());
        let max_tokens = job.request.max_tokens.unwrap_or(u32::MAX);
        let mut batch = LlamaBatch::new(1, 1);
        let mut completion_tokens = 0u32;
        let mut piece = Vec::new();
        let reason = loop {
            // Every counted token must have a place in the context.
            if completion_tokens >= max_tokens || n_past >= n_ctx {
                break FinishReason::Length;
            }
            let token = sampler.sample(&self.ctx, -1);
            if vocab.is_eog(token) {
                break FinishReason::Stop;
            }
            completion_tokens += 1;
            self.shared.count_token();
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, false, None);
            let step = text.push(&piece);
            if !step.text.is_empty() && !send(Event::Text(step.text)) {
                return Ok(()); // client gone: free the sequence now
            }
            if step.stopped {
                return self.finish(job, FinishReason::Stop, completion_tokens, None);
            }
            if completion_tokens >= max_tokens {
                break FinishReason::Length;
            }
            if job.events.is_closed() {
                return Ok(());
            }
            batch.clear();
            batch.add(token, n_past, &[0], true).map_err(internal)?;
            self.ctx.decode(&mut batch).map_err(internal)?;
            n_past += 1;
        };
        self.finish(job, reason, completion_tokens, Some(text.finish()))
    }

    fn finish(
        &self,
        job: &Job,
        reason: FinishReason,
        completion_tokens: u32,
        tail: Option<String>,
    ) -> Result<(), EngineError> {
        if let Some(tail) = tail.filter(|t| !t.is_empty()) {
            let _ = job.events.send(Event::Text(tail));
        }
        let _ = job.events.send(Event::Finished {
            reason,
            completion_tokens,
        });
        Ok(())
    }
}
