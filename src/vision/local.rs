//! `file://` image URLs, read from `--media-path` and nowhere else (the
//! policy and its tests in one room). Off unless the flag names a folder.
//! A path is taken relative to that folder (`file://cats/1.png`, or
//! `file:///cats/1.png`, the folder being the root); `..` and NUL are
//! refused before anything is opened, the resolved path (links followed)
//! must stay inside the folder, and only a regular file within the byte
//! limit is read: no device, FIFO or directory.

use super::error::VisionError;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// `--media-path`, resolved once at start.
#[derive(Debug, Clone)]
pub struct MediaRoot(PathBuf);

impl MediaRoot {
    pub fn new(dir: &Path) -> Result<MediaRoot, String> {
        let root = dir
            .canonicalize()
            .map_err(|e| format!("--media-path {}: {e}", dir.display()))?;
        if !root.is_dir() {
            return Err(format!("--media-path {} is not a folder", dir.display()));
        }
        Ok(MediaRoot(root))
    }
}

fn refused(why: impl Into<String>) -> VisionError {
    VisionError::LocalRefused(why.into())
}

/// The bytes of `file://<rest>`, at most `max_bytes`.
pub fn read(
    rest: &str,
    root: Option<&MediaRoot>,
    max_bytes: usize,
) -> Result<Vec<u8>, VisionError> {
    let root = root.ok_or_else(|| {
        refused("file:// image URLs are off; the server must be started with --media-path DIR")
    })?;
    let decoded = percent_decode(rest)
        .ok_or_else(|| refused("the file:// URL is not valid UTF-8 after %-decoding"))?;
    let relative = decoded.strip_prefix("localhost/").unwrap_or(&decoded);
    let relative = Path::new(relative.trim_start_matches('/'));
    if decoded.contains('\0') || relative.as_os_str().is_empty() {
        return Err(refused("the file:// URL names no file"));
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(refused("a file:// path may not contain `..` or `.`"));
    }
    let path = root.0.join(relative);
    let real = path.canonicalize().map_err(|_| {
        refused(format!(
            "no such file under --media-path: {}",
            relative.display()
        ))
    })?;
    if !real.starts_with(&root.0) {
        return Err(refused("the file:// path leads outside --media-path"));
    }
    let file = std::fs::File::open(&real).map_err(|e| refused(format!("cannot open it: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refused(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(refused("a file:// URL must name a regular file"));
    }
    if meta.len() > max_bytes as u64 {
        return Err(VisionError::TooManyBytes {
            bytes: usize::try_from(meta.len()).unwrap_or(usize::MAX),
            limit: max_bytes,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refused(format!("cannot read it: {e}")))?;
    if bytes.len() > max_bytes {
        return Err(VisionError::TooManyBytes {
            bytes: bytes.len(),
            limit: max_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(VisionError::Empty);
    }
    Ok(bytes)
}

/// `%XX` escapes decoded; `None` for a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (PathBuf, MediaRoot) {
        let base = std::env::temp_dir().join(format!("tessera-media-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("media/cats")).unwrap();
        std::fs::write(base.join("media/cats/a b.png"), b"png!").unwrap();
        std::fs::write(base.join("secret.txt"), b"secret").unwrap();
        let r = MediaRoot::new(&base.join("media")).unwrap();
        (base, r)
    }

    #[test]
    fn reads_inside_the_folder_and_nothing_else() {
        let (base, r) = root();
        for url in ["cats/a%20b.png", "/cats/a b.png", "localhost/cats/a b.png"] {
            assert_eq!(read(url, Some(&r), 100).unwrap(), b"png!", "{url}");
        }
        let refused = |url: &str| {
            let e = read(url, Some(&r), 100).unwrap_err().to_string();
            assert!(e.contains("refused") || e.contains("bytes"), "{url}: {e}");
            e
        };
        assert!(refused("../secret.txt").contains(".."));
        assert!(refused("cats/../../secret.txt").contains(".."));
        assert!(refused("%2E%2E/secret.txt").contains(".."));
        assert!(refused("cats/missing.png").contains("no such file"));
        assert!(refused("cats").contains("regular file"));
        assert!(refused("").contains("names no file"));
        assert!(
            read("cats/a b.png", Some(&r), 3)
                .unwrap_err()
                .to_string()
                .contains("--max-image-bytes")
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(base.join("secret.txt"), base.join("media/link")).unwrap();
            assert!(refused("link").contains("outside"));
            std::os::unix::fs::symlink("/dev/zero", base.join("media/zero")).unwrap();
            assert!(refused("zero").contains("outside"));
        }
        let off = read("cats/a b.png", None, 100).unwrap_err().to_string();
        assert!(off.contains("--media-path"), "{off}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
