//! The server's own routes: the model list, health and metrics.

use super::error::ApiError;
use super::state::{AppState, SharedState};
use crate::engine::{EngineError, Status};
use crate::openai::{
    Architecture, BackendInfo, ChatTemplateInfo, ErrorEnvelope, ImagePricing, ImageTokenRange,
    Model, ModelCapabilities, ModelList, SamplingDefaultsInfo,
};
use crate::prepare::template::TemplateOrigin;
use crate::vision::PieceRule;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

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
                image_tokens: match p.rule {
                    PieceRule::Dynamic {
                        unit,
                        min_tokens,
                        max_tokens,
                        ..
                    } => Some(ImageTokenRange {
                        min: min_tokens,
                        max: max_tokens,
                        unit_px: unit,
                    }),
                    _ => None,
                },
                geometry: family
                    .map_or("tiles (unknown family)", |f| f.geometry)
                    .into(),
                coordinates: family.map_or("unknown", |f| f.coordinates).into(),
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
            kv_cache: crate::openai::KvCacheWire {
                type_k: info.kv_cache.type_k.into(),
                type_v: info.kv_cache.type_v.into(),
                flash_attn: info.kv_cache.flash_attn.into(),
                bytes: info.kv_cache.bytes,
            },
            embeddings: info.embeddings.map(|e| crate::openai::EmbeddingsInfo {
                pooling: e.pooling.into(),
                dimensions: e.n_embd,
                max_input_tokens: e.max_tokens,
            }),
        }
    });
    let architecture = state.engine.info().map(|info| {
        let mut input = vec!["text".to_string()];
        if info.vision {
            input.push("image".into());
            if info.embeddings.is_none() && state.preparer.limits.video.available() {
                input.push("video".into());
            }
        }
        if info.audio_rate.is_some() && info.embeddings.is_none() {
            input.push("audio".into());
        }
        Architecture {
            input_modalities: input,
            output_modalities: vec![
                if info.embeddings.is_some() {
                    "embedding"
                } else {
                    "text"
                }
                .into(),
            ],
        }
    });
    Model {
        id: state.model_id.clone(),
        object: "model",
        created: state.created,
        owned_by: "tessera".into(),
        capabilities,
        architecture,
        context_length: state.preparer.prompt_model().map(|pm| pm.n_ctx_seq),
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
pub(super) async fn list_models(State(state): State<SharedState>) -> Response {
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
pub(super) async fn get_model(
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
pub(super) async fn health(
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
pub(super) async fn metrics(State(state): State<SharedState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
