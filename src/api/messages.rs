//! `POST /v1/messages` and `/v1/messages/count_tokens`: Anthropic's
//! Messages API. A request becomes the Chat Completions request that does
//! the same (`messages_in.rs`) and runs through the same preparation,
//! engine and answer reader; the answer is a `message`, or streamed as
//! Anthropic's events (`messages_stream.rs`). Errors get Anthropic's
//! envelope on the way out (`dialect.rs`).

use super::chat;
use super::error::ApiError;
use super::state::SharedState;
use crate::anthropic::{ErrorEnvelope, Message, MessagesRequest, TokenCount};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};

/// Anthropic's Messages API. With `stream: true` the answer is a
/// `text/event-stream` of `message_start` ... `message_stop`.
#[utoipa::path(post, path = "/v1/messages", tag = "anthropic",
    request_body = MessagesRequest,
    responses(
        (status = 200, description = "The message (`stream: false`), or its events (`stream: true`)",
            content((Message = "application/json"), (serde_json::Value = "text/event-stream"))),
        (status = 400, description = "Invalid request or context overflow", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key (`x-api-key` or bearer)", body = ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorEnvelope),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorEnvelope),
        (status = 500, description = "Internal engine error, confined to this request", body = ErrorEnvelope),
        (status = 503, description = "Model loading, failed, engine stopped, or request timed out", body = ErrorEnvelope),
    ))]
pub async fn messages(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request_id = super::log::request_id(&headers);
    let started = std::time::Instant::now();
    let deadline = state.request_timeout.map(|t| started + t);
    let body = chat::body_bytes(body)?;
    let req: MessagesRequest = chat::parse(&body)?;
    let chat_req = super::messages_in::to_chat(&req, true)?;
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let (mut meta, usage, rx) =
        chat::start_one(&state, &request_id, chat_req, deadline, id).await?;
    if req.stream.unwrap_or(false) {
        return Ok(super::messages_stream::stream(meta, usage, rx));
    }
    let id = meta.id.clone();
    let model = meta.model.clone();
    let answer = super::choices::answer(&mut meta, usage, rx).await?;
    Ok(Json(super::messages_out::message(id, model, answer)).into_response())
}

/// What `/v1/messages` will count as the prompt (`input_tokens` plus
/// `cache_read_input_tokens`), images included, without generating.
#[utoipa::path(post, path = "/v1/messages/count_tokens", tag = "anthropic",
    request_body = MessagesRequest,
    responses(
        (status = 200, description = "The prompt's tokens", body = TokenCount),
        (status = 400, description = "Invalid request or image", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorEnvelope),
        (status = 500, description = "Internal engine error", body = ErrorEnvelope),
        (status = 503, description = "Model loading, failed, or engine stopped", body = ErrorEnvelope),
    ))]
pub async fn count_tokens(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenCount>, ApiError> {
    let deadline = state.request_timeout.map(|t| std::time::Instant::now() + t);
    let body = chat::body_bytes(body)?;
    let req: MessagesRequest = chat::parse(&body)?;
    let chat_req = super::messages_in::to_chat(&req, false)?;
    let prepared = state.preparer.prepare(chat_req, deadline).await?;
    Ok(Json(TokenCount {
        input_tokens: prepared.generate.usage().prompt_tokens,
    }))
}
