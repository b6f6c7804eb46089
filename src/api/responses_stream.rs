//! A streamed response, as OpenAI streams one: `response.created` and
//! `response.in_progress`, then per output item `output_item.added`, its
//! deltas and `output_item.done`, and `response.completed` (or
//! `response.incomplete`) with the whole response. Thoughts become a
//! reasoning item, text a message item, each call a function_call item.

use super::answer::{AnswerReader, Out};
use super::error::ApiError;
use super::meta::ResponseMeta;
use super::response_object::{Shell, message_item, new_id, output_text, reasoning_item};
use crate::engine::channel::EventReceiver;
use crate::engine::{Event, FinishReason, PromptUsage};
use crate::openai::responses::{OutputItem, ResponseEvent};
use axum::response::Response;
use axum::response::sse::Event as SseEvent;

struct Open {
    index: u32,
    id: String,
    text: String,
}

struct State {
    shell: Shell,
    meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
    reader: Option<AnswerReader>,
    seq: u32,
    started: bool,
    done: bool,
    /// Finished items, in output order.
    output: Vec<OutputItem>,
    thought: Option<Open>,
    message: Option<Open>,
    calls: u32,
    /// Where the finished response is stored (unless `store: false`).
    keep: Option<super::stored::Keep>,
}

impl super::sse::Frames for State {
    fn frames(&mut self) -> impl std::future::Future<Output = Option<Vec<SseEvent>>> + Send {
        self.next()
    }
}

impl State {
    fn event(&mut self, out: &mut Vec<SseEvent>, make: impl FnOnce(u32) -> ResponseEvent) {
        let ev = make(self.seq);
        self.seq += 1;
        let name = serde_json::to_value(&ev)
            .ok()
            .and_then(|v| v["type"].as_str().map(String::from))
            .unwrap_or_default();
        out.push(
            SseEvent::default()
                .event(name)
                .data(serde_json::to_string(&ev).unwrap_or_default()),
        );
    }

    fn next_index(&self) -> u32 {
        self.output.len() as u32
            + u32::from(self.thought.is_some())
            + u32::from(self.message.is_some())
    }

    fn close_thought(&mut self, out: &mut Vec<SseEvent>) {
        if let Some(t) = self.thought.take() {
            let item = reasoning_item(t.id, t.text);
            self.output.push(item.clone());
            self.event(out, |s| ResponseEvent::OutputItemDone {
                sequence_number: s,
                output_index: t.index,
                item,
            });
        }
    }

    fn open_message(&mut self, out: &mut Vec<SseEvent>) {
        if self.message.is_some() {
            return;
        }
        let (index, id) = (self.next_index(), new_id("msg"));
        self.message = Some(Open {
            index,
            id: id.clone(),
            text: String::new(),
        });
        let item = OutputItem::Message {
            id: id.clone(),
            status: "in_progress",
            role: "assistant",
            content: Vec::new(),
        };
        self.event(out, |s| ResponseEvent::OutputItemAdded {
            sequence_number: s,
            output_index: index,
            item,
        });
        self.event(out, |s| ResponseEvent::ContentPartAdded {
            sequence_number: s,
            item_id: id,
            output_index: index,
            content_index: 0,
            part: output_text(String::new()),
        });
    }

    fn close_message(&mut self, out: &mut Vec<SseEvent>, status: &'static str) {
        let Some(m) = self.message.take() else {
            return;
        };
        let (id, index, text) = (m.id, m.index, m.text);
        let (id2, text2) = (id.clone(), text.clone());
        self.event(out, |s| ResponseEvent::OutputTextDone {
            sequence_number: s,
            item_id: id2,
            output_index: index,
            content_index: 0,
            text: text2,
            logprobs: Vec::new(),
        });
        let (id2, text2) = (id.clone(), text.clone());
        self.event(out, |s| ResponseEvent::ContentPartDone {
            sequence_number: s,
            item_id: id2,
            output_index: index,
            content_index: 0,
            part: output_text(text2),
        });
        let item = message_item(id, status, text);
        self.output.push(item.clone());
        self.event(out, |s| ResponseEvent::OutputItemDone {
            sequence_number: s,
            output_index: index,
            item,
        });
    }

