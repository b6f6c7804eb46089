//! Serving embeddings (`/v1/embeddings`), llama-server's flags.

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The model's own (`{arch}.pooling_type` in its GGUF).
    Model,
    Mean,
    Cls,
    Last,
}

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct EmbeddingArgs {
    /// Serve embeddings (`/v1/embeddings`) instead of answers: the model
    /// pools one vector per input; chat, Responses, Messages and
    /// completions are refused.
    #[arg(help_heading = "Model", long, env = "TESSERA_EMBEDDINGS")]
    pub embeddings: bool,

    /// How an embedding pools its tokens (with --embeddings).
    #[arg(help_heading = "Model", long, env = "TESSERA_POOLING", value_enum, default_value_t = Pooling::Model)]
    pub pooling: Pooling,
}

impl EmbeddingArgs {
    /// The engine's setting: `None` unless serving embeddings.
    pub fn engine(&self) -> Option<llama_cpp_2::context::params::LlamaPoolingType> {
        use llama_cpp_2::context::params::LlamaPoolingType as P;
        self.embeddings.then_some(match self.pooling {
            Pooling::Model => P::Unspecified,
            Pooling::Mean => P::Mean,
            Pooling::Cls => P::Cls,
            Pooling::Last => P::Last,
        })
    }
}
