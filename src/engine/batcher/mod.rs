//! Continuous batching. Up to `--parallel` sequences share one llama.cpp
//! context. Every step puts all generating sequences' next tokens and a
//! budget of prompt tokens into one `llama_batch`, then evaluates at most one
//! image piece, so a new many-tile image never freezes running streams for
//! its whole prefill. A free sequence is chosen to reuse the longest cached
//! prefix (images matched by content hash), least recently used first.
//!
//! Two counts per sequence, never mixed: **cells** are the KV-cache cells it
//! holds (what capacity, admission and usage count), **pos** is the next RoPE
//! position (what llama.cpp is given). Under M-RoPE an image takes many cells
//! and few positions, so "context full" is always a question about cells.
//!
//! Rooms: this file admits jobs into sequences; `prepare` tokenizes prompts;
//! `step` builds and decodes one batch (and isolates a failing sequence);
//! `events` samples and reports to the client.

mod draft;
mod events;
mod prepare;
mod step;

use super::channel::EventSender;
use super::embed_cache::EmbeddingCache;
use super::error::EngineError;
use super::job::{Job, Queue, Shared};
use super::reasoning::Part as Said;
use super::request::{Event, FinishReason, PromptUsage};
use super::scheduler::{FreeSlot, Item, choose_slot};
use super::text::TextAssembler;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(e.to_string())
}

