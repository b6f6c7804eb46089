//! The cache layout Python's `huggingface_hub` writes, which llama.cpp and
//! other tools share: `<root>/models--owner--name/` holding `blobs/<etag>`,
//! `refs/<revision>` (a commit hash) and `snapshots/<commit>/<file>` links to
//! the blobs. Files another tool downloaded are reused as they are.

use std::path::{Path, PathBuf};

/// The cache root, first that is set: `HF_HUB_CACHE`,
/// `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
/// `~/.cache/huggingface/hub`.
pub fn root_from(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    let set = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(p) = set("HF_HUB_CACHE").or_else(|| set("HUGGINGFACE_HUB_CACHE")) {
        return PathBuf::from(p);
    }
    if let Some(home) = set("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    user_cache_from(var).join("huggingface").join("hub")
}

/// The user's cache folder: `$XDG_CACHE_HOME`, else `~/.cache`, else the
/// temp folder.
fn user_cache_from(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    let set = |k: &str| var(k).filter(|v| !v.is_empty());
    set("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
}

pub fn user_cache() -> PathBuf {
    user_cache_from(|k| std::env::var(k).ok())
}

pub fn root() -> PathBuf {
    root_from(|k| std::env::var(k).ok())
}

/// One repository's folder in the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    pub dir: PathBuf,
}

impl RepoCache {
    pub fn new(root: &Path, repo: &str) -> RepoCache {
        RepoCache {
            dir: root.join(format!("models--{}", repo.replace('/', "--"))),
        }
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.dir.join("blobs").join(etag)
    }

    pub fn snapshot(&self, commit: &str, file: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit).join(file)
    }

    /// The commit a revision (e.g. `main`) pointed to when last resolved.
    pub fn commit(&self, revision: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join("refs").join(revision))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn set_commit(&self, revision: &str, commit: &str) -> std::io::Result<()> {
        let refs = self.dir.join("refs");
        std::fs::create_dir_all(&refs)?;
        std::fs::write(refs.join(revision), commit)
    }

    /// Files of a snapshot (relative names), for offline selection.
    pub fn snapshot_files(&self, commit: &str) -> Vec<String> {
        let base = self.dir.join("snapshots").join(commit);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&base) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    /// Links `snapshots/<commit>/<file>` to its blob, as huggingface_hub
    /// does (a relative symlink; a copy where links are not possible).
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> std::io::Result<PathBuf> {
        let dst = self.snapshot(commit, file);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&dst);
        let depth = file.matches('/').count() + 2;
        let rel = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
        #[cfg(unix)]
        let linked = std::os::unix::fs::symlink(&rel, &dst);
        #[cfg(not(unix))]
        let linked: std::io::Result<()> = Err(std::io::ErrorKind::Unsupported.into());
        if linked.is_err() {
            std::fs::copy(self.blob(etag), &dst)?;
        }
        Ok(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_follows_huggingface_hubs_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            root_from(env(&[("HF_HUB_CACHE", "/a"), ("HF_HOME", "/b")])),
            PathBuf::from("/a")
        );
        assert_eq!(
            root_from(env(&[("HUGGINGFACE_HUB_CACHE", "/c")])),
            PathBuf::from("/c")
        );
        assert_eq!(
            root_from(env(&[("HF_HOME", "/b"), ("HOME", "/h")])),
            PathBuf::from("/b/hub")
        );
        assert_eq!(
            root_from(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/huggingface/hub")
        );
        assert_eq!(
            root_from(env(&[("HOME", "/h")])),
            PathBuf::from("/h/.cache/huggingface/hub")
        );
    }

    #[test]
    fn layout_is_huggingface_hubs() {
        let c = RepoCache::new(Path::new("/r"), "ggml-org/SmolVLM");
        assert_eq!(c.dir, PathBuf::from("/r/models--ggml-org--SmolVLM"));
        assert_eq!(
            c.blob("abc"),
            PathBuf::from("/r/models--ggml-org--SmolVLM/blobs/abc")
        );
        assert_eq!(
            c.snapshot("c0ffee", "m.gguf"),
            PathBuf::from("/r/models--ggml-org--SmolVLM/snapshots/c0ffee/m.gguf")
        );
    }
}
