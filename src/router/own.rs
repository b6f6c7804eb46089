//! The routes the front answers itself: every model with its state, health
//! and the runners' metrics under one `/metrics`, each with a `model` label.

use super::pool::{Pool, Slot, State};
use super::state::RouterState;
use crate::api::error::ApiError;
use axum::extract::{Path, State as Extract};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

type Shared = Extract<Arc<RouterState>>;

/// One model as `/v1/models` lists it: OpenAI's fields, then its state
/// (`status.value`, as llama-server's router says it) and, once loaded,
/// what its runner reports about itself.
async fn entry(state: &RouterState, slot: &Slot) -> Value {
    let now = state.pool.state(slot);
    let mut status = json!({"value": now.name()});
    if let State::Failed { reason, .. } = &now {
        status["reason"] = json!(reason);
    }
    let mut e = json!({
        "id": slot.spec.id,
        "object": "model",
        "created": state.created,
        "owned_by": "tessera",
        "aliases": slot.spec.aliases,
        "status": status,
    });
    if let State::Loaded(runner) = &now {
        let info = match state.pool.info(slot) {
            Some(i) => Some(i),
            None => fetch_info(state, runner.addr, &slot.spec.id).await,
        };
        for key in ["capabilities", "architecture", "context_length"] {
            if let Some(v) = info.as_ref().and_then(|i| i.get(key)) {
                e[key] = v.clone();
            }
        }
        if let Some(i) = info {
            state.pool.set_info(slot, i);
        }
    }
    e
}

/// A GET to a runner's own route, with its key; `None` when it fails.
async fn runner_get(
    state: &RouterState,
    addr: std::net::SocketAddr,
    path: &str,
) -> Option<reqwest::Response> {
    state
        .http
        .get(format!("http://{addr}{path}"))
        .bearer_auth(&state.runner_key)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .ok()
}

/// The runner's own `/v1/models` entry.
async fn fetch_info(state: &RouterState, addr: std::net::SocketAddr, id: &str) -> Option<Value> {
    let resp = runner_get(state, addr, &format!("/v1/models/{id}")).await?;
    resp.json().await.ok()
}

pub async fn list_models(Extract(state): Shared) -> Response {
    let mut data = Vec::new();
    for slot in &state.pool.slots {
        data.push(entry(&state, slot).await);
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

pub async fn get_model(
    Extract(state): Shared,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let slot = state.slot_for(Some(&id))?;
    Ok(axum::Json(entry(&state, &slot).await).into_response())
}

/// The front is up: 200, with each model's state.
pub async fn health(Extract(state): Shared) -> Response {
    let models: Vec<Value> = state
        .pool
        .slots
        .iter()
        .map(|s| json!({"id": s.spec.id, "status": state.pool.state(s).name()}))
        .collect();
    axum::Json(json!({"status": "ok", "models": models})).into_response()
}

/// The router's own gauges, then every loaded runner's metrics with a
/// `model` label, each family once.
pub async fn metrics(Extract(state): Shared) -> Response {
    let mut parts = vec![(String::new(), own_metrics(&state.pool))];
    for slot in &state.pool.slots {
        if let State::Loaded(r) = state.pool.state(slot)
            && let Some(resp) = runner_get(&state, r.addr, "/metrics").await
            && let Ok(text) = resp.text().await
        {
            parts.push((slot.spec.id.clone(), text));
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        super::metrics_text::merge(&parts),
    )
        .into_response()
}

fn own_metrics(pool: &Pool) -> String {
    let mut out = String::from(
        "# HELP tessera_router_model_state Each model's state (1 for the current one).\n\
         # TYPE tessera_router_model_state gauge\n",
    );
    for s in &pool.slots {
        let now = pool.state(s).name();
        for name in ["unloaded", "loading", "loaded", "failed"] {
            let v = u8::from(name == now);
            let id = super::metrics_text::escape(&s.spec.id);
            out.push_str(&format!(
                "tessera_router_model_state{{model=\"{id}\",state=\"{name}\"}} {v}\n"
            ));
        }
    }
    out.push_str(
        "# HELP tessera_router_in_flight Requests the router is forwarding, per model.\n\
         # TYPE tessera_router_in_flight gauge\n",
    );
    for s in &pool.slots {
        let id = super::metrics_text::escape(&s.spec.id);
        let n = s.in_flight.load(std::sync::atomic::Ordering::SeqCst);
        out.push_str(&format!("tessera_router_in_flight{{model=\"{id}\"}} {n}\n"));
    }
    out
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::not_found(format!("no route for {}", uri.path())).into_response()
}

pub fn runner_pids(pool: &Pool) -> Vec<(String, u32)> {
    pool.slots
        .iter()
        .filter_map(|s| match pool.state(s) {
            State::Loaded(r) => r.pid.map(|p| (s.spec.id.clone(), p)),
            _ => None,
        })
        .collect()
}
