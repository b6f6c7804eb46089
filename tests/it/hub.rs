//! Model download against a local hub of the test's own, with the Hugging
//! Face URL layout and headers (ETag with the sha256, X-Repo-Commit,
//! Content-Length, Range requests). Nothing leaves the machine.

use crate::common;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tessera::hub::{HubError, HubOptions, resolve};

const REPO: &str = "test/tiny-vlm-GGUF";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const MODEL: &str = "tiny-vlm-Q8_0.gguf";
const MMPROJ: &str = "mmproj-tiny-vlm-f16.gguf";

#[derive(Default)]
struct Hub {
    files: HashMap<String, Vec<u8>>,
    /// The next GET of a file sends half of it, then drops the connection.
    cut_next: AtomicBool,
    /// Serve different bytes than the ETag's sha256.
    corrupt: AtomicBool,
    requests: AtomicUsize,
    /// Every `Range` header a GET asked with, with the file it named.
    ranges: std::sync::Mutex<Vec<(String, String)>>,
    /// A malicious hub: the commit id it answers instead of [`COMMIT`],
    /// names it lists beside the files, and how it lies about sizes.
    sha: Option<String>,
    listed: Vec<String>,
    lie: Option<Lie>,
}

#[derive(Clone, Copy, PartialEq)]
enum Lie {
    /// HEAD announces 1,024 bytes; GET streams 8 MiB.
    Size,
    /// Neither HEAD nor GET says a size.
    NoSize,
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

async fn info(
    State(hub): State<Arc<Hub>>,
    Path((owner, name, _rev)): Path<(String, String, String)>,
) -> Response {
    hub.requests.fetch_add(1, Ordering::SeqCst);
    if format!("{owner}/{name}") != REPO {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut siblings: Vec<_> = hub
        .files
        .keys()
        .map(|f| serde_json::json!({"rfilename": f}))
        .collect();
    siblings.push(serde_json::json!({"rfilename": "README.md"}));
    siblings.extend(
        hub.listed
            .iter()
            .map(|f| serde_json::json!({"rfilename": f})),
    );
    let sha = hub.sha.as_deref().unwrap_or(COMMIT);
    axum::Json(serde_json::json!({"sha": sha, "siblings": siblings})).into_response()
}

async fn resolve_file(
    State(hub): State<Arc<Hub>>,
    method: Method,
    headers: HeaderMap,
    Path((_owner, _name, _rev, file)): Path<(String, String, String, String)>,
) -> Response {
    hub.requests.fetch_add(1, Ordering::SeqCst);
    let Some(data) = hub.files.get(&file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", sha256(data));
    if let Some(lie) = hub.lie {
        return lying(lie, &method, etag);
    }
    let mut body = data.clone();
    if hub.corrupt.load(Ordering::SeqCst) {
        body[0] ^= 0xff;
    }
    if let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok())
        && method == Method::GET
        && let Ok(mut ranges) = hub.ranges.lock()
    {
        ranges.push((file.clone(), r.to_string()));
    }
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
        .unwrap_or(0)
        .min(body.len());
    let total = body.len();
    let rest = body.split_off(start);
    let status = if start > 0 {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::ETAG, etag)
        .header("x-repo-commit", COMMIT)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, rest.len());
    if start > 0 {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", total - 1),
        );
    }
    if method == Method::GET && hub.cut_next.swap(false, Ordering::SeqCst) {
        use futures::StreamExt as _;
        let half = rest[..rest.len() / 2].to_vec();
        // The cut comes one turn later: hyper flushes what it holds when the
        // body is not ready, so the client has the bytes before the cut
        // (an error straight after them would drop them unsent).
        let stream = futures::stream::iter([Ok(axum::body::Bytes::from(half))]).chain(
            futures::stream::once(async {
                tokio::task::yield_now().await;
                Err(std::io::Error::other("connection cut"))
            }),
        );
        return builder.body(Body::from_stream(stream)).unwrap();
    }
    builder.body(Body::from(rest)).unwrap()
}

fn lying(lie: Lie, method: &Method, etag: String) -> Response {
    let builder = Response::builder()
        .header(header::ETAG, etag)
        .header("x-repo-commit", COMMIT);
    let chunks = || {
        let chunk = axum::body::Bytes::from(vec![0u8; 1 << 20]);
        futures::stream::iter((0..8).map(move |_| Ok::<_, std::io::Error>(chunk.clone())))
    };
    match (lie, method == Method::HEAD) {
        (Lie::Size, true) => builder
            .header(header::CONTENT_LENGTH, 1024)
            .body(Body::empty())
            .unwrap(),
        _ => builder.body(Body::from_stream(chunks())).unwrap(),
    }
}

