//! `POST /v1/responses`: OpenAI's Responses API. Stored turns resolved
//! (`stored.rs`), a request is translated into a Chat Completions request (input items become
//! messages, function tools and text formats their chat forms) and runs
//! through the same preparation, engine and answer reader; the answer is
//! reported as a response object, or streamed as typed events
//! (`responses_stream.rs`).

use super::chat;
use super::error::ApiError;
use super::response_object::Shell;
use super::state::SharedState;
use super::stored::Turn;
use crate::openai::responses::{ResponseObject, ResponsesRequest};
use crate::openai::{ChatCompletionRequest, ErrorEnvelope};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The Responses API, as OpenAI's: responses are stored unless `store:
/// false` (in memory, bounded), so `previous_response_id` and
/// `item_reference` resolve. With
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
        (status = 400, description = "Invalid request or context overflow", body = ErrorEnvelope),
        (status = 404, description = "`previous_response_id` or an `item_reference` not stored (or expired)", body = ErrorEnvelope),
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
) -> Result<Response, ApiError> {
    let request_id = super::log::request_id(&headers);
    let started = std::time::Instant::now();
    let deadline = state.request_timeout.map(|t| started + t);
    let body = chat::body_bytes(body)?;
    let req: ResponsesRequest = chat::parse(&body)?;
    let turn = super::stored::resolve(&state.store, &req)?;
    let chat_req = to_chat(&req, &turn)?;
    let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
    // `/v1/responses` has no `n`: one choice.
    let (mut meta, usage, rx) =
        chat::start_one(&state, &request_id, chat_req, deadline, id).await?;
    let keep = super::stored::Keep::of(&state.store, &req, turn);
    let mut shell = Shell::of(&req, &meta.id, meta.created, &meta.model);
    shell.0.store = keep.is_some();
    if req.stream.unwrap_or(false) {
        return Ok(super::responses_stream::stream(
            shell, meta, usage, rx, keep,
        ));
    }
    let answer = super::choices::answer(&mut meta, usage, rx).await?;
    let response = shell.finished(answer);
    if let Some(keep) = keep {
        keep.put(&response);
    }
    Ok(Json(response).into_response())
}

fn bad(msg: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid(msg).param(param)
}

/// The Chat Completions request that does what this one asks.
fn to_chat(r: &ResponsesRequest, turn: &Turn) -> Result<ChatCompletionRequest, ApiError> {
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
    let earlier = turn.earlier.len();
    for (i, item) in turn.items().enumerate() {
        let at = match i.checked_sub(earlier) {
            Some(own) => format!("input[{own}]"),
            None => format!("previous_response_id's item {i}"),
        };
        input_item(&at, item, &mut messages)?;
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
    if let Some(k) = &r.mm_processor_kwargs {
        chat["mm_processor_kwargs"] = k.clone();
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
fn input_item(at: &str, item: &Value, messages: &mut Vec<Value>) -> Result<(), ApiError> {
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
            // A list output holds input_text / input_image parts: images
            // in tool results (screenshots) reach the model as images.
            let output = match &item["output"] {
                Value::String(s) => json!(s),
                Value::Array(parts) => {
                    let mut out = Vec::with_capacity(parts.len());
                    for (j, p) in parts.iter().enumerate() {
                        out.push(content_part(&format!("{at}.output[{j}]"), p)?);
                    }
                    Value::Array(out)
                }
                other => json!(other.to_string()),
            };
            messages
                .push(json!({"role": "tool", "tool_call_id": item["call_id"], "content": output}));
        }
        // Thoughts of earlier turns are not sent back to the model.
        "reasoning" => {}
        other => {
            return Err(bad(
                format!(
                    "{at} has type {other:?}: supported input items are message, function_call, function_call_output, reasoning and item_reference"
                ),
                format!("{at}.type"),
            ));
        }
    }
    Ok(())
}

/// A Responses media part as its chat part (`image_url`, `video_url`): the
/// URL in `field`, with the extension `keys` the part sets; `None` without
/// a URL.
fn media_part(p: &Value, field: &str, keys: &[&str]) -> Option<Value> {
    let mut media = json!({"url": p[field].as_str()?});
    for &key in keys {
        if let Some(v) = p.get(key).filter(|v| !v.is_null()) {
            media[key] = v.clone();
        }
    }
    Some(json!({"type": field, field: media}))
}

fn content_part(at: &str, p: &Value) -> Result<Value, ApiError> {
    match p["type"].as_str() {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": p["text"]}))
        }
        Some("input_image") => {
            let keys = ["detail", "min_tokens", "max_tokens", "tiling"];
            media_part(p, "image_url", &keys).ok_or_else(|| bad(
                format!(
                    "{at}: input_image needs an `image_url` (a data URL or https URL); file ids are not supported"
                ),
                format!("{at}.image_url"),
            ))
        }
        // Extension: a video, shaped as input_image is.
        Some("input_video") => {
            let keys = ["fps", "max_frames", "max_tokens", "max_pixels"];
            media_part(p, "video_url", &keys).ok_or_else(|| {
                bad(
                    format!("{at}: input_video needs a `video_url` (a data URL or https URL)"),
                    format!("{at}.video_url"),
                )
            })
        }
        // OpenAI's audio part, as in chat: `input_audio: {data, format}`.
        Some("input_audio") if p["input_audio"]["data"].is_string() => {
            Ok(json!({"type": "input_audio", "input_audio": p["input_audio"]}))
        }
        Some("input_audio") => Err(bad(
            format!("{at}: input_audio needs `input_audio.data` (base64) and its `format`"),
            format!("{at}.input_audio"),
        )),
        other => Err(bad(
            format!(
                "{at} has type {other:?}: supported parts are input_text, input_image, input_audio and input_video"
            ),
            format!("{at}.type"),
        )),
    }
}
