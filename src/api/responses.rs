//! `POST /v1/responses`: OpenAI's Responses API, stateless. A request is
//! translated into a Chat Completions request (input items become
//! messages, function tools and text formats their chat forms) and runs
//! through the same preparation, engine and answer reader; the answer is
//! reported as a response object, or streamed as typed events
//! (`responses_stream.rs`).

use super::choices::Answer;
use super::error::ApiError;
use super::log::RequestLog;
use super::{SharedState, chat};
use crate::openai::responses::{
    IncompleteDetails, InputTokensDetails, OutputItem, OutputText, OutputTokensDetails,
    ReasoningText, ResponseObject, ResponseUsage, ResponsesRequest,
};
use crate::openai::{ChatCompletionRequest, ErrorEnvelope, FinishReason};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The Responses API, as OpenAI's, without stored state. With
/// `stream: true` the answer is a `text/event-stream` of typed events
/// (`response.created` ... `response.completed`).
#[utoipa::path(post, path = "/v1/responses", tag = "responses",
    request_body = ResponsesRequest,
    responses(
        (status = 200, description = "The response (`stream: false`), or its events (`stream: true`)",
            content(
                (ResponseObject = "application/json"),
                (crate::openai::responses::ResponseEvent = "text/event-stream"),
            )),
        (status = 400, description = "Invalid request, stored state asked for, or context overflow", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorEnvelope),
        (status = 429, description = "Queue full; see Retry-After", body = ErrorEnvelope),
        (status = 500, description = "Internal engine error, confined to this request", body = ErrorEnvelope),
        (status = 503, description = "Model loading, failed, engine stopped, or request timed out", body = ErrorEnvelope),
    ))]