/// One piece of a tokenized prompt.
enum Part {
    Token(LlamaToken),
    /// An image piece (an index into the job's preprocessed pieces) with
    /// what it occupies.
    Image {
        image: usize,
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

/// A job occupying a sequence (one choice of it, when `n` > 1).
struct Active {
    /// Shared by the job's choices.
    job: Arc<Job>,
    /// This choice's client channel.
    events: EventSender,
    /// The other choices, until the prompt is in: then each gets its own
    /// sequence, a copy of this one's cells.
    forks: Vec<EventSender>,
    parts: Vec<Part>,
    /// Next part to evaluate; `parts.len()` once the prompt is in.
    next: usize,
    /// Next RoPE position of the sequence.
    pos: i32,
    /// KV cells the sequence holds (its capacity is `n_ctx_seq`).
    cells: u32,
    usage: PromptUsage,
    started: bool,
    sampler: LlamaSampler,
    text: TextAssembler,
    completion_tokens: u32,
    /// Sampled and sent, to be decoded in the next step.
    pending: Option<LlamaToken>,
    /// Index in this step's batch of the logits to sample from.
    logits_at: Option<i32>,
    /// Guessed tokens decoded after `pending` this step (`draft.rs`).
    draft: Vec<Guess>,
    /// Rests between guesses that keep missing.
    backoff: crate::engine::speculate::Backoff,
    /// When the previous token was sampled (inter-token latency).
    last_token_at: Option<Instant>,
    /// For templates that think: where the answer's thoughts end, and how
    /// many sampled tokens were thought (`reasoning_tokens`).
    thought: Option<super::reasoning::Splitter>,
    reasoning_tokens: u32,
}

impl Active {
    /// New answer text as events, thoughts apart from the answer when the
    /// template thinks (the one place the answer is split); a token whose
    /// text leaves the answer inside its thoughts counts as reasoning.
    /// `end` flushes what the splitter held back.
    fn split(&mut self, text: String, end: bool) -> Vec<Event> {
        let Some(t) = self.thought.as_mut() else {
            return (!text.is_empty())
                .then_some(Event::Text(text))
                .into_iter()
                .collect();
        };
        let mut parts = t.push(&text);
        if end {
            parts.extend(t.finish());
        } else if t.in_thought() {
            self.reasoning_tokens += 1;
        } else if t.answering() {
            self.thought = None; // the rest is answer, passed as it comes
        }
        parts
            .into_iter()
            .map(|p| match p {
                Said::Reasoning(r) => Event::Reasoning(r),
                Said::Content(c) => Event::Text(c),
            })
            .collect()
    }

    /// A choice that has evaluated nothing yet.
    fn new(job: Arc<Job>, events: EventSender, sampler: LlamaSampler, usage: PromptUsage) -> Self {
        Active {
            thought: job
                .request
                .think
                .map(|(tags, opened)| super::reasoning::Splitter::new(tags, opened)),
            reasoning_tokens: 0,
            text: TextAssembler::new(job.request.stop.clone()),
            sampler,
            job,
            events,
            forks: Vec::new(),
            parts: Vec::new(),
            next: 0,
            pos: 0,
            cells: 0,
            usage,
            started: false,
            completion_tokens: 0,
            pending: None,
            logits_at: None,
            draft: Vec::new(),
            backoff: Default::default(),
            last_token_at: None,
        }
    }
}

/// A guessed token in this step's batch (`draft.rs`).
#[derive(Debug, Clone, Copy)]
struct Guess {
    token: LlamaToken,
    pos: i32,
    /// Its row in the batch (its logits), once the batch is filled.
    at: Option<i32>,
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
    pub mtmd: Option<std::sync::Arc<super::pieces::Preprocessor>>,
    pub n_batch: usize,
    /// KV cells each sequence may use: `--ctx-size / --parallel`.
    pub n_ctx_seq: u32,
    slots: Vec<Slot>,
    /// Free sequences promised to running jobs' other choices.
    reserved: usize,
    /// Projector output per image piece, across requests and sequences.
    embeddings: EmbeddingCache,
    step: u64,
    batch: LlamaBatch<'static>,
    /// Most tokens guessed per sequence and step (`--draft-max`); 0 = no
    /// speculation.
    pub draft_max: usize,
    /// The draft model that guesses (`--model-draft`); without it, prompt
    /// lookup does.
    pub drafter: Option<crate::engine::drafter::Drafter<'m>>,
}

impl<'m> Batcher<'m> {
    pub fn new(
        shared: &'m Shared,
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        mtmd: Option<std::sync::Arc<super::pieces::Preprocessor>>,
        n_batch: usize,
        parallel: usize,
        image_cache_bytes: usize,
    ) -> Self {
        let n_ctx_seq = ctx.n_ctx() / parallel as u32;
        Batcher {
            shared,
            model,
            ctx,
            mtmd,
            n_batch: n_batch.max(parallel + 1),
            n_ctx_seq,
            slots: (0..parallel)
                .map(|_| Slot {
                    cached: Vec::new(),
                    last_used: 0,
                    active: None,
                })
                .collect(),
            reserved: 0,
            embeddings: EmbeddingCache::new(image_cache_bytes),
            step: 0,
            batch: LlamaBatch::new(n_batch.max(parallel + 1), 1),
            draft_max: 0,
            drafter: None,
        }
    }

    /// llama.cpp's own count of the tokens it has decoded, for `/metrics`:
    /// the measure that usage, counted by Tessera, is checked against.
    fn note_decoded(&mut self) {
        let t = self.ctx.timings();
        let n = i64::from(t.n_p_eval()) + i64::from(t.n_eval());
        self.shared
            .metrics
            .llama_decoded_tokens
            .store(n.max(0) as u64, Ordering::Relaxed);
    }

    /// The span of the request sequence `i` serves, for its log lines.
    fn span(&self, i: usize) -> tracing::Span {
        self.slots
            .get(i)
            .and_then(|s| s.active.as_ref())
            .map_or_else(tracing::Span::none, |a| a.job.span.clone())
    }

    fn active_count(&self) -> usize {
        self.slots.iter().filter(|s| s.active.is_some()).count()
    }

    /// Free sequences not promised to a running job's other choices.
    fn open_count(&self) -> usize {
        (self.slots.len() - self.active_count()).saturating_sub(self.reserved)
    }

    /// Serves until the job channel closes and every sequence has finished.
    pub fn run(&mut self, queue: &Queue) {
        loop {
            if !self.admit(queue) {
                return;
            }
            #[cfg(feature = "testing")]
            if self.shared.fault.swap(false, Ordering::Relaxed) {
                panic!("injected engine fault (test hook)");
            }
            // Queued clients that left or ran out of time give their places back now.
            queue.prune();
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
            self.note_decoded();
        }
    }

    /// Moves queued jobs into free sequences. Blocks only when idle.
    /// Returns false when the channel is closed and nothing is running.
    fn admit(&mut self, queue: &Queue) -> bool {
        while self.open_count() > 0 {
            let open = self.open_count();
            let job = if self.active_count() == 0 {
                match queue.pop_wait() {
                    Some(j) => j,
                    None => return false,
                }
            } else {
                // A job of several choices starts when that many sequences are open.
                match queue.try_pop_if(|j| j.choices.len() <= open) {
                    Some(j) => j,
                    None => break,
                }
            };
            if job.choices.len() > self.slots.len() {
                job.fail(internal(format!(
                    "n = {} choices need as many sequences; the server has {}",
                    job.choices.len(),
                    self.slots.len()
                )));
                continue;
            }
            // A panic while preparing one request costs that request only
            // (its client sees the dropped channel as an error).
            let span = job.span.clone();
            if catch_unwind(AssertUnwindSafe(|| self.start(job))).is_err() {
                let _request = span.entered();
                tracing::error!("preparing a request panicked; it was dropped");
                self.forget_idle_caches();
            }
        }
        true
    }

    /// After a panic in `start`, idle sequences' cache contents are unknown.
    fn forget_idle_caches(&mut self) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.active.is_none() {
                slot.cached.clear();
                let _ = self.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
            }
        }
    }

