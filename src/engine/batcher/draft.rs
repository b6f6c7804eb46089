//! Speculation in the batcher (`--spec-type ngram`, `--model-draft`): a
//! generating sequence's pending token goes into the batch followed by the
//! tokens prompt lookup (`engine/speculate.rs`) or a draft model
//! (`engine/drafter.rs`) guesses come next, each with its logits. Sampling then runs token by token as it would without guesses,
//! and goes on past a guess only while the token sampled equals it; the
//! first miss (or the answer's end) drops the cells of the guesses after
//! it. Every token is still sampled by the same sampler from the logits of
//! the same prefix, so the answer equals the one without speculation,
//! whatever the sampling settings, with images in the prompt and beside
//! other sequences in the batch.

use super::step::Entry;
use super::{Batcher, Guess};
use crate::engine::scheduler::Item;
use crate::engine::speculate;
use crate::metrics::Metrics;
use llama_cpp_2::token::LlamaToken;

/// The longest and shortest n-grams looked up: two tokens already make a
/// useful match in copied text, one would guess too often.
const NGRAM_MAX: usize = 4;
const NGRAM_MIN: usize = 2;

impl Batcher<'_> {
    /// Puts guesses after each generating sequence's pending token, within
    /// `budget` batch rows; returns the rows left.
    pub(super) fn add_guesses(&mut self, entries: &mut Vec<Entry>, mut budget: usize) -> usize {
        if self.draft_max == 0 {
            return budget;
        }
        // This step's entries so far are the pending tokens, one a sequence.
        let seqs: Vec<usize> = entries.iter().map(|e| e.seq).collect();
        for i in seqs {
            for token in self.guesses(i, budget) {
                let Some(a) = self.slots[i].active.as_mut() else {
                    break;
                };
                entries.push(Entry {
                    seq: i,
                    token,
                    pos: a.pos,
                    logits: true,
                });
                a.draft.push(Guess {
                    token,
                    pos: a.pos,
                    at: None,
                });
                a.pos += 1;
                self.slots[i].cached.push(Item::Token(token.0));
                budget -= 1;
            }
        }
        budget
    }

    /// Sequence `i`'s guesses after its pending token: at most what the
    /// batch, its cells and its answer leave room for.
    fn guesses(&mut self, i: usize, budget: usize) -> Vec<LlamaToken> {
        // A sequence whose guesses keep missing rests a while (`Backoff`).
        if let Some(a) = self.slots[i].active.as_mut()
            && a.backoff.rest()
        {
            return Vec::new();
        }
        let slot = &self.slots[i];
        let Some(a) = slot.active.as_ref().filter(|a| !a.job.request.embed) else {
            return Vec::new();
        };
        let cells_left = self.n_ctx_seq.saturating_sub(a.cells) as usize;
        let max_tokens = a.job.request.max_tokens.unwrap_or(u32::MAX);
        // The last token sampled needs no cell: it ends or waits.
        let answer_left = max_tokens.saturating_sub(a.completion_tokens + 1) as usize;
        let max = self.draft_max.min(budget).min(cells_left).min(answer_left);
        if max == 0 {
            return Vec::new();
        }
        let history: Vec<Option<i32>> = slot
            .cached
            .iter()
            .map(|item| match item {
                Item::Token(t) => Some(*t),
                Item::Image { .. } => None,
            })
            .collect();
        let guessed = match self.drafter.as_mut() {
            Some(d) => {
                let text: Vec<i32> = history.into_iter().flatten().collect();
                d.guess(i, &text, max)
            }
            None => speculate::draft(&history, NGRAM_MIN, NGRAM_MAX, max),
        };
        guessed.into_iter().map(LlamaToken).collect()
    }

    /// Samples sequence `i` from its pending token's logits at row `first`,
    /// then past each guess the sampled token confirms; drops the cells
    /// of the guesses after the first miss.
    pub(super) fn sample_guessed(&mut self, i: usize, first: i32, draft: Vec<Guess>) {
        let mut row = first;
        let mut accepted = 0;
        for g in &draft {
            self.sample(i, row);
            let Some(a) = self.slots[i].active.as_mut() else {
                break;
            };
            if a.pending != Some(g.token) {
                break;
            }
            // Already in the cache: no need to decode it again.
            a.pending = None;
            a.cells += 1;
            accepted += 1;
            match g.at {
                Some(at) => row = at,
                None => break,
            }
        }
        if accepted == draft.len() && self.slots[i].active.is_some() {
            self.sample(i, row);
        }
        if let Some(a) = self.slots[i].active.as_mut() {
            a.backoff.record(accepted > 0);
        }
        let m = &self.shared.metrics;
        Metrics::add(&m.draft_tokens, draft.len() as u64);
        Metrics::add(&m.draft_accepted, accepted as u64);
        let Some(miss) = draft.get(accepted) else {
            return;
        };
        let dropped = draft.len() - accepted;
        let slot = &mut self.slots[i];
        // A failed sequence has already lost its cells and their record.
        if slot.cached.len() >= dropped {
            slot.cached.truncate(slot.cached.len() - dropped);
        }
        let _ = self
            .ctx
            .clear_kv_cache_seq(Some(i as u32), Some(miss.pos.max(0) as u32), None);
        if let Some(a) = self.slots[i].active.as_mut() {
            a.pos = miss.pos;
        }
    }
}
