//! What crosses the engine's channel: a generation request and the events
//! it answers with.

use super::error::EngineError;
use super::sampling::{Grammar, SamplingParams};
use super::{logprobs, pieces, reasoning};
use llama_cpp_2::token::LlamaToken;

/// The prompt's text as tokens: one segment before each image piece and
/// one after the last (`segments.len() == image pieces + 1`), BOS and EOS
/// in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenizedPrompt {
    pub segments: Vec<Vec<LlamaToken>>,
}

impl TokenizedPrompt {
    pub fn text_tokens(&self) -> usize {
        self.segments.iter().map(Vec::len).sum()
    }
}

/// One generation, as the engine takes it.
#[derive(Debug)]
pub struct GenerateRequest {
    /// The prompt's text, tokenized off the engine thread: one segment
    /// before each image piece and one after the last.
    pub prompt: TokenizedPrompt,
    /// Image pieces (tiles and thumbnails), preprocessed off the engine
    /// thread, in marker order.
    pub images: Vec<pieces::ImagePiece>,
    pub sampling: SamplingParams,
    pub max_tokens: Option<u32>,
    /// Choices to generate from the one prompt (OpenAI's `n`, at most
    /// `--parallel`: each takes a sequence).
    pub n: u32,
    pub stop: Vec<String>,
    /// GBNF grammar constraining the answer (structured output, tool calls).
    pub grammar: Option<Grammar>,
    /// Control tokens shown in the answer's text rather than hidden (a
    /// tool-call format's markers, for its parser).
    pub shown_tokens: Vec<i32>,
    /// Report each token's log-probability and this many alternatives.
    pub logprobs: Option<u32>,
    /// The template's thinking tags, and whether the prompt leaves them
    /// open: the engine splits thoughts from the answer and counts them.
    pub think: Option<(reasoning::ThinkTags, bool)>,
    /// The image pieces' share of the decode budget, given back when the
    /// job is dropped.
    pub hold: Option<crate::vision::budget::Grant>,
    /// An embedding, not an answer: the prompt's pooled vector is sent
    /// (`Event::Embedding`) once the prompt is in, and nothing is sampled.
    pub embed: bool,
}

impl GenerateRequest {
    /// What the prompt will occupy, known before the engine sees it: text
    /// tokens plus every image piece's cells (wrapper tokens included).
    pub fn usage(&self) -> PromptUsage {
        let image_tokens: u32 = self.images.iter().map(|p| p.item.tokens()).sum();
        PromptUsage {
            prompt_tokens: self.prompt.text_tokens() as u32 + image_tokens,
            image_tokens,
            cached_tokens: 0,
            image_chunks_cached: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

/// Prompt-side token counts, from mtmd's chunk counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptUsage {
    pub prompt_tokens: u32,
    pub image_tokens: u32,
    pub cached_tokens: u32,
    /// Image chunks decoded from the embedding cache instead of encoded
    /// (for the request log; not an OpenAI usage field).
    pub image_chunks_cached: u32,
}

#[derive(Debug)]
pub enum Event {
    /// The prompt is in the context; sent before any text.
    Started(PromptUsage),
    /// Answer text.
    Text(String),
    /// Thoughts (templates that think), split from the answer here once.
    Reasoning(String),
    /// The log-probability of the token just sampled (only when asked);
    /// sent before the text it produced, which may be held back.
    Logprob(logprobs::TokenLogprob),
    Finished {
        reason: FinishReason,
        completion_tokens: u32,
        /// Of which thoughts (templates that think).
        reasoning_tokens: u32,
        /// The stop sequence that ended the answer, if one did.
        stop_sequence: Option<String>,
    },
    Failed(EngineError),
    /// The prompt's pooled, L2-normalised embedding (`embed` jobs).
    Embedding(Vec<f32>),
}
