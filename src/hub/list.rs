//! `tessera list`: the GGUF models the cache holds, with their sizes, and
//! which of them a local server is serving now.

use super::cache::RepoCache;
use std::path::Path;

/// One cached repository: its `owner/name` and its GGUF files with sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub repo: String,
    pub files: Vec<(String, u64)>,
}

/// Every `models--owner--name` folder under `root` with GGUF files in the
/// snapshot `main` points to (else in any snapshot), by repository name.
pub fn cached(root: &Path) -> Vec<Cached> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<Cached> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let repo = name.strip_prefix("models--")?.replacen("--", "/", 1);
            let cache = RepoCache::new(root, &repo);
            let files = gguf_files(&cache);
            (!files.is_empty()).then_some(Cached { repo, files })
        })
        .collect();
    out.sort_by(|a, b| a.repo.cmp(&b.repo));
    out
}

fn gguf_files(cache: &RepoCache) -> Vec<(String, u64)> {
    let commits: Vec<String> = match cache.commit("main") {
        Some(c) => vec![c],
        None => std::fs::read_dir(cache.dir.join("snapshots"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut files: Vec<(String, u64)> = commits
        .iter()
        .flat_map(|c| {
            let base = cache.dir.join("snapshots").join(c);
            cache
                .snapshot_files(c)
                .into_iter()
                .filter(|f| f.to_ascii_lowercase().ends_with(".gguf"))
                .map(move |f| {
                    let size = std::fs::metadata(base.join(&f)).map_or(0, |m| m.len());
                    (f, size)
                })
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

/// The ids a server at `url` serves (loaded ones only, for a router).
pub async fn running(url: &str, key: Option<&str>) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut req = client
        .get(format!("{}/v1/models", url.trim_end_matches('/')))
        .timeout(std::time::Duration::from_secs(3));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let Ok(resp) = req.send().await else {
        return Vec::new();
    };
    let list: serde_json::Value = resp.json().await.unwrap_or_default();
    list["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter(|m| m["status"]["value"].as_str().is_none_or(|s| s == "loaded"))
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A table: repository, file, size, and whether `running` names it (by
/// the file's stem, which a single-model server uses as its id, or by
/// the repository's name).
pub fn table(cached: &[Cached], running: &[String]) -> String {
    let mut out = String::from("REPOSITORY\tFILE\tSIZE\tRUNNING\n");
    for c in cached {
        let short = c.repo.rsplit('/').next().unwrap_or(&c.repo);
        for (f, size) in &c.files {
            let stem = f.rsplit('/').next().unwrap_or(f);
            let stem = stem.strip_suffix(".gguf").unwrap_or(stem);
            let on = running
                .iter()
                .any(|r| r == stem || r == short || *r == c.repo);
            let mib = *size as f64 / (1024.0 * 1024.0);
            let mark = if on { "yes" } else { "" };
            out.push_str(&format!("{}\t{f}\t{mib:.1} MiB\t{mark}\n", c.repo));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_cached_ggufs_with_sizes_and_marks_what_runs() {
        let root = std::env::temp_dir().join(format!("tessera-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let snap = root.join("models--o--vlm-GGUF/snapshots").join(commit);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("vlm-Q8_0.gguf"), vec![0u8; 2048]).unwrap();
        std::fs::write(snap.join("mmproj-vlm-f16.gguf"), vec![0u8; 1024]).unwrap();
        std::fs::write(snap.join("README.md"), b"x").unwrap();
        let refs = root.join("models--o--vlm-GGUF/refs");
        std::fs::create_dir_all(&refs).unwrap();
        std::fs::write(refs.join("main"), commit).unwrap();
        std::fs::create_dir_all(root.join("models--o--empty/snapshots")).unwrap();
        let found = cached(&root);
        assert_eq!(
            found,
            [Cached {
                repo: "o/vlm-GGUF".into(),
                files: vec![
                    ("mmproj-vlm-f16.gguf".into(), 1024),
                    ("vlm-Q8_0.gguf".into(), 2048)
                ],
            }]
        );
        let t = table(&found, &["vlm-Q8_0".into()]);
        assert!(
            t.contains("o/vlm-GGUF\tvlm-Q8_0.gguf\t0.0 MiB\tyes\n"),
            "{t}"
        );
        assert!(t.contains("mmproj-vlm-f16.gguf\t0.0 MiB\t\n"), "{t}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
