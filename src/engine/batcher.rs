//! Continuous batching. Up to `--parallel` sequences share one llama.cpp
//! context. Every step puts all generating sequences' next tokens and a
//! budget of prompt tokens into one `llama_batch`, then evaluates at most one
//! image piece, so a new many-tile image never freezes running streams for
//! its whole prefill. A free sequence is chosen to reuse the longest cached
//! prefix (images matched by content hash), least recently used first.

use super::scheduler::{FreeSlot, Item, choose_slot};
use super::text::TextAssembler;
use super::{EngineError, Event, FinishReason, Job, PromptUsage, Shared};
use crate::metrics::Metrics;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdInputChunks, MtmdInputText, MtmdTokenizeError,
};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;
use tokio::sync::mpsc;

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(e.to_string())
}

/// One piece of a tokenized prompt.
enum Part {
    Token(LlamaToken),
    /// An image piece with its wrapper tokens, preprocessed, not yet encoded.
    Image {
        chunks: MtmdInputChunks,
        item: Item,
    },
}

impl Part {
    fn item(&self) -> Item {
        match self {
            Part::Token(t) => Item::Token(t.0),
            Part::Image { item, .. } => *item,
        }
    }
}

/// A job occupying a sequence.
struct Active {
    job: Job,
    parts: Vec<Part>,
    /// Next part to evaluate; `parts.len()` once the prompt is in.
    next: usize,
    /// Next KV position of the sequence.
    n_past: i32,
    usage: PromptUsage,
    started: bool,
    sampler: LlamaSampler,
    text: TextAssembler,
    completion_tokens: u32,
    /// Sampled and sent, to be decoded in the next step.
    pending: Option<LlamaToken>,
    /// Index in this step's batch of the logits to sample from.
    logits_at: Option<i32>,
    /// When the previous token was sampled (inter-token latency).
    last_token_at: Option<Instant>,
}

impl Active {
    fn prefilling(&self) -> bool {
        self.next < self.parts.len()
    }
}

struct Slot {
    /// What the sequence's KV cache holds, in order.
    cached: Vec<Item>,
    last_used: u64,
    active: Option<Active>,
}

pub(super) struct Batcher<'m> {
    pub shared: &'m Shared,
    pub model: &'m LlamaModel,
    pub ctx: LlamaContext<'m>,
    pub mtmd: Option<MtmdContext>,
    pub n_batch: usize,
    /// KV cells each sequence may use: `--ctx-size / --parallel`.
    pub n_ctx_seq: u32,
    pub marker: String,
    /// BOS text to strip from a rendered prompt when tokenisation adds BOS itself.
    pub bos_text: Option<String>,
    slots: Vec<Slot>,
    step: u64,
    batch: LlamaBatch<'static>,
}

