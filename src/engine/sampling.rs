//! Sampling parameters and the llama.cpp sampler chain built from them.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 = off.
    pub top_k: i32,
    pub seed: u32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// The chain in llama-server's order: grammar, top-k, top-p,
    /// temperature, draw (or greedy).
    pub fn sampler(
        &self,
        model: &LlamaModel,
        grammar: Option<&str>,
    ) -> Result<LlamaSampler, String> {
        let mut chain = Vec::new();
        if let Some(g) = grammar {
            chain.push(LlamaSampler::grammar(model, g, "root").map_err(|e| e.to_string())?);
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
        chain.push(LlamaSampler::temp(self.temperature));
        chain.push(LlamaSampler::dist(self.seed));
        Ok(LlamaSampler::chain_simple(chain))
    }
}