    fn start(&mut self, mut job: Job) {
        use super::queue::Queued;
        if job.departed() {
            return; // the client left while queued: never run it
        }
        if job.deadline.is_some_and(|d| Instant::now() > d) {
            return job.fail(EngineError::Timeout);
        }
        let (parts, mut usage) = match self.prepare(&job) {
            Ok(p) => p,
            Err(e) => return job.fail(e),
        };
        // Cells, not positions: the prompt must leave a cell for the answer.
        if usage.prompt_tokens == 0 || usage.prompt_tokens >= self.n_ctx_seq {
            return job.fail(EngineError::PromptTooLong {
                prompt_tokens: usage.prompt_tokens,
                n_ctx: self.n_ctx_seq,
            });
        }
        let sampler = match self.sampler(&job, 0) {
            Ok(s) => s,
            Err(e) => return job.fail(e),
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
        // A pooled vector covers one decode: an embedding input is decoded
        // whole, never from a cached prefix.
        if job.request.embed {
            reuse = 0;
        }
        // llama.cpp removes by position; the kept prefix ends at a position.
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
        let cells: u32 = slot.cached.iter().map(Item::tokens).sum();
        usage.cached_tokens = cells;
        let pos = slot.cached.iter().map(Item::positions).sum::<u32>() as i32;
        let mut choices = std::mem::take(&mut job.choices).into_iter();
        let Some(events) = choices.next() else {
            return; // no choice to answer to
        };
        let forks: Vec<EventSender> = choices.collect();
        self.reserved += forks.len();
        let mut a = Active::new(Arc::new(job), events, sampler, usage);
        (a.parts, a.next, a.pos, a.cells, a.forks) = (parts, reuse, pos, cells, forks);
        self.slots[index].active = Some(a);
        self.shared.set_active(self.active_count());
    }

    /// Choice `k`'s sampler: the same chain, its own seed.
    fn sampler(&self, job: &Job, k: u32) -> Result<LlamaSampler, EngineError> {
        let mut params = job.request.sampling.clone();
        params.seed = params.seed.wrapping_add(k);
        params
            .sampler(self.model, job.request.grammar.as_ref(), self.n_ctx_seq)
            .map_err(EngineError::Grammar)
    }

    /// Drops sequences whose client went away or whose deadline passed.
    fn reap(&mut self) {
        let now = Instant::now();

        for i in 0..self.slots.len() {
            let Some(a) = &self.slots[i].active else {
                continue;
            };
            if a.events.is_closed() && a.forks.iter().all(EventSender::is_closed) {
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
}
