//! An answer in Anthropic's names: stop reasons, usage split into
//! uncached and cached prompt tokens, tool inputs as objects, and the
//! whole `message`. Shared by the whole answer and the stream.

use super::choices::Answer;
use crate::anthropic::{Message, MessageUsage};
use crate::openai::{FinishReason as WireFinish, Usage};
use serde_json::{Value, json};

/// Anthropic's stop reason for a chat finish.
pub(super) fn stop_reason(finish: WireFinish, stop_sequence: Option<&str>) -> &'static str {
    match finish {
        WireFinish::Length => "max_tokens",
        WireFinish::ToolCalls => "tool_use",
        _ if stop_sequence.is_some() => "stop_sequence",
        _ => "end_turn",
    }
}

/// Anthropic's usage: the prompt split into uncached and cached tokens.
pub(super) fn usage_of(u: &Usage) -> MessageUsage {
    let cached = u.prompt_tokens_details.cached_tokens;
    MessageUsage {
        input_tokens: u.prompt_tokens.saturating_sub(cached),
        output_tokens: u.completion_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: cached,
    }
}

/// A tool call's arguments as the `input` object Anthropic sends.
pub(super) fn tool_input(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| json!({}))
}

pub(super) fn message(id: String, model: String, a: Answer) -> Message {
    let mut content = Vec::new();
    if !a.reasoning.is_empty() {
        content.push(json!({"type": "thinking", "thinking": a.reasoning, "signature": ""}));
    }
    if !a.content.is_empty() {
        content.push(json!({"type": "text", "text": a.content}));
    }
    for c in &a.calls {
        content.push(
            json!({"type": "tool_use", "id": c.id, "name": c.function.name,
            "input": tool_input(&c.function.arguments)}),
        );
    }
    let reason = stop_reason(a.finish, a.stop_sequence.as_deref());
    Message {
        id,
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: Some(reason),
        stop_sequence: a.stop_sequence.filter(|_| reason == "stop_sequence"),
        usage: usage_of(&a.usage),
    }
}
