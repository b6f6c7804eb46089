//! Errors in the dialect the client speaks: every route answers errors in
//! OpenAI's envelope (`error.rs`), and Anthropic's routes (`/v1/messages`)
//! get them rewritten here, once, into `{"type": "error", "error": {"type",
//! "message"}}` with the same status and headers. Auth, body limits and
//! deadlines, which answer before any handler, are covered too.

use crate::anthropic::ErrorEnvelope;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Error bodies are small; a larger one is not an envelope.
const MAX_ERROR_BODY: usize = 1 << 20;

pub async fn anthropic_errors(req: Request, next: Next) -> Response {
    let anthropic = req.uri().path().starts_with("/v1/messages");
    let resp = next.run(req).await;
    if !anthropic || resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    let envelope = ErrorEnvelope::of(parts.status.as_u16(), message);
    let mut out = (parts.status, axum::Json(envelope)).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
