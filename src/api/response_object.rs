//! The Responses API's response object: its shell echoed from the request,
//! and the output items and usage it ends with. Shared by the whole answer
//! (`responses.rs`) and the event stream (`responses_stream.rs`).

use super::choices::Answer;
use crate::openai::FinishReason;
use crate::openai::responses::{
    IncompleteDetails, InputTokensDetails, OutputItem, OutputText, OutputTokensDetails,
    ReasoningText, ResponseObject, ResponseUsage, ResponsesRequest,
};
use serde_json::json;

/// What a response object echoes of its request, before any output.
#[derive(Clone)]
pub(super) struct Shell(pub ResponseObject);

impl Shell {
    pub(super) fn of(req: &ResponsesRequest, id: &str, created: u64, model: &str) -> Self {
        Shell(ResponseObject {
            id: id.to_string(),
            object: "response",
            created_at: created,
            status: "in_progress",
            model: model.to_string(),
            output: Vec::new(),
            usage: None,
            incomplete_details: None,
            error: None,
            instructions: req.instructions.clone(),
            max_output_tokens: req.max_output_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
            tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
            tools: req.tools.clone().unwrap_or_default(),
            text: req
                .text
                .clone()
                .unwrap_or_else(|| json!({"format": {"type": "text"}})),
            metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
            store: false,
            previous_response_id: req.previous_response_id.clone(),
        })
    }

    /// `completed`, or `incomplete` when the limit (or the context) ended it.
    pub fn status(incomplete: bool) -> &'static str {
        if incomplete {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The response as it ends: its status, output and usage.
    pub fn done(
        &self,
        incomplete: bool,
        output: Vec<OutputItem>,
        usage: &crate::openai::Usage,
    ) -> ResponseObject {
        let mut r = self.0.clone();
        r.status = Self::status(incomplete);
        r.incomplete_details = incomplete.then_some(IncompleteDetails {
            reason: "max_output_tokens",
        });
        r.usage = Some(usage_of(usage));
        r.output = output;
        r
    }

    /// The whole response, from the read answer.
    pub fn finished(&self, a: Answer) -> ResponseObject {
        let incomplete = a.finish == FinishReason::Length;
        let mut output = Vec::new();
        if !a.reasoning.is_empty() {
            output.push(reasoning_item(new_id("rs"), a.reasoning));
        }
        if !a.content.is_empty() || a.calls.is_empty() {
            output.push(message_item(
                new_id("msg"),
                Self::status(incomplete),
                a.content,
            ));
        }
        for c in a.calls {
            output.push(OutputItem::FunctionCall {
                id: new_id("fc"),
                call_id: c.id,
                name: c.function.name,
                arguments: c.function.arguments,
                status: "completed",
            });
        }
        self.done(incomplete, output, &a.usage)
    }
}

pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub(super) fn output_text(text: String) -> OutputText {
    OutputText {
        kind: "output_text",
        text,
        annotations: Vec::new(),
    }
}

pub(super) fn message_item(id: String, status: &'static str, text: String) -> OutputItem {
    OutputItem::Message {
        id,
        status,
        role: "assistant",
        content: vec![output_text(text)],
    }
}

pub(super) fn reasoning_item(id: String, text: String) -> OutputItem {
    OutputItem::Reasoning {
        id,
        summary: Vec::new(),
        content: vec![ReasoningText {
            kind: "reasoning_text",
            text,
        }],
    }
}

fn usage_of(u: &crate::openai::Usage) -> ResponseUsage {
    ResponseUsage {
        input_tokens: u.prompt_tokens,
        input_tokens_details: InputTokensDetails {
            cached_tokens: u.prompt_tokens_details.cached_tokens,
            cache_write_tokens: 0,
            image_tokens: u.prompt_tokens_details.image_tokens,
            video_tokens: u.prompt_tokens_details.video_tokens,
            audio_tokens: u.prompt_tokens_details.audio_tokens,
        },
        output_tokens: u.completion_tokens,
        output_tokens_details: OutputTokensDetails {
            reasoning_tokens: u.completion_tokens_details.reasoning_tokens,
        },
        total_tokens: u.total_tokens,
    }
}
