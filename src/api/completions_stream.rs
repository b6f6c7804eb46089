//! A streamed `/v1/completions` answer: `text_completion` chunks, each
//! choice's text (the echoed prompt first, with `echo`) with the
//! log-probabilities of the tokens it came from, a last chunk per choice
//! with its `finish_reason`, the usage chunk when asked, then `[DONE]`.

use super::meta::{ResponseMeta, choice_logprobs, finish_name, usage, wire_finish};
use crate::engine::channel::EventReceiver;
use crate::engine::logprobs::TokenLogprob;
use crate::engine::{Event, PromptUsage};
use crate::openai::completions::{Completion, CompletionChoice, CompletionLogprobs};
use crate::openai::{ChoiceLogprobs, Usage};
use axum::response::Response;
use axum::response::sse::Event as SseEvent;
use futures::StreamExt as _;

/// One prompt's job, started.
pub(super) struct Job {
    pub meta: ResponseMeta,
    pub prompt: PromptUsage,
    pub choices: Vec<EventReceiver>,
    /// The prompt text, for `echo`.
    pub echo: Option<String>,
}

/// Two prompts' usage as one request's (completions count every prompt).
pub(super) fn add(mut a: Usage, b: &Usage) -> Usage {
    a.prompt_tokens += b.prompt_tokens;
    a.completion_tokens += b.completion_tokens;
    a.total_tokens += b.total_tokens;
    a.prompt_tokens_details.cached_tokens += b.prompt_tokens_details.cached_tokens;
    a
}

pub(super) fn finish_str(f: crate::openai::FinishReason) -> &'static str {
    match f {
        crate::openai::FinishReason::Length => "length",
        _ => "stop",
    }
}

/// Chat's log-probabilities in the legacy shape; offsets count characters
/// from `start` (the echoed prompt's length).
pub(super) fn legacy(l: &ChoiceLogprobs, start: u32) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    let mut offset = start;
    for t in &l.content {
        out.text_offset.push(offset);
        offset += t.token.chars().count() as u32;
        out.tokens.push(t.token.clone());
        out.token_logprobs.push(t.logprob);
        out.top_logprobs.push(
            t.top_logprobs
                .iter()
                .map(|a| (a.token.clone(), a.logprob))
                .collect(),
        );
    }
    out
}

struct Choice {
    /// Which job (prompt) it belongs to.
    job: usize,
    /// Logprobs of tokens whose text has not been sent yet.
    pending: Vec<TokenLogprob>,
    /// Characters sent so far (the legacy `text_offset`).
    sent: u32,
    done: bool,
}

struct State {
    metas: Vec<ResponseMeta>,
    prompts: Vec<PromptUsage>,
    choices: Vec<Choice>,
    events: super::choices::Merged,
    /// Echoed prompts not sent yet, by choice.
    echoes: Vec<Option<String>>,
    include_usage: bool,
    /// Per job: completion tokens so far, choices still running.
    usage: Vec<(u32, usize)>,
    done: bool,
}

impl super::sse::Frames for State {
    fn frames(&mut self) -> impl std::future::Future<Output = Option<Vec<SseEvent>>> + Send {
        self.next()
    }
}

impl State {
    fn chunk(&self, choice: CompletionChoice, usage: Option<Usage>) -> SseEvent {
        let meta = &self.metas[0];
        let c = Completion {
            id: meta.id.clone(),
            object: "text_completion",
            created: meta.created,
            model: meta.model.clone(),
            choices: vec![choice],
            usage,
        };
        SseEvent::default().data(serde_json::to_string(&c).unwrap_or_default())
    }

    fn text(&mut self, i: usize, text: String, finish: Option<&'static str>) -> SseEvent {
        let job = self.choices[i].job;
        let lp = choice_logprobs(self.metas[job].logprobs, &mut self.choices[i].pending)
            .map(|l| legacy(&l, self.choices[i].sent));
        self.choices[i].sent += text.chars().count() as u32;
        let choice = CompletionChoice {
            text,
            index: i as u32,
            logprobs: lp,
            finish_reason: finish,
        };
        self.chunk(choice, None)
    }

    fn total(&self) -> Usage {
        let each = self.prompts.iter().zip(&self.usage);
        each.map(|(p, (completion, _))| usage(*p, *completion, 0, &Default::default()))
            .fold(
                usage(PromptUsage::default(), 0, 0, &Default::default()),
                |sum, u| add(sum, &u),
            )
    }

    async fn next(&mut self) -> Option<Vec<SseEvent>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        for i in 0..self.echoes.len() {
            if let Some(e) = self.echoes[i].take() {
                out.push(self.text(i, e, None));
            }
        }
        if !out.is_empty() {
            return Some(out);
        }
        if self.choices.iter().all(|c| c.done) {
            if self.include_usage {
                let mut c = self.empty();
                c.usage = Some(self.total());
                out.push(SseEvent::default().data(serde_json::to_string(&c).unwrap_or_default()));
            }
            out.push(SseEvent::default().data("[DONE]"));
            self.done = true;
            return Some(out);
        }
        let (i, ev) = self.events.next().await?;
        let job = self.choices[i].job;
        match ev {
            Event::Text(t) | Event::Reasoning(t) => {
                self.metas[job].log.token();
                out.push(self.text(i, t, None));
            }
            Event::Logprob(lp) => self.choices[i].pending.push(lp),
            Event::Finished {
                reason,
                completion_tokens,
                ..
            } => {
                self.choices[i].done = true;
                self.usage[job].0 += completion_tokens;
                self.usage[job].1 -= 1;
                if self.usage[job].1 == 0 {
                    let n = self.usage[job].0;
                    self.metas[job].log.finish(finish_name(reason), n);
                }
                let finish = finish_str(wire_finish(reason));
                out.push(self.text(i, String::new(), Some(finish)));
            }
            Event::Failed(e) => {
                let env = super::error::ApiError::from(e).envelope();
                out.push(SseEvent::default().data(serde_json::to_string(&env).unwrap_or_default()));
                self.done = true;
            }
            Event::Started(_) | Event::Embedding(_) => {}
        }
        Some(out)
    }

    fn empty(&self) -> Completion {
        let meta = &self.metas[0];
        Completion {
            id: meta.id.clone(),
            object: "text_completion",
            created: meta.created,
            model: meta.model.clone(),
            choices: Vec::new(),
            usage: None,
        }
    }
}

pub fn stream(jobs: Vec<Job>, include_usage: bool) -> Response {
    let mut state = State {
        metas: Vec::new(),
        prompts: Vec::new(),
        choices: Vec::new(),
        events: super::choices::merge(Vec::new()),
        echoes: Vec::new(),
        include_usage,
        usage: Vec::new(),
        done: false,
    };
    let mut receivers = Vec::new();
    for (j, job) in jobs.into_iter().enumerate() {
        let n = job.choices.len();
        for _ in 0..n {
            state.choices.push(Choice {
                job: j,
                pending: Vec::new(),
                sent: 0,
                done: false,
            });
            state.echoes.push(job.echo.clone());
        }
        receivers.extend(job.choices);
        state.usage.push((0, n));
        state.metas.push(job.meta);
        state.prompts.push(job.prompt);
    }
    state.events = super::choices::merge(receivers);
    super::sse::serve(state)
}