async fn serve_hub(hub: Arc<Hub>) -> String {
    let app = axum::Router::new()
        .route(
            "/api/models/{owner}/{name}/revision/{rev}",
            axum::routing::get(info),
        )
        .route(
            "/{owner}/{name}/resolve/{rev}/{*file}",
            axum::routing::get(resolve_file),
        )
        // Paths the client normalised (`..` segments) get the model too, so
        // that a traversing name would be downloaded and linked.
        .fallback(
            |state: State<Arc<Hub>>, method: Method, headers: HeaderMap| async move {
                let file = Path((String::new(), String::new(), String::new(), MODEL.into()));
                resolve_file(state, method, headers, file).await
            },
        )
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn hub_with_fixtures() -> Arc<Hub> {
    let f = fixtures();
    let mut files = HashMap::new();
    files.insert(MODEL.to_string(), std::fs::read(&f.text).unwrap());
    files.insert(
        "tiny-vlm-f16.gguf".to_string(),
        std::fs::read(&f.text_stopper).unwrap(),
    );
    files.insert(
        MMPROJ.to_string(),
        std::fs::read(&f.mmproj_qwen2vl).unwrap(),
    );
    Arc::new(Hub {
        files,
        ..Default::default()
    })
}

fn fresh_cache(name: &str) -> std::path::PathBuf {
    let dir = fixtures().dir.join("hub-caches").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn opts(endpoint: &str, cache: &std::path::Path) -> HubOptions {
    HubOptions {
        endpoint: endpoint.to_string(),
        token: None,
        offline: false,
        cache_root: cache.to_path_buf(),
        want_mmproj: true,
    }
}

#[tokio::test]
async fn fresh_download_lands_in_the_huggingface_hub_layout() {
    let hub = hub_with_fixtures();
    let endpoint = serve_hub(hub.clone()).await;
    let cache = fresh_cache("fresh");
    let got = resolve(REPO, &opts(&endpoint, &cache)).await.unwrap();
    let repo_dir = cache.join("models--test--tiny-vlm-GGUF");
    assert_eq!(
        got.model,
        repo_dir.join("snapshots").join(COMMIT).join(MODEL)
    );
    assert_eq!(
        got.mmproj,
        Some(repo_dir.join("snapshots").join(COMMIT).join(MMPROJ))
    );
    assert_eq!(std::fs::read(&got.model).unwrap(), hub.files[MODEL]);
    // The snapshot entry links to a blob named by the sha256 ETag.
    let blob = repo_dir.join("blobs").join(sha256(&hub.files[MODEL]));
    assert_eq!(
        std::fs::canonicalize(&got.model).unwrap(),
        std::fs::canonicalize(blob).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        COMMIT
    );
    // A second start touches only the file list, downloads nothing.
    let before = hub.requests.load(Ordering::SeqCst);
    let again = resolve(REPO, &opts(&endpoint, &cache)).await.unwrap();
    assert_eq!(again, got);
    assert_eq!(hub.requests.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn a_cut_download_resumes_with_a_range_request() {
    let hub = hub_with_fixtures();
    hub.cut_next.store(true, Ordering::SeqCst);
    let endpoint = serve_hub(hub.clone()).await;
    let cache = fresh_cache("resume");
    let got = resolve(&format!("{REPO}:Q8_0"), &opts(&endpoint, &cache))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&got.model).unwrap(), hub.files[MODEL]);
    assert!(!hub.cut_next.load(Ordering::SeqCst), "the cut happened");
    // The cut file's second GET asked only for the bytes after those kept.
    let ranges = hub.ranges.lock().unwrap().clone();
    let [(file, range)] = ranges.as_slice() else {
        panic!("one Range request expected: {ranges:?}");
    };
    let from: usize = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("not an open range: {range}"));
    assert!(from > 0 && from < hub.files[file].len(), "{range}");
}

#[tokio::test]
async fn a_checksum_mismatch_keeps_nothing() {
    let hub = hub_with_fixtures();
    hub.corrupt.store(true, Ordering::SeqCst);
    let endpoint = serve_hub(hub.clone()).await;
    let cache = fresh_cache("corrupt");
    let err = resolve(REPO, &opts(&endpoint, &cache)).await.unwrap_err();
    assert!(matches!(err, HubError::Checksum { .. }), "{err}");
    let blobs = cache.join("models--test--tiny-vlm-GGUF/blobs");
    let left: Vec<_> = std::fs::read_dir(&blobs)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "corrupt files left: {left:?}");
    assert!(
        !cache
            .join("models--test--tiny-vlm-GGUF/snapshots")
            .join(COMMIT)
            .join(MODEL)
            .exists()
    );
}

