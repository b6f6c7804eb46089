//! What a loaded model is expected to take, for `--models-memory-mb`:
//! its files (weights are mapped or copied whole) plus its KV cache at the
//! configured context, F16 keys and values, from the GGUF's own shape.
//! An estimate read once at start; a file that cannot be read counts its
//! size only (the runner will say what is wrong with it).

use crate::engine::gguf_meta::GgufMeta;
use std::path::Path;

/// Bytes for a model file, its projector and `ctx` cells of KV (0: the
/// model's trained context).
pub fn estimate(model: Option<&Path>, mmproj: Option<&Path>, ctx: u32) -> u64 {
    let size = |p: Option<&Path>| {
        p.and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    };
    let kv = model
        .filter(|p| p.is_file())
        .map_or(0, |p| kv_bytes(p, ctx));
    size(model) + size(mmproj) + kv
}

fn kv_bytes(path: &Path, ctx: u32) -> u64 {
    let Ok(meta) = GgufMeta::open(path) else {
        return 0;
    };
    let Some(arch) = meta.str("general.architecture") else {
        return 0;
    };
    let key = |k: &str| meta.u32(&format!("{arch}.{k}")).map(u64::from);
    let (Some(layers), Some(embd), Some(heads)) = (
        key("block_count"),
        key("embedding_length"),
        key("attention.head_count"),
    ) else {
        return 0;
    };
    let heads_kv = key("attention.head_count_kv").unwrap_or(heads);
    let head = embd / heads.max(1);
    let k = key("attention.key_length").unwrap_or(head);
    let v = key("attention.value_length").unwrap_or(head);
    let cells = match ctx {
        0 => key("context_length").unwrap_or(4096),
        c => u64::from(c),
    };
    cells * layers * heads_kv * (k + v) * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kv_cache_grows_with_the_context_and_files_count_whole() {
        let dir = std::env::temp_dir().join(format!("tessera-mem-{}", std::process::id()));
        let set = crate::fixtures::write_all(&dir).unwrap();
        let file = std::fs::metadata(&set.text).unwrap().len();
        let mmproj = std::fs::metadata(&set.mmproj_mlp).unwrap().len();
        let at = |ctx| estimate(Some(&set.text), None, ctx);
        let per_1k = at(1024) - file;
        assert!(per_1k > 0);
        assert_eq!(at(4096) - file, 4 * per_1k);
        assert_eq!(
            estimate(Some(&set.text), Some(&set.mmproj_mlp), 1024),
            at(1024) + mmproj
        );
        // An unreadable model counts its size only; a missing one nothing.
        let junk = dir.join("junk.gguf");
        std::fs::write(&junk, b"not a gguf").unwrap();
        assert_eq!(estimate(Some(&junk), None, 1024), 10);
        assert_eq!(estimate(Some(&dir.join("missing.gguf")), None, 1024), 0);
        println!("tiny text model: {file} bytes + {per_1k} bytes of KV per 1,024 cells");
    }
}