pub async fn responses(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = super::log::request_id(&headers);
    handle(state, &request_id, body)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn handle(
    state: SharedState,
    request_id: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let deadline = state.request_timeout.map(|t| started + t);
    let body = chat::body_bytes(body)?;
    let req: ResponsesRequest = chat::parse(&body)?;
    let chat_req = to_chat(&req)?;
    let prepared = chat::prepare_request(&state, chat_req, deadline).await?;
    let log = RequestLog::new(request_id, &state.model_id);
    let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
    let (mut meta, usage, choices) = chat::start(&state, prepared, deadline, log, id).await?;
    // `/v1/responses` has no `n`: one choice.
    let Some(rx) = choices.into_iter().next() else {
        return Err(crate::engine::EngineError::Internal("no choice was queued".into()).into());
    };
    let shell = Shell::of(&req, &meta.id, meta.created, &meta.model);
    if req.stream.unwrap_or(false) {
        return Ok(super::responses_stream::stream(shell, meta, usage, rx));
    }
    let answer = super::choices::answer(&mut meta, usage, rx).await?;
    Ok(Json(shell.finished(answer)).into_response())
}

/// What a response object echoes of its request, before any output.
#[derive(Clone)]
pub(super) struct Shell(pub ResponseObject);

impl Shell {
    fn of(req: &ResponsesRequest, id: &str, created: u64, model: &str) -> Self {
        Shell(ResponseObject {
            id: id.to_string(),
            object: "response",
            created_at: created,
            status: "in_progress",
            model: model.to_string(),
            output: Vec::new(),
            usage: None,
            incomplete_details: None,
            error: None,
            instructions: req.instructions.clone(),
            max_output_tokens: req.max_output_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
            tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            tools: req.tools.clone().unwrap_or_default(),
            text: req
                .text
                .clone()
                .unwrap_or_else(|| json!({"format": {"type": "text"}})),
            metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
            store: false,
            previous_response_id: None,
        })
    }

    /// `completed`, or `incomplete` when the limit (or the context) ended it.
    pub fn status(incomplete: bool) -> &'static str {
        if incomplete {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The response as it ends: its status, output and usage.
    pub fn done(
        &self,
        incomplete: bool,
        output: Vec<OutputItem>,
        usage: &crate::openai::Usage,
    ) -> ResponseObject {
        let mut r = self.0.clone();
        r.status = Self::status(incomplete);
        r.incomplete_details = incomplete.then_some(IncompleteDetails {
            reason: "max_output_tokens",
        });
        r.usage = Some(usage_of(usage));
        r.output = output;
        r
    }

    /// The whole response, from the read answer.
    pub fn finished(&self, a: Answer) -> ResponseObject {
        let incomplete = a.finish == FinishReason::Length;
        let mut output = Vec::new();
        if !a.reasoning.is_empty() {
            output.push(reasoning_item(new_id("rs"), a.reasoning));
        }
        if !a.content.is_empty() || a.calls.is_empty() {
            output.push(message_item(
                new_id("msg"),
                Self::status(incomplete),
                a.content,
            ));
        }
        for c in a.calls {
            output.push(OutputItem::FunctionCall {
                id: new_id("fc"),
                call_id: c.id,
                name: c.function.name,
                arguments: c.function.arguments,
                status: "completed",
            });
        }
        self.done(incomplete, output, &a.usage)
    }
}

pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub(super) fn output_text(text: String) -> OutputText {
    OutputText {
        kind: "output_text",
        text,
        annotations: Vec::new(),
    }
}

pub(super) fn message_item(id: String, status: &'static str, text: String) -> OutputItem {
    OutputItem::Message {
        id,
        status,
        role: "assistant",
        content: vec![output_text(text)],
    }
}

pub(super) fn reasoning_item(id: String, text: String) -> OutputItem {
    OutputItem::Reasoning {
        id,
        summary: Vec::new(),
        content: vec![ReasoningText {
            kind: "reasoning_text",
            text,
        }],
    }
}

fn usage_of(u: &crate::openai::Usage) -> ResponseUsage {
    ResponseUsage {
        input_tokens: u.prompt_tokens,
        input_tokens_details: InputTokensDetails {
            cached_tokens: u.prompt_tokens_details.cached_tokens,
            cache_write_tokens: 0,
            image_tokens: u.prompt_tokens_details.image_tokens,
        },
        output_tokens: u.completion_tokens,
        output_tokens_details: OutputTokensDetails {
            reasoning_tokens: u.completion_tokens_details.reasoning_tokens,
        },
        total_tokens: u.total_tokens,
    }
}

fn bad(msg: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid(msg).param(param)
}

/// The Chat Completions request that does what this one asks.
fn to_chat(r: &ResponsesRequest) -> Result<ChatCompletionRequest, ApiError> {
    if r.store == Some(true) {
        return Err(bad(
            "this server is stateless and does not store responses; send `store: false` (or omit it) and resend the conversation in `input`",
            "store",
        ));
    }
    if r.previous_response_id.is_some() {
        return Err(bad(
            "this server is stateless: `previous_response_id` cannot be resolved; resend the conversation in `input`",
            "previous_response_id",
        ));
    }
    if r.metadata
        .as_ref()
        .is_some_and(|m| !m.is_object() && !m.is_null())
    {
        return Err(bad(
            "`metadata` must be an object of string keys and values",
            "metadata",
        ));
    }
    let mut messages = Vec::new();
    if let Some(i) = &r.instructions {
        messages.push(json!({"role": "system", "content": i}));
    }
    match &r.input {
        Value::String(s) => messages.push(json!({"role": "user", "content": s})),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                input_item(i, item, &mut messages)?;
            }
        }
        _ => {
            return Err(bad(
                "`input` must be a string or a list of input items",
                "input",
            ));
        }
    }
    let mut chat = json!({
        "messages": messages,
        "max_completion_tokens": r.max_output_tokens,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "seed": r.seed,
        "user": r.user,
        "parallel_tool_calls": r.parallel_tool_calls,
    });
    if let Some(tools) = &r.tools {
        let mut out = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            if t["type"] != "function" {
                return Err(bad(
                    format!(
                        "tools[{i}] has type {}: only function tools are supported by this server",
                        t["type"]
                    ),
                    format!("tools[{i}].type"),
                ));
            }
            let mut f = json!({"name": t["name"], "parameters": t["parameters"]});
            if let Some(d) = t.get("description") {
                f["description"] = d.clone();
            }
            if f["parameters"].is_null() {
                f.as_object_mut().map(|o| o.remove("parameters"));
            }
            out.push(json!({"type": "function", "function": f}));
        }
        chat["tools"] = Value::Array(out);
    }
    if let Some(choice) = &r.tool_choice {
        chat["tool_choice"] = match choice {
            Value::String(_) => choice.clone(),
            Value::Object(o) if o.get("type") == Some(&json!("function")) => {
                json!({"type": "function", "function": {"name": o.get("name")}})
            }
            _ => {
                return Err(bad(
                    "tool_choice must be none, auto, required or {\"type\": \"function\", \"name\": ...}",
                    "tool_choice",
                ));
            }
        };
    }
    if let Some(effort) = r.reasoning.as_ref().and_then(|x| x.get("effort")) {
        chat["reasoning_effort"] = effort.clone();
    }
    if let Some(format) = r.text.as_ref().and_then(|t| t.get("format")) {
        chat["response_format"] = match format["type"].as_str() {
            Some("text") => json!({"type": "text"}),
            Some("json_object") => json!({"type": "json_object"}),
            Some("json_schema") => json!({"type": "json_schema", "json_schema": {
                "name": format["name"].as_str().unwrap_or("response"),
                "schema": format["schema"], "strict": format["strict"]}}),
            _ => {
                return Err(bad(
                    "text.format.type must be text, json_object or json_schema",
                    "text.format",
                ));
            }
        };
    }
    serde_json::from_value(chat).map_err(|e| bad(format!("invalid request: {e}"), "input"))
}

