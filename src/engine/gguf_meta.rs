//! The few GGUF keys pricing and `/v1/models` need that llama-cpp-2's model
//! API does not expose, read through its own GGUF reader (ggml's parser).
//! Every getter checks the stored type first: ggml aborts on a mismatch.

use llama_cpp_2::gguf::GgufContext;
use std::path::Path;

const GGUF_TYPE_UINT32: u32 = 4;
const GGUF_TYPE_INT32: u32 = 5;
const GGUF_TYPE_STRING: u32 = 8;

pub struct GgufMeta(GgufContext);

impl GgufMeta {
    pub fn open(path: &Path) -> Result<Self, String> {
        GgufContext::from_file(path)
            .map(GgufMeta)
            .ok_or_else(|| format!("{} is not a readable GGUF file", path.display()))
    }

    fn index(&self, key: &str, ty: u32) -> Option<i64> {
        let idx = self.0.find_key(key);
        (idx >= 0 && self.0.kv_type(idx) == ty).then_some(idx)
    }

    pub fn u32(&self, key: &str) -> Option<u32> {
        if let Some(i) = self.index(key, GGUF_TYPE_UINT32) {
            return Some(self.0.val_u32(i));
        }
        let i = self.index(key, GGUF_TYPE_INT32)?;
        u32::try_from(self.0.val_i32(i)).ok()
    }

    pub fn str(&self, key: &str) -> Option<String> {
        let i = self.index(key, GGUF_TYPE_STRING)?;
        self.0.val_str(i).map(str::to_string)
    }
}

/// What one KV cell holds for a model: per layer, `heads_kv` keys of width
/// `key` and values of width `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvShape {
    pub layers: u64,
    pub heads_kv: u64,
    pub key: u64,
    pub value: u64,
    /// The trained context, for `--ctx-size 0`.
    pub trained: u64,
}

impl KvShape {
    /// From the GGUF's own keys; `None` when a key is missing.
    pub fn of(path: &Path) -> Option<KvShape> {
        let meta = GgufMeta::open(path).ok()?;
        let arch = meta.str("general.architecture")?;
        let key = |k: &str| meta.u32(&format!("{arch}.{k}")).map(u64::from);
        let layers = key("block_count")?;
        let embd = key("embedding_length")?;
        let heads = key("attention.head_count")?;
        let head = embd / heads.max(1);
        Some(KvShape {
            layers,
            heads_kv: key("attention.head_count_kv").unwrap_or(heads),
            key: key("attention.key_length").unwrap_or(head),
            value: key("attention.value_length").unwrap_or(head),
            trained: key("context_length").unwrap_or(4096),
        })
    }
}
