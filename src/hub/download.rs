//! HTTP against the hub: the file list of a revision, file metadata (commit,
//! ETag, size) read before redirects as huggingface_hub does, and downloads
//! that resume from a partial `blobs/<etag>.incomplete` with a Range request,
//! show progress (indicatif: bytes, rate, ETA) and are checked against the
//! size and, for LFS files, the sha256 that the ETag carries.

use super::cache::RepoCache;
use super::error::HubError;
use super::names;
use super::options::HubOptions;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::header::{CONTENT_LENGTH, ETAG, RANGE};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Attempts per file, each resuming where the last one stopped.
const ATTEMPTS: u32 = 5;

pub(super) enum ListError {
    /// No connection (DNS, refused, timeout): the cache may still serve.
    Unreachable(String),
    /// The hub answered, with an error.
    Hub(String),
}

pub(super) struct Client {
    http: reqwest::Client,
    /// Metadata requests must see the hub's own headers, not the CDN's.
    no_redirect: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

#[derive(serde::Deserialize)]
struct RepoInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(serde::Deserialize)]
struct Sibling {
    rfilename: String,
}

fn io(e: impl std::fmt::Display) -> HubError {
    HubError::Io(std::io::Error::other(e.to_string()))
}

/// `"abc"`, `W/"abc"` -> `abc`.
fn clean_etag(v: &str) -> String {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Client {
    pub fn new(opts: &HubOptions) -> Result<Client, HubError> {
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(std::time::Duration::from_secs(10))
                .redirect(redirects)
                .build()
                .map_err(io)
        };
        Ok(Client {
            http: build(reqwest::redirect::Policy::limited(10))?,
            no_redirect: build(reqwest::redirect::Policy::none())?,
            endpoint: opts.endpoint.trim_end_matches('/').to_string(),
            token: opts.token.clone(),
        })
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// The commit `revision` points to, and its files.
    pub async fn list(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<(String, Vec<String>), ListError> {
        let url = format!("{}/api/models/{repo}/revision/{revision}", self.endpoint);
        let resp = self
            .auth(self.http.get(&url))
            .send()
            .await
            .map_err(|e| ListError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 => " (gated or private: set HF_TOKEN)",
                404 => " (no such repository)",
                _ => "",
            };
            return Err(ListError::Hub(format!("the hub answered {status}{hint}")));
        }
        let info: RepoInfo = resp
            .json()
            .await
            .map_err(|e| ListError::Hub(format!("unexpected answer from {url}: {e}")))?;
        if !names::is_commit(&info.sha) {
            return Err(ListError::Hub(format!(
                "the hub answered {:?} as the commit id, which is not 40 hex characters",
                names::printable(&info.sha)
            )));
        }
        // A name that could lead out of the cache is not a file we serve.
        let (files, unsafe_names): (Vec<String>, Vec<String>) = info
            .siblings
            .into_iter()
            .map(|s| s.rfilename)
            .partition(|f| names::is_file_name(f));
        for f in unsafe_names {
            tracing::warn!(file = %names::printable(&f), "the hub listed an unsafe file name; ignored");
        }
        Ok((info.sha, files))
    }

    /// The snapshot path of `file`, downloading its blob if the cache lacks it.
    pub async fn ensure(
        &self,
        repo: &str,
        commit: &str,
        file: &str,
        cache: &RepoCache,
    ) -> Result<PathBuf, HubError> {
        let snapshot = cache.snapshot(commit, file)?;
        if std::fs::metadata(&snapshot).is_ok() {
            return Ok(snapshot); // already there (ours, or another tool's)
        }
        let url = format!("{}/{repo}/resolve/{commit}/{file}", self.endpoint);
        let head = self
            .auth(self.no_redirect.head(&url))
            .send()
            .await
            .map_err(|e| HubError::Hub {
                repo: repo.into(),
                what: format!("{file}: {e}"),
            })?;
        if !(head.status().is_success() || head.status().is_redirection()) {
            return Err(HubError::Hub {
                repo: repo.into(),
                what: format!("{file}: the hub answered {}", head.status()),
            });
        }
        let (etag, size) = blob_facts(head.headers()).map_err(|what| HubError::Hub {
            repo: repo.into(),
            what: format!("{file}: {what}"),
        })?;
        let blob = cache.blob(&etag)?;
        let complete = std::fs::metadata(&blob).is_ok_and(|m| m.len() == size);
        if !complete {
            std::fs::create_dir_all(blob.parent().unwrap_or(Path::new(".")))?;
            self.download(&url, file, &blob, size).await?;
            verify(
                &blob,
                file,
                Some(size),
                is_sha256(&etag).then_some(etag.as_str()),
            )?;
        }
        Ok(cache.link(commit, file, &etag)?)
    }

    /// GET of `url` from byte `have` on (a Range request when above 0).
    async fn get_from(&self, url: &str, have: u64) -> Result<reqwest::Response, String> {
        let mut req = self.auth(self.http.get(url));
        if have > 0 {
            req = req.header(RANGE, format!("bytes={have}-"));
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("the hub answered {}", resp.status()));
        }
        Ok(resp)
    }

    /// Downloads into `<blob>.incomplete`, resuming after cuts, then renames.
    async fn download(
        &self,
        url: &str,
        file: &str,
        blob: &Path,
        size: u64,
    ) -> Result<(), HubError> {
        let part = PathBuf::from(format!("{}.incomplete", blob.display()));
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        room_for(blob, size.saturating_sub(have))?;
        let bar = progress(size, file);
        let mut last_error = String::new();
        for _ in 0..ATTEMPTS {
            let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if have >= size {
                break;
            }
            let resp = match self.get_from(url, have).await {
                Ok(r) => r,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let resumed = resp.status() == reqwest::StatusCode::PARTIAL_CONTENT;
            // A server that ignores Range sends everything again: start over.
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(resumed)
                .truncate(!resumed)
                .open(&part)?;
            bar.set_position(if resumed { have } else { 0 });
            let written = if resumed { have } else { 0 };
            let cut = match write_body(resp, &mut out, (written, size), file, &bar).await {
                Ok(cut) => cut,
                Err(e) => {
                    drop(out);
                    let _ = std::fs::remove_file(&part);
                    bar.abandon();
                    return Err(e);
                }
            };
            if let Some(e) = &cut {
                last_error = e.clone();
            }
            let cut = cut.is_some();
            out.flush()?;
            let now = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if !cut && now >= size {
                bar.finish_and_clear();
                std::fs::rename(&part, blob)?;
                return Ok(());
            }
            if !cut {
                last_error = format!("connection closed after {now} of {size} bytes");
            }
        }
        bar.abandon();
        Err(io(format!(
            "{}: download failed after {ATTEMPTS} attempts: {}",
            names::printable(file),
            names::printable(&last_error)
        )))
    }
}

/// A progress bar for `file` (hidden when stderr is not a terminal).
fn progress(size: u64, file: &str) -> ProgressBar {
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(names::printable(file));
    bar
}

/// The blob's name (its ETag) and size from the hub's metadata headers.
/// Without a size nothing would bound the write, so one is required.
fn blob_facts(headers: &reqwest::header::HeaderMap) -> Result<(String, u64), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let etag = header("x-linked-etag")
        .or_else(|| header(ETAG.as_str()))
        .map(clean_etag)
        .filter(|e| names::is_etag(e))
        .ok_or("no usable ETag in the hub's answer")?;
    let size = header("x-linked-size")
        .or_else(|| header(CONTENT_LENGTH.as_str()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or("the hub did not say the file's size")?;
    Ok((etag, size))
}

/// Appends a response body to `out` (which holds `written` bytes), never
/// past `size`: more is an error, and the caller keeps nothing. A cut
/// connection is `Some(why)`, to be resumed.
async fn write_body(
    resp: reqwest::Response,
    out: &mut std::fs::File,
    (mut written, size): (u64, u64),
    file: &str,
    bar: &ProgressBar,
) -> Result<Option<String>, HubError> {
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let bytes = match chunk {
            Ok(b) => b,
            Err(e) => return Ok(Some(e.to_string())),
        };
        written += bytes.len() as u64;
        if written > size {
            return Err(io(format!(
                "{}: the hub sent more than the {size} bytes it announced; nothing was kept",
                names::printable(file)
            )));
        }
        out.write_all(&bytes)?;
        bar.inc(bytes.len() as u64);
    }
    Ok(None)
}

/// Refuses a download the disk cannot hold, before writing any of it.
fn room_for(blob: &Path, bytes: u64) -> Result<(), HubError> {
    #[cfg(unix)]
    {
        let dir = blob.parent().unwrap_or(Path::new("."));
        let fs = rustix::fs::statvfs(dir).map_err(|e| HubError::Io(e.into()))?;
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        if free < bytes {
            return Err(io(format!(
                "{} needs {bytes} bytes but {} has {free} free; free some space or set HF_HUB_CACHE",
                blob.display(),
                dir.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = (blob, bytes);
    Ok(())
}

/// Size and sha256 of a finished blob; a mismatch removes it.
fn verify(
    blob: &Path,
    file: &str,
    size: Option<u64>,
    sha256: Option<&str>,
) -> Result<(), HubError> {
    let len = std::fs::metadata(blob)?.len();
    let bad = |expected: String, actual: String| {
        let _ = std::fs::remove_file(blob);
        HubError::Checksum {
            file: file.into(),
            expected,
            actual,
        }
    };
    if let Some(s) = size
        && s != len
    {
        return Err(bad(format!("{s} bytes"), format!("{len} bytes")));
    }
    if let Some(expected) = sha256 {
        let mut hasher = Sha256::new();
        let mut f = std::fs::File::open(blob)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let actual: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(bad(expected.to_string(), actual));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weakness() {
        assert_eq!(clean_etag("W/\"abc\""), "abc");
        assert_eq!(clean_etag("\"abc\""), "abc");
        assert!(is_sha256(&"a".repeat(64)));
        assert!(!is_sha256("abc"));
    }
}
