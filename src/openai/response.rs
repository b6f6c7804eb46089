use super::media_usage::{AudioUsage, VideoUsage};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: FinishReason,
    /// With `logprobs: true`: one entry per generated token.
    pub logprobs: Option<ChoiceLogprobs>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ChoiceLogprobs {
    pub content: Vec<TokenLogprob>,
    /// Always null: refusals are not generated separately.
    pub refusal: Option<Vec<TokenLogprob>>,
}

/// A token's log-probability, from the model's raw distribution (before
/// sampling filters, biases and penalties).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    /// The token's UTF-8 bytes (a token may hold part of a character).
    pub bytes: Vec<u8>,
    /// The `top_logprobs` most likely tokens at this position, most likely first.
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// Null when the answer is only tool calls.
    pub content: Option<String>,
    pub refusal: Option<String>,
    /// The model's thinking, for templates that think (`<think>…</think>`);
    /// absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<super::request::ToolCall>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn, or a stop sequence matched.
    Stop,
    /// `max_tokens` or the context size was reached.
    Length,
    /// The answer calls tools (`message.tool_calls`).
    ToolCalls,
}

/// Token counts, exactly what entered the context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    pub prompt_tokens_details: PromptTokensDetails,
    pub completion_tokens_details: CompletionTokensDetails,
    /// Extension: how each image was tiled and priced, in request order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageUsage>,
    /// Extension: how each video was sampled and priced, in request order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub videos: Vec<VideoUsage>,
    /// Extension: how each audio clip was read and priced, in request order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audio: Vec<AudioUsage>,
}

/// A request's media, each priced: what usage breaks `prompt_tokens` into.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaUsage {
    pub images: Vec<ImageUsage>,
    pub videos: Vec<VideoUsage>,
    pub audio: Vec<AudioUsage>,
}

impl MediaUsage {
    pub fn video_tokens(&self) -> u32 {
        self.videos.iter().map(|v| v.tokens).sum()
    }

    pub fn audio_tokens(&self) -> u32 {
        self.audio.iter().map(|a| a.tokens).sum()
    }
}

/// Extension: one image's tile plan and price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImageUsage {
    /// `low` (thumbnail only) or `high` (tiles, plus a thumbnail when 2+ tiles).
    pub detail: String,
    /// Decoded size, after EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// The tile grid: columns x rows (0 x 0 for `low`).
    pub cols: u32,
    pub rows: u32,
    pub tiles: u32,
    /// Side of a tile in pixels, and what each tile costs.
    pub tile_size: u32,
    pub tile_tokens: u32,
    pub thumbnail: Option<ThumbnailUsage>,
    /// Tokens (KV cells) the image takes: tiles x tile_tokens + thumbnail,
    /// or the whole image's exact price when it is sent whole (then `cols`
    /// x `rows` are the tile-sized regions it covers).
    pub tokens: u32,
    /// The policy that shaped it: `native`, `fit`, `internvl` or `openai`.
    pub policy: String,
    /// The size the image was drawn at for the model, before padding or
    /// cutting: a box the model gives in these pixels maps back to the
    /// original by `width / resized.width` and `height / resized.height`.
    pub resized: ImageSize,
    /// Whether the model saw fewer pixels than the image has.
    pub downscaled: bool,
    /// What the resized image is drawn on (the tile grid, the native square
    /// or just itself) and where its top-left corner sits on it.
    pub canvas: ImageSize,
    pub offset: ImageOffset,
    /// Each tile's box `[x0, y0, x1, y1]` in the original image's pixels,
    /// row-major; absent when the image is sent whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tile_boxes: Vec<[u32; 4]>,
    /// True when the projector sliced the image itself (Idefics3 /
    /// SmolVLM): the grid is its slices and the thumbnail its overview,
    /// wrapper tokens included.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sliced_by_projector: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImageTokenRange {
    pub min: u32,
    pub max: u32,
    pub unit_px: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImageOffset {
    pub x: u32,
    pub y: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ThumbnailUsage {
    pub width: u32,
    pub height: u32,
    pub tokens: u32,
}

/// `POST /v1/chat/completions/input_tokens`: the price of a request, without generating.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InputTokens {
    /// Always `chat.completion.input_tokens`.
    pub object: &'static str,
    /// Equals `usage.prompt_tokens` of the same request.
    pub input_tokens: u32,
    /// Of which images.
    pub image_tokens: u32,
    /// Of which video frames.
    pub video_tokens: u32,
    /// Of which audio.
    pub audio_tokens: u32,
    pub images: Vec<ImageUsage>,
    pub videos: Vec<VideoUsage>,
    pub audio: Vec<AudioUsage>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CompletionTokensDetails {
    /// Completion tokens that were thoughts (templates that think), up to
    /// and including the closing tag.
    pub reasoning_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PromptTokensDetails {
    /// Prompt tokens reused from the KV cache.
    pub cached_tokens: u32,
    /// Prompt tokens taken by images.
    pub image_tokens: u32,
    /// Prompt tokens taken by video frames.
    pub video_tokens: u32,
    /// Prompt tokens taken by audio.
    pub audio_tokens: u32,
}

/// One `chat.completion.chunk` server-sent event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// Present (possibly null) on every chunk when `include_usage` is set,
    /// as OpenAI does; filled only on the final usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<FinishReason>,
    pub logprobs: Option<ChoiceLogprobs>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A streamed call: its first delta has `id`, `type` and the function's
/// `name`; later ones carry `arguments` fragments for the same `index`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<super::request::ToolKind>,
    pub function: FunctionDelta,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct FunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<Model>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Model {
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
    /// Extension: what the loaded model can do and what images cost.
    /// Absent while the model is loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<ModelCapabilities>,
    /// Extension, as llama-server reports it (llama-swap and other clients
    /// read it): what the model takes and gives. Absent while loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    /// Extension: the most tokens one request may hold (prompt and answer),
    /// one sequence's share of the context. Absent while loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Architecture {
    /// `text`, and `image` when a vision projector is loaded.
    pub input_modalities: Vec<String>,
    /// `text`.
    pub output_modalities: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelCapabilities {
    pub vision: bool,
    /// Context size in tokens.
    pub context_size: u32,
    /// Image pricing; absent for text-only models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<ImagePricing>,
    /// `plain` or `mrope`. Under M-RoPE an image takes fewer RoPE positions
    /// than tokens; every count in this API is in tokens (KV-cache cells).
    pub positions: String,
    pub chat_template: ChatTemplateInfo,
    pub backend: BackendInfo,
    /// What a request gets for each sampling field it leaves out.
    pub sampling_defaults: SamplingDefaultsInfo,
    /// Present when started with `--embeddings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<EmbeddingsInfo>,
    pub kv_cache: KvCacheWire,
}

/// The KV cache as configured (`--cache-type-k`, `--cache-type-v`,
/// `--flash-attn`) and its size.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KvCacheWire {
    pub type_k: String,
    pub type_v: String,
    /// `auto`, `on` or `off`, as set.
    pub flash_attn: String,
    /// Bytes of every sequence's cells, from the model's shape.
    pub bytes: u64,
}

/// An embeddings server's vectors.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmbeddingsInfo {
    /// `mean`, `cls` or `last`.
    pub pooling: String,
    /// Values per vector.
    pub dimensions: u32,
    /// The most tokens one input may have.
    pub max_input_tokens: u32,
}

/// The model's recommended sampling (`general.sampling.*` of its GGUF), or
/// llama-server's defaults where it has none.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SamplingDefaultsInfo {
    pub temperature: f32,
    pub top_p: f32,
    /// 0 = off.
    pub top_k: i32,
    /// 0 = off.
    pub min_p: f32,
    /// 1 = off.
    pub repetition_penalty: f32,
    /// Tokens the presence, frequency and repetition penalties look back on.
    pub penalty_last_n: i32,
    /// `gguf` or `llama-server`.
    pub source: String,
}

