//! A draft model for speculation (`--model-draft`): a small model with the
//! same vocabulary guesses the next tokens of each sequence greedily, and
//! the batcher checks the guesses as it checks prompt lookup's
//! (`batcher/draft.rs`). The draft model reads a sequence's text only (it
//! has no projector: images are left out of its copy), in its own context
//! with one KV stream per sequence, kept in step with the sequence by
//! trimming what no longer matches and decoding what is new.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

pub struct Drafter<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// The tokens each sequence's draft cache holds, in order.
    held: Vec<Vec<i32>>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
}

impl<'m> Drafter<'m> {
    pub fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        parallel: usize,
        n_batch: usize,
    ) -> Self {
        Drafter {
            model,
            ctx,
            held: vec![Vec::new(); parallel],
            batch: LlamaBatch::new(n_batch.max(1), 1),
            n_batch: n_batch.max(1),
        }
    }

    /// Up to `max` greedy guesses after `text` (sequence `seq`'s tokens,
    /// images left out); none when the draft model cannot run.
    pub fn guess(&mut self, seq: usize, text: &[i32], max: usize) -> Vec<i32> {
        if max == 0 || text.is_empty() || seq >= self.held.len() {
            return Vec::new();
        }
        match self.guess_or_fail(seq, text, max) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(seq, "the draft model failed ({e}); no guesses this step");
                self.forget(seq);
                Vec::new()
            }
        }
    }

    fn guess_or_fail(&mut self, seq: usize, text: &[i32], max: usize) -> Result<Vec<i32>, String> {
        // What the cache holds and the sequence still says; the last token
        // is decoded again when nothing is new (its logits are wanted).
        let held = &self.held[seq];
        let mut common = held.iter().zip(text).take_while(|(a, b)| a == b).count();
        common = common.min(text.len() - 1);
        self.trim(seq, common)?;
        let mut pos = common;
        let mut row = 0;
        for chunk in text[common..].chunks(self.n_batch) {
            self.batch.clear();
            for (k, &t) in chunk.iter().enumerate() {
                let last = pos + k + 1 == text.len();
                self.batch
                    .add(LlamaToken(t), (pos + k) as i32, &[seq as i32], last)
                    .map_err(|e| e.to_string())?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| e.to_string())?;
            pos += chunk.len();
            row = self.batch.n_tokens() - 1;
            self.held[seq].extend_from_slice(chunk);
        }
        let mut out = Vec::with_capacity(max);
        loop {
            let next = self.argmax(row);
            if self.model.vocab().is_eog(LlamaToken(next)) {
                break;
            }
            out.push(next);
            if out.len() == max {
                break;
            }
            self.batch.clear();
            self.batch
                .add(LlamaToken(next), pos as i32, &[seq as i32], true)
                .map_err(|e| e.to_string())?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| e.to_string())?;
            self.held[seq].push(next);
            pos += 1;
            row = 0;
        }
        Ok(out)
    }

    fn argmax(&self, row: i32) -> i32 {
        self.ctx
            .get_logits_ith(row)
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as i32)
    }

    /// Keeps the first `keep` tokens of sequence `seq`'s draft cache.
    fn trim(&mut self, seq: usize, keep: usize) -> Result<(), String> {
        if self.held[seq].len() > keep {
            self.ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(keep as u32), None)
                .map_err(|e| e.to_string())?;
            self.held[seq].truncate(keep);
        }
        Ok(())
    }

    fn forget(&mut self, seq: usize) {
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.held[seq].clear();
    }
}
