//! A streamed Anthropic message: `message_start`, `ping`, then per content
//! block `content_block_start`, its deltas (`thinking_delta`, `text_delta`,
//! `input_json_delta`) and `content_block_stop`, then `message_delta` with
//! the stop reason and usage, and `message_stop`. A failure mid-stream is
//! an `error` event in Anthropic's envelope.

use super::answer::{AnswerReader, Out};
use super::choices::finish_choice;
use super::error::ApiError;
use super::messages_out::{stop_reason, tool_input, usage_of};
use super::meta::ResponseMeta;
use crate::engine::channel::EventReceiver;
use crate::engine::{Event, PromptUsage};
use axum::response::Response;
use axum::response::sse::Event as SseEvent;
use serde_json::{Value, json};

#[derive(PartialEq)]
enum Block {
    Thinking,
    Text,
}

struct State {
    meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
    reader: Option<AnswerReader>,
    started: bool,
    done: bool,
    /// The block open now, and how many were opened.
    open: Option<Block>,
    blocks: u32,
}

impl super::sse::Frames for State {
    fn frames(&mut self) -> impl std::future::Future<Output = Option<Vec<SseEvent>>> + Send {
        self.next()
    }
}

fn event(out: &mut Vec<SseEvent>, data: Value) {
    let name = data["type"].as_str().unwrap_or("error").to_string();
    out.push(SseEvent::default().event(name).data(data.to_string()));
}

impl State {
    fn close(&mut self, out: &mut Vec<SseEvent>) {
        if self.open.take().is_some() {
            event(
                out,
                json!({"type": "content_block_stop", "index": self.blocks - 1}),
            );
        }
    }

    /// Opens a block of `kind` unless it is the one open.
    fn open(&mut self, out: &mut Vec<SseEvent>, kind: Block) {
        if self.open.as_ref() == Some(&kind) {
            return;
        }
        self.close(out);
        let block = match kind {
            Block::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Block::Text => json!({"type": "text", "text": ""}),
        };
        event(
            out,
            json!({"type": "content_block_start", "index": self.blocks, "content_block": block}),
        );
        self.blocks += 1;
        self.open = Some(kind);
    }

    fn outs(&mut self, outs: Vec<Out>, out: &mut Vec<SseEvent>) {
        for o in outs {
            let delta = match o {
                Out::Reasoning(t) if !t.is_empty() => {
                    self.open(out, Block::Thinking);
                    json!({"type": "thinking_delta", "thinking": t})
                }
                Out::Content(t) if !t.is_empty() => {
                    self.open(out, Block::Text);
                    json!({"type": "text_delta", "text": t})
                }
                Out::Reasoning(_) | Out::Content(_) => continue,
                Out::Call(_, c) => {
                    self.close(out);
                    let index = self.blocks;
                    self.blocks += 1;
                    event(
                        out,
                        json!({"type": "content_block_start", "index": index, "content_block":
                            {"type": "tool_use", "id": c.id, "name": c.function.name, "input": {}}}),
                    );
                    let args = tool_input(&c.function.arguments).to_string();
                    event(
                        out,
                        json!({"type": "content_block_delta", "index": index, "delta":
                            {"type": "input_json_delta", "partial_json": args}}),
                    );
                    event(out, json!({"type": "content_block_stop", "index": index}));
                    continue;
                }
            };
            event(
                out,
                json!({"type": "content_block_delta", "index": self.blocks - 1, "delta": delta}),
            );
        }
    }

    fn start(&mut self, out: &mut Vec<SseEvent>) {
        let mut usage = usage_of(&super::meta::usage(self.prompt, 0, 0, &self.meta.media));
        usage.output_tokens = 0;
        event(
            out,
            json!({"type": "message_start", "message": {
                "id": self.meta.id, "type": "message", "role": "assistant", "content": [],
                "model": self.meta.model, "stop_reason": null, "stop_sequence": null,
                "usage": usage}}),
        );
        event(out, json!({"type": "ping"}));
    }

    /// The last blocks closed, then `message_delta` and `message_stop`.
    fn finish(
        &mut self,
        out: &mut Vec<SseEvent>,
        reason: crate::engine::FinishReason,
        (completion_tokens, reasoning_tokens): (u32, u32),
        stop_sequence: Option<String>,
    ) {
        let (outs, finish) = finish_choice(self.reader.as_mut(), reason);
        self.outs(outs, out);
        self.close(out);
        let usage = self
            .meta
            .finished(reason, self.prompt, (completion_tokens, reasoning_tokens));
        let why = stop_reason(finish, stop_sequence.as_deref());
        let seq = stop_sequence.filter(|_| why == "stop_sequence");
        event(
            out,
            json!({"type": "message_delta",
                "delta": {"stop_reason": why, "stop_sequence": seq},
                "usage": usage_of(&usage)}),
        );
        event(out, json!({"type": "message_stop"}));
        self.done = true;
    }

    async fn next(&mut self) -> Option<Vec<SseEvent>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.start(&mut out);
            return Some(out);
        }
        match self.rx.recv().await {
            Some(Event::Text(t)) => {
                self.meta.log.token();
                let outs = super::answer::read(self.reader.as_mut(), t);
                self.outs(outs, &mut out);
            }
            Some(Event::Reasoning(t)) => {
                self.meta.log.token();
                self.outs(vec![Out::Reasoning(t)], &mut out);
            }
            Some(Event::Finished {
                reason,
                completion_tokens,
                reasoning_tokens,
                stop_sequence,
            }) => self.finish(
                &mut out,
                reason,
                (completion_tokens, reasoning_tokens),
                stop_sequence,
            ),
            Some(Event::Failed(e)) => {
                let e = ApiError::from(e);
                let env = crate::anthropic::ErrorEnvelope::of(e.status.as_u16(), e.message);
                event(&mut out, serde_json::to_value(env).unwrap_or_default());
                self.done = true;
            }
            Some(Event::Logprob(_) | Event::Started(_) | Event::Embedding(_)) => {}
            None => return None,
        }
        Some(out)
    }
}

pub fn stream(meta: ResponseMeta, prompt: PromptUsage, rx: EventReceiver) -> Response {
    let state = State {
        reader: AnswerReader::new(meta.tools),
        meta,
        prompt,
        rx,
        started: false,
        done: false,
        open: None,
        blocks: 0,
    };
    super::sse::serve(state)
}
