//! The request's prompt: the chat template rendered, each image expanded to
//! one marker per piece, and the text tokenized. All of it is CPU work that
//! depends only on the request, so it runs on the blocking pool (one job per
//! core), never on the async runtime or the engine thread.

use super::error::PrepareError;
use super::prompt_model::PromptModel;
use super::template::{TemplateExtras, TemplateMessage};
use crate::engine::TokenizedPrompt;

pub(super) struct Prompt {
    pub tokens: TokenizedPrompt,
    /// What the model reads, fences removed, for `--log-prompts`.
    pub text: Option<String>,
    /// The prompt ends inside an open thinking tag: the answer starts as thoughts.
    pub think_opened: bool,
}

/// `expansions[i]` replaces the `i`-th media marker: one marker per piece
/// (tiles, thumbnail, video frames) with any text a video puts between them.
pub(super) fn build(
    pm: &PromptModel,
    messages: &[TemplateMessage],
    extras: &TemplateExtras,
    expansions: &[String],
    keep_text: bool,
) -> Result<Prompt, PrepareError> {
    let rendered = pm.template.render_with(messages, extras)?;
    expand(pm, &rendered, expansions, keep_text)
}

/// Messages' contents joined as they are, without the template: an
/// embedding input given as text and image parts.
pub(super) fn build_raw(
    pm: &PromptModel,
    messages: &[TemplateMessage],
    expansions: &[String],
    keep_text: bool,
) -> Result<Prompt, PrepareError> {
    let joined: String = messages
        .iter()
        .filter_map(|m| m.content.as_deref())
        .collect();
    expand(pm, &joined, expansions, keep_text)
}

/// Each media marker replaced by its expansion, then tokenized.
fn expand(
    pm: &PromptModel,
    rendered: &str,
    expansions: &[String],
    keep_text: bool,
) -> Result<Prompt, PrepareError> {
    let parts: Vec<&str> = rendered.split(pm.media_marker.as_str()).collect();
    if parts.len() != expansions.len() + 1 {
        return Err(PrepareError::invalid(
            "the model's chat template dropped an image or video; put them in user messages",
        )
        .param("messages"));
    }
    let mut prompt = String::with_capacity(rendered.len());
    for (i, part) in parts.iter().enumerate() {
        prompt.push_str(part);
        if let Some(e) = expansions.get(i) {
            prompt.push_str(e);
        }
    }
    let tokens = pm.tokenizer.tokenize(&prompt)?;
    let think_opened = pm.template.think.is_some_and(|t| {
        crate::engine::reasoning::Splitter::opened_by(t, &pm.fence.strip(&prompt))
    });
    Ok(Prompt {
        think_opened,
        tokens,
        text: keep_text.then(|| pm.fence.strip(&prompt)),
    })
}
