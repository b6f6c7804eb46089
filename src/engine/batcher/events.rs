//! Sampling and what the client hears: the first token starts the answer,
//! each token becomes text through the stop/UTF-8 assembler, and a sequence
//! ends with `stop`, `length` or an error. Gauges are kept exact before the
//! client is told anything.

use super::{Active, Batcher};
use crate::engine::error::EngineError;
use crate::engine::logprobs::{TokenLogprob, TopLogprob, log_softmax_top};
use crate::engine::request::{Event, FinishReason};
use crate::metrics::Metrics;
use llama_cpp_2::token::LlamaToken;
use std::time::Instant;

const NON_FINITE: &str = "the model produced non-finite logits (NaN or infinity) for this \
request; its output would be noise. With an image, the vision projector's output is the usual \
cause (a llama.cpp fault); retrying on a restarted server may help";

impl Batcher<'_> {
    /// Samples the next token of sequence `i` from batch index `idx`.
    /// An embedding job's input is in: its pooled vector, then the end.
    fn embedding(&mut self, i: usize) {
        let vector = match self.ctx.embeddings_seq_ith(i as i32) {
            Ok(v) => crate::engine::pooling::normalize(v),
            Err(e) => {
                return self.fail(i, EngineError::Internal(format!("no embedding: {e}")));
            }
        };
        if vector.iter().any(|x| !x.is_finite()) {
            return self.fail(i, EngineError::Internal(NON_FINITE.into()));
        }
        let Some(a) = self.slots[i].active.as_mut() else {
            return;
        };
        a.started = true;
        let m = &self.shared.metrics;
        Metrics::add(&m.prompt_tokens, u64::from(a.usage.prompt_tokens));
        let sent = a.events.send(Event::Started(a.usage)).is_ok()
            && a.events.send(Event::Embedding(vector)).is_ok();
        if !sent {
            return self.release(i);
        }
        self.finish(i, FinishReason::Stop, false);
    }

    pub(super) fn sample(&mut self, i: usize, idx: i32) {
        if self.slots[i]
            .active
            .as_ref()
            .is_some_and(|a| a.job.request.embed)
        {
            return self.embedding(i);
        }
        let n_ctx_seq = self.n_ctx_seq;
        let vocab = self.model.vocab();
        // NaN logits would make every sampler pick token 0 forever: the
        // request fails instead, and its cells are not kept for reuse.
        if self.ctx.get_logits_ith(idx).iter().any(|x| !x.is_finite()) {
            return self.fail(i, EngineError::Internal(NON_FINITE.into()));
        }
        if self.slots[i]
            .active
            .as_ref()
            .is_some_and(|a| !a.forks.is_empty())
        {
            self.fork(i, idx);
        }
        let Some(a) = self.slots[i].active.as_mut() else {
            return;
        };
        if !a.started {
            a.started = true;
            // A fork's prompt was counted with its first choice.
            if !a.parts.is_empty() {
                let m = &self.shared.metrics;
                Metrics::add(&m.prompt_tokens, u64::from(a.usage.prompt_tokens));
                Metrics::add(&m.cached_tokens, u64::from(a.usage.cached_tokens));
                Metrics::add(&m.image_tokens, u64::from(a.usage.image_tokens));
            }
            if a.events.send(Event::Started(a.usage)).is_err() {
                return self.release(i);
            }
        }
        let max_tokens = a.job.request.max_tokens.unwrap_or(u32::MAX);
        // Every counted token must have a cell in the context, whatever the
        // positions scheme: a full sequence ends with `length`.
        if a.completion_tokens >= max_tokens || a.cells >= n_ctx_seq {
            return self.finish(i, FinishReason::Length, true);
        }
        let tok = a.sampler.sample(&self.ctx, idx);
        if vocab.is_eog(tok) {
            return self.finish(i, FinishReason::Stop, true);
        }
        a.completion_tokens += 1;
        self.shared.count_token();
        let now = Instant::now();
        match a.last_token_at.replace(now) {
            None => self
                .shared
                .metrics
                .ttft
                .observe(now.duration_since(a.job.submitted).as_secs_f64()),
            Some(prev) => self
                .shared
                .metrics
                .itl
                .observe(now.duration_since(prev).as_secs_f64()),
        }
        if let Some(n) = a.job.request.logprobs {
            let lp = self.logprob(idx, tok, n as usize);
            let Some(a) = self.slots[i].active.as_mut() else {
                return;
            };
            if a.events.send(Event::Logprob(lp)).is_err() {
                return self.release(i);
            }
        }
        let Some(a) = self.slots[i].active.as_mut() else {
            return;
        };
        let shown = a.job.request.shown_tokens.contains(&tok.0);
        let piece = vocab.token_to_piece(tok, shown, None);
        let step = a.text.push(&piece);
        for event in a.split(step.text, false) {
            if a.events.send(event).is_err() {
                return self.release(i); // client gone: free the sequence now
            }
        }
        if a.events.stalled() {
            let _request = a.job.span.clone().entered();
            tracing::warn!(
                seq = i,
                "the client stopped reading its stream; cancelled after {} unread events",
                crate::engine::channel::MAX_BACKLOG
            );
            return self.release(i);
        }
        if step.stopped {
            return self.finish(i, FinishReason::Stop, false);
        }
        if a.completion_tokens >= max_tokens {
            return self.finish(i, FinishReason::Length, true);
        }
        a.pending = Some(tok);
    }

    /// The prompt of a job with several choices is in: each other choice
    /// takes a free sequence (least recently used first) holding a copy of
    /// this one's cells, and samples its first token from the same logits.
    /// The prompt is evaluated once, whatever `n`.
    fn fork(&mut self, i: usize, idx: i32) {
        let Some(a) = self.slots[i].active.as_mut() else {
            return;
        };
        let forks = std::mem::take(&mut a.forks);
        let (job, pos, cells, usage) = (a.job.clone(), a.pos, a.cells, a.usage);
        self.reserved = self.reserved.saturating_sub(forks.len());
        let cached = self.slots[i].cached.clone();
        for (k, events) in (1..).zip(forks) {
            let free = (0..self.slots.len())
                .filter(|&c| self.slots[c].active.is_none())
                .min_by_key(|&c| self.slots[c].last_used);
            let sampler = self.sampler(&job, k);
            let (Some(c), Ok(sampler)) = (free, sampler) else {
                let _ = events.send(Event::Failed(EngineError::Internal(
                    "no sequence was left for this choice".into(),
                )));
                continue;
            };
            let _ = self.ctx.clear_kv_cache_seq(Some(c as u32), None, None);
            if let Err(e) = self.ctx.copy_kv_cache_seq(i as i32, c as i32, None, None) {
                let _ = events.send(Event::Failed(EngineError::Internal(e.to_string())));
                continue;
            }
            self.slots[c].cached = cached.clone();
            let mut choice = Active::new(job.clone(), events, sampler, usage);
            (choice.pos, choice.cells) = (pos, cells);
            self.slots[c].active = Some(choice);
            self.shared.set_active(self.active_count());
            self.sample(c, idx);
        }
    }

    /// The sampled token's log-probability from the raw logits at `idx`.
    fn logprob(&self, idx: i32, tok: LlamaToken, n: usize) -> TokenLogprob {
        let vocab = self.model.vocab();
        let logits = self.ctx.get_logits_ith(idx);
        let (logprob, top) = log_softmax_top(logits, tok.0.max(0) as usize, n);
        let text = |t: LlamaToken| {
            let bytes = vocab.token_to_piece(t, true, None);
            (String::from_utf8_lossy(&bytes).into_owned(), bytes)
        };
        let (token, bytes) = text(tok);
        TokenLogprob {
            token,
            bytes,
            logprob,
            top: top
                .into_iter()
                .map(|(id, logprob)| {
                    let (token, bytes) = text(LlamaToken(id as i32));
                    TopLogprob {
                        token,
                        bytes,
                        logprob,
                    }
                })
                .collect(),
        }
    }

    /// Takes the job out of sequence `i`, keeping the gauges exact before
    /// the client hears anything.
    fn vacate(&mut self, i: usize) -> Option<Active> {
        let slot = &mut self.slots[i];
        slot.last_used = self.step;
        let a = slot.active.take();
        if let Some(a) = &a {
            // Choices never forked give their promised sequences back.
            self.reserved = self.reserved.saturating_sub(a.forks.len());
        }
        self.shared.set_active(self.active_count());
        a
    }

    pub(super) fn finish(&mut self, i: usize, reason: FinishReason, flush: bool) {
        if let Some(mut a) = self.vacate(i) {
            if !a.started {
                let _ = a.events.send(Event::Started(a.usage));
            }
            // A stop string ends the text where it starts: no tail then.
            let tail = if flush {
                a.text.finish()
            } else {
                String::new()
            };
            for event in a.split(tail, true) {
                let _ = a.events.send(event);
            }
            self.note_decoded(); // before the client can read /metrics
            let _ = a.events.send(Event::Finished {
                reason,
                completion_tokens: a.completion_tokens,
                reasoning_tokens: a.reasoning_tokens,
                stop_sequence: a.text.matched().map(String::from),
            });
        }
    }

    /// Frees a sequence without a word (its client is gone). The KV cache
    /// keeps what was evaluated, for later reuse.
    pub(super) fn release(&mut self, i: usize) {
        self.vacate(i);
    }

    /// Ends one sequence with an error; its KV cache is dropped.
    pub(super) fn fail(&mut self, i: usize, error: EngineError) {
        self.slots[i].cached.clear();
        let _ = self.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
        if let Some(a) = self.vacate(i) {
            for events in a.forks.iter().chain([&a.events]) {
                let _ = events.send(Event::Failed(error.clone()));
            }
        }
    }

    pub(super) fn fail_all(&mut self, error: EngineError) {
        tracing::error!("{error}");
        for i in 0..self.slots.len() {
            self.fail(i, error.clone());
        }
        self.ctx.clear_kv_cache();
    }
}
