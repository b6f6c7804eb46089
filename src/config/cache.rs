//! The KV cache's element types and flash attention (llama-server's
//! `--cache-type-k`, `--cache-type-v`, `--flash-attn`).

use clap::{Args, ValueEnum};

/// The types llama-server accepts for the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[clap(rename_all = "snake_case")]
pub enum CacheType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    Iq4Nl,
    Q5_0,
    Q5_1,
}

impl CacheType {
    /// Bytes that 32 values take (ggml's block sizes).
    pub fn bytes_per_32(self) -> u64 {
        match self {
            CacheType::F32 => 128,
            CacheType::F16 | CacheType::Bf16 => 64,
            CacheType::Q8_0 => 34,
            CacheType::Q4_0 | CacheType::Iq4Nl => 18,
            CacheType::Q4_1 => 20,
            CacheType::Q5_0 => 22,
            CacheType::Q5_1 => 24,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CacheType::F32 => "f32",
            CacheType::F16 => "f16",
            CacheType::Bf16 => "bf16",
            CacheType::Q8_0 => "q8_0",
            CacheType::Q4_0 => "q4_0",
            CacheType::Q4_1 => "q4_1",
            CacheType::Iq4Nl => "iq4_nl",
            CacheType::Q5_0 => "q5_0",
            CacheType::Q5_1 => "q5_1",
        }
    }

    fn quantized(self) -> bool {
        !matches!(self, CacheType::F32 | CacheType::F16 | CacheType::Bf16)
    }

    pub fn engine(self) -> llama_cpp_2::context::params::KvCacheType {
        use llama_cpp_2::context::params::KvCacheType as K;
        match self {
            CacheType::F32 => K::F32,
            CacheType::F16 => K::F16,
            CacheType::Bf16 => K::BF16,
            CacheType::Q8_0 => K::Q8_0,
            CacheType::Q4_0 => K::Q4_0,
            CacheType::Q4_1 => K::Q4_1,
            CacheType::Iq4Nl => K::IQ4_NL,
            CacheType::Q5_0 => K::Q5_0,
            CacheType::Q5_1 => K::Q5_1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttn {
    /// llama.cpp's choice for the backend and model.
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct CacheArgs {
    /// Element type of the KV cache's keys (llama-server's -ctk); q8_0
    /// halves the cache at a small accuracy cost.
    #[arg(help_heading = "Performance", long, env = "TESSERA_CACHE_TYPE_K", value_enum, default_value_t = CacheType::F16)]
    pub cache_type_k: CacheType,

    /// Element type of the KV cache's values (llama-server's -ctv); a
    /// quantized type needs flash attention.
    #[arg(help_heading = "Performance", long, env = "TESSERA_CACHE_TYPE_V", value_enum, default_value_t = CacheType::F16)]
    pub cache_type_v: CacheType,

    /// Flash attention (llama-server's -fa).
    #[arg(help_heading = "Performance", long, env = "TESSERA_FLASH_ATTN", value_enum, default_value_t = FlashAttn::Auto)]
    pub flash_attn: FlashAttn,
}

impl CacheArgs {
    pub fn check(&self) -> Result<(), String> {
        if self.cache_type_v.quantized() && self.flash_attn == FlashAttn::Off {
            return Err(format!(
                "--cache-type-v {} needs flash attention: use --flash-attn on (or auto), or an f16 value cache",
                self.cache_type_v.name()
            ));
        }
        Ok(())
    }

    /// Bytes of KV cache `cells` cells take for a model of this shape
    /// (`layers`, KV heads, key and value widths).
    pub fn bytes(&self, cells: u64, shape: crate::engine::gguf_meta::KvShape) -> u64 {
        let per = |width: u64, t: CacheType| {
            (cells * shape.layers * shape.heads_kv * width * t.bytes_per_32()).div_ceil(32)
        };
        per(shape.key, self.cache_type_k) + per(shape.value, self.cache_type_v)
    }
}