    fn outs(&mut self, outs: Vec<Out>, out: &mut Vec<SseEvent>) {
        for o in outs {
            match o {
                Out::Reasoning(r) => {
                    if self.thought.is_none() {
                        let (index, id) = (self.next_index(), new_id("rs"));
                        self.thought = Some(Open {
                            index,
                            id: id.clone(),
                            text: String::new(),
                        });
                        let item = reasoning_item(id, String::new());
                        self.event(out, |s| ResponseEvent::OutputItemAdded {
                            sequence_number: s,
                            output_index: index,
                            item,
                        });
                    }
                    if let Some(t) = self.thought.as_mut() {
                        t.text.push_str(&r);
                    }
                }
                Out::Content(c) if c.is_empty() => {}
                Out::Content(c) => {
                    self.close_thought(out);
                    self.open_message(out);
                    let Some(m) = self.message.as_mut() else {
                        continue;
                    };
                    m.text.push_str(&c);
                    let (id, index) = (m.id.clone(), m.index);
                    self.event(out, |s| ResponseEvent::OutputTextDelta {
                        sequence_number: s,
                        item_id: id,
                        output_index: index,
                        content_index: 0,
                        delta: c,
                        logprobs: Vec::new(),
                    });
                }
                Out::Call(_, call) => {
                    self.close_thought(out);
                    self.close_message(out, "completed");
                    self.calls += 1;
                    let (index, id) = (self.next_index(), new_id("fc"));
                    let (name, args) = (call.function.name, call.function.arguments);
                    let item = |arguments: String, status| OutputItem::FunctionCall {
                        id: id.clone(),
                        call_id: call.id.clone(),
                        name: name.clone(),
                        arguments,
                        status,
                    };
                    let added = item(String::new(), "in_progress");
                    let done = item(args.clone(), "completed");
                    self.event(out, |s| ResponseEvent::OutputItemAdded {
                        sequence_number: s,
                        output_index: index,
                        item: added,
                    });
                    let (id2, args2) = (id.clone(), args.clone());
                    self.event(out, |s| ResponseEvent::FunctionCallArgumentsDelta {
                        sequence_number: s,
                        item_id: id2,
                        output_index: index,
                        delta: args2,
                    });
                    let (id2, name2) = (id.clone(), name.clone());
                    self.event(out, |s| ResponseEvent::FunctionCallArgumentsDone {
                        sequence_number: s,
                        item_id: id2,
                        output_index: index,
                        name: name2,
                        arguments: args,
                    });
                    self.output.push(done.clone());
                    self.event(out, |s| ResponseEvent::OutputItemDone {
                        sequence_number: s,
                        output_index: index,
                        item: done,
                    });
                }
            }
        }
    }

    async fn next(&mut self) -> Option<Vec<SseEvent>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            let r = self.shell.0.clone();
            self.event(&mut out, |s| ResponseEvent::Created {
                sequence_number: s,
                response: r.clone(),
            });
            self.event(&mut out, |s| ResponseEvent::InProgress {
                sequence_number: s,
                response: r,
            });
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
                ..
            }) => {
                if let Some(r) = self.reader.as_mut() {
                    let outs = r.finish(reason == FinishReason::Length);
                    self.outs(outs, &mut out);
                }
                let incomplete = reason == FinishReason::Length;
                let status = Shell::status(incomplete);
                self.close_thought(&mut out);
                if self.calls == 0 {
                    self.open_message(&mut out);
                }
                self.close_message(&mut out, status);
                let usage =
                    self.meta
                        .finished(reason, self.prompt, (completion_tokens, reasoning_tokens));
                let r = self
                    .shell
                    .done(incomplete, std::mem::take(&mut self.output), &usage);
                if let Some(keep) = self.keep.take() {
                    keep.put(&r);
                }
                self.event(&mut out, |s| {
                    if incomplete {
                        ResponseEvent::Incomplete {
                            sequence_number: s,
                            response: r,
                        }
                    } else {
                        ResponseEvent::Completed {
                            sequence_number: s,
                            response: r,
                        }
                    }
                });
                self.done = true;
            }
            Some(Event::Failed(e)) => {
                let e = ApiError::from(e).envelope().error;
                self.event(&mut out, |s| ResponseEvent::Error {
                    sequence_number: s,
                    code: e.code,
                    message: e.message,
                    param: e.param,
                });
                self.done = true;
            }
            Some(Event::Logprob(_) | Event::Started(_) | Event::Embedding(_)) => {}
            None => return None,
        }
        Some(out)
    }
}

pub fn stream(
    shell: Shell,
    meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
    keep: Option<super::stored::Keep>,
) -> Response {
    let state = State {
        reader: AnswerReader::new(meta.tools),
        shell,
        meta,
        prompt,
        rx,
        seq: 0,
        started: false,
        done: false,
        output: Vec::new(),
        thought: None,
        message: None,
        calls: 0,
        keep,
    };
    super::sse::serve(state)
}
