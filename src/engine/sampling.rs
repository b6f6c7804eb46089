//! Sampling parameters, the model's recommended defaults, and the
//! llama.cpp sampler chain built from them.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;

/// A grammar as the sampler takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grammar {
    pub text: String,
    /// The start rule.
    pub root: String,
    /// Lazy when not empty: the grammar holds only from the first of these
    /// words (or tokens) the model writes.
    pub trigger_words: Vec<String>,
    pub trigger_tokens: Vec<i32>,
}

impl Grammar {
    /// A grammar that holds from the first token, starting at `root`.
    pub fn strict(text: String) -> Self {
        Grammar {
            text,
            root: "root".into(),
            trigger_words: Vec::new(),
            trigger_tokens: Vec::new(),
        }
    }
}

/// What a request gets for each field it leaves out: the GGUF's
/// `general.sampling.*` keys where the model's authors wrote them, else
/// llama-server's defaults. `/v1/models` shows them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingDefaults {
    pub temperature: f32,
    pub top_p: f32,
    /// 0 = off.
    pub top_k: i32,
    /// 0 = off.
    pub min_p: f32,
    /// 1 = off.
    pub repetition_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: i32,
    /// `gguf` when any value came from the model file, else `llama-server`.
    pub source: &'static str,
}

impl Default for SamplingDefaults {
    /// llama-server's (common/common.h).
    fn default() -> Self {
        SamplingDefaults {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            repetition_penalty: 1.0,
            penalty_last_n: 64,
            source: "llama-server",
        }
    }
}

impl SamplingDefaults {
    /// `key` -> its value as text, for `general.sampling.<key>`.
    pub fn from_meta(meta: impl Fn(&str) -> Option<String>) -> Self {
        let mut d = SamplingDefaults::default();
        let mut found = false;
        let mut f32_key = |key: &str, into: &mut f32, ok: fn(f32) -> bool| {
            if let Some(v) = meta(&format!("general.sampling.{key}"))
                .and_then(|s| s.trim().parse::<f32>().ok())
                .filter(|v| ok(*v))
            {
                *into = v;
                found = true;
            }
        };
        f32_key("temp", &mut d.temperature, |v| (0.0..=2.0).contains(&v));
        f32_key("top_p", &mut d.top_p, |v| v > 0.0 && v <= 1.0);
        f32_key("min_p", &mut d.min_p, |v| (0.0..=1.0).contains(&v));
        f32_key("penalty_repeat", &mut d.repetition_penalty, |v| {
            v > 0.0 && v <= 10.0
        });
        let mut top_k = d.top_k as f32;
        f32_key("top_k", &mut top_k, |v| v >= 0.0);
        d.top_k = top_k as i32;
        let mut last_n = d.penalty_last_n as f32;
        f32_key("penalty_last_n", &mut last_n, |v| v >= -1.0);
        d.penalty_last_n = last_n as i32;
        if found {
            d.source = "gguf";
        }
        d
    }

    pub fn from_model(model: &LlamaModel) -> Self {
        Self::from_meta(|k| model.meta_val_str(k).ok())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy (after biases and penalties).
    pub temperature: f32,
    pub top_p: f32,
    /// 0 = off.
    pub top_k: i32,
    /// 0 = off.
    pub min_p: f32,
    /// OpenAI's, -2..2: a flat penalty on tokens already generated, and one
    /// per occurrence.
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// llama.cpp's / Hugging Face's multiplicative penalty; 1 = off.
    pub repetition_penalty: f32,
    /// Window of the three penalties; -1 = the whole sequence.
    pub penalty_last_n: i32,
    /// (token, bias); a bias of -100 bans the token, as OpenAI's does.
    pub logit_bias: Vec<(i32, f32)>,
    /// Bans every end-of-generation token (`ignore_eos`).
    pub ignore_eos: bool,
    pub seed: u32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams::from_defaults(&SamplingDefaults::default(), 0)
    }
}

impl SamplingParams {
    pub fn from_defaults(d: &SamplingDefaults, seed: u32) -> Self {
        SamplingParams {
            temperature: d.temperature,
            top_p: d.top_p,
            top_k: d.top_k,
            min_p: d.min_p,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repetition_penalty: d.repetition_penalty,
            penalty_last_n: d.penalty_last_n,
            logit_bias: Vec::new(),
            ignore_eos: false,
            seed,
        }
    }

    fn penalized(&self) -> bool {
        self.presence_penalty != 0.0
            || self.frequency_penalty != 0.0
            || self.repetition_penalty != 1.0
    }

    /// The chain in llama-server's order: logit bias, grammar, penalties,
    /// top-k, top-p, min-p, temperature, draw (or greedy).
    pub fn sampler(
        &self,
        model: &LlamaModel,
        grammar: Option<&Grammar>,
        n_ctx_seq: u32,
    ) -> Result<LlamaSampler, String> {
        let mut chain = Vec::new();
        let mut biases: Vec<LlamaLogitBias> = self
            .logit_bias
            .iter()
            .map(|&(t, b)| {
                let b = if b <= -100.0 { f32::NEG_INFINITY } else { b };
                LlamaLogitBias::new(LlamaToken(t), b)
            })
            .collect();
        if self.ignore_eos {
            // As llama-server does: every end-of-generation token banned.
            let vocab = model.vocab();
            biases.extend(
                (0..model.n_vocab())
                    .map(LlamaToken)
                    .filter(|&t| vocab.is_eog(t))
                    .map(|t| LlamaLogitBias::new(t, f32::NEG_INFINITY)),
            );
        }
        if !biases.is_empty() {
            chain.push(LlamaSampler::logit_bias(model.n_vocab(), &biases));
        }
        if let Some(g) = grammar {
            let sampler = if g.trigger_words.is_empty() && g.trigger_tokens.is_empty() {
                LlamaSampler::grammar(model, &g.text, &g.root)
            } else {
                let tokens: Vec<LlamaToken> =
                    g.trigger_tokens.iter().map(|&t| LlamaToken(t)).collect();
                LlamaSampler::grammar_lazy(model, &g.text, &g.root, &g.trigger_words, &tokens)
            };
            chain.push(sampler.map_err(|e| e.to_string())?);
        }
        if self.penalized() {
            let last_n = if self.penalty_last_n < 0 {
                n_ctx_seq as i32
            } else {
                self.penalty_last_n
            };
            chain.push(LlamaSampler::penalties(
                model.n_vocab(),
                last_n,
                self.repetition_penalty,
                self.frequency_penalty,
                self.presence_penalty,
            ));
        }
        if self.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
            return Ok(LlamaSampler::chain_simple(chain));
        }
        if self.top_k > 0 {
            chain.push(LlamaSampler::top_k(self.top_k));
        }
        if self.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(self.top_p, 1));
        }
        if self.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(self.min_p, 1));
        }
        chain.push(LlamaSampler::temp(self.temperature));
        chain.push(LlamaSampler::dist(self.seed));
        Ok(LlamaSampler::chain_simple(chain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_keys_override_llama_servers_defaults_only_when_sane() {
        let d = SamplingDefaults::from_meta(|_| None);
        assert_eq!(d, SamplingDefaults::default());
        let d = SamplingDefaults::from_meta(|k| match k {
            "general.sampling.temp" => Some("0.6".into()),
            "general.sampling.top_k" => Some("20".into()),
            "general.sampling.top_p" => Some("7".into()), // out of range: ignored
            _ => None,
        });
        assert_eq!(d.temperature, 0.6);
        assert_eq!(d.top_k, 20);
        assert_eq!(d.top_p, 0.95);
        assert_eq!(d.source, "gguf");
    }
}
