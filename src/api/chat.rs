//! `POST /v1/chat/completions`: validation in one place, then the engine.

use super::error::ApiError;
use super::images::{cut_all, fetch_remote, probe_all};
use super::log::RequestLog;
use super::messages::flatten;
use super::{SharedState, sse, unix_now};
use crate::engine::prompt::TemplateExtras;
use crate::engine::{EngineError, Event, GenerateRequest, ModelInfo, Status};
use crate::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ErrorEnvelope, ImageUsage,
    InputTokens, ReasoningEffort,
};
use crate::vision::budget::{BudgetError, request_cost};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Chat Completions, as OpenAI's. With `stream: true` the answer is a
/// `text/event-stream` of `chat.completion.chunk` events ending in `data: [DONE]`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "chat",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The answer (`stream: false`), or an event stream of chunks (`stream: true`)",
            content(
                (ChatCompletion = "application/json"),
                (ChatCompletionChunk = "text/event-stream"),
            )),
        (status = 400, description = "Invalid request, image or context overflow", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorEnvelope),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorEnvelope),
        (status = 500, description = "Internal engine error, confined to this request", body = ErrorEnvelope),
        (status = 503, description = "Model loading, failed, engine stopped, or request timed out", body = ErrorEnvelope),
    ))]
pub async fn chat_completions(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = super::log::request_id(&headers);
    match handle(state, &request_id, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A validated request, images decoded, planned and cut, prompt rendered.
pub struct PreparedRequest {
    pub generate: GenerateRequest,
    /// The prompt as the model reads it, kept only for `--log-prompts`.
    pub prompt_text: Option<String>,
    pub images: Vec<ImageUsage>,
    /// How to read tool calls out of the answer, when tools are offered.
    pub tool_format: Option<crate::engine::tools::ToolFormat>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Everything both `/v1/chat/completions` and its `/input_tokens` preview
/// do before the engine: one place for validation.
pub async fn prepare(
    state: &SharedState,
    body: Result<Bytes, BytesRejection>,
    deadline: Option<std::time::Instant>,
) -> Result<PreparedRequest, ApiError> {
    let body = body_bytes(body)?;
    let req = parse(&body)?;
    prepare_request(state, req, deadline).await
}

/// The body, or the reason it could not be read.
pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is larger than the server accepts (--max-body-bytes); send fewer or smaller images".to_string()
        } else if super::deadline::is_body_timeout(&e) {
            "the request body did not arrive within --body-read-timeout; send it faster or raise the limit".to_string()
        } else {
            format!("cannot read the request body: {e}")
        };
        ApiError::new(status, "invalid_request_error", msg)
    })
}