impl<'m> Batcher<'m> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: &'m Shared,
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        mtmd: Option<MtmdContext>,
        n_batch: usize,
        parallel: usize,
        marker: String,
        bos_text: Option<String>,
    ) -> Self {
        let n_ctx_seq = ctx.n_ctx() / parallel.max(1) as u32;
        Batcher {
            shared,
            model,
            ctx,
            mtmd,
            n_batch: n_batch.max(parallel + 1),
            n_ctx_seq,
            marker,
            bos_text,
            slots: (0..parallel.max(1))
                .map(|_| Slot {
                    cached: Vec::new(),
                    last_used: 0,
                    active: None,
                })
                .collect(),
            step: 0,
            batch: LlamaBatch::new(n_batch.max(parallel + 1), 1),
        }
    }

    fn active_count(&self) -> usize {
        self.slots.iter().filter(|s| s.active.is_some()).count()
    }

    /// Serves until the job channel closes and every sequence has finished.
    pub fn run(&mut self, rx: &mut mpsc::Receiver<Job>) {
        loop {
            if !self.admit(rx) {
                return;
            }
            self.reap();
            if self.active_count() == 0 {
                continue;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| self.step()));
            if outcome.is_err() {
                self.fail_all(EngineError::Internal(
                    "a batch step panicked; the engine recovered".into(),
                ));
            }
        }
    }

    /// Moves queued jobs into free sequences. Blocks only when idle.
    /// Returns false when the channel is closed and nothing is running.
    fn admit(&mut self, rx: &mut mpsc::Receiver<Job>) -> bool {
        while self.slots.iter().any(|s| s.active.is_none()) {
            let job = if self.active_count() == 0 {
                match rx.blocking_recv() {
                    Some(j) => j,
                    None => return false,
                }
            } else {
                match rx.try_recv() {
                    Ok(j) => j,
                    Err(_) => break,
                }
            };
            self.shared.set_queued(rx.len());
            self.start(job);
        }
        true
    }

    fn start(&mut self, job: Job) {
        if job.events.is_closed() {
            return; // the client left while queued: never run it
        }
        if job.deadline.is_some_and(|d| Instant::now() > d) {
            let _ = job.events.send(Event::Failed(EngineError::Timeout));
            return;
        }
        let (parts, mut usage) = match self.prepare(&job) {
            Ok(p) => p,
            Err(e) => {
                let _ = job.events.send(Event::Failed(e));
                return;
            }
        };
        if job.request.count_only {
            let _ = job.events.send(Event::Started(usage));
            let _ = job.events.send(Event::Finished {
                reason: FinishReason::Length,
                completion_tokens: 0,
            });
            return;
        }
        if usage.prompt_tokens == 0 || usage.prompt_tokens >= self.n_ctx_seq {
            let _ = job.events.send(Event::Failed(EngineError::PromptTooLong {
                prompt_tokens: usage.prompt_tokens,
                n_ctx: self.n_ctx_seq,
            }));
            return;
        }
        let sampler = match job
            .request
            .sampling
            .sampler(self.model, job.request.grammar.as_deref())
        {
            Ok(s) => s,
            Err(e) => {
                let _ = job.events.send(Event::Failed(EngineError::Grammar(e)));
                return;
            }
        };
        let items: Vec<Item> = parts.iter().map(Part::item).collect();
        let free: Vec<FreeSlot> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active.is_none())
            .map(|(index, s)| FreeSlot {
                index,
                cached: &s.cached,
                last_used: s.last_used,
            })
            .collect();
        let Some((index, mut reuse)) = choose_slot(&free, &items) else {
            return;
        };
        let keep_pos: u32 = items[..reuse].iter().map(Item::positions).sum();
        let removed = self
            .ctx
            .clear_kv_cache_seq(Some(index as u32), Some(keep_pos), None)
            .unwrap_or(false);
        if !removed {
            let _ = self.ctx.clear_kv_cache_seq(Some(index as u32), None, None);
            reuse = 0;
        }
        let slot = &mut self.slots[index];
        slot.cached.truncate(reuse);
        usage.cached_tokens = items[..reuse].iter().map(Item::tokens).sum();
        let n_past = slot.cached.iter().map(Item::positions).sum::<u32>() as i32;
        slot.active = Some(Active {
            sampler,
            text: TextAssembler::new(job.request.stop.clone()),
            job,
            parts,
            next: reuse,
            n_past,
            usage,
            started: false,
            completion_tokens: 0,
            pending: None,
            logits_at: None,
            last_token_at: None,
        });
        self.shared.set_active(self.active_count());
    }

    /// Tokenizes a prompt: text between markers exactly as mtmd does, each
    /// image piece through mtmd on its own (preprocessed, not encoded).
    fn prepare(&self, job: &Job) -> Result<(Vec<Part>, PromptUsage), EngineError> {
        let mut prompt = job.request.prompt.as_str();
        if let Some(bos) = &self.bos_text {
            prompt = prompt.strip_prefix(bos.as_str()).unwrap_or(prompt);
        }
        let vocab = self.model.vocab();
        let mut parts = Vec::new();
        if vocab.should_add_bos() {
            parts.push(Part::Token(vocab.bos()));
        }
        let segments: Vec<&str> = match &self.mtmd {
            Some(_) => prompt.split(self.marker.as_str()).collect(),
            None => vec![prompt],
        };
        if segments.len() != job.request.images.len() + 1 {
            return Err(internal("image count does not match the prompt's markers"));
        }
        let mut usage = PromptUsage::default();
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                let img = &job.request.images[i - 1];
                let mtmd = self
                    .mtmd
                    .as_ref()
                    .ok_or_else(|| internal("no vision context"))?;
                let bitmap = MtmdBitmap::from_image_data(img.width, img.height, &img.rgb)
                    .map_err(|e| EngineError::Image(e.to_string()))?;
                let text = MtmdInputText {
                    text: self.marker.clone(),
                    add_special: false,
                    parse_special: true,
                };
                let chunks = mtmd.tokenize(text, &[&bitmap]).map_err(|e| match e {
                    MtmdTokenizeError::ImagePreprocessingError => {
                        EngineError::Image("preprocessing failed".into())
                    }
                    other => internal(other),
                })?;
                let tokens = chunks.total_tokens() as u32;
                let item = Item::Image {
                    hash: piece_hash(img),
                    tokens,
                    positions: chunks.total_positions().max(0) as u32,
                };
                usage.image_tokens += tokens;
                parts.push(Part::Image { chunks, item });
            }
            for t in vocab.tokenize(seg.as_bytes(), false, true) {
                parts.push(Part::Token(t));
            }
        }
        if vocab.should_add_eos() {
            parts.push(Part::Token(vocab.eos()));
        }
        usage.prompt_tokens = parts.iter().map(|p| p.item().tokens()).sum();
        Ok((parts, usage))
    }

    /// Drops sequences whose client went away or whose deadline passed.
    fn reap(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            let Some(a) = &self.slots[i].active else {
                continue;
            };
            if a.job.events.is_closed() {
                self.release(i);
            } else if a.job.deadline.is_some_and(|d| now > d) {
                if a.started {
                    self.finish(i, FinishReason::Length, true);
                } else {
                    self.fail(i, EngineError::Timeout);
                }
            }
        }
    }

    fn step(&mut self) {
        self.step += 1;
        self.batch.clear();
        let n = self.slots.len();
        let mut budget = self.n_batch;
        // 1. Every generating sequence's last token.
        for i in 0..n {
            let n_ctx_seq = self.n_ctx_seq as i32;
            let Some(a) = self.slots[i].active.as_mut() else {
                continue;
            };
            a.logits_at = None;
            let Some(tok) = a.pending.take() else {
                continue;
            };
            if a.n_past >= n_ctx_seq {
                self.finish(i, FinishReason::Length, true);
                continue;
            }
            if self.batch.add(tok, a.n_past, &[i as i32], true).is_err() {
                a.pending = Some(tok);
                continue;
            }
            a.logits_at = Some(self.batch.n_tokens() - 1);
            a.n_past += 1;
            self.slots[i].cached.push(Item::Token(tok.0));
            budget = budget.saturating_sub(1);
        }
        // 2. Prompt text, round-robin from a rotating start, within the budget.
        for k in 0..n {
            let i = (self.step as usize + k) % n;
            let slot = &mut self.slots[i];
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            while budget > 0 && a.next < a.parts.len() {
                let Part::Token(tok) = a.parts[a.next] else {
                    break;
                };
                let last = a.next + 1 == a.parts.len();
                if self.batch.add(tok, a.n_past, &[i as i32], last).is_err() {
                    budget = 0;
                    break;
                }
                if last {
                    a.logits_at = Some(self.batch.n_tokens() - 1);
                }
                a.n_past += 1;
                a.next += 1;
                slot.cached.push(Item::Token(tok.0));
                budget -= 1;
            }
        }
        // 3. One decode for all of them.
        if self.batch.n_tokens() > 0
            && let Err(e) = self.ctx.decode(&mut self.batch)
        {
            let in_batch: Vec<usize> = (0..n)
                .filter(|&i| {
                    self.slots[i]
                        .active
                        .as_ref()
                        .is_some_and(|a| a.logits_at.is_some() || a.prefilling())
                })
                .collect();
            for i in in_batch {
                self.fail(i, internal(format!("llama_decode failed: {e}")));
            }
            return;
        }
        // 4. Sample where logits are ready.
        for i in 0..n {
            if let Some(idx) = self.slots[i].active.as_ref().and_then(|a| a.logits_at) {
                self.sample(i, idx);
            }
        }
        // 5. At most one image piece, so running streams keep flowing.
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

    fn eval_image(&mut self, i: usize) {
        let started = Instant::now();
        let n_batch = self.n_batch as i32;
        let result = {
            let Some(a) = self.slots[i].active.as_mut() else {
                return;
            };
            let Some(Part::Image { chunks, item }) = a.parts.get(a.next) else {
                return;
            };
            let last = a.next + 1 == a.parts.len();
            let Some(mtmd) = self.mtmd.as_mut() else {
                return;
            };
            chunks
                .eval_chunks(mtmd, &mut self.ctx, a.n_past, i as i32, n_batch, last)
                .map(|n_past| (n_past, *item, last))
        };
        match result {
            Ok((n_past, item, last)) => {
                self.shared
                    .metrics
                    .image_encode
                    .observe(started.elapsed().as_secs_f64());
                if let Some(a) = self.slots[i].active.as_mut() {
                    a.n_past = n_past;
                    a.next += 1;
                }
                self.slots[i].cached.push(item);
                if last {
                    self.sample(i, -1);
                }
            }
            Err(e) => self.fail(i, EngineError::Image(format!("encoding failed: {e}"))),
        }
    }

    /// Samples the next token of sequence `i` from batch index `idx`.
    fn sample(&mut self, i: usize, idx: i32) {
        let n_ctx_seq = self.n_ctx_seq as i32;
        let vocab = self.model.vocab();
        let Some(a) = self.slots[i].active.as_mut() else {
            return;
        };
        if !a.started {
            a.started = true;
            let m = &self.shared.metrics;
            Metrics::add(&m.prompt_tokens, u64::from(a.usage.prompt_tokens));
            Metrics::add(&m.cached_tokens, u64::from(a.usage.cached_tokens));
            Metrics::add(&m.image_tokens, u64::from(a.usage.image_tokens));
            if a.job.events.send(Event::Started(a.usage)).is_err() {
                return self.release(i);
            }
        }
        let max_tokens = a.job.request.max_tokens.unwrap_or(u32::MAX);
        // Every counted token must have a place in the context.
        if a.completion_tokens >= max_tokens || a.n_past >= n_ctx_seq {
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
        let piece = vocab.token_to_piece(tok, false, None);
        let step = a.text.push(&piece);
        if !step.text.is_empty() && a.job.events.send(Event::Text(step.text)).is_err() {
            return self.release(i); // client gone: free the sequence now
        }
        if step.stopped {
            return self.finish(i, FinishReason::Stop, false);
        }
        if a.completion_tokens >= max_tokens {
            return self.finish(i, FinishReason::Length, true);
        }
        a.pending = Some(tok);
    }

    /// Takes the job out of sequence `i`, keeping the gauges exact before
    /// the client hears anything.
    fn vacate(&mut self, i: usize) -> Option<Active> {
        let slot = &mut self.slots[i];
        slot.last_used = self.step;
        let a = slot.active.take();
        self.shared.set_active(self.active_count());
        a
    }

    fn finish(&mut self, i: usize, reason: FinishReason, flush: bool) {
        if let Some(mut a) = self.vacate(i) {
            if !a.started {
                let _ = a.job.events.send(Event::Started(a.usage));
            }
            if flush {
                let tail = a.text.finish();
                if !tail.is_empty() {
                    let _ = a.job.events.send(Event::Text(tail));
                }
            }
            let _ = a.job.events.send(Event::Finished {
                reason,
                completion_tokens: a.completion_tokens,
            });
        }
    }

    /// Frees a sequence without a word (its client is gone). The KV cache
    /// keeps what was evaluated, for later reuse.
    fn release(&mut self, i: usize) {
        self.vacate(i);
    }

    /// Ends one sequence with an error; its KV cache is dropped.
    fn fail(&mut self, i: usize, error: EngineError) {
        self.slots[i].cached.clear();
        let _ = self.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
        if let Some(a) = self.vacate(i) {
            let _ = a.job.events.send(Event::Failed(error));
        }
    }

    fn fail_all(&mut self, error: EngineError) {
        tracing::error!("{error}");
        for i in 0..self.slots.len() {
            self.fail(i, error.clone());
        }
        self.ctx.clear_kv_cache();
    }
}

/// Identity of an image piece for prefix reuse: its size and pixels.
fn piece_hash(img: &crate::vision::DecodedImage) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    img.width.hash(&mut h);
    img.height.hash(&mut h);
    img.rgb.hash(&mut h);
    h.finish()
}
