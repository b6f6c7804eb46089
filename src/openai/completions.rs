//! OpenAI's legacy text completions (`POST /v1/completions`), which code
//! and evaluation tools still use: a raw prompt, no chat template.

use super::{StopSequences, StreamOptions, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/completions` body. The sampling fields and extensions of
/// Chat Completions (`top_k`, `min_p`, `repeat_penalty`, `ignore_eos`,
/// `logit_bias`, `seed`, `response_format`, ...) are honoured as there.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: Option<String>,
    /// A string, a list of strings (one completion each), a list of token
    /// ids, or a list of such lists.
    #[schema(value_type = Object)]
    pub prompt: Value,
    /// Default 16, as OpenAI's.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Completions per prompt.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 128)]
    pub n: Option<u32>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// The most likely tokens to report per position (0 to 20): the
    /// sampled token's log-probability and this many alternatives.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 20)]
    pub logprobs: Option<u32>,
    /// Return the prompt before the completion.
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub stop: Option<StopSequences>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub seed: Option<i64>,
    /// Refused: this server does not fill in the middle.
    #[serde(default)]
    pub suffix: Option<String>,
    /// Only 1 (or absent).
    #[serde(default)]
    pub best_of: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
}

/// `object: "text_completion"`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    /// Absent on stream chunks but the last (with `include_usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompletionChoice {
    pub text: String,
    /// `prompt index * n + completion index`.
    pub index: u32,
    pub logprobs: Option<CompletionLogprobs>,
    /// `stop`, `length`, or null on a stream's chunks before the last.
    pub finish_reason: Option<&'static str>,
}

/// The legacy log-probability shape: parallel lists per token.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<f32>,
    /// Token text -> log-probability, per position.
    #[schema(value_type = Vec<Object>)]
    pub top_logprobs: Vec<std::collections::BTreeMap<String, f32>>,
    /// Each token's character offset in the returned text.
    pub text_offset: Vec<u32>,
}
