//! An Anthropic Messages request as the Chat Completions request that does
//! the same: system blocks become a system message, `tool_use` blocks an
//! assistant turn's calls, `tool_result` blocks tool messages (images
//! inside them included), image sources image URLs. Errors name the
//! Anthropic field at fault.

use super::error::ApiError;
use crate::anthropic::MessagesRequest;
use crate::openai::ChatCompletionRequest;
use serde_json::{Value, json};

fn bad(msg: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid(msg).param(param)
}

/// `need_max`: `/v1/messages` requires `max_tokens`; `count_tokens` does not.
pub(super) fn to_chat(
    r: &MessagesRequest,
    need_max: bool,
) -> Result<ChatCompletionRequest, ApiError> {
    if need_max && r.max_tokens.is_none() {
        return Err(bad("max_tokens: Field required", "max_tokens"));
    }
    let mut messages = Vec::new();
    if let Some(system) = &r.system {
        messages.push(json!({"role": "system", "content": system_text(system)?}));
    }
    if r.messages.is_empty() {
        return Err(bad(
            "messages: at least one message is required",
            "messages",
        ));
    }
    for (i, m) in r.messages.iter().enumerate() {
        turn(i, m, &mut messages)?;
    }
    let mut chat = json!({
        "messages": messages,
        "max_tokens": r.max_tokens,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "top_k": r.top_k,
        "stop": r.stop_sequences,
        "user": r.metadata.as_ref().and_then(|m| m.get("user_id")),
    });
    if let Some(tools) = &r.tools {
        chat["tools"] = Value::Array(
            tools
                .iter()
                .enumerate()
                .map(|(i, t)| tool(i, t))
                .collect::<Result<_, _>>()?,
        );
    }
    if let Some(choice) = &r.tool_choice {
        tool_choice(choice, &mut chat)?;
    }
    match r.thinking.as_ref().map(|t| &t["type"]) {
        None => {}
        Some(t) if t == "enabled" || t == "adaptive" => {
            chat["chat_template_kwargs"] = json!({"enable_thinking": true});
        }
        Some(t) if t == "disabled" => {
            chat["chat_template_kwargs"] = json!({"enable_thinking": false});
        }
        Some(_) => {
            return Err(bad(
                "thinking.type must be enabled or disabled",
                "thinking.type",
            ));
        }
    }
    serde_json::from_value(chat).map_err(|e| bad(format!("invalid request: {e}"), "messages"))
}

fn system_text(system: &Value) -> Result<String, ApiError> {
    match system {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut out = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                match (b["type"].as_str(), b["text"].as_str()) {
                    (Some("text"), Some(t)) => out.push(t),
                    _ => {
                        return Err(bad(
                            format!("system[{j}]: system blocks must be text blocks"),
                            format!("system[{j}]"),
                        ));
                    }
                }
            }
            Ok(out.join("\n\n"))
        }
        _ => Err(bad(
            "system must be a string or a list of text blocks",
            "system",
        )),
    }
}

/// One Anthropic turn as chat messages: a user turn's tool results come
/// first, as tool messages, then its other blocks as one user message.
fn turn(i: usize, m: &Value, messages: &mut Vec<Value>) -> Result<(), ApiError> {
    let at = format!("messages[{i}]");
    let role = m["role"].as_str().unwrap_or_default();
    if role != "user" && role != "assistant" {
        return Err(bad(
            format!("{at}.role must be user or assistant (the system prompt goes in `system`)"),
            format!("{at}.role"),
        ));
    }
    let blocks = match &m["content"] {
        Value::String(s) => {
            messages.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(bad(
                format!("{at}.content must be a string or a list of content blocks"),
                format!("{at}.content"),
            ));
        }
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match (b["type"].as_str().unwrap_or_default(), role) {
            ("text", _) => parts.push(json!({"type": "text", "text": text(&at, b)?})),
            ("image", "user") => parts.push(image(&at, b)?),
            ("tool_use", "assistant") => calls.push(json!({
                "id": b["id"], "type": "function",
                "function": {"name": b["name"], "arguments": b["input"].to_string()}})),
            ("tool_result", "user") => messages.push(tool_result(&at, b)?),
            // Earlier thoughts are not shown to the model again.
            ("thinking" | "redacted_thinking", "assistant") => {}
            (kind, role) => {
                return Err(bad(
                    format!(
                        "{at}: a {kind:?} block is not supported in a {role} turn (supported: text, image, tool_result in user turns; text, tool_use, thinking in assistant turns)"
                    ),
                    format!("{at}.type"),
                ));
            }
        }
    }
    if role == "assistant" {
        let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        let mut msg = json!({"role": "assistant", "content": (!text.is_empty() || calls.is_empty()).then_some(text)});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        messages.push(msg);
    } else if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn text<'a>(at: &str, b: &'a Value) -> Result<&'a str, ApiError> {
    b["text"].as_str().ok_or_else(|| {
        bad(
            format!("{at}: a text block needs `text`"),
            format!("{at}.text"),
        )
    })
}

