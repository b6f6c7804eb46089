//! The preparation room: a parsed wire request becomes an engine job.
//! Messages are flattened (client text fenced, images replaced by the media
//! marker), parameters checked, images fetched, decoded within the budget,
//! planned, priced and preprocessed, tools given their grammar, the chat
//! template rendered and the prompt tokenized.
//!
//! The room knows no HTTP (its errors are mapped to a dialect's envelope in
//! `api/`) and never touches the llama context: the engine hands it plain
//! facts ([`ModelInfo`]), from which it builds its own template and
//! tokenizer ([`PromptModel`]) once, when the model has loaded.

mod audio_parts;
mod audio_path;
pub mod error;
mod extras;
pub mod fence;
pub mod grammar;
mod image_path;
mod images;
pub mod jinja;
mod media;
mod messages;
pub mod params;
mod pool;
mod prompt;
mod prompt_model;
mod raw;
pub mod schema_limits;
pub mod template;
pub mod tokenize;
mod tool_setup;
pub mod tools;
mod video_parts;
mod video_path;

use crate::engine::{Engine, EngineError, GenerateRequest, ModelInfo, OnLoaded, Status};
use crate::metrics::Metrics;
use crate::openai::{ChatCompletionRequest, MediaUsage};
use crate::vision::budget::DecodeBudget;
pub use error::{PrepareError, image_error};
use extras::{extras, response_grammar};
pub use images::Limits;
use pool::CpuPool;
pub use prompt_model::{PromptModel, TemplateFile};
pub use raw::RawPrompt;
use raw::served_as;
use std::sync::{Arc, OnceLock};
use template::TemplateExtras;

/// A validated request, images decoded, planned and cut, prompt rendered.
pub struct Prepared {
    pub generate: GenerateRequest,
    /// The prompt as the model reads it, kept only for `--log-prompts`.
    pub prompt_text: Option<String>,
    /// Each image's, video's and clip's plan and price.
    pub media: MediaUsage,
    /// How to read tool calls out of the answer, when tools are offered.
    pub tool_format: Option<tools::ToolFormat>,
    pub stream: bool,
    pub include_usage: bool,
}

/// The room's settings, from `Config`.
pub struct Settings {
    pub limits: Limits,
    /// `--max-decode-memory` in bytes.
    pub decode_memory: u64,
    pub log_prompts: bool,
    /// The model's id in the API, for messages that name it.
    pub model_id: String,
}

pub struct Preparer {
    engine: Engine,
    model: PromptModelSlot,
    pub limits: Limits,
    /// Image memory in flight, across all requests.
    pub decode_budget: DecodeBudget,
    images: CpuPool,
    text: CpuPool,
    metrics: Arc<Metrics>,
    log_prompts: bool,
    model_id: String,
}

/// Where the engine's load hook puts the [`PromptModel`].
pub type PromptModelSlot = Arc<OnceLock<PromptModel>>;

/// The hook the engine runs once the model has loaded: it builds the
/// [`PromptModel`] into the slot (a template file that does not compile
/// fails the load).
pub fn on_loaded(file: Option<TemplateFile>) -> (PromptModelSlot, OnLoaded) {
    let slot = PromptModelSlot::default();
    let hook: OnLoaded = {
        let slot = slot.clone();
        Box::new(move |info: &ModelInfo| {
            let built = PromptModel::build(info, file.as_ref())?;
            let _ = slot.set(built);
            Ok(())
        })
    };
    (slot, hook)
}

impl Preparer {
    pub fn new(
        settings: Settings,
        engine: Engine,
        model: PromptModelSlot,
        metrics: Arc<Metrics>,
    ) -> Self {
        // Said once at start, off the start's path (running ffmpeg takes a
        // moment): video needs ffmpeg; the rest runs without it.
        let video = settings.limits.video.clone();
        std::thread::spawn(move || video.available());
        Preparer {
            engine,
            model,
            limits: settings.limits,
            decode_budget: DecodeBudget::new(settings.decode_memory),
            images: CpuPool::per_core(),
            text: CpuPool::per_core(),
            metrics,
            log_prompts: settings.log_prompts,
            model_id: settings.model_id,
        }
    }

