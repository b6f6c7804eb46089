//! A request's choices (`n`), each on its own engine channel, read as one
//! stream of `(choice, event)`: whole answers for `chat.completion` and
//! `/v1/responses`, events as they come for streams. The prompt is counted
//! once; completion tokens are the sum over the choices, as OpenAI counts.

use super::answer::{AnswerReader, Out};
use super::error::ApiError;
use super::meta::{ResponseMeta, choice_logprobs, finish_name, usage, wire_finish};
use crate::engine::channel::EventReceiver;
use crate::engine::{EngineError, Event, PromptUsage};
use crate::openai::{ChoiceLogprobs, FinishReason as WireFinish, ToolCall, Usage};
use futures::StreamExt;
use futures::stream::BoxStream;

/// Every choice's events, tagged with the choice's index, in the order they
/// arrive. Dropping it drops the receivers, which cancels the generation.
pub type Merged = BoxStream<'static, (usize, Event)>;

pub fn merge(receivers: Vec<EventReceiver>) -> Merged {
    futures::stream::select_all(receivers.into_iter().enumerate().map(|(i, rx)| {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .map(move |e| (i, e))
            .boxed()
    }))
    .boxed()
}

/// A whole answer, read: what `/v1/chat/completions` and `/v1/responses`
/// both report for one choice.
pub struct Answer {
    pub content: String,
    pub reasoning: String,
    pub calls: Vec<ToolCall>,
    pub finish: WireFinish,
    /// The prompt and this choice's completion.
    pub usage: Usage,
    pub logprobs: Option<ChoiceLogprobs>,
    /// The stop sequence that ended it, if one did.
    pub stop_sequence: Option<String>,
}

/// One choice while its text arrives.
struct Reading {
    reader: Option<AnswerReader>,
    content: String,
    reasoning: String,
    calls: Vec<ToolCall>,
    logprobs: Vec<crate::engine::logprobs::TokenLogprob>,
}

impl Reading {
    fn absorb(&mut self, outs: Vec<Out>) {
        for o in outs {
            match o {
                Out::Reasoning(r) => self.reasoning.push_str(&r),
                Out::Content(c) => self.content.push_str(&c),
                Out::Call(_, c) => self.calls.push(c),
            }
        }
    }

    fn text(&mut self, t: &str) {
        match self.reader.as_mut() {
            Some(r) => {
                let outs = r.push(t);
                self.absorb(outs);
            }
            None => self.content.push_str(t),
        }
    }
}

/// A choice's last outputs and its wire finish reason: `tool_calls` when
/// the reader found a call, unless the token limit ended the answer
/// (`length`, as OpenAI reports it; a call it cut off is dropped).
pub(super) fn finish_choice(
    reader: Option<&mut AnswerReader>,
    reason: crate::engine::FinishReason,
) -> (Vec<Out>, WireFinish) {
    let cut = reason == crate::engine::FinishReason::Length;
    match reader {
        Some(r) => {
            let outs = r.finish(cut);
            let finish = if r.calls > 0 && !cut {
                WireFinish::ToolCalls
            } else {
                wire_finish(reason)
            };
            (outs, finish)
        }
        None => (Vec::new(), wire_finish(reason)),
    }
}

/// Waits for one answer (a request of one choice).
pub async fn answer(
    meta: &mut ResponseMeta,
    prompt: PromptUsage,
    rx: EventReceiver,
) -> Result<Answer, ApiError> {
    let mut all = answers(meta, prompt, vec![rx]).await?;
    all.pop()
        .ok_or_else(|| EngineError::Internal("no answer".into()).into())
}

/// Waits for every choice's whole answer; any choice's error is the
/// request's.
pub async fn answers(
    meta: &mut ResponseMeta,
    prompt: PromptUsage,
    receivers: Vec<EventReceiver>,
) -> Result<Vec<Answer>, ApiError> {
    let n = receivers.len();
    let mut events = merge(receivers);
    let mut reading: Vec<Reading> = (0..n)
        .map(|_| Reading {
            reader: AnswerReader::new(meta.tools),
            content: String::new(),
            reasoning: String::new(),
            calls: Vec::new(),
            logprobs: Vec::new(),
        })
        .collect();
    let mut done: Vec<Option<Answer>> = (0..n).map(|_| None).collect();
    let (mut left, mut tokens) = (n, 0);
    while left > 0 {
        let Some((i, ev)) = events.next().await else {
            break;
        };
        let r = &mut reading[i];
        match ev {
            Event::Text(t) => {
                meta.log.token();
                r.text(&t);
            }
            Event::Reasoning(t) => {
                meta.log.token();
                r.reasoning.push_str(&t);
            }
            Event::Logprob(lp) => r.logprobs.push(lp),
            Event::Finished {
                reason,
                completion_tokens,
                reasoning_tokens,
                stop_sequence,
            } => {
                let (outs, finish) = finish_choice(r.reader.as_mut(), reason);
                r.absorb(outs);
                tokens += completion_tokens;
                left -= 1;
                if left == 0 {
                    meta.log.finish(finish_name(reason), tokens);
                }
                done[i] = Some(Answer {
                    finish,
                    logprobs: choice_logprobs(meta.logprobs, &mut r.logprobs),
                    usage: usage(prompt, completion_tokens, reasoning_tokens, &meta.media),
                    content: std::mem::take(&mut r.content),
                    reasoning: std::mem::take(&mut r.reasoning),
                    calls: std::mem::take(&mut r.calls),
                    stop_sequence,
                });
            }
            Event::Failed(e) => return Err(e.into()),
            Event::Started(_) | Event::Embedding(_) => {}
        }
    }
    if left > 0 {
        return Err(EngineError::Internal("the engine stopped mid-answer".into()).into());
    }
    Ok(done.into_iter().flatten().collect())
}

/// The request's usage: the prompt once, every choice's completion.
pub fn total(prompt: PromptUsage, answers: &[Answer], meta: &ResponseMeta) -> Usage {
    let sum = |f: fn(&Usage) -> u32| answers.iter().map(|a| f(&a.usage)).sum();
    usage(
        prompt,
        sum(|u| u.completion_tokens),
        sum(|u| u.completion_tokens_details.reasoning_tokens),
        &meta.media,
    )
}
