//! The axum layer: routes, auth, body limits and response framing. It
//! never touches llama.cpp: requests go through `prepare`, jobs through the
//! engine's handle. This file is the router and its layers.

mod answer;
pub mod auth;
mod chat;
mod choices;
mod completions;
mod completions_stream;
mod deadline;
pub(crate) mod dialect;
mod embeddings;
pub(crate) use chat::body_bytes;
pub(crate) use deadline::body_deadline;
pub mod error;
mod log;
mod messages;
mod messages_in;
mod messages_out;
mod messages_stream;
mod meta;
pub mod openapi;
mod response_object;
mod responses;
mod responses_stream;
mod server;
mod sse;
mod state;
pub mod store;
mod stored;
#[cfg(debug_assertions)]
mod test_hooks;
mod transcriptions;
mod transcriptions_stream;

use crate::config::Config;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use server::{get_model, health, list_models, metrics};
pub use state::{AppState, SharedState, unix_now};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub fn router(state: SharedState, config: &Config) -> Router {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route(
            "/v1/chat/completions/input_tokens",
            post(chat::input_tokens),
        )
        .route("/v1/completions", post(completions::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/responses", post(responses::responses))
        .route(
            "/v1/responses/{id}",
            get(stored::get_response).delete(stored::delete_response),
        )
        .route("/v1/responses/{id}/input_items", get(stored::input_items))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route(
            "/v1/audio/transcriptions",
            post(transcriptions::transcriptions),
        )
        .route("/v1/audio/translations", post(transcriptions::translations))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url(
            "/openapi.json",
            openapi::served(!state.gate.keys.is_empty()),
        ))
        .merge(playground(config))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            std::time::Duration::from_secs(config.body_read_timeout),
            deadline::body_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.gate.clone(),
            auth::require_key,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(axum::middleware::from_fn(dialect::anthropic_errors))
        .layer(cors(config))
        .layer(CompressionLayer::new().compress_when(NotStreaming));
    with_request_ids(app.with_state(state))
}

/// The playground page's routes, unless `--no-ui`.
pub(crate) fn playground<S: Clone + Send + Sync + 'static>(config: &Config) -> Router<S> {
    if config.no_ui {
        Router::new()
    } else {
        crate::ui::routes()
    }
}

/// Every answer carries an `x-request-id`: the client's (when printable)
/// or a new UUID.
pub fn with_request_ids(app: Router) -> Router {
    app.layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(axum::middleware::map_request(log::scrub_request_id))
}

#[cfg(feature = "testing")]
pub use chat::check_request;

/// The app as connections past `--max-connections` see it: `/health`
/// answers (so that a probe tells a full server from a dead one), any
/// other route a 503 saying why.
pub fn at_capacity(app: Router) -> Router {
    app.layer(axum::middleware::from_fn(
        |req: axum::extract::Request, next: axum::middleware::Next| async move {
            if req.uri().path() == "/health" {
                return next.run(req).await;
            }
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "the server is at its connection limit (--max-connections); retry shortly, or reuse a connection",
            )
            .code("too_many_connections")
            .into_response()
        },
    ))
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// CORS is off unless `--cors-origin` names origins (`*` for any).
pub(crate) fn cors(config: &Config) -> CorsLayer {
    if config.cors_origin.is_empty() {
        return CorsLayer::new();
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            REQUEST_ID.clone(),
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("anthropic-version"),
            HeaderName::from_static("anthropic-beta"),
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
