//! Engine events -> OpenAI responses: a `chat.completion`, or a
//! `text/event-stream` of `chat.completion.chunk` events ending in `[DONE]`.

use super::answer::{AnswerReader, Out};
use super::error::ApiError;
use crate::engine::channel::EventReceiver;
use crate::engine::logprobs::TokenLogprob;
use crate::engine::reasoning::Splitter;
use crate::engine::tools::ToolFormat;
use crate::engine::{Event, FinishReason, PromptUsage};
use crate::openai::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, Choice, ChoiceLogprobs, ChunkChoice,
    CompletionTokensDetails, Delta, FinishReason as WireFinish, FunctionDelta, ImageUsage,
    PromptTokensDetails, ToolCall, ToolCallDelta, ToolKind, TopLogprob, Usage,
};
use axum::Json;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;

pub struct ResponseMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// Per-image breakdown for `usage.images`.
    pub images: Vec<ImageUsage>,
    /// The client asked for `logprobs`.
    pub logprobs: bool,
    /// Tools are offered: read calls out of the answer in this format.
    pub tools: Option<ToolFormat>,
    /// The template thinks: read thoughts out of the answer.
    pub think: Option<Splitter>,
    pub log: super::log::RequestLog,
}

fn finish_name(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

fn wire_finish(r: FinishReason) -> WireFinish {
    match r {
        FinishReason::Stop => WireFinish::Stop,
        FinishReason::Length => WireFinish::Length,
    }
}

fn wire_logprob(t: TokenLogprob) -> crate::openai::TokenLogprob {
    crate::openai::TokenLogprob {
        token: t.token,
        logprob: t.logprob,
        bytes: t.bytes,
        top_logprobs: t
            .top
            .into_iter()
            .map(|t| TopLogprob {
                token: t.token,
                logprob: t.logprob,
                bytes: t.bytes,
            })
            .collect(),
    }
}

/// `choices[].logprobs`: present (possibly empty) when asked, else null.
fn choice_logprobs(asked: bool, tokens: &mut Vec<TokenLogprob>) -> Option<ChoiceLogprobs> {
    asked.then(|| ChoiceLogprobs {
        content: tokens.drain(..).map(wire_logprob).collect(),
        refusal: None,
    })
}

pub(super) fn usage(
    p: PromptUsage,
    completion_tokens: u32,
    reasoning_tokens: u32,
    images: &[ImageUsage],
) -> Usage {
    Usage {
        images: images.to_vec(),
        prompt_tokens: p.prompt_tokens,
        completion_tokens,
        completion_tokens_details: CompletionTokensDetails { reasoning_tokens },
        total_tokens: p.prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: p.cached_tokens,
            image_tokens: p.image_tokens,
        },
    }
}

fn absorb(outs: Vec<Out>, reasoning: &mut String, content: &mut String, calls: &mut Vec<ToolCall>) {
    for o in outs {
        match o {
            Out::Reasoning(r) => reasoning.push_str(&r),
            Out::Content(c) => content.push_str(&c),
            Out::Call(_, c) => calls.push(c),
        }
    }
}

/// The answer as a `chat.completion`.
pub async fn collect(
    mut meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
) -> Result<Response, ApiError> {
    let a = answer(&mut meta, prompt, rx).await?;
    let only_calls = !a.calls.is_empty() && a.content.trim().is_empty();
    let body = ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: (!only_calls).then_some(a.content),
                refusal: None,
                reasoning_content: (!a.reasoning.is_empty()).then_some(a.reasoning),
                tool_calls: (!a.calls.is_empty()).then_some(a.calls),
            },
            finish_reason: a.finish,
            logprobs: a.logprobs,
        }],
        usage: a.usage,
        system_fingerprint: None,
    };
    Ok(Json(body).into_response())
}

/// A whole answer, read: what `/v1/chat/completions` and `/v1/responses`
/// both report.
pub struct Answer {
    pub content: String,
    pub reasoning: String,
    pub calls: Vec<ToolCall>,
    pub finish: WireFinish,
    pub usage: Usage,
    pub logprobs: Option<ChoiceLogprobs>,
}