/// A parsed request (from Chat Completions, or translated from the
/// Responses API) through validation, images and the prompt.
pub async fn prepare_request(
    state: &SharedState,
    req: ChatCompletionRequest,
    deadline: Option<std::time::Instant>,
) -> Result<PreparedRequest, ApiError> {
    let info = ready_info(state)?;
    let plan = super::params::validate(&req, &super::params::ModelLimits::of(info))?;
    let (mut messages, urls) = flatten(&req, info)?;
    let profile = match (urls.first(), info.profile) {
        (None, _) => None,
        (Some(_), Some(p)) if info.vision => Some(p),
        (Some(first), _) => {
            return Err(ApiError::invalid(
                "this model cannot see images: it was started without a vision projector (--mmproj)",
            )
            .param(first.param.clone())
            .code("images_not_supported"));
        }
    };
    if urls.len() > state.limits.max_images {
        return Err(ApiError::invalid(format!(
            "the request has {} images, above the limit of {} (--max-images)",
            urls.len(),
            state.limits.max_images
        ))
        .param("messages"));
    }
    let limits = state.limits.clone();
    let images_started = std::time::Instant::now();
    let has_images = !urls.is_empty();
    let fetched = fetch_remote(urls, &limits).await?;
    // Decoding, tiling and resizing are CPU work: keep them off the runtime.
    let blocking_failed =
        |e: tokio::task::JoinError| ApiError::from(EngineError::Internal(e.to_string()));
    let (decoded, hold) = match profile {
        None => (Vec::new(), None),
        Some(profile) => {
            let probe_limits = limits.clone();
            let budget = &state.decode_budget;
            let probed = budget
                .run(move || probe_all(fetched, &probe_limits, &profile))
                .await
                .map_err(blocking_failed)??;
            // The whole request's image memory, reserved at once before decoding.
            let costs: Vec<_> = probed.iter().map(|p| p.cost).collect();
            let mut grant = budget
                .acquire(request_cost(&costs), deadline)
                .await
                .map_err(budget_error)?;
            let kept = grant.keep(costs.iter().map(|c| c.kept).sum());
            let cut = budget
                .run(move || {
                    let out = cut_all(probed, &limits);
                    drop(grant);
                    out
                })
                .await
                .map_err(blocking_failed)??;
            (cut, Some(kept))
        }
    };
    if has_images {
        let m = &state.metrics;
        m.image_decode
            .observe(images_started.elapsed().as_secs_f64());
        for (plan, _) in &decoded {
            m.tiles_per_image.observe(f64::from(plan.tiles()));
        }
    }
    let mut extras = TemplateExtras {
        kwargs: req.chat_template_kwargs.clone().unwrap_or_default(),
        ..TemplateExtras::default()
    };
    let tool_plan = plan.tools;
    if let Some(effort) = req.reasoning_effort {
        if !info.template.thinking_switch {
            return Err(ApiError::invalid(
                "reasoning_effort is not supported by this model: its chat template has no thinking switch (enable_thinking)",
            )
            .param("reasoning_effort")
            .code("unsupported_parameter"));
        }
        // An explicit chat_template_kwargs value is the more specific one.
        let on = !matches!(effort, ReasoningEffort::None | ReasoningEffort::Minimal);
        extras
            .kwargs
            .entry("enable_thinking")
            .or_insert(serde_json::Value::Bool(on));
    }
    let counts: Vec<usize> = decoded.iter().map(|(_, p)| p.len()).collect();
    let mut pieces = Vec::new();
    let mut images = Vec::with_capacity(decoded.len());
    for (tile_plan, p) in decoded {
        images.push(super::images::image_usage(&tile_plan));
        pieces.extend(p);
    }
    let engine = state.engine.clone();
    let keep_text = state.log_prompts;
    let (prompt, pieces, tools) = state
        .decode_budget
        .run(move || {
            let info = engine.info().ok_or(EngineError::Loading)?;
            let tools = match &tool_plan {
                Some(t) => Some(super::tools::apply(t, info, &mut messages, &mut extras)?),
                None => None,
            };
            super::tools::calls_as_text(info, &mut messages);
            let prompt = super::prompt::build(info, &messages, &extras, &counts, keep_text)?;
            let pieces = match &info.preprocessor {
                Some(p) => p.pieces(pieces)?,
                None => Vec::new(),
            };
            Ok::<_, ApiError>((prompt, pieces, tools))
        })
        .await
        .map_err(blocking_failed)??;
    // Tools, when offered, bring their own grammar.
    let (grammar, shown_tokens, tool_format) = match tools {
        Some(t) => (Some(t.grammar), t.shown_tokens, Some(t.format)),
        None => (plan.grammar, Vec::new(), None),
    };
    Ok(PreparedRequest {
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
            think: info.template.think.map(|t| (t, prompt.think_opened)),
            hold,
        },
        tool_format,
        images,
        stream: req.stream.unwrap_or(false),
        include_usage: req.stream_options.as_ref().is_some_and(|o| o.include_usage),
    })
}

async fn handle(
    state: SharedState,
    request_id: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let log = RequestLog::new(request_id, &state.model_id);
    let deadline = state.request_timeout.map(|t| started + t);
    let prepared = prepare(&state, body, deadline).await?;
    let stream = prepared.stream;
    let include_usage = prepared.include_usage;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let (meta, usage, choices) = start(&state, prepared, deadline, log, id).await?;
    if stream {
        Ok(sse::stream(meta, usage, choices, include_usage))
    } else {
        sse::collect(meta, usage, choices).await
    }
}

/// Submits a prepared request and waits until its prompt is in: prompt
/// errors still get their status code, even for streams. One receiver per
/// choice.
pub async fn start(
    state: &SharedState,
    prepared: PreparedRequest,
    deadline: Option<std::time::Instant>,
    log: RequestLog,
    id: String,
) -> Result<
    (
        sse::ResponseMeta,
        crate::engine::PromptUsage,
        Vec<crate::engine::channel::EventReceiver>,
    ),
    ApiError,
