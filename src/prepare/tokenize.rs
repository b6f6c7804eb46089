//! Prompt text to tokens, on the caller's thread (the HTTP side's blocking
//! pool), never on the engine thread: a 10,000-message body must not pause
//! other clients' streams while it is tokenized. llama.cpp's tokenizer only
//! reads the vocabulary, so it runs safely beside decoding, as llama-server
//! tokenizes in its HTTP threads.
//!
//! A prompt that cannot fit is refused before it is tokenized where that can
//! be known: no token covers more bytes than the vocabulary's longest
//! piece, so `bytes / longest piece` tokens is a lower bound.

use super::fence::TextFence;
use crate::engine::{EngineError, TokenizedPrompt, Vocab};
use llama_cpp_2::token::LlamaToken;

pub struct PromptTokenizer {
    model: Vocab,
    fence: TextFence,
    marker: String,
    /// BOS text to strip from a rendered prompt when tokenization adds BOS itself.
    bos_text: Option<String>,
    /// Bytes of the longest token piece (control tokens included).
    max_token_bytes: usize,
    /// KV cells one sequence holds.
    n_ctx_seq: u32,
}

impl std::fmt::Debug for PromptTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptTokenizer")
            .field("max_token_bytes", &self.max_token_bytes)
            .field("n_ctx_seq", &self.n_ctx_seq)
            .finish()
    }
}

impl PromptTokenizer {
    pub fn new(
        model: Vocab,
        fence: TextFence,
        marker: String,
        bos_text: Option<String>,
        n_ctx_seq: u32,
    ) -> Self {
        let vocab = model.model().vocab();
        let max_token_bytes = (0..model.model().n_vocab())
            .map(|t| vocab.token_to_piece(LlamaToken(t), true, None).len())
            .max()
            .unwrap_or(1)
            .max(1);
        PromptTokenizer {
            model,
            fence,
            marker,
            bos_text,
            max_token_bytes,
            n_ctx_seq,
        }
    }

    /// The control token spelled `text`, if the vocabulary has one (e.g.
    /// Mistral's `[TOOL_CALLS]`): such tokens must be shown, not hidden,
    /// when a tool-call parser reads the answer.
    pub fn control_token(&self, text: &str) -> Option<LlamaToken> {
        let vocab = self.model.model().vocab();
        match vocab.tokenize(text.as_bytes(), false, true).as_slice() {
            [t] if vocab.token_to_piece(*t, false, None).is_empty() => Some(*t),
            _ => None,
        }
    }

    /// Token ids a client sent (`/v1/completions` with a token list), as
    /// given: no BOS added, each checked against the vocabulary.
    pub fn from_ids(&self, ids: &[i64]) -> Result<TokenizedPrompt, super::error::PrepareError> {
        let n_vocab = i64::from(self.model.model().n_vocab());
        let mut tokens = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            match i32::try_from(id) {
                Ok(t) if (0..n_vocab).contains(&id) => tokens.push(LlamaToken(t)),
                _ => {
                    return Err(super::error::PrepareError::invalid(format!(
                        "prompt[{i}] = {id} is not a token of this model (0 to {})",
                        n_vocab - 1
                    ))
                    .param(format!("prompt[{i}]")));
                }
            }
        }
        let n = tokens.len() as u32;
        if n >= self.n_ctx_seq {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: n,
                n_ctx: self.n_ctx_seq,
            }
            .into());
        }
        Ok(TokenizedPrompt {
            segments: vec![tokens],
        })
    }

    pub fn tokenize(&self, prompt: &str) -> Result<TokenizedPrompt, EngineError> {
        let mut prompt = prompt;
        if let Some(bos) = &self.bos_text {
            prompt = prompt.strip_prefix(bos.as_str()).unwrap_or(prompt);
        }
        let pieces: Vec<_> = prompt
            .split(self.marker.as_str())
            .map(|seg| self.fence.split(seg))
            .collect();
        let bytes: usize = pieces.iter().flatten().map(|s| s.text.len()).sum();
        let at_least = (bytes / self.max_token_bytes) as u32;
        if at_least >= self.n_ctx_seq {
            return Err(EngineError::PromptFarTooLong {
                at_least,
                n_ctx: self.n_ctx_seq,
            });
        }
        let vocab = self.model.model().vocab();
        let mut segments: Vec<Vec<LlamaToken>> = Vec::with_capacity(pieces.len());
        for spans in pieces {
            let mut tokens = Vec::new();
            // Only the template's own text may hold control tokens.
            for span in spans {
                tokens.extend(vocab.tokenize(span.text.as_bytes(), false, !span.client));
            }
            segments.push(tokens);
        }
        if vocab.should_add_bos()
            && let Some(first) = segments.first_mut()
        {
            first.insert(0, vocab.bos());
        }
        if vocab.should_add_eos()
            && let Some(last) = segments.last_mut()
        {
            last.push(vocab.eos());
        }
        let prompt = TokenizedPrompt { segments };
        let n = prompt.text_tokens() as u32;
        if n >= self.n_ctx_seq {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: n,
                n_ctx: self.n_ctx_seq,
            });
        }
        Ok(prompt)
    }
}
