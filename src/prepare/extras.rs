//! What a request adds to the template besides its messages
//! (`chat_template_kwargs`, the thinking switch), and the grammar of its
//! `response_format`.

use super::error::PrepareError;
use super::prompt_model::PromptModel;
use super::template::TemplateExtras;
use crate::openai::{ChatCompletionRequest, ReasoningEffort};

pub(super) fn response_grammar(
    schema: &serde_json::Value,
) -> Result<crate::engine::Grammar, PrepareError> {
    super::grammar::from_schema(schema)
        .map(crate::engine::Grammar::strict)
        .map_err(|e| PrepareError::invalid(e.0).param("response_format.json_schema.schema"))
}

/// `chat_template_kwargs` (fenced), and `reasoning_effort` as the template's
/// thinking switch (an explicit kwarg is the more specific one).
pub(super) fn extras(
    req: &ChatCompletionRequest,
    pm: &PromptModel,
) -> Result<TemplateExtras, PrepareError> {
    let template = &pm.template;
    let kwargs = req.chat_template_kwargs.clone().unwrap_or_default();
    // Each string is fenced (about 100 bytes more) and renders to a token
    // at least: more than the context holds is refused before fencing.
    let strings = kwargs.len()
        + kwargs
            .values()
            .map(super::messages::count_strings)
            .sum::<usize>();
    if strings > pm.n_ctx_seq as usize {
        return Err(PrepareError::invalid(format!(
            "chat_template_kwargs holds {strings} strings, more than the {} tokens of the context",
            pm.n_ctx_seq
        ))
        .param("chat_template_kwargs")
        .code("context_length_exceeded"));
    }
    let mut extras = TemplateExtras {
        kwargs: super::messages::fence_kwargs(&pm.fence, kwargs),
        ..TemplateExtras::default()
    };
    if let Some(effort) = req.reasoning_effort {
        if !template.thinking_switch {
            return Err(PrepareError::invalid(
                "reasoning_effort is not supported by this model: its chat template has no thinking switch (enable_thinking)",
            )
            .param("reasoning_effort")
            .code("unsupported_parameter"));
        }
        let on = !matches!(effort, ReasoningEffort::None | ReasoningEffort::Minimal);
        extras
            .kwargs
            .entry("enable_thinking")
            .or_insert(serde_json::Value::Bool(on));
    }
    Ok(extras)
}
