//! OpenAI's embeddings (`POST /v1/embeddings`), for servers started with
//! `--embeddings`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    #[serde(default)]
    pub model: Option<String>,
    /// A string, a list of strings, a list of token ids, or a list of such
    /// lists: one vector each.
    #[schema(value_type = Object)]
    pub input: Value,
    /// `float` (default) or `base64` (little-endian f32s).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Keep the first `dimensions` values, then rescale to unit length.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub dimensions: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmbeddingList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: &'static str,
    pub index: u32,
    /// Floats, or a base64 string of little-endian f32s.
    #[schema(value_type = Object)]
    pub embedding: Value,
}

#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u32,
    pub total_tokens: u32,
}