    /// The template and tokenizer; `None` until the model has loaded.
    pub fn prompt_model(&self) -> Option<&PromptModel> {
        self.model.get()
    }

    /// The model's facts and this room's objects, or why not yet.
    fn ready(&self) -> Result<(&ModelInfo, &PromptModel), PrepareError> {
        match (self.engine.info(), self.model.get()) {
            (Some(info), Some(pm)) => Ok((info, pm)),
            _ => Err(match self.engine.status() {
                Status::Failed(e) => EngineError::Unavailable(e),
                Status::Dead(e) => EngineError::Dead(e),
                _ => EngineError::Loading,
            }
            .into()),
        }
    }

    /// A parsed request (from Chat Completions, or translated from another
    /// dialect) through validation, images and the prompt.
    pub async fn prepare(
        &self,
        req: ChatCompletionRequest,
        deadline: Option<std::time::Instant>,
    ) -> Result<Prepared, PrepareError> {
        self.prepare_as(req, deadline, false).await
    }

    /// `embed`: the request's one user message is an embedding input, its
    /// text and images joined without the template.
    pub async fn prepare_as(
        &self,
        req: ChatCompletionRequest,
        deadline: Option<std::time::Instant>,
        embed: bool,
    ) -> Result<Prepared, PrepareError> {
        let (info, pm) = self.ready()?;
        served_as(info, embed)?;
        let plan = params::validate(&req, &params::ModelLimits::of(info))?;
        let (messages, refs) = messages::flatten(&req, pm)?;
        let kwargs = req.mm_processor_kwargs.as_ref();
        let media::ByKind {
            images: urls,
            videos: mut video_refs,
            audio: audio_refs,
            order,
        } = media::by_kind(refs);
        // Each image's settings over the request's over the server's.
        let request_images = images::request_options(kwargs)?.or(self.limits.image);
        let urls = urls
            .into_iter()
            .map(|mut u| {
                u.options = u.options.or(request_images);
                u
            })
            .collect();
        let request_videos = video_parts::request_options(kwargs);
        video_parts::check_options(&request_videos, "mm_processor_kwargs")?;
        for v in &mut video_refs {
            v.options = v.options.or(request_videos);
        }
        let (decoded, hold) = self.images(info, urls, deadline).await?;
        let videos = self.videos(info, video_refs, deadline).await?;
        let audio = self.audios(info, audio_refs, deadline).await?;
        let extras = extras(&req, pm)?;
        let made = media::Made {
            images: decoded,
            videos,
            audio,
        };
        let media::Joined {
            expansions,
            usage: media,
            pieces,
            hold,
        } = media::join(made, &order, &pm.media_marker, hold);
        let text = self.prompt(plan.tools, plan.format, messages, extras, expansions, embed);
        let preprocessor = info.preprocessor.clone();
        let encoder_input = self.images.run(move || match preprocessor {
            Some(p) if !pieces.is_empty() => p.pieces(pieces),
            _ => Ok(Vec::new()),
        });
        // The prompt on the text pool, the pieces' encoder input on the
        // image pool, at once.
        let (text, encoder_input) = tokio::join!(text, encoder_input);
        let (prompt, tools, format) = text?;
        let pieces = encoder_input.map_err(blocking_failed)??;
        // Tools, when offered, bring their own grammar.
        let (grammar, shown_tokens, tool_format) = match tools {
            Some(t) => (Some(t.grammar), t.shown_tokens, Some(t.format)),
            None => (format, Vec::new(), None),
        };
        Ok(Prepared {
            prompt_text: prompt.text,
            generate: GenerateRequest {
                prompt: prompt.tokens,
                images: pieces,
                sampling: plan.sampling,
                max_tokens: plan.max_tokens,
                n: plan.n,
                stop: plan.stop,
                grammar,
                shown_tokens,
                logprobs: plan.logprobs,
                think: pm.template.think.map(|t| (t, prompt.think_opened)),
                hold,
                embed,
            },
            tool_format,
            media,
            stream: req.stream.unwrap_or(false),
            include_usage: req.stream_options.as_ref().is_some_and(|o| o.include_usage),
        })
    }

