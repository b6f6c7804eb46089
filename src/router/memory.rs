//! What a loaded model is expected to take, for `--models-memory-mb`:
//! its files (weights are mapped or copied whole) plus its KV cache at the
//! configured context and cache types, from the GGUF's own shape. An
//! estimate read once at start; a file that cannot be read counts its size
//! only (the runner will say what is wrong with it).

use crate::config::CacheArgs;
use crate::engine::gguf_meta::KvShape;
use std::path::Path;

/// Bytes for a model file, its projector and `ctx` cells of KV (0: the
/// model's trained context) of the runner's cache types.
pub fn estimate(model: Option<&Path>, mmproj: Option<&Path>, ctx: u32, cache: &CacheArgs) -> u64 {
    let size = |p: Option<&Path>| {
        p.and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    };
    let kv = model
        .filter(|p| p.is_file())
        .and_then(KvShape::of)
        .map_or(0, |shape| {
            let cells = match ctx {
                0 => shape.trained,
                c => u64::from(c),
            };
            cache.bytes(cells, shape)
        });
    size(model) + size(mmproj) + kv
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn the_kv_cache_grows_with_the_context_and_files_count_whole() {
        let dir = std::env::temp_dir().join(format!("tessera-mem-{}", std::process::id()));
        let set = crate::fixtures::write_all(&dir).unwrap();
        let file = std::fs::metadata(&set.text).unwrap().len();
        let mmproj = std::fs::metadata(&set.mmproj_mlp).unwrap().len();
        let f16 = crate::config::Config::parse_from(["tessera"]).cache;
        let at = |ctx| estimate(Some(&set.text), None, ctx, &f16);
        let per_1k = at(1024) - file;
        assert!(per_1k > 0);
        assert_eq!(at(4096) - file, 4 * per_1k);
        assert_eq!(
            estimate(Some(&set.text), Some(&set.mmproj_mlp), 1024, &f16),
            at(1024) + mmproj
        );
        // An unreadable model counts its size only; a missing one nothing.
        let junk = dir.join("junk.gguf");
        std::fs::write(&junk, b"not a gguf").unwrap();
        assert_eq!(estimate(Some(&junk), None, 1024, &f16), 10);
        assert_eq!(
            estimate(Some(&dir.join("missing.gguf")), None, 1024, &f16),
            0
        );
        // q8_0 keys and values: 34 bytes per 32 values instead of 64.
        let q8 = crate::config::Config::parse_from([
            "tessera",
            "--cache-type-k",
            "q8_0",
            "--cache-type-v",
            "q8_0",
        ])
        .cache;
        assert_eq!(
            estimate(Some(&set.text), None, 1024, &q8) - file,
            per_1k * 34 / 64
        );
        println!("tiny text model: {file} bytes + {per_1k} bytes of KV per 1,024 cells");
    }
}
