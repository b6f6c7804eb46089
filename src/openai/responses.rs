//! OpenAI's Responses API wire types (`POST /v1/responses`): input text and
//! images, instructions, function tools, text formats, stored responses,
//! streaming with typed events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/responses` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ResponsesRequest {
    /// Informational: a server serves the model it loaded.
    #[serde(default)]
    pub model: Option<String>,
    /// A string (one user message), or a list of items: messages (`role`,
    /// `content` as a string or `input_text` / `input_image` /
    /// `output_text` parts), `function_call`, `function_call_output`,
    /// `reasoning` (not shown to the model) and `item_reference` (an item
    /// of a stored response, by id).
    #[schema(value_type = ResponseInput)]
    pub input: Value,
    /// Extension (as on chat): `mm_processor_kwargs` for the input's images.
    #[serde(default)]
    #[schema(value_type = Option<super::MmProcessorKwargs>)]
    pub mm_processor_kwargs: Option<Value>,
    /// A system message put before the input.
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", ...}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub text: Option<Value>,
    /// Function tools: `{"type": "function", "name", "description", "parameters"}`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `none`, `auto`, `required` or `{"type": "function", "name": ...}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// `{"effort": "none" | "minimal" | "low" | "medium" | "high"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub reasoning: Option<Value>,
    #[serde(default)]
    pub stream: Option<bool>,
    /// Keep the response (default true, as OpenAI): in memory, bounded by
    /// `--responses-store-*`, lost on restart.
    #[serde(default)]
    pub store: Option<bool>,
    /// Continue from a stored response: its input and output come before
    /// this `input` (its `instructions` do not).
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Echoed back.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub user: Option<String>,
    /// Extension (as on chat completions).
    #[serde(default)]
    pub seed: Option<i64>,
}

/// What `input` may be (schema only: requests keep it as JSON and
/// translate it item by item, naming the item at fault).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ResponseInput {
    Text(String),
    #[schema(value_type = Vec<Object>)]
    Items(Vec<Value>),
}

/// A response object (`object: "response"`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseObject {
    pub id: String,
    /// Always `response`.
    pub object: &'static str,
    pub created_at: u64,
    /// `in_progress`, `completed` or `incomplete`.
    pub status: &'static str,
    pub model: String,
    pub output: Vec<OutputItem>,
    pub usage: Option<ResponseUsage>,
    pub incomplete_details: Option<IncompleteDetails>,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub parallel_tool_calls: bool,
    #[schema(value_type = Object)]
    pub tool_choice: Value,
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    #[schema(value_type = Object)]
    pub text: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Whether the response was kept.
    pub store: bool,
    pub previous_response_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncompleteDetails {
    /// `max_output_tokens` (or the end of the context).
    pub reason: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    Reasoning {
        id: String,
        summary: Vec<ReasoningText>,
        content: Vec<ReasoningText>,
    },
    Message {
        id: String,
        status: &'static str,
        /// Always `assistant`.
        role: &'static str,
        content: Vec<OutputText>,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        /// JSON text.
        arguments: String,
        status: &'static str,
    },
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutputText {
    /// Always `output_text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    #[schema(value_type = Vec<Object>)]
    pub annotations: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReasoningText {
    /// `reasoning_text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ResponseUsage {
    pub input_tokens: u32,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u32,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u32,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct InputTokensDetails {
    pub cached_tokens: u32,
    /// Always 0: nothing is written to a cache on request.
    pub cache_write_tokens: u32,
    /// Extension: input tokens taken by images.
    pub image_tokens: u32,
    /// Extension: input tokens taken by video frames.
    pub video_tokens: u32,
    /// Extension: input tokens taken by audio.
    pub audio_tokens: u32,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u32,
}

/// One server-sent event of a streamed response; `sequence_number` counts
/// from 0.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type")]
pub enum ResponseEvent {
    #[serde(rename = "response.created")]
    Created {
        sequence_number: u32,
        response: ResponseObject,
    },
    #[serde(rename = "response.in_progress")]
    InProgress {
        sequence_number: u32,
        response: ResponseObject,
    },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        sequence_number: u32,
        output_index: u32,
        item: OutputItem,
    },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        sequence_number: u32,
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: OutputText,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        sequence_number: u32,
        item_id: String,
        output_index: u32,
        content_index: u32,
        delta: String,
        #[schema(value_type = Vec<Object>)]
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        sequence_number: u32,
        item_id: String,
        output_index: u32,
        content_index: u32,
        text: String,
        #[schema(value_type = Vec<Object>)]
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        sequence_number: u32,
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: OutputText,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        sequence_number: u32,
        item_id: String,
        output_index: u32,
        delta: String,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        sequence_number: u32,
        item_id: String,
        output_index: u32,
        name: String,
        arguments: String,
    },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        sequence_number: u32,
        output_index: u32,
        item: OutputItem,
    },
    #[serde(rename = "response.completed")]
    Completed {
        sequence_number: u32,
        response: ResponseObject,
    },
    #[serde(rename = "response.incomplete")]
    Incomplete {
        sequence_number: u32,
        response: ResponseObject,
    },
    #[serde(rename = "error")]
    Error {
        sequence_number: u32,
        code: Option<String>,
        message: String,
        param: Option<String>,
    },
}