/// An image block as an `image_url` part: base64 sources as data URLs.
fn image(at: &str, b: &Value) -> Result<Value, ApiError> {
    let s = &b["source"];
    let url = match s["type"].as_str() {
        Some("base64") => match (s["media_type"].as_str(), s["data"].as_str()) {
            (Some(mt), Some(data)) => format!("data:{mt};base64,{data}"),
            _ => {
                return Err(bad(
                    format!("{at}.source: a base64 source needs `media_type` and `data`"),
                    format!("{at}.source"),
                ));
            }
        },
        Some("url") => match s["url"].as_str() {
            Some(u) => u.to_string(),
            None => {
                return Err(bad(
                    format!("{at}.source: a url source needs `url`"),
                    format!("{at}.source.url"),
                ));
            }
        },
        _ => {
            return Err(bad(
                format!("{at}.source.type must be base64 or url (file ids are not supported)"),
                format!("{at}.source.type"),
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A tool result as a tool message; its text and images in order. An error
/// result says so in its text, as the model would otherwise not know.
fn tool_result(at: &str, b: &Value) -> Result<Value, ApiError> {
    let Some(id) = b["tool_use_id"].as_str() else {
        return Err(bad(
            format!("{at}: a tool_result needs `tool_use_id`"),
            format!("{at}.tool_use_id"),
        ));
    };
    let mut parts = Vec::new();
    if b["is_error"] == true {
        parts.push(json!({"type": "text", "text": "Error: "}));
    }
    match &b["content"] {
        Value::Null => {}
        Value::String(s) => parts.push(json!({"type": "text", "text": s})),
        Value::Array(blocks) => {
            for (k, inner) in blocks.iter().enumerate() {
                let at = format!("{at}.content[{k}]");
                match inner["type"].as_str() {
                    Some("text") => parts.push(json!({"type": "text", "text": text(&at, inner)?})),
                    Some("image") => parts.push(image(&at, inner)?),
                    other => {
                        return Err(bad(
                            format!(
                                "{at}: a {other:?} block is not supported in a tool_result (text and image are)"
                            ),
                            format!("{at}.type"),
                        ));
                    }
                }
            }
        }
        _ => {
            return Err(bad(
                format!("{at}.content must be a string or a list of blocks"),
                format!("{at}.content"),
            ));
        }
    }
    if parts.is_empty() {
        parts.push(json!({"type": "text", "text": ""}));
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": parts}))
}

fn tool(i: usize, t: &Value) -> Result<Value, ApiError> {
    let at = format!("tools[{i}]");
    if t.get("type").is_some_and(|k| k != "custom") {
        return Err(bad(
            format!(
                "{at} has type {}: only client tools (name, description, input_schema) are supported by this server",
                t["type"]
            ),
            format!("{at}.type"),
        ));
    }
    let mut f = json!({"name": t["name"], "parameters": t["input_schema"]});
    if let Some(d) = t.get("description") {
        f["description"] = d.clone();
    }
    Ok(json!({"type": "function", "function": f}))
}

fn tool_choice(choice: &Value, chat: &mut Value) -> Result<(), ApiError> {
    chat["tool_choice"] = match choice["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
        _ => {
            return Err(bad(
                "tool_choice.type must be auto, any, tool or none",
                "tool_choice.type",
            ));
        }
    };
    if choice["disable_parallel_tool_use"] == true {
        chat["parallel_tool_calls"] = json!(false);
    }
    Ok(())
}
