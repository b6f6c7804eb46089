use super::audio_part::{AudioUrl, InputAudio};
use super::image_part::{ImageUrl, MmProcessorKwargs};
use super::video_part::{InputVideo, VideoUrl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/chat/completions` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Informational: a server serves the model it loaded.
    #[serde(default)]
    pub model: Option<String>,
    /// At least one. `content` is required on every role but `assistant`.
    #[schema(value_type = Vec<MessageSchema>, min_items = 1)]
    pub messages: Vec<ChatMessage>,
    /// Deprecated alias of `max_completion_tokens`; both are accepted.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    pub max_completion_tokens: Option<u32>,
    /// 0 means greedy. Default: the model's (`general.sampling.temp`), else 0.8.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Extension (llama.cpp): keep only the k most likely tokens. 0 disables.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub top_k: Option<i32>,
    /// Extension (llama.cpp): drop tokens less likely than `min_p` times
    /// the most likely one. 0 disables.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub min_p: Option<f64>,
    /// Penalises tokens already generated (within the last
    /// `penalty_last_n`, 64 by default): once, and per occurrence.
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub frequency_penalty: Option<f64>,
    /// Extension (vLLM's name; llama-server's `repeat_penalty` is an
    /// alias): divides the logits of repeated tokens. 1 disables.
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 10)]
    pub repetition_penalty: Option<f64>,
    #[serde(default)]
    #[schema(exclusive_minimum = 0, maximum = 10)]
    pub repeat_penalty: Option<f64>,
    /// Extension (llama-server's and vLLM's): never end on an
    /// end-of-generation token, only at `max_tokens` or a stop sequence.
    /// For load tests that need answers of a fixed length.
    #[serde(default)]
    pub ignore_eos: Option<bool>,
    /// Token id (as a string) to a bias from -100 to 100 added to its
    /// logit; -100 bans the token.
    #[serde(default)]
    #[schema(value_type = Option<HashMap<String, f64>>)]
    pub logit_bias: Option<std::collections::BTreeMap<String, f64>>,
    /// Return the log-probability of each generated token.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// With `logprobs`: also the most likely alternatives at each position (0 to 20).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 20)]
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub stop: Option<StopSequences>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Choices to generate from the one prompt (evaluated once). At most
    /// the server's `--parallel`: each choice takes a sequence.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 128)]
    pub n: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
    /// `text` (default), `json_object`, or `json_schema`: the answer is then
    /// constrained by a grammar and parses as JSON (valid against the schema).
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// Extension (as llama-server): extra variables for the model's chat
    /// template, e.g. `{"enable_thinking": false}` for Qwen3-style templates.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub chat_template_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    /// Extension (as vLLM): how this request's images are shaped and what
    /// they may cost; an image's own `image_url` fields win over these.
    #[serde(default, deserialize_with = "super::image_part::kwargs_object")]
    pub mm_processor_kwargs: Option<MmProcessorKwargs>,
    /// Functions the model may call. Their names must be 1-64 letters,
    /// digits, `_` or `-`; `parameters` is a JSON schema (an object).
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// `none`, `auto` (default with tools), `required`, or
    /// `{"type": "function", "function": {"name": ...}}`.
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    /// For templates with a thinking switch (`enable_thinking`, as Qwen3's):
    /// `none` or `minimal` turns thinking off, `low`, `medium` or `high` on.
    /// A template without one answers 400.
    #[serde(default)]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Whether the model may call several tools in one answer (default true).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// OpenAI fields not implemented yet: refused with a 400 naming the
    /// field unless the value asks for nothing (`tools: []`, `presence_penalty: 0`, ...).
    #[serde(flatten)]
    #[schema(ignore)]
    pub not_implemented: super::unsupported::NotImplemented,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The JSON schema the answer must satisfy.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    /// Accepted; decoding is always constrained.
    #[serde(default)]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StopSequences {
    One(String),
    Many(Vec<String>),
}

impl StopSequences {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopSequences::One(s) => vec![s],
            StopSequences::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChatMessage {
    pub role: Role,
    /// A string, or an array of text / image_url parts. May be null for an
    /// assistant turn.
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(default)]
    pub name: Option<String>,
    /// An assistant turn's calls.
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// A `tool` message: the call it answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Tool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionDef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    Function,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct FunctionDef {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// JSON schema of the arguments; absent means no arguments.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<serde_json::Value>,
    /// Accepted; arguments are always constrained to the schema.
    #[serde(default)]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `none`, `auto` or `required`.
    Mode(ToolChoiceMode),
    Named(NamedToolChoice),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionName,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct FunctionName {
    pub name: String,
}

/// A call, as an assistant turn holds it (and as answers report it).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct FunctionCall {
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// What the OpenAPI document says a message is: one shape per role, as
/// OpenAI's spec has it, so that a schema-valid body is an accepted one
/// (content required except on assistant turns; images only from users).
// Schema only: requests deserialize into `ChatMessage`.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum MessageSchema {
    Instruction(InstructionMessage),
    User(UserMessage),
    Assistant(AssistantTurn),
    Tool(ToolMessage),
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct InstructionMessage {
    role: InstructionRole,
    content: TextContent,
    name: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UserMessage {
    role: UserRole,
    content: MessageContent,
    name: Option<String>,
}

/// A past assistant turn; `content` may be null or absent.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AssistantTurn {
    role: AssistantRole,
    content: Option<TextContent>,
    name: Option<String>,
    tool_calls: Option<Vec<ToolCall>>,
}

/// A tool's result, answering the call `tool_call_id`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ToolMessage {
    role: ToolRole,
    content: TextContent,
    tool_call_id: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ToolRole {
    Tool,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum InstructionRole {
    System,
    Developer,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum UserRole {
    User,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AssistantRole {
    Assistant,
}

/// A string, or an array of text parts (no images outside user turns).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TextContent {
    Text(String),
    Parts(Vec<TextPart>),
}

#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(dead_code)]
pub enum TextPart {
    Text { text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    /// OpenAI's newer name for `system`; rendered as `system`.
    Developer,
    User,
    Assistant,
    /// A tool's result.
    Tool,
}

impl Role {
    /// The role name the chat template sees.
    pub fn template_name(self) -> &'static str {
        match self {
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// A string, or an array of text / image_url parts.
// `Serialize` is derived only so that `#[serde(untagged)]` shapes the schema.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// Hand-written rather than `untagged`, so that a bad part reports its own
/// error ("unknown variant `input_audio`") instead of "did not match any variant".
impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MessageContent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(s.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<MessageContent, A::Error> {
                let parts = Vec::<ContentPart>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(MessageContent::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
    /// vLLM's video part.
    VideoUrl {
        video_url: VideoUrl,
    },
    /// llama-server's video part: `{"data": base64}` or `{"url": ...}`.
    InputVideo {
        input_video: InputVideo,
    },
    /// OpenAI's audio part: `{"data": base64, "format": "wav"}`.
    InputAudio {
        input_audio: InputAudio,
    },
    /// vLLM's audio part.
    AudioUrl {
        audio_url: AudioUrl,
    },
}
