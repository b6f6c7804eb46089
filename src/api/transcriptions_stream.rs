//! A streamed transcription, as OpenAI streams one: a
//! `transcript.text.delta` event per piece of text, then one
//! `transcript.text.done` with the whole text and the usage. A failure
//! mid-stream is an `error` event in OpenAI's envelope.

use super::error::ApiError;
use super::meta::ResponseMeta;
use crate::engine::channel::EventReceiver;
use crate::engine::{Event, PromptUsage};
use axum::response::Response;
use axum::response::sse::Event as SseEvent;
use serde_json::{Value, json};

struct State {
    meta: ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
    text: String,
    done: bool,
}

impl super::sse::Frames for State {
    fn frames(&mut self) -> impl std::future::Future<Output = Option<Vec<SseEvent>>> + Send {
        self.next()
    }
}

fn event(data: Value) -> SseEvent {
    SseEvent::default().data(data.to_string())
}

impl State {
    async fn next(&mut self) -> Option<Vec<SseEvent>> {
        if self.done {
            return None;
        }
        let out = match self.rx.recv().await? {
            Event::Text(t) if !t.is_empty() => {
                self.meta.log.token();
                self.text.push_str(&t);
                vec![event(json!({"type": "transcript.text.delta", "delta": t}))]
            }
            Event::Finished {
                reason,
                completion_tokens,
                reasoning_tokens,
                ..
            } => {
                self.done = true;
                let usage =
                    self.meta
                        .finished(reason, self.prompt, (completion_tokens, reasoning_tokens));
                vec![event(json!({"type": "transcript.text.done",
                    "text": self.text.trim(), "usage": token_usage(&usage)}))]
            }
            Event::Failed(e) => {
                self.done = true;
                let e = ApiError::from(e);
                vec![event(
                    serde_json::to_value(e.envelope()).unwrap_or_default(),
                )]
            }
            _ => Vec::new(),
        };
        Some(out)
    }
}

pub fn stream(meta: ResponseMeta, prompt: PromptUsage, rx: EventReceiver) -> Response {
    super::sse::serve(State {
        meta,
        prompt,
        rx,
        text: String::new(),
        done: false,
    })
}

/// OpenAI's token usage of a transcription.
pub(super) fn token_usage(u: &crate::openai::Usage) -> Value {
    let audio = u.prompt_tokens_details.audio_tokens;
    json!({"type": "tokens", "input_tokens": u.prompt_tokens,
        "input_token_details": {"text_tokens": u.prompt_tokens - audio, "audio_tokens": audio},
        "output_tokens": u.completion_tokens, "total_tokens": u.total_tokens})
}