/// Waits for the whole answer. Dropping this future (client gone) drops
/// the receiver, which cancels the generation.
pub async fn answer(
    meta: &mut ResponseMeta,
    prompt: PromptUsage,
    mut rx: EventReceiver,
) -> Result<Answer, ApiError> {
    let mut content = String::new();
    let mut logprobs = Vec::new();
    let mut reader = AnswerReader::new(meta.think.take(), meta.tools);
    let mut calls = Vec::new();
    let mut reasoning = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text(t) => {
                meta.log.token();
                match reader.as_mut() {
                    Some(r) => absorb(r.push(&t), &mut reasoning, &mut content, &mut calls),
                    None => content.push_str(&t),
                }
            }
            Event::Logprob(lp) => logprobs.push(lp),
            Event::Finished {
                reason,
                completion_tokens,
                reasoning_tokens,
            } => {
                if let Some(r) = reader.as_mut() {
                    absorb(r.finish(), &mut reasoning, &mut content, &mut calls);
                }
                meta.log.finish(finish_name(reason), completion_tokens);
                return Ok(Answer {
                    finish: if reader.as_ref().is_some_and(|r| r.calls > 0) {
                        WireFinish::ToolCalls
                    } else {
                        wire_finish(reason)
                    },
                    logprobs: choice_logprobs(meta.logprobs, &mut logprobs),
                    usage: usage(prompt, completion_tokens, reasoning_tokens, &meta.images),
                    content,
                    reasoning,
                    calls,
                });
            }
            Event::Failed(e) => return Err(e.into()),
            Event::Started(_) => {}
        }
    }
    Err(crate::engine::EngineError::Internal("the engine stopped mid-answer".into()).into())
}

struct StreamState {
    meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
    include_usage: bool,
    sent_role: bool,
    done: bool,
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
    fn outs(&mut self, outs: Vec<Out>, out: &mut Vec<SseEvent>) {
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
                let ev = self.chunk(d, None);
                out.push(ev);
            }
        }
    }

    fn chunk(&mut self, delta: Delta, finish: Option<WireFinish>) -> SseEvent {
        let asked = self.meta.logprobs && !self.logprobs.is_empty();
        let logprobs = choice_logprobs(asked, &mut self.logprobs);
        self.frame(ChatCompletionChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: self.meta.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs,
            }],
            usage: self.include_usage.then_some(None),
            system_fingerprint: None,
        })
    }

    fn frame(&self, chunk: ChatCompletionChunk) -> SseEvent {
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
            out.push(self.chunk(
                Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
            ));
            return Some(out);
        }
        match self.rx.recv().await {
            Some(Event::Text(t)) => {
                self.meta.log.token();
                match self.reader.as_mut() {
                    Some(r) => {
                        let outs = r.push(&t);
                        self.outs(outs, &mut out);
                    }
                    None => {
                        let ev = self.chunk(text_delta(t), None);
                        out.push(ev);
                    }
                }
            }
            Some(Event::Finished {
                reason,
                completion_tokens,
                reasoning_tokens,
            }) => {
                let mut finish = wire_finish(reason);
                if let Some(r) = self.reader.as_mut() {
                    let outs = r.finish();
                    self.outs(outs, &mut out);
                    if self.reader.as_ref().is_some_and(|r| r.calls > 0) {
                        finish = WireFinish::ToolCalls;
                    }
                }
                self.meta.log.finish(finish_name(reason), completion_tokens);
                out.push(self.chunk(Delta::default(), Some(finish)));
                if self.include_usage {
                    out.push(self.frame(ChatCompletionChunk {
                        id: self.meta.id.clone(),
                        object: "chat.completion.chunk",
                        created: self.meta.created,
                        model: self.meta.model.clone(),
                        choices: vec![],
                        usage: Some(Some(usage(
                            self.prompt,
                            completion_tokens,
                            reasoning_tokens,
                            &self.meta.images,
                        ))),
                        system_fingerprint: None,
                    }));
                }
                out.push(SseEvent::default().data("[DONE]"));
                self.done = true;
            }
            Some(Event::Failed(e)) => {
                let env = ApiError::from(e).envelope();
                out.push(SseEvent::default().data(serde_json::to_string(&env).unwrap_or_default()));
                out.push(SseEvent::default().data("[DONE]"));
                self.done = true;
            }
            Some(Event::Logprob(lp)) => self.logprobs.push(lp),
            Some(Event::Started(_)) => {}
            None => return None,
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

/// A streamed `chat.completion.chunk` answer.
pub fn stream(
    mut meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
    include_usage: bool,
) -> Response {
    let state = StreamState {
        reader: AnswerReader::new(meta.think.take(), meta.tools),
        meta,
        prompt,
        rx,
        include_usage,
        sent_role: false,
        done: false,
        logprobs: Vec::new(),
    };
    serve(state)
}