/// One input item as chat messages; consecutive function calls share one
/// assistant turn, as chat templates expect.
fn input_item(i: usize, item: &Value, messages: &mut Vec<Value>) -> Result<(), ApiError> {
    let at = format!("input[{i}]");
    let kind = item["type"]
        .as_str()
        .unwrap_or(if item.get("role").is_some() {
            "message"
        } else {
            ""
        });
    match kind {
        "message" => {
            let content = match &item["content"] {
                Value::String(s) => json!(s),
                Value::Array(parts) => {
                    let mut out = Vec::with_capacity(parts.len());
                    for (j, p) in parts.iter().enumerate() {
                        out.push(content_part(&format!("{at}.content[{j}]"), p)?);
                    }
                    Value::Array(out)
                }
                _ => {
                    return Err(bad(
                        format!("{at}.content must be a string or a list of parts"),
                        format!("{at}.content"),
                    ));
                }
            };
            messages.push(json!({"role": item["role"], "content": content}));
        }
        "function_call" => {
            let call = json!({"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]}});
            match messages.last_mut() {
                Some(m) if m["role"] == "assistant" && m["tool_calls"].is_array() => {
                    if let Some(list) = m["tool_calls"].as_array_mut() {
                        list.push(call);
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let output = match &item["output"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            messages
                .push(json!({"role": "tool", "tool_call_id": item["call_id"], "content": output}));
        }
        // Thoughts of earlier turns are not sent back to the model.
        "reasoning" => {}
        other => {
            return Err(bad(
                format!(
                    "{at} has type {other:?}: supported input items are message, function_call and function_call_output"
                ),
                format!("{at}.type"),
            ));
        }
    }
    Ok(())
}

fn content_part(at: &str, p: &Value) -> Result<Value, ApiError> {
    match p["type"].as_str() {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": p["text"]}))
        }
        Some("input_image") => match p["image_url"].as_str() {
            Some(url) => {
                let mut img = json!({"url": url});
                if let Some(d) = p.get("detail").filter(|d| d.is_string()) {
                    img["detail"] = d.clone();
                }
                Ok(json!({"type": "image_url", "image_url": img}))
            }
            None => Err(bad(
                format!(
                    "{at}: input_image needs an `image_url` (a data URL or https URL); file ids are not supported"
                ),
                format!("{at}.image_url"),
            )),
        },
        other => Err(bad(
            format!("{at} has type {other:?}: supported parts are input_text and input_image"),
            format!("{at}.type"),
        )),
    }
}
