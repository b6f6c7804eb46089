//! Engine events -> OpenAI responses: a `chat.completion`, or a
//! `text/event-stream` of `chat.completion.chunk` events ending in `[DONE]`.

use super::error::ApiError;
use crate::engine::channel::EventReceiver;
use crate::engine::logprobs::TokenLogprob;
use crate::engine::{Event, FinishReason, PromptUsage};
use crate::openai::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, Choice, ChoiceLogprobs, ChunkChoice,
    Delta, FinishReason as WireFinish, ImageUsage, PromptTokensDetails, TopLogprob, Usage,
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

fn usage(p: PromptUsage, completion_tokens: u32, images: &[ImageUsage]) -> Usage {
    Usage {
        images: images.to_vec(),
        prompt_tokens: p.prompt_tokens,
        completion_tokens,
        total_tokens: p.prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: p.cached_tokens,
            image_tokens: p.image_tokens,
        },
    }
}

/// Waits for the whole answer. Dropping this future (client gone) drops the
/// receiver, which cancels the generation.
pub async fn collect(
    mut meta: ResponseMeta,
    prompt: PromptUsage,
    mut rx: EventReceiver,
) -> Result<Response, ApiError> {
    let mut content = String::new();
    let mut logprobs = Vec::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text(t) => {
                meta.log.token();
                content.push_str(&t);
            }
            Event::Logprob(lp) => logprobs.push(lp),
            Event::Finished {
                reason,
                completion_tokens,
            } => {
                meta.log.finish(finish_name(reason), completion_tokens);
                let body = ChatCompletion {
                    id: meta.id,
                    object: "chat.completion",
                    created: meta.created,
                    model: meta.model,
                    choices: vec![Choice {
                        index: 0,
                        message: AssistantMessage {
                            role: "assistant",
                            content,
                            refusal: None,
                        },
                        finish_reason: wire_finish(reason),
                        logprobs: choice_logprobs(meta.logprobs, &mut logprobs),
                    }],
                    usage: usage(prompt, completion_tokens, &meta.images),
                    system_fingerprint: None,
                };
                return Ok(Json(body).into_response());
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
}

impl StreamState {
    fn chunk(&mut self, delta: Delta, finish: Option<FinishReason>) -> SseEvent {
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
                finish_reason: finish.map(wire_finish),
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
                },
                None,
            ));
            return Some(out);
        }
        match self.rx.recv().await {
            Some(Event::Text(t)) => {
                self.meta.log.token();
                out.push(self.chunk(
                    Delta {
                        role: None,
                        content: Some(t),
                    },
                    None,
                ));
            }
            Some(Event::Finished {
                reason,
                completion_tokens,
            }) => {
                self.meta.log.finish(finish_name(reason), completion_tokens);
                out.push(self.chunk(Delta::default(), Some(reason)));
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

/// A live SSE response. When the client disconnects, axum drops the stream,
/// and with it the receiver: the engine stops at its next token.
pub fn stream(
    meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
    include_usage: bool,
) -> Response {
    let state = StreamState {
        meta,
        prompt,
        rx,
        include_usage,
        sent_role: false,
        done: false,
        logprobs: Vec::new(),
    };
    let events = futures::stream::unfold(state, |mut s| async move {
        let batch = s.next().await?;
        Some((futures::stream::iter(batch), s))
    })
    .flatten()
    .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
