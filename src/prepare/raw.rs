//! Prompts without a chat template: `/v1/completions` and embedding
//! inputs (text, read with its special tokens as llama-server reads it, or
//! the client's token ids), and which of the two kinds of server may take
//! which kind of job.

use super::error::PrepareError;
use super::prompt_model::PromptModel;
use crate::engine::{ModelInfo, TokenizedPrompt};

/// An embeddings server (`--embeddings`) pools inputs and answers nothing
/// else; any other server generates and embeds nothing.
pub(super) fn served_as(info: &ModelInfo, embed: bool) -> Result<(), PrepareError> {
    match (info.embeddings.is_some(), embed) {
        (true, false) => Err(PrepareError::invalid(
            "this server was started with --embeddings and answers only /v1/embeddings; start it without --embeddings to generate",
        )
        .code("model_not_supported")),
        (false, true) => Err(PrepareError::invalid(
            "this model is served for generation; start a server with --embeddings (and a model with pooling, or --pooling) for /v1/embeddings",
        )
        .param("model")
        .code("model_not_supported")),
        _ => Ok(()),
    }
}

/// A `/v1/completions` prompt: text, or the client's token ids.
pub enum RawPrompt {
    Text(String),
    Tokens(Vec<i64>),
}

/// Text may not hold the media marker: it would stand for an image.
pub(super) fn check(prompt: &RawPrompt, pm: &PromptModel) -> Result<(), PrepareError> {
    match prompt {
        RawPrompt::Text(t) if t.contains(pm.media_marker.as_str()) => {
            Err(PrepareError::invalid(format!(
                "the prompt holds the media marker {:?}; a raw prompt takes text only",
                pm.media_marker
            ))
            .param("prompt"))
        }
        _ => Ok(()),
    }
}

/// The prompt's tokens, and its text when kept for `--log-prompts`.
pub(super) fn tokens(
    pm: &PromptModel,
    prompt: RawPrompt,
    keep: bool,
) -> Result<(TokenizedPrompt, Option<String>), PrepareError> {
    match prompt {
        RawPrompt::Text(t) => Ok((pm.tokenizer.tokenize(&t)?, keep.then_some(t))),
        RawPrompt::Tokens(ids) => Ok((pm.tokenizer.from_ids(&ids)?, None)),
    }
}
