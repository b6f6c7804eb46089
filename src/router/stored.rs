//! Stored responses behind a router: each runner keeps its own (a
//! response is stored where it ran), so `GET` and `DELETE
//! /v1/responses/{id}...` ask the loaded runners in turn and answer with
//! the first that knows the id. A `previous_response_id` resolves only on
//! the model that made it, and an unloaded model's responses are gone.

use super::pool::State;
use super::state::RouterState;
use crate::api::error::ApiError;
use axum::extract::State as Extract;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn find(Extract(state): Extract<Arc<RouterState>>, method: Method, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    for slot in &state.pool.slots {
        let State::Loaded(r) = state.pool.state(slot) else {
            continue;
        };
        let sent = state
            .http
            .request(method.clone(), format!("http://{}{path}", r.addr))
            .bearer_auth(&state.runner_key)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await;
        let Ok(resp) = sent else { continue };
        if resp.status() == StatusCode::NOT_FOUND {
            continue;
        }
        let status = resp.status();
        let kind = resp.headers().get(header::CONTENT_TYPE).cloned();
        let Ok(body) = resp.bytes().await else {
            continue;
        };
        let mut out = (status, body).into_response();
        if let Some(k) = kind {
            out.headers_mut().insert(header::CONTENT_TYPE, k);
        }
        return out;
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "no loaded model has stored this response (never stored, expired, or its model was unloaded)",
    )
    .param("response_id")
    .into_response()
}
