//! `POST /v1/embeddings`: one pooled, unit-length vector per input, on a
//! server started with `--embeddings`. Each input is its own engine job
//! (as many at once as the server has sequences); usage counts every
//! input's tokens.

use super::chat;
use super::error::ApiError;
use super::log::RequestLog;
use super::state::SharedState;
use crate::engine::{EngineError, Event};
use crate::openai::embeddings::{Embedding, EmbeddingList, EmbeddingUsage, EmbeddingsRequest};
use crate::openai::{ChatCompletionRequest, ErrorEnvelope};
use crate::prepare::RawPrompt;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tracing::Instrument as _;

/// OpenAI's embeddings. Chat models answer a 400 that says how to serve
/// embeddings.
#[utoipa::path(post, path = "/v1/embeddings", tag = "embeddings",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "One vector per input", body = EmbeddingList),
        (status = 400, description = "Invalid input, too long an input, or not an embeddings server", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorEnvelope),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorEnvelope),
        (status = 500, description = "Internal engine error, confined to this request", body = ErrorEnvelope),
        (status = 503, description = "Model loading, failed, engine stopped, or request timed out", body = ErrorEnvelope),
    ))]
pub async fn embeddings(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EmbeddingList>, ApiError> {
    let request_id = super::log::request_id(&headers);
    let deadline = state.request_timeout.map(|t| std::time::Instant::now() + t);
    let body = chat::body_bytes(body)?;
    let req: EmbeddingsRequest = chat::parse(&body)?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::invalid("encoding_format must be float or base64")
                .param("encoding_format"));
        }
    };
    let inputs = inputs(&req.input)?;
    let parallel = state.engine.info().map_or(1, |i| i.parallel.max(1)) as usize;
    let one = |(i, p): (usize, Input)| {
        let state = state.clone();
        let log = RequestLog::new(&request_id, &state.model_id);
        async move { embed_one(&state, i, p, deadline, log).await }
    };
    let results: Vec<Result<(Vec<f32>, u32), ApiError>> =
        futures::stream::iter(inputs.into_iter().enumerate())
            .map(one)
            .buffered(parallel)
            .collect()
            .await;
    let mut data = Vec::with_capacity(results.len());
    let mut usage = EmbeddingUsage::default();
    for (i, r) in results.into_iter().enumerate() {
        let (vector, tokens) = r?;
        let vector = shorten(vector, req.dimensions)?;
        usage.prompt_tokens += tokens;
        data.push(Embedding {
            object: "embedding",
            index: i as u32,
            embedding: encode(&vector, base64),
        });
    }
    usage.total_tokens = usage.prompt_tokens;
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model: state.model_id.clone(),
        usage,
    }))
}

/// One input: text or token ids, or content parts (text and images).
enum Input {
    Raw(RawPrompt),
    Parts(Vec<Value>),
}

async fn embed_one(
    state: &SharedState,
    i: usize,
    input: Input,
    deadline: Option<std::time::Instant>,
    log: RequestLog,
) -> Result<(Vec<f32>, u32), ApiError> {
    let prepared = match input {
        Input::Raw(prompt) => {
            state
                .preparer
                .prepare_raw(placeholder()?, prompt, true)
                .instrument(log.span().clone())
                .await
        }
        Input::Parts(parts) => {
            let req = with_images(state, i, parts)?;
            state
                .preparer
                .prepare_as(req, deadline, true)
                .instrument(log.span().clone())
                .await
        }
    }
    .map_err(|e| {
        let mut e = ApiError::from(e);
        let own = e
            .param
            .as_deref()
            .and_then(|p| p.strip_prefix("messages[0].content"))
            .map(|rest| format!("input[{i}]{rest}"));
        e.param = Some(
            own.or(e.param.take())
                .unwrap_or_else(|| format!("input[{i}]")),
        );
        e
    })?;
    // What the batcher puts into one decode: the text, one part per piece.
    let tokens = (prepared.generate.prompt.text_tokens() + prepared.generate.images.len()) as u32;
    let most = state
        .engine
        .info()
        .and_then(|m| m.embeddings)
        .map_or(0, |e| e.max_tokens);
    if tokens > most {
        return Err(ApiError::invalid(format!(
            "input[{i}] has {tokens} tokens, more than the {most} one input may have (it is pooled in one batch: --batch-size, and the context per sequence)"
        ))
        .param(format!("input[{i}]")));
    }
    let id = format!("embd-{i}");
    let (_, usage, choices) = chat::start(state, prepared, deadline, log, id).await?;
    let Some(mut rx) = choices.into_iter().next() else {
        return Err(EngineError::Internal("no job was queued".into()).into());
    };
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Embedding(v) => return Ok((v, usage.prompt_tokens)),
            Event::Failed(e) => return Err(e.into()),
            _ => {}
        }
    }
    Err(EngineError::Internal("the engine ended the job without its embedding".into()).into())
}

