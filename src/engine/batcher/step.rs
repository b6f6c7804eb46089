//! One engine step: every generating sequence's next token and a budget of
//! prompt tokens go into one batch; then at most one image piece. When the
//! batch fails, each sequence's share is retried alone, so only the sequence
//! that cannot be decoded fails and the others keep streaming.

use super::{Batcher, Part, internal};
use crate::engine::error::EngineError;
use crate::engine::request::FinishReason;
use crate::engine::scheduler::Item;
use llama_cpp_2::token::LlamaToken;
use std::time::Instant;

/// One token this step puts into the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Entry {
    pub seq: usize,
    pub token: LlamaToken,
    pub pos: i32,
    /// Whether its logits are sampled (the last token a sequence adds).
    pub logits: bool,
}

/// Sequences in order of first appearance, each with its entries.
fn group_by_seq(entries: &[Entry]) -> Vec<(usize, Vec<Entry>)> {
    let mut groups: Vec<(usize, Vec<Entry>)> = Vec::new();
    for e in entries {
        match groups.iter_mut().find(|(s, _)| *s == e.seq) {
            Some((_, g)) => g.push(*e),
            None => groups.push((e.seq, vec![*e])),
        }
    }
    groups
}

/// Decodes each sequence's share of a failed batch on its own; returns the
/// sequences that still fail, with their errors. One bad sequence (a full
/// cache, an invalid position) then never takes the innocent ones down.
pub(super) fn isolate<E>(
    entries: &[Entry],
    mut decode_alone: impl FnMut(usize, &[Entry]) -> Result<(), E>,
) -> Vec<(usize, E)> {
    group_by_seq(entries)
        .into_iter()
        .filter_map(|(seq, group)| decode_alone(seq, &group).err().map(|e| (seq, e)))
        .collect()
}

