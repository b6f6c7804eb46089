//! Speculative decoding's flags (`engine/batcher/draft.rs`).

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct SpeculationArgs {
    /// Speculative decoding: `ngram` (or llama-server's `ngram-simple`)
    /// guesses the next tokens from the sequence's own earlier text (prompt
    /// lookup) and checks them in the same decode, which speeds up answers
    /// that copy; `none` is off. The answer is the same either way.
    #[arg(help_heading = "Performance", long, env = "TESSERA_SPEC_TYPE", default_value = "none", value_parser = ["none", "ngram", "ngram-simple"])]
    pub spec_type: String,

    /// A small model with the same vocabulary that guesses the next tokens
    /// for speculative decoding (llama-server's `--model-draft`); the
    /// answer is the same with or without it.
    #[arg(
        help_heading = "Performance",
        long,
        visible_alias = "spec-draft-model",
        env = "TESSERA_MODEL_DRAFT"
    )]
    pub model_draft: Option<PathBuf>,

    /// Most tokens guessed per sequence and step (`--spec-type ngram`, `--model-draft`).
    #[arg(help_heading = "Performance", long, visible_alias = "spec-draft-n-max", env = "TESSERA_DRAFT_MAX", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub draft_max: u32,
}

impl SpeculationArgs {
    /// Tokens guessed per sequence and step; 0 = no speculation.
    pub fn draft_max(&self) -> usize {
        match (self.spec_type.as_str(), &self.model_draft) {
            ("ngram" | "ngram-simple", _) | (_, Some(_)) => self.draft_max as usize,
            _ => 0,
        }
    }

    /// One source of guesses at a time.
    pub fn check(&self) -> Result<(), String> {
        if self.model_draft.is_some() && self.spec_type != "none" {
            return Err(format!(
                "--model-draft and --spec-type {} both guess tokens; choose one",
                self.spec_type
            ));
        }
        Ok(())
    }
}
