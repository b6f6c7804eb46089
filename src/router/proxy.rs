//! A request's way through the router: read its `model`, hold a lease on
//! that model's runner, forward the request unchanged over loopback HTTP
//! and stream the answer back. Preparation (parsing, images, tokenizing)
//! happens in the runner: what would cross the socket after preparing
//! (token lists and pixel tensors) is larger than the request itself, and
//! one HTTP hop keeps the runner a plain Tessera server.
//!
//! A runner that dies mid-request costs only that model's requests: a 503
//! with `Retry-After` before any byte was sent, an error event on a stream
//! that had begun.

use super::pool::{Lease, Unavailable};
use super::state::RouterState;
use crate::api::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;

/// Only `model` is read; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
struct Routed {
    model: Option<String>,
}

/// Headers that describe one hop, not the message.
const HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "authorization",
    "content-length",
    "x-api-key",
];

pub async fn forward(
    State(state): State<Arc<RouterState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bytes = match crate::api::body_bytes(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match forward_inner(&state, method, uri, headers, bytes).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn forward_inner(
    state: &Arc<RouterState>,
    method: Method,
    uri: Uri,
    in_headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let routed: Routed = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))?;
    let slot = state.slot_for(routed.model.as_deref())?;
    let lease = match tokio::time::timeout(state.load_timeout, state.pool.acquire(&slot)).await {
        Ok(Ok(lease)) => lease,
        Ok(Err(why)) => return Err(unavailable(&slot.spec.id, why)),
        Err(_) => {
            return Err(retry_later(
                format!(
                    "the model `{}` did not become available within {} s; retry later",
                    slot.spec.id,
                    state.load_timeout.as_secs()
                ),
                5,
            ));
        }
    };
    let url = format!(
        "http://{}{}",
        lease.runner.addr,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut headers = forwarded_headers(&in_headers);
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", state.runner_key)) {
        headers.insert(header::AUTHORIZATION, v);
    }
    let sent = state
        .http
        .request(method, url)
        .headers(headers)
        .body(bytes)
        .send()
        .await;
    let anthropic = uri.path().starts_with("/v1/messages");
    match sent {
        Ok(resp) => Ok(relay(resp, lease, anthropic)),
        Err(e) => Err(crashed(state, &slot, &lease, e).await),
    }
}

/// The runner's answer, streamed, holding `lease` until the last byte.
fn relay<L: Send + 'static>(resp: reqwest::Response, lease: L, anthropic: bool) -> Response {
    let status = resp.status();
    let headers = forwarded_headers(resp.headers());
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let stream = resp.bytes_stream();
    let body = futures::stream::unfold(
        (stream, Some(lease), false),
        move |(mut stream, lease, done)| async move {
            if done {
                return None;
            }
            match stream.next().await {
                Some(Ok(chunk)) => {
                    Some((Ok::<Bytes, std::io::Error>(chunk), (stream, lease, false)))
                }
                Some(Err(e)) if sse => {
                    tracing::warn!("a runner's stream broke: {e}");
                    let event = crash_event(anthropic);
                    Some((Ok(event), (stream, None, true)))
                }
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), (stream, None, true))),
                None => None,
            }
        },
    );
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// An SSE error event in the stream's dialect, for a stream already begun.
fn crash_event(anthropic: bool) -> Bytes {
    let message =
        "the model's runner stopped during this answer (it is restarting); retry the request";
    if anthropic {
        let err = crate::anthropic::ErrorEnvelope::of(500, message.into());
        let data = serde_json::to_string(&err).unwrap_or_default();
        return Bytes::from(format!("event: error\ndata: {data}\n\n"));
    }
    let err = serde_json::json!({"error": {
        "message": message, "type": "server_error", "param": null, "code": "model_crashed"}});
    Bytes::from(format!("data: {err}\n\n"))
}

fn forwarded_headers(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in from {
        if !HOP.contains(&k.as_str()) {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

/// The runner could not be reached: it died (crash) or is stopping.
async fn crashed(
    state: &RouterState,
    slot: &super::pool::Slot,
    lease: &Lease,
    e: reqwest::Error,
) -> ApiError {
    // A dying runner closes its socket a moment before its exit is seen.
    let mut exited = lease.runner.exited.clone();
    let wait = std::time::Duration::from_millis(500);
    let dead = tokio::time::timeout(wait, exited.wait_for(Option::is_some))
        .await
        .is_ok();
    tracing::warn!(model = %slot.spec.id, "a request to the model's runner failed: {e}");
    let retry = state.pool.retry_after(slot);
    let message = if dead {
        format!(
            "the model `{}` crashed and is restarting; retry in {retry} s",
            slot.spec.id
        )
    } else {
        format!("the model `{}` did not answer: {e}", slot.spec.id)
    };
    retry_later(message, retry).code("model_crashed")
}

fn retry_later(message: String, secs: u64) -> ApiError {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message);
    e.retry_after = Some(u32::try_from(secs).unwrap_or(u32::MAX));
    e
}

pub fn unavailable(id: &str, why: Unavailable) -> ApiError {
    match why {
        Unavailable::Failed {
            reason,
            retry_after,
        } => retry_later(
            format!("the model `{id}` is unavailable: {reason}"),
            retry_after,
        )
        .code("model_failed"),
        Unavailable::Busy => retry_later(format!("the model `{id}` is busy"), 1),
        Unavailable::TooBig(why) => retry_later(why, 60).code("model_too_large"),
    }
}

#[cfg(test)]
mod tests;