impl Batcher<'_> {
    pub(super) fn step(&mut self) {
        self.step += 1;
        let n = self.slots.len();
        let mut budget = self.n_batch;
        let mut entries: Vec<Entry> = Vec::new();
        // 1. Every generating sequence's last token, if it has a cell left.
        for i in 0..n {
            let n_ctx_seq = self.n_ctx_seq;
            let Some(a) = self.slots[i].active.as_mut() else {
                continue;
            };
            a.logits_at = None;
            let Some(tok) = a.pending.take() else {
                continue;
            };
            if a.cells >= n_ctx_seq {
                self.finish(i, FinishReason::Length, true);
                continue;
            }
            entries.push(Entry {
                seq: i,
                token: tok,
                pos: a.pos,
                logits: true,
            });
            a.pos += 1;
            a.cells += 1;
            self.slots[i].cached.push(Item::Token(tok.0));
            budget = budget.saturating_sub(1);
        }
        // 1b. Guesses after the pending tokens (`--spec-type ngram`).
        budget = self.add_guesses(&mut entries, budget);
        // 2. Prompt text, round-robin from a rotating start, within the
        // budget. An embedding input goes whole, one per decode, or waits
        // for a later step.
        let mut embedding = false;
        for k in 0..n {
            let i = (self.step as usize + k) % n;
            let slot = &mut self.slots[i];
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            if a.job.request.embed && a.next < a.parts.len() {
                if embedding || a.parts.len() - a.next > budget {
                    continue;
                }
                embedding = true;
            }
            while budget > 0 && a.next < a.parts.len() {
                let Part::Token(tok) = a.parts[a.next] else {
                    break;
                };
                entries.push(Entry {
                    seq: i,
                    token: tok,
                    pos: a.pos,
                    logits: a.next + 1 == a.parts.len(),
                });
                a.pos += 1;
                a.cells += 1;
                a.next += 1;
                slot.cached.push(Item::Token(tok.0));
                budget -= 1;
            }
        }
        // 3. One decode for all of them; on failure, find the culprit.
        if !entries.is_empty() {
            let decoded = self.fill_batch(&entries).and_then(|()| {
                self.ctx
                    .decode(&mut self.batch)
                    .map_err(|e| internal(format!("llama_decode failed: {e}")))
            });
            match decoded {
                Ok(()) => self.sample_batch(),
                Err(e) => {
                    tracing::warn!(tokens = entries.len(), "{e}; retrying each sequence alone");
                    self.retry_alone(&entries);
                }
            }
        }
        // 4. At most one image piece, so running streams keep flowing.
        for k in 0..n {
            let i = (self.step as usize + k) % n;
            let is_image = self.slots[i]
                .active
                .as_ref()
                .is_some_and(|a| matches!(a.parts.get(a.next), Some(Part::Image { .. })));
            if is_image {
                self.eval_image(i);
                break;
            }
        }
    }

    /// Puts `entries` into the batch and records where each sequence's
    /// logits will be.
    /// A sequence's first row with logits is its pending token's (or its
    /// prompt's last); the rows after it are its guesses'.
    fn fill_batch(&mut self, entries: &[Entry]) -> Result<(), EngineError> {
        self.batch.clear();
        for e in entries {
            if let Some(a) = self.slots[e.seq].active.as_mut() {
                a.logits_at = None;
                a.draft.iter_mut().for_each(|g| g.at = None);
            }
        }
        for e in entries {
            self.batch
                .add(e.token, e.pos, &[e.seq as i32], e.logits)
                .map_err(internal)?;
            if e.logits
                && let Some(a) = self.slots[e.seq].active.as_mut()
            {
                let row = self.batch.n_tokens() - 1;
                match a.logits_at {
                    None => a.logits_at = Some(row),
                    Some(_) => {
                        if let Some(g) = a.draft.iter_mut().find(|g| g.at.is_none()) {
                            g.at = Some(row);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn sample_batch(&mut self) {
        for i in 0..self.slots.len() {
            let Some(a) = self.slots[i].active.as_mut() else {
                continue;
            };
            let Some(idx) = a.logits_at.take() else {
                continue;
            };
            let draft = std::mem::take(&mut a.draft);
            if draft.is_empty() {
                self.sample(i, idx);
            } else {
                self.sample_guessed(i, idx, draft);
            }
        }
    }

    fn retry_alone(&mut self, entries: &[Entry]) {
        let failed = isolate(entries, |seq, group| {
            // llama.cpp may have kept some of the failed batch's ubatches:
            // drop this step's cells of the sequence before trying again.
            let _ = self.ctx.clear_kv_cache_seq(
                Some(seq as u32),
                Some(group[0].pos.max(0) as u32),
                None,
            );
            self.fill_batch(group)?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| internal(format!("llama_decode failed for this request: {e}")))?;
            self.sample_batch();
            Ok::<(), EngineError>(())
        });
        for (seq, e) in failed {
            let _request = self.span(seq).entered();
            tracing::error!(seq, "{e}");
            self.fail(seq, e);
        }
    }

    fn eval_image(&mut self, i: usize) {
        let started = Instant::now();
        let mut result = self.eval_piece(i);
        // llama.cpp's Pixtral graph can turn a context's encoder output to
        // NaN for good (README, "Non-finite output"): a fresh projector
        // context, then one more try, from a clean cut of the sequence.
        if let Some(Err(e @ EngineError::NonFiniteEncoderOutput)) = &result
            && let Some(pre) = self.mtmd.clone()
        {
            let _request = self.span(i).entered();
            tracing::warn!(
                seq = i,
                "{e}; reloading the vision projector and encoding again"
            );
            let from = self.slots[i]
                .active
                .as_ref()
                .map_or(0, |a| a.pos.max(0) as u32);
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(i as u32), Some(from), None);
            match pre.reload() {
                Ok(()) => result = self.eval_piece(i),
                Err(e) => tracing::error!("reloading the vision projector failed: {e}"),
            }
        }
        let Some(result) = result else {
            return;
        };
        self.record_cache();
        match result {
            Ok((done, item, last)) => {
                let m = &self.shared.metrics;
                if done.encoded > 0 {
                    m.image_encode.observe(done.encode_secs);
                }
                m.image_eval.observe(started.elapsed().as_secs_f64());
                if let Some(a) = self.slots[i].active.as_mut() {
                    a.pos = done.pos;
                    a.usage.image_chunks_cached += done.cached;
                    a.cells += item.tokens();
                    a.next += 1;
                }
                self.slots[i].cached.push(item);
                if last {
                    self.sample(i, -1);
                }
            }
            Err(e) => self.fail(i, e),
        }
    }

    /// Evaluates the next part of sequence `i`, an image piece; `None`
    /// when the sequence has gone or its next part is not an image.
    fn eval_piece(
        &mut self,
        i: usize,
    ) -> Option<Result<(crate::engine::embed::Evaluated, Item, bool), EngineError>> {
        let n_batch = self.n_batch as i32;
        let a = self.slots[i].active.as_ref()?;
        let Some(Part::Image { image, item }) = a.parts.get(a.next) else {
            return None;
        };
        let Some(piece) = a.job.request.images.get(*image) else {
            return Some(Err(EngineError::Internal(
                "image piece out of range".into(),
            )));
        };
        let Some(mtmd) = self.mtmd.as_ref() else {
            return Some(Err(EngineError::Internal("no vision context".into())));
        };
        let last = a.next + 1 == a.parts.len();
        let mut mtmd = mtmd.write();
        Some(
            crate::engine::embed::eval_piece(
                &mut mtmd,
                &mut self.ctx,
                self.model,
                &mut self.embeddings,
                piece,
                a.pos,
                i as i32,
                n_batch,
                last,
            )
            .map(|done| (done, *item, last)),
        )
    }

    /// The embedding cache's figures, for `/metrics`.
    fn record_cache(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let (s, m) = (self.embeddings.stats(), &self.shared.metrics);
        m.image_cache_hits.store(s.hits, Relaxed);
        m.image_cache_misses.store(s.misses, Relaxed);
        m.image_cache_evictions.store(s.evictions, Relaxed);
        m.image_cache_bytes.store(s.bytes as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: usize, pos: i32, logits: bool) -> Entry {
        Entry {
            seq,
            token: LlamaToken(7),
            pos,
            logits,
        }
    }

    #[test]
    fn only_the_sequence_that_fails_alone_is_failed() {
        let entries = [
            entry(0, 10, true),
            entry(2, 3, false),
            entry(1, 5, true),
            entry(2, 4, true),
        ];
        let mut tried = Vec::new();
        let failed = isolate(&entries, |seq, group| {
            tried.push((seq, group.len()));
            assert!(group.iter().all(|e| e.seq == seq));
            if seq == 2 { Err("no cell") } else { Ok(()) }
        });
        assert_eq!(failed, vec![(2, "no cell")]);
        // Each sequence exactly once, in order of first appearance, whole.
        assert_eq!(tried, vec![(0, 1), (2, 2), (1, 1)]);
    }

    #[test]
    fn a_group_keeps_its_positions_in_order() {
        let entries = [entry(3, 7, false), entry(1, 0, true), entry(3, 8, true)];
        let groups = group_by_seq(&entries);
        assert_eq!(groups[0].1, vec![entry(3, 7, false), entry(3, 8, true)]);
        assert_eq!(groups[1].1, vec![entry(1, 0, true)]);
    }
}
