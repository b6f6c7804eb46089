//! `POST /v1/completions`: OpenAI's legacy text completions. The prompt
//! is taken raw (no chat template), the sampling fields as Chat
//! Completions reads them; each prompt of a list is its own engine job,
//! and its choices are numbered `prompt index * n + choice`.

use super::chat;
use super::completions_stream::{Job, add, finish_str, legacy};
use super::error::ApiError;
use super::log::RequestLog;
use super::state::SharedState;
use crate::openai::completions::{Completion, CompletionChoice, CompletionRequest};
use crate::openai::{ChatCompletionRequest, ErrorEnvelope, Usage};
use crate::prepare::RawPrompt;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tracing::Instrument as _;

/// Legacy completions, as OpenAI's. With `stream: true` the answer is a
/// `text/event-stream` of `text_completion` chunks ending in `data: [DONE]`.
#[utoipa::path(post, path = "/v1/completions", tag = "completions",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "The completions (`stream: false`), or chunks of them (`stream: true`)",
            content((Completion = "application/json"), (Completion = "text/event-stream"))),
        (status = 400, description = "Invalid request (`suffix`, `best_of` > 1, `echo` with `logprobs`) or context overflow", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorEnvelope),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorEnvelope),
        (status = 500, description = "Internal engine error, confined to this request", body = ErrorEnvelope),
        (status = 503, description = "Model loading, failed, engine stopped, or request timed out", body = ErrorEnvelope),
    ))]
pub async fn completions(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request_id = super::log::request_id(&headers);
    let deadline = state.request_timeout.map(|t| std::time::Instant::now() + t);
    let body = chat::body_bytes(body)?;
    let req: CompletionRequest = chat::parse(&body)?;
    let echo = req.echo.unwrap_or(false);
    refuse_unsupported(&req, echo)?;
    let prompts = prompts(&req.prompt)?;
    let chat_req = to_chat(&body, &req)?;
    let id = format!("cmpl-{}", uuid::Uuid::new_v4().simple());
    let mut jobs = Vec::with_capacity(prompts.len());
    for p in prompts {
        let text = match &p {
            RawPrompt::Text(t) if echo => Some(t.clone()),
            _ => None,
        };
        let log = RequestLog::new(&request_id, &state.model_id);
        let prepared = state
            .preparer
            .prepare_raw(chat_req.clone(), p, false)
            .instrument(log.span().clone())
            .await?;
        let (meta, prompt, choices) =
            chat::start(&state, prepared, deadline, log, id.clone()).await?;
        jobs.push(Job {
            meta,
            prompt,
            choices,
            echo: text,
        });
    }
    if req.stream.unwrap_or(false) {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        return Ok(super::completions_stream::stream(jobs, include_usage));
    }
    let mut choices = Vec::new();
    let mut usage: Option<Usage> = None;
    let mut created = 0;
    let mut model = String::new();
    for mut job in jobs {
        let base = choices.len() as u32;
        let answers = super::choices::answers(&mut job.meta, job.prompt, job.choices).await?;
        let u = super::choices::total(job.prompt, &answers, &job.meta);
        usage = Some(match usage {
            Some(sum) => add(sum, &u),
            None => u,
        });
        for (j, a) in answers.into_iter().enumerate() {
            let echoed = job.echo.clone().unwrap_or_default();
            choices.push(CompletionChoice {
                index: base + j as u32,
                logprobs: a
                    .logprobs
                    .map(|l| legacy(&l, echoed.chars().count() as u32)),
                text: echoed + &a.content,
                finish_reason: Some(finish_str(a.finish)),
            });
        }
        (created, model) = (job.meta.created, job.meta.model);
    }
    Ok(Json(Completion {
        id,
        object: "text_completion",
        created,
        model,
        choices,
        usage,
    })
    .into_response())
}

fn refuse_unsupported(req: &CompletionRequest, echo: bool) -> Result<(), ApiError> {
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid(
            "`suffix` is not supported: this server does not fill in the middle; put all the text in `prompt`",
        )
        .param("suffix")
        .code("unsupported_parameter"));
    }
    if req.best_of.is_some_and(|b| b > 1) {
        return Err(ApiError::invalid(
            "`best_of` above 1 is not supported; ask for `n` completions and choose among them",
        )
        .param("best_of")
        .code("unsupported_parameter"));
    }
    if echo && req.logprobs.is_some() {
        return Err(ApiError::invalid(
            "`echo` with `logprobs` needs the prompt's log-probabilities, which this server does not compute; drop one of them",
        )
        .param("echo")
        .code("unsupported_parameter"));
    }
    Ok(())
}

/// The prompts of a request: a string, strings, token ids, lists of ids.
fn prompts(p: &Value) -> Result<Vec<RawPrompt>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "`prompt` must be a string, a list of strings, a list of token ids, or a list of such lists",
        )
        .param("prompt")
    };
    let ids = |v: &[Value]| v.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>();
    let out = match p {
        Value::String(s) => vec![RawPrompt::Text(s.clone())],
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            vec![RawPrompt::Tokens(ids(items).ok_or_else(bad)?)]
        }
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(RawPrompt::Text(s.clone())),
                Value::Array(t) if !t.is_empty() => ids(t).map(RawPrompt::Tokens).ok_or_else(bad),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    Ok(out)
}

/// The chat request whose sampling fields are this request's: the body
/// less what only completions have, with one placeholder message (the
/// prompt is taken raw).
fn to_chat(body: &[u8], req: &CompletionRequest) -> Result<ChatCompletionRequest, ApiError> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid("the body must be a JSON object"));
    };
    for key in [
        "prompt", "echo", "suffix", "best_of", "logprobs", "messages",
    ] {
        fields.remove(key);
    }
    fields.insert("messages".into(), json!([{"role": "user", "content": ""}]));
    fields.insert("max_tokens".into(), json!(req.max_tokens.unwrap_or(16)));
    if let Some(n) = req.logprobs {
        fields.insert("logprobs".into(), json!(true));
        fields.insert("top_logprobs".into(), json!(n));
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::invalid(format!("invalid request: {e}")))
}
