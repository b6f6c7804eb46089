//! Shared test helpers: fixtures on disk, a real server on 127.0.0.1:0,
//! and small HTTP/SSE utilities.
#![allow(dead_code)]

pub mod clips;
pub mod sounds;
mod turns;
#[allow(unused_imports)]
pub use turns::exclusive;

use base64::Engine as _;
use clap::Parser;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;
use tessera::config::Config;
use tessera::engine::Status;
use tessera::fixtures::FixtureSet;
use tessera::fixtures::families::FamilyFixture;

pub fn fixtures() -> &'static FixtureSet {
    static SET: OnceLock<FixtureSet> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        tessera::fixtures::write_all(&dir).expect("write fixtures")
    })
}

pub struct TestServer {
    pub server: tessera::Server,
    pub base: String,
    pub client: reqwest::Client,
    /// Declared last: the server is dropped before its turn is given back.
    _turn: turns::ServerTurn,
}

/// Starts a server with the given extra CLI arguments and waits until the
/// model is loaded (no polling: the engine's status is a watch channel).
pub async fn start(args: &[&str]) -> TestServer {
    let mut argv: Vec<String> = vec!["tessera".into(), "--port".into(), "0".into()];
    argv.extend(["--threads".into(), "2".into()]);
    argv.extend(args.iter().map(|s| s.to_string()));
    let config = Config::parse_from(argv);
    let turn = turns::server_turn().await;
    let server = tessera::start(config).await.expect("server starts");
    let status = server.engine.wait_ready().await;
    assert_eq!(status, Status::Ready, "model failed to load");
    let base = format!("http://{}", server.addr);
    TestServer {
        server,
        base,
        client: reqwest::Client::new(),
        _turn: turn,
    }
}

/// A chat template written into the fixtures folder, for
/// `--chat-template-file`.
pub fn template_file(name: &str, body: &str) -> PathBuf {
    let path = fixtures().dir.join(name);
    std::fs::write(&path, body).expect("write template");
    path
}

/// A conversation whose one past tool call has arguments of `n`
/// one-letter strings (each fenced, were it let through).
pub fn tool_call_strings(n: usize) -> Value {
    let args = serde_json::to_string(&json!({"a": vec!["x"; n]})).expect("JSON");
    json!({"max_tokens": 1, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": args}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]})
}

/// Llama 3.2's `custom_tools` kwarg with parameters nested `depth` deep
/// over `numbers` zeros: no strings to count, and each number on a line
/// of `4 * depth` spaces under its `tojson(indent=4)`.
pub fn nested_custom_tools(depth: usize, numbers: usize) -> Value {
    let mut nested = json!(vec![0; numbers]);
    for _ in 0..depth {
        nested = json!({"a": nested});
    }
    json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1,
        "chat_template_kwargs": {"custom_tools": [{"type": "function", "function": {
            "name": "f", "description": "d", "parameters": nested}}]}})
}

pub fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A server on one family's fixture pair.
pub async fn start_family(f: &FamilyFixture, extra: &[&str]) -> TestServer {
    let (text, proj) = f.write(&fixtures().dir).expect("write family fixture");
    start_pair(&text, &proj, extra).await
}

/// A server on a text model and its projector, with `extra` flags.
pub async fn start_pair(
    text: &std::path::Path,
    mmproj: &std::path::Path,
    extra: &[&str],
) -> TestServer {
    let mut args = vec!["--model", path(text), "--mmproj", path(mmproj)];
    args.extend_from_slice(extra);
    start(&args).await
}

/// The fixture text model with the `mlp` projector.
pub async fn start_mlp(extra: &[&str]) -> TestServer {
    let f = fixtures();
    let mut args = vec!["--model", path(&f.text), "--mmproj", path(&f.mmproj_mlp)];
    args.extend_from_slice(tiles_unless_chosen(extra));
    args.extend_from_slice(extra);
    start(&args).await
}

/// The figures of the tests on these two fixtures were written for tiles
/// plus a thumbnail (several pieces per image); `native` (one whole image)
/// has its own tests in `budgets.rs`, `families.rs` and the SDK's.
fn tiles_unless_chosen(extra: &[&str]) -> &'static [&'static str] {
    if extra.contains(&"--tiling") {
        &[]
    } else {
        &["--tiling", "fit"]
    }
}

