//! `POST /models/load` and `/models/unload` with `{"model": ID}`, as
//! llama-server's router names them: guarded by `--admin-key` when one is
//! set, else by the API key (these routes sit outside the front's gate).

use super::proxy::unavailable;
use super::state::RouterState;
use crate::api::error::ApiError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    model: String,
}

fn parse(body: &[u8]) -> Result<Named, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body must be {{\"model\": ID}}: {e}")))
}

/// `--admin-key` when set, else the API key; open when neither is set.
fn check_admin(state: &RouterState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.admin.is_empty() {
        return Ok(());
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if state.admin.matches(presented.trim()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "loading and unloading models needs `Authorization: Bearer KEY` with the admin key \
         (--admin-key), or the API key when no admin key is set",
    )
    .code("invalid_api_key"))
}

/// Loads the model (clearing a failure) and answers once it serves.
pub async fn load(
    State(state): State<Arc<RouterState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    check_admin(&state, &headers)?;
    let named = parse(&body)?;
    let slot = state.slot_for(Some(&named.model))?;
    state
        .pool
        .load_now(&slot)
        .await
        .map_err(|why| unavailable(&slot.spec.id, why))?;
    Ok(axum::Json(
        json!({"model": slot.spec.id, "status": "loaded", "success": true}),
    ))
}

/// Unloads the model; its runner finishes the requests it has.
pub async fn unload(
    State(state): State<Arc<RouterState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    check_admin(&state, &headers)?;
    let named = parse(&body)?;
    let slot = state.slot_for(Some(&named.model))?;
    state.pool.unload(&slot);
    Ok(axum::Json(
        json!({"model": slot.spec.id, "status": "unloaded", "success": true}),
    ))
}
