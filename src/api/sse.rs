//! Engine events -> OpenAI responses: a `chat.completion`, or a
//! `text/event-stream` of `chat.completion.chunk` events ending in `[DONE]`.

use super::answer::{AnswerReader, Out};
use super::error::ApiError;
use super::meta::{ResponseMeta, choice_logprobs, finish_name, usage};
use crate::engine::channel::EventReceiver;
use crate::engine::logprobs::TokenLogprob;
use crate::engine::{Event, PromptUsage};
use crate::openai::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, Choice, ChunkChoice, Delta,
    FinishReason as WireFinish, FunctionDelta, ToolCallDelta, ToolKind, Usage,
};
use axum::Json;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;

/// The answer as a `chat.completion`, one entry in `choices` per choice.
pub async fn collect(
    mut meta: ResponseMeta,
    prompt: PromptUsage,
    receivers: Vec<EventReceiver>,
) -> Result<Response, ApiError> {
    let answers = super::choices::answers(&mut meta, prompt, receivers).await?;
    let usage = super::choices::total(prompt, &answers, &meta);
    let choices = (0..)
        .zip(answers)
        .map(|(index, a)| {
            let only_calls = !a.calls.is_empty() && a.content.trim().is_empty();
            Choice {
                index,
                message: AssistantMessage {
                    role: "assistant",
                    content: (!only_calls).then_some(a.content),
                    refusal: None,
                    reasoning_content: (!a.reasoning.is_empty()).then_some(a.reasoning),
                    tool_calls: (!a.calls.is_empty()).then_some(a.calls),
                },
                finish_reason: a.finish,
                logprobs: a.logprobs,
            }
        })
        .collect();
    let body = ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        choices,
        usage,
        system_fingerprint: None,
    };
    Ok(Json(body).into_response())
}

struct StreamState {
    meta: ResponseMeta,
    prompt: PromptUsage,
    events: super::choices::Merged,
    include_usage: bool,
    choices: Vec<ChoiceStream>,
    sent_role: bool,
    /// Choices not finished yet.
    left: usize,
    /// Summed over the finished choices.
    completion_tokens: u32,
    reasoning_tokens: u32,
    done: bool,
}

struct ChoiceStream {
    /// Log-probabilities of tokens whose text has not been sent yet.
    logprobs: Vec<TokenLogprob>,
    reader: Option<AnswerReader>,
}

fn text_delta(t: String) -> Delta {
    Delta {
        content: Some(t),
        ..Delta::default()
    }
}

impl StreamState {
    /// Thought and content chunks, and for each call one chunk naming it
    /// and one with its arguments.
    fn outs(&mut self, i: usize, outs: Vec<Out>, out: &mut Vec<SseEvent>) {
        for o in outs {
            let deltas = match o {
                Out::Reasoning(r) if r.is_empty() => continue,
                Out::Content(c) if c.is_empty() => continue,
                Out::Reasoning(r) => vec![Delta {
                    reasoning_content: Some(r),
                    ..Delta::default()
                }],
                Out::Content(c) => vec![text_delta(c)],
                Out::Call(index, call) => {
                    let head = ToolCallDelta {
                        index,
                        id: Some(call.id),
                        kind: Some(ToolKind::Function),
                        function: FunctionDelta {
                            name: Some(call.function.name),
                            arguments: Some(String::new()),
                        },
                    };
                    let args = ToolCallDelta {
                        index,
                        function: FunctionDelta {
                            name: None,
                            arguments: Some(call.function.arguments),
                        },
                        ..ToolCallDelta::default()
                    };
                    [head, args]
                        .into_iter()
                        .map(|d| Delta {
                            tool_calls: Some(vec![d]),
                            ..Delta::default()
                        })
                        .collect()
                }
            };
            for d in deltas {
                let ev = self.chunk(i, d, None);
                out.push(ev);
            }
        }
    }

    fn chunk(&mut self, i: usize, delta: Delta, finish: Option<WireFinish>) -> SseEvent {
        let pending = &mut self.choices[i].logprobs;
        let asked = self.meta.logprobs && !pending.is_empty();
        let logprobs = choice_logprobs(asked, pending);
        self.frame(
            vec![ChunkChoice {
                index: i as u32,
                delta,
                finish_reason: finish,
                logprobs,
            }],
            self.include_usage.then_some(None),
        )
    }