    /// A raw prompt (`/v1/completions`): no template, special tokens read
    /// as such (as llama-server does), BOS added as the model asks; or the
    /// client's own token ids. `req` carries the sampling fields.
    pub async fn prepare_raw(
        &self,
        req: ChatCompletionRequest,
        prompt: RawPrompt,
        embed: bool,
    ) -> Result<Prepared, PrepareError> {
        let (info, pm) = self.ready()?;
        served_as(info, embed)?;
        let plan = params::validate(&req, &params::ModelLimits::of(info))?;
        raw::check(&prompt, pm)?;
        let keep = self.log_prompts;
        let model = self.model.clone();
        let (tokens, text) = self
            .text
            .run(move || {
                let pm = model.get().ok_or(EngineError::Loading)?;
                raw::tokens(pm, prompt, keep)
            })
            .await
            .map_err(blocking_failed)??;
        if tokens.text_tokens() == 0 {
            return Err(PrepareError::invalid("the prompt is empty").param("prompt"));
        }
        Ok(Prepared {
            prompt_text: text,
            generate: GenerateRequest {
                prompt: tokens,
                images: Vec::new(),
                sampling: plan.sampling,
                max_tokens: plan.max_tokens,
                n: plan.n,
                stop: plan.stop,
                grammar: plan.format.as_ref().map(response_grammar).transpose()?,
                shown_tokens: Vec::new(),
                logprobs: plan.logprobs,
                think: None,
                hold: None,
                embed,
            },
            tool_format: None,
            media: MediaUsage::default(),
            stream: req.stream.unwrap_or(false),
            include_usage: req.stream_options.as_ref().is_some_and(|o| o.include_usage),
        })
    }

    /// Tools made ready (or the `response_format` grammar made), the
    /// template rendered and the prompt tokenized: CPU work, on the text
    /// pool. `counts[i]`: image `i`'s pieces.
    async fn prompt(
        &self,
        tools: Option<params::ToolPlan>,
        format: Option<serde_json::Value>,
        mut messages: Vec<template::TemplateMessage>,
        mut extras: TemplateExtras,
        expansions: Vec<String>,
        raw: bool,
    ) -> Result<PromptParts, PrepareError> {
        let keep_text = self.log_prompts;
        let model = self.model.clone();
        self.text
            .run(move || {
                let pm = model.get().ok_or(EngineError::Loading)?;
                if raw {
                    let prompt = prompt::build_raw(pm, &messages, &expansions, keep_text)?;
                    return Ok((prompt, None, None));
                }
                // With tools, the answer's format is part of their grammar.
                let tools = match &tools {
                    Some(t) => Some(tool_setup::apply(
                        t,
                        format.as_ref(),
                        pm,
                        &mut messages,
                        &mut extras,
                    )?),
                    None => None,
                };
                let format = match tools {
                    Some(_) => None,
                    None => format.as_ref().map(response_grammar).transpose()?,
                };
                tool_setup::calls_as_text(pm, &mut messages);
                let prompt = prompt::build(pm, &messages, &extras, &expansions, keep_text)?;
                Ok((prompt, tools, format))
            })
            .await
            .map_err(blocking_failed)?
    }
}

type PromptParts = (
    prompt::Prompt,
    Option<tool_setup::ToolSetup>,
    Option<crate::engine::Grammar>,
);

/// A body's fields checked as far as they can be without a model (the fuzz
/// target `request_body` drives this).
#[cfg(feature = "testing")]
pub fn check(req: &ChatCompletionRequest) -> Result<(), PrepareError> {
    let plan = params::validate(req, &params::ModelLimits::default())?;
    plan.format
        .as_ref()
        .map(response_grammar)
        .transpose()
        .map(drop)
}

fn blocking_failed(e: tokio::task::JoinError) -> PrepareError {
    EngineError::Internal(e.to_string()).into()
}
