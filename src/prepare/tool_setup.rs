//! A request's tools, made ready for the model: the format its template
//! was trained on (or the generic one, taught in the system message, when
//! the template does not render tools or its format is not one we read), the definitions in the template's
//! context with client text fenced, and the grammar that keeps calls valid.

use super::error::PrepareError;
use super::messages::fence_tools;
use super::params::ToolPlan;
use super::prompt_model::PromptModel;
use super::template::{TemplateExtras, TemplateMessage};
use super::tools::{self, ToolFormat};
use crate::engine::Grammar;

/// For a template that does not render tools: past calls become the
/// generic format's JSON in the assistant's content, as the model was
/// taught to write them.
pub fn calls_as_text(pm: &PromptModel, messages: &mut [TemplateMessage]) {
    if pm.template.renders_tools {
        return;
    }
    for m in messages {
        let Some(calls) = m.tool_calls.take() else {
            continue;
        };
        let list: Vec<serde_json::Value> = calls
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| serde_json::json!({"name": c["function"]["name"], "arguments": c["function"]["arguments"]}))
            .collect();
        let text = serde_json::json!({ "tool_calls": list }).to_string();
        let content = m.content.get_or_insert_with(String::new);
        if !content.is_empty() {
            content.push('\n');
        }
        content.push_str(&text);
    }
}

/// What the rest of the request needs to know about its tools.
pub struct ToolSetup {
    pub format: ToolFormat,
    pub grammar: Grammar,
    /// The format's markers that are control tokens in this vocabulary.
    pub shown_tokens: Vec<i32>,
}

pub fn apply(
    plan: &ToolPlan,
    answer: Option<&serde_json::Value>,
    pm: &PromptModel,
    messages: &mut Vec<TemplateMessage>,
    extras: &mut TemplateExtras,
) -> Result<ToolSetup, PrepareError> {
    let template = &pm.template;
    let format = if template.renders_tools {
        template.tool_format
    } else {
        ToolFormat::Generic
    };
    if template.renders_tools {
        extras.tools = Some(fence_tools(&pm.fence, &plan.definitions));
    }
    // A template with its own format we cannot read (or none) is taught
    // the generic one, which the grammar and parser then hold it to.
    if format == ToolFormat::Generic {
        let teach = pm.fence.wrap(&tools::generic_instructions(&plan.specs));
        match messages.first_mut() {
            Some(m) if m.role == "system" => {
                let c = m.content.get_or_insert_with(String::new);
                c.push_str("\n\n");
                c.push_str(&teach);
            }
            _ => messages.insert(0, TemplateMessage::new("system", teach)),
        }
    }
    let g =
        tools::grammar(format, &plan.specs, &plan.choice, plan.parallel, answer).map_err(|e| {
            let param = if e.0.contains("response_format") {
                "response_format.json_schema.schema"
            } else {
                "tools"
            };
            PrepareError::invalid(e.0).param(param)
        })?;
    let markers: &[&str] = match format {
        ToolFormat::Hermes => &["<tool_call>", "</tool_call>"],
        ToolFormat::Mistral => &["[TOOL_CALLS]", "[ARGS]"],
        ToolFormat::Llama3 => &["<|python_tag|>"],
        ToolFormat::Generic => &[],
    };
    let shown_tokens: Vec<i32> = markers
        .iter()
        .filter_map(|m| pm.tokenizer.control_token(m))
        .map(|t| t.0)
        .collect();
    let trigger_tokens = if !g.triggers.is_empty() {
        g.triggers
            .iter()
            .filter_map(|w| pm.tokenizer.control_token(w))
            .map(|t| t.0)
            .collect()
    } else {
        Vec::new()
    };
    Ok(ToolSetup {
        format,
        grammar: Grammar {
            text: g.grammar,
            root: g.root,
            trigger_words: g.triggers,
            trigger_tokens,
        },
        shown_tokens,
    })
}