    fn frame(&self, choices: Vec<ChunkChoice>, usage: Option<Option<Usage>>) -> SseEvent {
        let chunk = ChatCompletionChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices,
            usage,
            system_fingerprint: None,
        };
        SseEvent::default().data(serde_json::to_string(&chunk).unwrap_or_default())
    }

    /// The next events to write; `None` ends the stream.
    async fn next(&mut self) -> Option<Vec<SseEvent>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.sent_role {
            self.sent_role = true;
            for i in 0..self.choices.len() {
                let role = Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                    ..Delta::default()
                };
                out.push(self.chunk(i, role, None));
            }
            return Some(out);
        }
        let (i, event) = self.events.next().await?;
        match event {
            Event::Text(t) => {
                self.meta.log.token();
                match self.choices[i].reader.as_mut() {
                    Some(r) => {
                        let outs = r.push(&t);
                        self.outs(i, outs, &mut out);
                    }
                    None => {
                        let ev = self.chunk(i, text_delta(t), None);
                        out.push(ev);
                    }
                }
            }
            Event::Reasoning(t) => {
                self.meta.log.token();
                self.outs(i, vec![Out::Reasoning(t)], &mut out);
            }
            Event::Finished {
                reason,
                completion_tokens,
                reasoning_tokens,
                ..
            } => {
                let (outs, finish) =
                    super::choices::finish_choice(self.choices[i].reader.as_mut(), reason);
                self.outs(i, outs, &mut out);
                out.push(self.chunk(i, Delta::default(), Some(finish)));
                self.completion_tokens += completion_tokens;
                self.reasoning_tokens += reasoning_tokens;
                self.left -= 1;
                if self.left == 0 {
                    self.meta
                        .log
                        .finish(finish_name(reason), self.completion_tokens);
                    if self.include_usage {
                        let u = usage(
                            self.prompt,
                            self.completion_tokens,
                            self.reasoning_tokens,
                            &self.meta.media,
                        );
                        out.push(self.frame(vec![], Some(Some(u))));
                    }
                    out.push(SseEvent::default().data("[DONE]"));
                    self.done = true;
                }
            }
            Event::Failed(e) => {
                let env = ApiError::from(e).envelope();
                out.push(SseEvent::default().data(serde_json::to_string(&env).unwrap_or_default()));
                out.push(SseEvent::default().data("[DONE]"));
                self.done = true;
            }
            Event::Logprob(lp) => self.choices[i].logprobs.push(lp),
            Event::Started(_) | Event::Embedding(_) => {}
        }
        Some(out)
    }
}

/// A source of server-sent events, a batch at a time; `None` ends it.
pub(super) trait Frames: Send + 'static {
    fn frames(&mut self) -> impl std::future::Future<Output = Option<Vec<SseEvent>>> + Send;
}

/// A live SSE response. When the client disconnects, axum drops the
/// stream, and with it the engine's receiver: the engine stops at its next
/// token.
pub(super) fn serve(source: impl Frames) -> Response {
    let events = futures::stream::unfold(source, |mut s| async move {
        let batch = s.frames().await?;
        Some((futures::stream::iter(batch), s))
    })
    .flatten()
    .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

impl Frames for StreamState {
    fn frames(&mut self) -> impl std::future::Future<Output = Option<Vec<SseEvent>>> + Send {
        self.next()
    }
}

/// A streamed `chat.completion.chunk` answer; with `n` > 1 the choices'
/// chunks interleave, each with its `index`.
pub fn stream(
    meta: ResponseMeta,
    prompt: PromptUsage,
    receivers: Vec<EventReceiver>,
    include_usage: bool,
) -> Response {
    let choices = receivers
        .iter()
        .map(|_| ChoiceStream {
            logprobs: Vec::new(),
            reader: AnswerReader::new(meta.tools),
        })
        .collect::<Vec<_>>();
    let state = StreamState {
        left: choices.len(),
        choices,
        events: super::choices::merge(receivers),
        meta,
        prompt,
        include_usage,
        sent_role: false,
        completion_tokens: 0,
        reasoning_tokens: 0,
        done: false,
    };
    serve(state)
}
