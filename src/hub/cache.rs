//! The cache layout Python's `huggingface_hub` writes, which llama.cpp and
//! other tools share: `<root>/models--owner--name/` holding `blobs/<etag>`,
//! `refs/<revision>` (a commit hash) and `snapshots/<commit>/<file>` links to
//! the blobs. Files another tool downloaded are reused as they are.

use super::names;
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

    /// `blobs/<etag>`, for an ETag that is a plain name.
    pub fn blob(&self, etag: &str) -> std::io::Result<PathBuf> {
        if !names::is_etag(etag) {
            return Err(unsafe_name("ETag", etag));
        }
        self.inside(self.dir.join("blobs").join(etag))
    }

    /// `snapshots/<commit>/<file>`, for a commit id and a file name that
    /// cannot leave the repository's folder.
    pub fn snapshot(&self, commit: &str, file: &str) -> std::io::Result<PathBuf> {
        if !names::is_commit(commit) {
            return Err(unsafe_name("commit id", commit));
        }
        if !names::is_file_name(file) {
            return Err(unsafe_name("file name", file));
        }
        self.inside(self.dir.join("snapshots").join(commit).join(file))
    }

    /// The names are checked; this checks the joined path too, so that no
    /// rule missed above can lead out of the folder.
    fn inside(&self, path: PathBuf) -> std::io::Result<PathBuf> {
        let plain = path.strip_prefix(&self.dir).is_ok_and(|rest| {
            rest.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        });
        if !plain {
            return Err(unsafe_name("path", &path.display().to_string()));
        }
        Ok(path)
    }

    /// The commit a revision (e.g. `main`) pointed to when last resolved;
    /// anything but a commit id (a poisoned cache) reads as none.
    pub fn commit(&self, revision: &str) -> Option<String> {
        use std::io::Read;
        let mut text = Vec::new();
        std::fs::File::open(self.dir.join("refs").join(revision))
            .ok()?
            .take(64)
            .read_to_end(&mut text)
            .ok()?;
        let commit = std::str::from_utf8(&text).ok()?.trim().to_string();
        names::is_commit(&commit).then_some(commit)
    }

    pub fn set_commit(&self, revision: &str, commit: &str) -> std::io::Result<()> {
        if !names::is_commit(commit) {
            return Err(unsafe_name("commit id", commit));
        }
        let refs = self.dir.join("refs");
        std::fs::create_dir_all(&refs)?;
        std::fs::write(refs.join(revision), commit)
    }

    /// Files of a snapshot (relative names), for offline selection. Links
    /// to files count (the snapshot is made of them); linked folders are
    /// not followed, and the walk stops after [`MAX_WALK`] entries.
    pub fn snapshot_files(&self, commit: &str) -> Vec<String> {
        if !names::is_commit(commit) {
            return Vec::new();
        }
        let base = self.dir.join("snapshots").join(commit);
        let mut out = Vec::new();
        let mut stack = vec![(base.clone(), 0)];
        let mut seen = 0;
        while let Some((d, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                seen += 1;
                if seen > MAX_WALK {
                    return out;
                }
                let Ok(kind) = e.file_type() else { continue };
                let p = e.path();
                let file = kind.is_file()
                    || (kind.is_symlink() && std::fs::metadata(&p).is_ok_and(|m| m.is_file()));
                if kind.is_dir() && depth < MAX_DEPTH {
                    stack.push((p, depth + 1));
                } else if file && let Ok(rel) = p.strip_prefix(&base) {
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
        let dst = self.snapshot(commit, file)?;
        let blob = self.blob(etag)?;
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
            std::fs::copy(blob, &dst)?;
        }
        Ok(dst)
    }
}

/// Entries an offline walk of a snapshot reads at most.
const MAX_WALK: usize = 10_000;
/// Folder levels it descends at most.
const MAX_DEPTH: usize = 16;

fn unsafe_name(what: &str, value: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "refusing the {what} {:?} from the hub: it is not a plain name inside the cache",
            names::printable(value)
        ),
    )
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
            c.blob("abc").unwrap(),
            PathBuf::from("/r/models--ggml-org--SmolVLM/blobs/abc")
        );
        let commit = "c0ffee".repeat(7)[..40].to_string();
        assert_eq!(
            c.snapshot(&commit, "m.gguf").unwrap(),
            PathBuf::from(format!(
                "/r/models--ggml-org--SmolVLM/snapshots/{commit}/m.gguf"
            ))
        );
    }

    #[test]
    fn nothing_from_the_hub_leads_out_of_the_repository_folder() {
        let c = RepoCache::new(Path::new("/r"), "o/n");
        let commit = "a".repeat(40);
        assert!(
            c.snapshot(&commit, "../../../../../x/evil-Q4_K_M.gguf")
                .is_err()
        );
        assert!(c.snapshot(&commit, "/tmp/evil.gguf").is_err());
        assert!(c.snapshot("/etc", "m.gguf").is_err());
        assert!(c.blob("..").is_err());
        assert!(c.set_commit("main", "/abs/path").is_err());
    }

    #[test]
    fn a_poisoned_ref_reads_as_no_commit_and_linked_folders_are_not_walked() {
        let root = std::env::temp_dir().join(format!("tessera-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let c = RepoCache::new(&root, "o/n");
        std::fs::create_dir_all(c.dir.join("refs")).unwrap();
        std::fs::write(c.dir.join("refs/main"), "/").unwrap();
        assert_eq!(c.commit("main"), None);
        let commit = "b".repeat(40);
        std::fs::write(c.dir.join("refs/main"), format!("{commit}\n")).unwrap();
        assert_eq!(c.commit("main").as_deref(), Some(commit.as_str()));
        let snap = c.dir.join("snapshots").join(&commit);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("m.gguf"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/", snap.join("root")).unwrap();
        assert_eq!(c.snapshot_files(&commit), vec!["m.gguf".to_string()]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
