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

/// The slot an admin request names, once its key and body check out.
fn named_slot(
    state: &RouterState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<super::pool::Slot>, ApiError> {
    check_admin(state, headers)?;
    state.slot_for(Some(&parse(body)?.model))
}

fn done(id: &str, status: &str) -> axum::Json<Value> {
    axum::Json(json!({"model": id, "status": status, "success": true}))
}

/// Loads the model (clearing a failure) and answers once it serves.
pub async fn load(
    State(state): State<Arc<RouterState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let slot = named_slot(&state, &headers, &body)?;
    state
        .pool
        .load_now(&slot)
        .await
        .map_err(|why| unavailable(&slot.spec.id, why))?;
    Ok(done(&slot.spec.id, "loaded"))
}

/// Unloads the model; its runner finishes the requests it has.
pub async fn unload(
    State(state): State<Arc<RouterState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let slot = named_slot(&state, &headers, &body)?;
    state.pool.unload(&slot);
    Ok(done(&slot.spec.id, "unloaded"))
}
