//! The axum layer: routes, request validation and response framing.
//! It never touches llama.cpp; it talks to the engine through its handle.

mod answer;
pub mod auth;
mod chat;
mod choices;
mod deadline;
pub mod error;
mod log;
mod meta;
pub mod openapi;
mod response_object;
mod responses;
mod responses_stream;
mod sse;

use crate::config::Config;
use crate::engine::{Engine, EngineError, Status};
use crate::openai::{
    BackendInfo, ChatTemplateInfo, ErrorEnvelope, ImagePricing, Model, ModelCapabilities,
    ModelList, SamplingDefaultsInfo,
};
use crate::prepare::template::TemplateOrigin;
use crate::vision::PieceRule;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub struct AppState {
    pub engine: Engine,
    pub model_id: String,
    pub created: u64,
    /// Turns parsed requests into engine jobs.
    pub preparer: crate::prepare::Preparer,
    /// Whole-request deadline (queueing included).
    pub request_timeout: Option<std::time::Duration>,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Accepted bearer keys; empty = no auth.
    pub api_keys: auth::ApiKeys,
    /// `/metrics` without a key.
    pub metrics_public: bool,
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState, config: &Config) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route(
            "/v1/chat/completions/input_tokens",
            post(chat::input_tokens),
        )
        .route("/v1/responses", post(responses::responses))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs")
                .url("/openapi.json", openapi::served(!state.api_keys.is_empty())),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            std::time::Duration::from_secs(config.body_read_timeout),
            deadline::body_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(cors(config))
        .layer(CompressionLayer::new().compress_when(NotStreaming))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

#[cfg(feature = "testing")]
pub use chat::check_request;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// CORS is off unless `--cors-origin` names origins (`*` for any).
fn cors(config: &Config) -> CorsLayer {
    if config.cors_origin.is_empty() {
        return CorsLayer::new();
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            REQUEST_ID.clone(),
        ])
        .expose_headers([REQUEST_ID.clone()]);
    if config.cors_origin.iter().any(|o| o == "*") {
        return base.allow_origin(AllowOrigin::any());
    }
    let origins: Vec<HeaderValue> = config.cors_origins_parsed().into_iter().collect();
    base.allow_origin(origins)
}

/// Compress JSON answers, never event streams (compression would buffer them).
#[derive(Clone, Copy)]
struct NotStreaming;

impl Predicate for NotStreaming {
    fn should_compress<B: axum::body::HttpBody>(&self, response: &axum::http::Response<B>) -> bool {
        let sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        !sse && DefaultPredicate::new().should_compress(response)
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn model_entry(state: &AppState) -> Model {
    let ready = state.engine.info().zip(state.preparer.prompt_model());
    let capabilities = ready.map(|(info, pm)| {
        let projector = info.projector.clone().unwrap_or_default();
        let family = crate::engine::families::family(&projector);
        ModelCapabilities {
            vision: info.vision,
            context_size: info.n_ctx,
            images: info.profile.map(|p| ImagePricing {
                slices_itself: family.is_some_and(|f| f.slices_itself),
                tested: family.is_some_and(|f| f.tested),
                projector,
                tile_size: p.tile_size,
                tile_tokens: p.tile_tokens,
                min_tiles: state.preparer.limits.tiles.min_tiles,
                max_tiles: state.preparer.limits.tiles.max_tiles,
                thumbnail_rule: match p.rule {
                    PieceRule::Fixed => "fixed".into(),
                    PieceRule::Dynamic { .. } => "dynamic".into(),
                    PieceRule::NativeSlices(_) => "projector_slices".into(),
                },
                thumbnail_budget: p.thumbnail_budget,
                tiling: p.tiling.name().into(),
            }),
            positions: if info.mrope { "mrope" } else { "plain" }.into(),
            chat_template: template_info(&pm.template),
            backend: BackendInfo {
                name: info.backend.name.clone(),
                offloaded_layers: info.backend.offloaded_layers,
                layers: info.backend.layers,
                cpu_features: info.backend.cpu_features.clone(),
            },
            sampling_defaults: SamplingDefaultsInfo {
                temperature: info.sampling.temperature,
                top_p: info.sampling.top_p,
                top_k: info.sampling.top_k,
                min_p: info.sampling.min_p,
                repetition_penalty: info.sampling.repetition_penalty,
                penalty_last_n: info.sampling.penalty_last_n,
                source: info.sampling.source.into(),
            },
        }
    });
    Model {
        id: state.model_id.clone(),
        object: "model",
        created: state.created,
        owned_by: "tessera".into(),
        capabilities,
    }
}

fn template_info(t: &crate::prepare::template::ChatTemplate) -> ChatTemplateInfo {
    let origin = &t.origin;
    let tool_format = if t.renders_tools {
        t.tool_format
    } else {
        crate::prepare::tools::ToolFormat::Generic
    };
    let (path, error) = match origin {
        TemplateOrigin::Gguf => (None, None),
        TemplateOrigin::File(p) => (Some(p.clone()), None),
        TemplateOrigin::ChatmlFallback(e) => (None, e.clone()),
    };
    ChatTemplateInfo {
        tool_format: tool_format.name().into(),
        source: origin.name().into(),
        path,
        error,
    }
}

/// The loaded model.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses(
        (status = 200, description = "The loaded model", body = ModelList),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
    ))]
async fn list_models(State(state): State<SharedState>) -> Response {
    axum::Json(ModelList {
        object: "list",
        data: vec![model_entry(&state)],
    })
    .into_response()
}

/// One model by id.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "models",
    params(("id" = String, Path, description = "Model id")),
    responses(
        (status = 200, description = "The model", body = Model),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 404, description = "No such model", body = ErrorEnvelope),
    ))]
async fn get_model(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Model>, ApiError> {
    if id != state.model_id {
        return Err(ApiError::not_found(format!(
            "the model `{id}` does not exist; this server serves `{}`",
            state.model_id
        ))
        .param("model"));
    }
    Ok(axum::Json(model_entry(&state)))
}

/// 200 once the model is loaded, 503 while loading or after a failure.
#[utoipa::path(get, path = "/health", tag = "server", security(()),
    responses(
        (status = 200, description = "Model loaded", body = Object, example = json!({"status": "ok"})),
        (status = 503, description = "Loading, or the model failed to load", body = ErrorEnvelope),
    ))]
async fn health(
    State(state): State<SharedState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let not_ready = match state.engine.status() {
        Status::Ready => return Ok(axum::Json(serde_json::json!({"status": "ok"}))),
        Status::Loading => EngineError::Loading,
        Status::Failed(e) => EngineError::Unavailable(e),
        Status::Dead(e) => EngineError::Dead(e),
    };
    Err(not_ready.into())
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or wrong API key (unless --metrics-public)", body = ErrorEnvelope),
    ))]
async fn metrics(State(state): State<SharedState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Counts requests by matched route (not raw path: bounded label values).
async fn count_requests(
    State(state): State<SharedState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    state.metrics.count_request(&route, resp.status().as_u16());
    resp
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