> {
    log.images(
        prepared.images.len(),
        prepared.images.iter().map(|i| i.tiles).sum(),
    );
    if state.log_prompts {
        log.prompt_text(prepared.prompt_text.as_deref().unwrap_or_default());
    }
    let logprobs = prepared.generate.logprobs.is_some();
    // The API reads thoughts out of the text as the engine counts them.
    let think = prepared
        .generate
        .think
        .map(|(tags, opened)| crate::engine::reasoning::Splitter::new(tags, opened));
    let mut choices = state.engine.submit(prepared.generate, deadline)?;
    // The first choice evaluates the prompt; the others start from its cells.
    let usage = match choices.first_mut() {
        Some(rx) => prompt_started(rx).await?,
        None => return Err(EngineError::Internal("no choice was queued".into()).into()),
    };
    log.prompt(&usage);
    let meta = sse::ResponseMeta {
        id,
        created: unix_now(),
        model: state.model_id.clone(),
        logprobs,
        tools: prepared.tool_format,
        think,
        images: prepared.images,
        log,
    };
    Ok((meta, usage, choices))
}

/// `POST /v1/chat/completions/input_tokens`: what the same request to
/// `/v1/chat/completions` will report as `usage.prompt_tokens`, without
/// generating. Images are decoded, tiled and tokenized, not encoded.
#[utoipa::path(post, path = "/v1/chat/completions/input_tokens", tag = "chat",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The prompt's price", body = InputTokens),
        (status = 400, description = "Invalid request or image", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorEnvelope),
        (status = 500, description = "Internal engine error, confined to this request", body = ErrorEnvelope),
        (status = 503, description = "Model loading, failed, or engine stopped", body = ErrorEnvelope),
    ))]
pub async fn input_tokens(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let deadline = state.request_timeout.map(|t| std::time::Instant::now() + t);
        // Everything the engine would count is known once the request is
        // prepared: the preview never waits for a queue place.
        let prepared = prepare(&state, body, deadline).await?;
        let u = prepared.generate.usage();
        Ok(Json(InputTokens {
            object: "chat.completion.input_tokens",
            input_tokens: u.prompt_tokens,
            image_tokens: u.image_tokens,
            images: prepared.images,
        })
        .into_response())
    };
    result.await.unwrap_or_else(|e: ApiError| e.into_response())
}

/// Waits until the prompt is in the context (or counted), so that prompt
/// errors still get a proper status code, even for streams.
async fn prompt_started(
    rx: &mut crate::engine::channel::EventReceiver,
) -> Result<crate::engine::PromptUsage, ApiError> {
    match rx.recv().await {
        Some(Event::Started(u)) => Ok(u),
        Some(Event::Failed(e)) => Err(e.into()),
        _ => Err(EngineError::Internal("the engine dropped the request".into()).into()),
    }
}

/// A body as the HTTP side checks it before any model work: parsed and
/// validated (the fuzz target `request_body` drives this).
pub fn check_request(body: &[u8]) -> Result<ChatCompletionRequest, ApiError> {
    let req = parse(body)?;
    super::params::validate(&req, &super::params::ModelLimits::default())?;
    Ok(req)
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid(format!("the request body is not valid JSON: {inner}"))
                .code("invalid_json");
        }
        let msg = if path == "." {
            format!("invalid request: {inner}")
        } else {
            format!("invalid value for `{path}`: {inner}")
        };
        let err = ApiError::invalid(msg);
        if path == "." { err } else { err.param(path) }
    })
}

fn ready_info(state: &SharedState) -> Result<&ModelInfo, ApiError> {
    match state.engine.info() {
        Some(info) => Ok(info),
        None => Err(match state.engine.status() {
            Status::Failed(e) => EngineError::Unavailable(e),
            Status::Dead(e) => EngineError::Dead(e),
            _ => EngineError::Loading,
        }
        .into()),
    }
}

fn budget_error(e: BudgetError) -> ApiError {
    match e {
        BudgetError::TooBig { .. } => ApiError::invalid(e.to_string())
            .param("messages")
            .code("image_too_large"),
        BudgetError::Timeout => ApiError::from(EngineError::Timeout),
    }
}