/// Content parts as the one user message of a request: images are
/// fetched, planned and priced as on chat. Only last-token pooling reads
/// an input decoded in several steps (text, then each image) rightly.
fn with_images(
    state: &SharedState,
    i: usize,
    parts: Vec<Value>,
) -> Result<ChatCompletionRequest, ApiError> {
    let has_image = parts.iter().any(|p| p["type"] == "image_url");
    let pooling = state
        .engine
        .info()
        .and_then(|m| m.embeddings)
        .map(|e| e.pooling);
    if has_image && pooling.is_some_and(|p| p != "last") {
        return Err(ApiError::invalid(format!(
            "input[{i}] has an image, which this server's {} pooling cannot cover (an image is decoded apart from the text); images need --pooling last",
            pooling.unwrap_or_default()
        ))
        .param(format!("input[{i}]")));
    }
    serde_json::from_value(
        json!({"messages": [{"role": "user", "content": parts}], "max_tokens": 1}),
    )
    .map_err(|e| ApiError::invalid(format!("input[{i}]: {e}")).param(format!("input[{i}]")))
}

/// The sampling fields an embedding job carries: none that matter.
fn placeholder() -> Result<ChatCompletionRequest, ApiError> {
    serde_json::from_value(json!({"messages": [{"role": "user", "content": ""}], "max_tokens": 1}))
        .map_err(|e| EngineError::Internal(format!("the placeholder request: {e}")).into())
}

fn inputs(input: &Value) -> Result<Vec<Input>, ApiError> {
    let bad = |why: &str, param: String| ApiError::invalid(why.to_string()).param(param);
    let text = |s: &str, at: String| {
        if s.is_empty() {
            Err(bad("an input must not be an empty string", at))
        } else {
            Ok(Input::Raw(RawPrompt::Text(s.to_string())))
        }
    };
    let ids = |v: &[Value], at: String| match v.iter().map(Value::as_i64).collect() {
        Some(ids) => Ok(Input::Raw(RawPrompt::Tokens(ids))),
        None => Err(bad("a list of token ids holds only integers", at)),
    };
    match input {
        Value::String(s) => Ok(vec![text(s, "input".into())?]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Ok(vec![ids(items, "input".into())?])
        }
        Value::Array(items) if !items.is_empty() && items.len() <= 2048 => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => text(s, format!("input[{i}]")),
                Value::Array(t) if !t.is_empty() && t.iter().all(Value::is_number) => {
                    ids(t, format!("input[{i}]"))
                }
                // llama-server's multimodal form: content parts, or an
                // object holding them as `content`.
                Value::Array(p) if !p.is_empty() && p.iter().all(Value::is_object) => {
                    Ok(Input::Parts(p.clone()))
                }
                Value::Object(o) if o.get("content").is_some_and(Value::is_array) => {
                    Ok(Input::Parts(o["content"].as_array().cloned().unwrap_or_default()))
                }
                _ => Err(bad(
                    "each input is a string, a list of token ids, or a list of content parts (text and image_url)",
                    format!("input[{i}]"),
                )),
            })
            .collect(),
        _ => Err(bad(
            "`input` must be a string, a list of 1 to 2048 strings, a list of token ids, or a list of such lists",
            "input".into(),
        )),
    }
}

/// The first `dimensions` values, back to unit length.
fn shorten(v: Vec<f32>, dimensions: Option<u32>) -> Result<Vec<f32>, ApiError> {
    let Some(d) = dimensions else {
        return Ok(v);
    };
    if d == 0 || d as usize > v.len() {
        return Err(ApiError::invalid(format!(
            "dimensions must be from 1 to {} (this model's vector size)",
            v.len()
        ))
        .param("dimensions"));
    }
    Ok(crate::engine::pooling::normalize(&v[..d as usize]))
}

fn encode(v: &[f32], base64: bool) -> Value {
    if !base64 {
        return json!(v);
    }
    use base64::Engine as _;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}