#[tokio::test]
async fn a_cache_written_by_huggingface_hub_is_used_offline() {
    // Lay out the cache as Python's huggingface_hub would, by hand.
    let cache = fresh_cache("python-written");
    let repo_dir = cache.join("models--test--tiny-vlm-GGUF");
    for (name, src) in [
        (MODEL, &fixtures().text),
        (MMPROJ, &fixtures().mmproj_qwen2vl),
    ] {
        let bytes = std::fs::read(src).unwrap();
        let blob = repo_dir.join("blobs").join(sha256(&bytes));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, &bytes).unwrap();
        let snap = repo_dir.join("snapshots").join(COMMIT);
        std::fs::create_dir_all(&snap).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{}", sha256(&bytes)), snap.join(name))
            .unwrap();
    }
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), COMMIT).unwrap();
    let mut o = opts("http://127.0.0.1:9", &cache);
    o.offline = true;
    let got = resolve(REPO, &o).await.unwrap();
    assert!(got.model.ends_with(MODEL) && got.mmproj.as_ref().unwrap().ends_with(MMPROJ));
    // And with a hub that is unreachable, online mode falls back to it too.
    o.offline = false;
    assert_eq!(resolve(REPO, &o).await.unwrap(), got);
    // A real server starts from it, offline, and answers with an image.
    let s = start(&["--hf-repo", REPO, "--offline", "--hf-cache", path(&cache)]).await;
    let (status, v) = s
        .post(&greedy(
            vec![text_part("hi"), image_part(64, 48, [1, 2, 3])],
            2,
        ))
        .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn a_server_starts_from_a_hub_download() {
    let hub = hub_with_fixtures();
    let endpoint = serve_hub(hub.clone()).await;
    let cache = fresh_cache("server");
    let s = start(&[
        "--hf-repo",
        REPO,
        "--hf-endpoint",
        &endpoint,
        "--hf-cache",
        path(&cache),
    ])
    .await;
    let (_, models) = s.get("/v1/models").await;
    assert_eq!(models["data"][0]["id"], "tiny-vlm-Q8_0");
    assert_eq!(models["data"][0]["capabilities"]["vision"], true);
    // Unknown quant: a clear error naming the tag.
    let err = resolve(&format!("{REPO}:Q2_K"), &opts(&endpoint, &cache))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Q2_K"), "{err}");
}

