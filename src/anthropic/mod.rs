//! Anthropic's Messages API wire types (`POST /v1/messages`): what crosses
//! HTTP, nothing more. Messages and their content blocks stay JSON here:
//! the translation reads them block by block and names the one at fault.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/messages` body (and `/v1/messages/count_tokens`, where
/// `max_tokens` is not needed).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessagesRequest {
    /// Routes the request behind a router; a single-model server serves
    /// the model it loaded.
    #[serde(default)]
    pub model: Option<String>,
    /// Turns of `role` `user` / `assistant`, `content` a string or blocks:
    /// `text`, `image` (`source` `base64` or `url`), `tool_use`,
    /// `tool_result` (text and image blocks inside), `thinking` (not shown
    /// to the model again).
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// A string or a list of text blocks.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub system: Option<Value>,
    /// Required by `/v1/messages`.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub top_k: Option<i32>,
    #[serde(default)]
    pub stream: Option<bool>,
    /// Client tools: `{"name", "description", "input_schema"}`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `{"type": "auto" | "any" | "none" | "tool", "name",
    /// "disable_parallel_tool_use"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// `{"type": "enabled", "budget_tokens": N}` or `{"type": "disabled"}`:
    /// switches thinking for templates with a switch.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
    /// `{"user_id": ...}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A whole answer (`type: "message"`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `assistant`.
    pub role: &'static str,
    pub model: String,
    /// `thinking`, `text` and `tool_use` blocks, in that order.
    #[schema(value_type = Vec<Object>)]
    pub content: Vec<Value>,
    /// `end_turn`, `max_tokens`, `stop_sequence` or `tool_use`.
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
    pub usage: MessageUsage,
}

/// Anthropic's usage: `input_tokens` are the prompt tokens not read from
/// the prefix cache, `cache_read_input_tokens` those that were; their sum
/// is the whole prompt.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct MessageUsage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cache_creation_input_tokens: u32,
    pub cache_read_input_tokens: u32,
}

/// `POST /v1/messages/count_tokens` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenCount {
    pub input_tokens: u32,
}

/// Anthropic's error envelope: `{"type": "error", "error": {"type",
/// "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = AnthropicError)]
pub struct ErrorEnvelope {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = AnthropicErrorBody)]
pub struct ErrorBody {
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `request_too_large`, `rate_limit_error`,
    /// `api_error` or `overloaded_error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

impl ErrorEnvelope {
    /// The envelope for an error of this HTTP status.
    pub fn of(status: u16, message: String) -> Self {
        let kind = match status {
            400 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 | 405 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            _ => "api_error",
        };
        ErrorEnvelope {
            kind: "error".into(),
            error: ErrorBody {
                kind: kind.into(),
                message,
            },
        }
    }
}