/// Where the model runs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackendInfo {
    /// `CPU`, or the GPU backend and device, e.g. `CUDA (NVIDIA H200)`.
    pub name: String,
    /// Layers on the GPU, out of `layers` (repeating layers plus the output layer).
    pub offloaded_layers: u32,
    pub layers: u32,
    /// What the CPU kernels in use were compiled for, e.g. `AVX2`, `FMA`,
    /// `AVX512`: with a `dynamic-backends` build, the variant ggml chose
    /// for this CPU.
    pub cpu_features: Vec<String>,
}

/// Which chat template renders prompts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatTemplateInfo {
    /// `gguf` (the model's own), `file` (`--chat-template-file`) or
    /// `chatml_fallback` (the model has none, or its own does not compile).
    pub source: String,
    /// The tool-call format used with this template: `hermes`, `llama3`,
    /// `mistral` or `generic`.
    pub tool_format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why the model's own template is not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImagePricing {
    /// `clip.projector_type` of the loaded mmproj, e.g. `qwen2vl_merger`.
    pub projector: String,
    /// Whether the projector slices images itself (each tile is then one
    /// piece that the projector may cut further; the price is still measured).
    pub slices_itself: bool,
    /// Whether a fixture of this projector family runs in Tessera's tests.
    pub tested: bool,
    /// Side of a square tile in pixels, and the tokens (KV cells) one tile takes.
    pub tile_size: u32,
    pub tile_tokens: u32,
    pub min_tiles: u32,
    pub max_tiles: u32,
    /// `dynamic`: the thumbnail is sized to cost at most `thumbnail_budget`.
    /// `fixed`: the projector charges a fixed count per image, so the
    /// thumbnail costs `tile_tokens` whatever the budget.
    /// `projector_slices`: the projector slices each image itself
    /// (Idefics3 / SmolVLM); images are sent whole and priced by its grid.
    pub thumbnail_rule: String,
    pub thumbnail_budget: u32,
    /// How `high` detail tiles images: `fit` (scale down only, fewest
    /// covering tiles), `internvl` (closest aspect-ratio grid, stretched) or
    /// `openai` (OpenAI's `high` geometry).
    #[schema(example = "fit")]
    pub tiling: String,
    /// Dynamic-resolution projectors: the range of an image's own tokens
    /// the projector takes without resizing (`min_tokens` / `max_tokens`
    /// a request may ask for are clamped into it), and the pixels one
    /// token covers per side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tokens: Option<ImageTokenRange>,
    /// How the family's processor shapes an image (what `native` means).
    pub geometry: String,
    /// What the coordinates in the family's grounding output refer to.
    pub coordinates: String,
}