/// `tessera pull` fills the cache, `tessera list` shows it (and what a
/// server runs), and a router serves a cached repository by its name.
#[tokio::test]
async fn pull_list_and_a_router_serving_a_cached_repo_by_name() {
    use clap::Parser as _;
    let hub = hub_with_fixtures();
    let endpoint = serve_hub(hub.clone()).await;
    let cache = fresh_cache("pull");
    let flags = ["--hf-endpoint", &endpoint, "--hf-cache", path(&cache)];
    let config = tessera::config::Config::parse_from(std::iter::once("tessera").chain(flags));
    let got = tessera::pull(&config, REPO).await.unwrap();
    assert_eq!(std::fs::read(&got.model).unwrap(), hub.files[MODEL]);
    assert!(got.mmproj.is_some());
    let s = start(&["--hf-repo", REPO, "--offline", "--hf-cache", path(&cache)]).await;
    let listed = tessera::list(&config, &s.base).await;
    assert!(listed.contains(&format!("{REPO}\t{MODEL}\t")), "{listed}");
    let running: Vec<&str> = listed.lines().filter(|l| l.ends_with("\tyes")).collect();
    assert_eq!(running.len(), 1, "{listed}");
    assert!(running[0].contains(MODEL), "{listed}");
    drop(s);
    // A router's config names the repository; its runner finds it cached.
    let toml = cache.join("models.toml");
    std::fs::write(
        &toml,
        format!("[[models]]\nid = \"vlm\"\nhf_repo = \"{REPO}\"\n"),
    )
    .unwrap();
    let argv = [
        "tessera",
        "--port",
        "0",
        "-t",
        "1",
        "--offline",
        "--hf-cache",
        path(&cache),
        "--models-config",
        path(&toml),
        "--runner-exe",
        env!("CARGO_BIN_EXE_tessera"),
    ];
    let router = tessera::router::start(tessera::config::Config::parse_from(argv))
        .await
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", router.addr))
        .json(&serde_json::json!({"model": "vlm", "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    router.shutdown().await.unwrap();
}

/// A hub (or mirror) that lists names leading out of the cache, answers a
/// path as its commit id, or lies about sizes: nothing is written outside
/// the repository's folder, nothing past the announced size, nothing
/// without one.
#[tokio::test]
async fn a_malicious_hub_cannot_write_outside_the_cache_or_past_a_size() {
    // An absolute name pointing at a GGUF that exists outside the cache.
    let outside = fixtures().dir.join("hub-caches/outside/evil-Q4_K_M.gguf");
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    std::fs::copy(&fixtures().text, &outside).unwrap();
    let mut hub = Hub {
        listed: vec![
            "../../../../../x/evil-Q4_K_M.gguf".into(),
            outside.display().to_string(),
            "evil\u{1b}[2J-Q4_K_M.gguf".into(),
        ],
        ..Default::default()
    };
    hub.files = hub_with_fixtures().files.clone();
    let endpoint = serve_hub(Arc::new(hub)).await;
    let _ = std::fs::remove_dir_all(fixtures().dir.join("hub-caches/evil"));
    let cache = fresh_cache("evil/a/b/c/d/e");
    let err = resolve(&format!("{REPO}:Q4_K_M"), &opts(&endpoint, &cache))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Q4_K_M"), "{err}");
    let evil_root = fixtures().dir.join("hub-caches/evil");
    let planted: Vec<_> = walk(&evil_root)
        .into_iter()
        .filter(|p| !p.starts_with(&cache))
        .collect();
    assert!(planted.is_empty(), "written outside the cache: {planted:?}");

    let bad_sha = Hub {
        files: hub_with_fixtures().files.clone(),
        sha: Some("/tmp/evil".into()),
        ..Default::default()
    };
    let endpoint = serve_hub(Arc::new(bad_sha)).await;
    let cache = fresh_cache("bad-sha");
    let err = resolve(REPO, &opts(&endpoint, &cache)).await.unwrap_err();
    assert!(err.to_string().contains("40 hex"), "{err}");
    assert!(!cache.join("models--test--tiny-vlm-GGUF/refs/main").exists());

    for (lie, says) in [
        (Lie::Size, "more than the 1024 bytes"),
        (Lie::NoSize, "size"),
    ] {
        let hub = Hub {
            files: hub_with_fixtures().files.clone(),
            lie: Some(lie),
            ..Default::default()
        };
        let endpoint = serve_hub(Arc::new(hub)).await;
        let cache = fresh_cache("lying");
        let err = resolve(REPO, &opts(&endpoint, &cache)).await.unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
        let written: u64 = walk(&cache)
            .iter()
            .filter_map(|p| std::fs::symlink_metadata(p).ok())
            .map(|m| m.len())
            .sum();
        assert!(written <= 1024 * 1024, "{written} bytes kept");
    }
}

/// A poisoned `refs/main` (a path, not a commit) and a snapshot folder
/// linking to `/`: offline start-up says the model is not cached, at once,
/// instead of walking the filesystem.
#[tokio::test]
async fn a_poisoned_cache_reads_as_not_cached() {
    let cache = fresh_cache("poisoned");
    let repo_dir = cache.join("models--test--tiny-vlm-GGUF");
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), "/").unwrap();
    let snap = repo_dir.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snap).unwrap();
    std::os::unix::fs::symlink("/", snap.join("root")).unwrap();
    let mut o = opts("http://127.0.0.1:9", &cache);
    o.offline = true;
    let err = resolve(REPO, &o).await.unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "{err}");
    std::fs::write(repo_dir.join("refs/main"), COMMIT).unwrap();
    let err = resolve(REPO, &o).await.unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "{err}");
}

/// Every path below `dir`, links not followed.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}
