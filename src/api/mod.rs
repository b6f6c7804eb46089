//! The axum layer: routes, request validation and response framing.
//! It never touches llama.cpp; it talks to the engine through its handle.

mod chat;
pub mod error;
mod sse;

use crate::config::Config;
use crate::engine::{Engine, Status};
use crate::openai::{ImagePricing, Model, ModelCapabilities, ModelList};
use crate::vision::PieceRule;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use std::sync::Arc;

/// Request limits the HTTP side enforces before anything reaches the engine.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_image_bytes: usize,
    pub max_image_pixels: u64,
    pub max_images: usize,
    pub max_request_image_bytes: usize,
    pub tiles: crate::vision::TileLimits,
    pub remote: crate::vision::RemotePolicy,
}

pub struct AppState {
    pub engine: Engine,
    pub model_id: String,
    pub created: u64,
    pub limits: Limits,
    /// Whole-request deadline (queueing included).
    pub request_timeout: Option<std::time::Duration>,
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState, config: &Config) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route(
            "/v1/chat/completions/input_tokens",
            post(chat::input_tokens),
        )
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn model_entry(state: &AppState) -> Model {
    let capabilities = state.engine.info().map(|info| ModelCapabilities {
        vision: info.vision,
        context_size: info.n_ctx,
        images: info.profile.map(|p| ImagePricing {
            tile_size: p.tile_size,
            tile_tokens: p.tile_tokens,
            min_tiles: state.limits.tiles.min_tiles,
            max_tiles: state.limits.tiles.max_tiles,
            thumbnail_rule: match p.rule {
                PieceRule::Fixed => "fixed".into(),
                PieceRule::Dynamic { .. } => "dynamic".into(),
            },
            thumbnail_budget: p.thumbnail_budget,
        }),
    });
    Model {
        id: state.model_id.clone(),
        object: "model",
        created: state.created,
        owned_by: "tessera".into(),
        capabilities,
    }
}

async fn list_models(State(state): State<SharedState>) -> Response {
    axum::Json(ModelList {
        object: "list",
        data: vec![model_entry(&state)],
    })
    .into_response()
}

async fn get_model(State(state): State<SharedState>, Path(id): Path<String>) -> Response {
    if id != state.model_id {
        return ApiError::not_found(format!(
            "the model `{id}` does not exist; this server serves `{}`",
            state.model_id
        ))
        .param("model")
        .into_response();
    }
    axum::Json(model_entry(&state)).into_response()
}

/// 200 once the model is loaded, 503 while loading or after a failure.
async fn health(State(state): State<SharedState>) -> Response {
    match state.engine.status() {
        Status::Ready => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Status::Loading => ApiError::from(crate::engine::EngineError::Loading).into_response(),
        Status::Failed(e) => {
            ApiError::from(crate::engine::EngineError::Unavailable(e)).into_response()
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::not_found(format!("no route for {}", uri.path())).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "this method is not allowed on this route",
    )
    .into_response()
}