pub async fn start_qwen(extra: &[&str]) -> TestServer {
    start_qwen_on(&fixtures().text, extra).await
}

/// The `qwen2vl_merger` projector on a given text model (e.g. the M-RoPE one).
pub async fn start_qwen_on(text: &std::path::Path, extra: &[&str]) -> TestServer {
    let f = fixtures();
    let mut args = vec![
        "--model",
        path(text),
        "--mmproj",
        path(&f.mmproj_qwen2vl),
        "--image-max-tokens",
        "256",
    ];
    args.extend_from_slice(tiles_unless_chosen(extra));
    args.extend_from_slice(extra);
    start(&args).await
}

impl TestServer {
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.post_to("/v1/chat/completions", body).await
    }

    /// POSTs JSON to any route; the body comes back as JSON when it is JSON.
    pub async fn post_to(&self, route: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{route}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn post_raw(&self, body: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/v1/chat/completions", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Starts a streaming request and returns the live response.
    pub async fn open_stream(&self, body: &Value) -> reqwest::Response {
        self.open_stream_to("/v1/chat/completions", body).await
    }

    pub async fn open_stream_to(&self, route: &str, body: &Value) -> reqwest::Response {
        let resp = self
            .client
            .post(format!("{}{route}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        resp
    }

    /// Sends a streaming request and returns the raw `data:` payloads.
    pub async fn stream(&self, body: &Value) -> Vec<String> {
        self.stream_to("/v1/chat/completions", body).await
    }

    pub async fn stream_to(&self, route: &str, body: &Value) -> Vec<String> {
        let resp = self.open_stream_to(route, body).await;
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        let text = resp.text().await.expect("body");
        sse_data(&text)
    }

    pub async fn get(&self, route: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{route}", self.base))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// One unlabelled sample of `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        tessera::soak::gauge(&self.client, &self.base, name)
            .await
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    }
}

/// The `data:` payloads of an SSE body, in order (keep-alive comments skipped).
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// The first choice's `delta[field]` texts of streamed chunks, joined
/// (events that are not JSON, such as `[DONE]`, skipped).
pub fn streamed_delta(events: &[String], field: &str) -> String {
    events
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"][field].as_str().map(String::from))
        .collect()
}

pub fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode png");
    out
}

pub fn data_url(bytes: &[u8], mime: &str) -> String {
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

pub fn image_part(width: u32, height: u32, rgb: [u8; 3]) -> Value {
    json!({"type": "image_url", "image_url": {"url": data_url(&png(width, height, rgb), "image/png")}})
}

pub fn text_part(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

/// A greedy request with one user message made of `parts`.
pub fn greedy(parts: Vec<Value>, max_tokens: u32) -> Value {
    json!({
        "model": "tiny",
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": max_tokens,
        "temperature": 0
    })
}

pub fn content(v: &Value) -> String {
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content in {v}"))
        .to_string()
}

/// Asserts OpenAI's error envelope and returns its message.
pub fn error_message(v: &Value) -> String {
    assert_envelope(v)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Asserts OpenAI's error envelope and returns the error object.
pub fn assert_envelope(v: &Value) -> &Value {
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some(), "{v}");
    assert!(e.get("code").is_some(), "{v}");
    e
}

/// Asserts that the README between `<!-- NAME:start -->` and
/// `<!-- NAME:end -->` is `table`, the code-generated truth; with
/// `TESSERA_UPDATE_README=1` rewrites it instead.
pub fn assert_readme_section(name: &str, table: &str) {
    let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(readme_path).unwrap();
    let (start, end) = (
        format!("<!-- {name}:start -->\n"),
        format!("<!-- {name}:end -->"),
    );
    let a = readme
        .find(&start)
        .unwrap_or_else(|| panic!("README has no {start}"))
        + start.len();
    let b = readme
        .find(&end)
        .unwrap_or_else(|| panic!("README has no {end}"));
    if std::env::var_os("TESSERA_UPDATE_README").is_some() {
        let updated = format!("{}{}{}", &readme[..a], table, &readme[b..]);
        std::fs::write(readme_path, updated).unwrap();
        return;
    }
    assert_eq!(
        readme[a..b],
        *table,
        "README {name} table is stale; rerun with TESSERA_UPDATE_README=1"
    );
}
