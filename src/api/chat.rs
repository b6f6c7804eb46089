//! `POST /v1/chat/completions`: validation in one place, then the engine.

use super::error::ApiError;
use super::log::RequestLog;
use super::sse;
use super::state::{SharedState, unix_now};
use crate::engine::{EngineError, Event};
use crate::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ErrorEnvelope, InputTokens,
};
use crate::prepare::Prepared;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use tracing::Instrument as _;

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
) -> Result<Response, ApiError> {
    #[cfg(debug_assertions)]
    if let Ok(b) = &body {
        super::test_hooks::on_body(b).await;
    }
    let request_id = super::log::request_id(&headers);
    let started = std::time::Instant::now();
    let log = RequestLog::new(&request_id, &state.model_id);
    let deadline = state.request_timeout.map(|t| started + t);
    let prepared = prepare(&state, body, deadline)
        .instrument(log.span().clone())
        .await?;
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

/// Everything both `/v1/chat/completions` and its `/input_tokens` preview
/// do before the engine: the body read and parsed, then prepared.
async fn prepare(
    state: &SharedState,
    body: Result<Bytes, BytesRejection>,
    deadline: Option<std::time::Instant>,
) -> Result<Prepared, ApiError> {
    let body = body_bytes(body)?;
    let req = parse(&body)?;
    Ok(state.preparer.prepare(req, deadline).await?)
}

/// The body, or the reason it could not be read.
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
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

/// Submits a prepared request and waits until its prompt is in: prompt
/// errors still get their status code, even for streams. One receiver per
/// choice.
pub async fn start(
    state: &SharedState,
    prepared: Prepared,
    deadline: Option<std::time::Instant>,
    log: RequestLog,
    id: String,
) -> Result<
    (
        super::meta::ResponseMeta,
        crate::engine::PromptUsage,
        Vec<crate::engine::channel::EventReceiver>,
    ),
    ApiError,
> {
    log.images(
        prepared.media.images.len(),
        prepared.media.images.iter().map(|i| i.tiles).sum(),
    );
    if let Some(text) = &prepared.prompt_text {
        log.prompt_text(text); // kept only with --log-prompts
    }
    let logprobs = prepared.generate.logprobs.is_some();
    let mut choices = {
        let _request = log.span().enter();
        state.engine.submit(prepared.generate, deadline)?
    };
    // The first choice evaluates the prompt; the others start from its cells.
    let usage = match choices.first_mut() {
        Some(rx) => prompt_started(rx).await?,
        None => return Err(EngineError::Internal("no choice was queued".into()).into()),
    };
    log.prompt(&usage);
    let meta = super::meta::ResponseMeta {
        id,
        created: unix_now(),
        model: state.model_id.clone(),
        logprobs,
        tools: prepared.tool_format,
        media: prepared.media,
        log,
    };
    Ok((meta, usage, choices))
}

/// A translated request of one choice (Responses, Messages), from its
/// chat form to its prompt in the context: prepared in the request's span,
/// submitted, and its one receiver.
pub(super) async fn start_one(
    state: &SharedState,
    request_id: &str,
    chat_req: ChatCompletionRequest,
    deadline: Option<std::time::Instant>,
    id: String,
) -> Result<
    (
        super::meta::ResponseMeta,
        crate::engine::PromptUsage,
        crate::engine::channel::EventReceiver,
    ),
    ApiError,
> {
    let log = RequestLog::new(request_id, &state.model_id);
    let prepared = state
        .preparer
        .prepare(chat_req, deadline)
        .instrument(log.span().clone())
        .await?;
    let (meta, usage, choices) = start(state, prepared, deadline, log, id).await?;
    match choices.into_iter().next() {
        Some(rx) => Ok((meta, usage, rx)),
        None => Err(EngineError::Internal("no choice was queued".into()).into()),
    }
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
) -> Result<Json<InputTokens>, ApiError> {
    let deadline = state.request_timeout.map(|t| std::time::Instant::now() + t);
    // Everything the engine would count is known once the request is
    // prepared: the preview never waits for a queue place.
    let prepared = prepare(&state, body, deadline).await?;
    let u = prepared.generate.usage();
    let media = prepared.media;
    let (video_tokens, audio_tokens) = (media.video_tokens(), media.audio_tokens());
    Ok(Json(InputTokens {
        object: "chat.completion.input_tokens",
        input_tokens: u.prompt_tokens,
        image_tokens: u.image_tokens.saturating_sub(video_tokens + audio_tokens),
        video_tokens,
        audio_tokens,
        images: media.images,
        videos: media.videos,
        audio: media.audio,
    }))
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
#[cfg(feature = "testing")]
pub fn check_request(body: &[u8]) -> Result<ChatCompletionRequest, ApiError> {
    let req = parse(body)?;
    crate::prepare::check(&req)?;
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
