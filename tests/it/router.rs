//! Router mode with real runner processes (this package's binary) on the
//! generated fixtures: routing by id, load on demand, eviction, idle
//! unload, load failures, a runner's abort, admin routes and shutdown.
//! Faults come from the runner's debug-only hooks (`api/test_hooks.rs`),
//! switched on through a wrapper script that sets their variables.

use crate::common::fixtures;
use clap::Parser;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tessera::config::Config;
use tessera::router::RouterServer;

/// Marks that fault the runner (see `api/test_hooks.rs`).
const ABORT: &str = "PLEASE-ABORT-NOW";
const STALL: &str = "PLEASE-STALL-NOW";

struct Routed {
    server: RouterServer,
    base: String,
    client: reqwest::Client,
}

/// A folder of this test's own.
fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("router")
        .join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A runner program with the fault hooks switched on.
fn faulty_runner(d: &std::path::Path) -> PathBuf {
    let script = d.join("runner.sh");
    let body = format!(
        "#!/bin/sh\nexport TESSERA_TEST_ABORT_ON={ABORT}\nexport TESSERA_TEST_STALL_ON={STALL}\nexec {} \"$@\"\n",
        env!("CARGO_BIN_EXE_tessera")
    );
    std::fs::write(&script, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Three models: `text`, `vision` (alias `vlm`, with a projector) and `stopper`.
fn three_models() -> String {
    let f = fixtures();
    format!(
        "[[models]]\nid = \"text\"\nmodel = {:?}\n\n\
         [[models]]\nid = \"vision\"\naliases = [\"vlm\"]\nmodel = {:?}\nmmproj = {:?}\n\
         [models.options]\nctx-size = 2048\n\n\
         [[models]]\nid = \"stopper\"\nmodel = {:?}\n",
        f.text, f.text_qwen2vl, f.mmproj_qwen2vl, f.text_stopper
    )
}

async fn start(name: &str, toml: &str, args: &[&str]) -> Routed {
    let d = dir(name);
    let config = d.join("models.toml");
    std::fs::write(&config, toml).unwrap();
    let runner = faulty_runner(&d);
    let mut argv: Vec<String> = ["tessera", "--port", "0", "-t", "1", "--models-config"]
        .map(String::from)
        .to_vec();
    argv.push(config.display().to_string());
    argv.extend(["--runner-exe".to_string(), runner.display().to_string()]);
    argv.extend(args.iter().map(|s| s.to_string()));
    let server = tessera::router::start(Config::parse_from(argv))
        .await
        .expect("router starts");
    Routed {
        base: format!("http://{}", server.addr),
        server,
        client: reqwest::Client::new(),
    }
}

impl Routed {
    async fn chat(&self, model: &str, text: &str) -> (u16, Value) {
        let body = json!({"model": model, "max_tokens": 4,
            "messages": [{"role": "user", "content": text}]});
        self.post("/v1/chat/completions", &body).await
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The body of a GET, sent with `key` when given.
    async fn get_text(&self, path: &str, key: Option<&str>) -> String {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send().await.unwrap().text().await.unwrap()
    }

    async fn models(&self, key: Option<&str>) -> Value {
        serde_json::from_str(&self.get_text("/v1/models", key).await).unwrap()
    }

    async fn states(&self) -> Vec<(String, String)> {
        let list = self.models(None).await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let id = m["id"].as_str().unwrap().to_string();
                (id, m["status"]["value"].as_str().unwrap().to_string())
            })
            .collect()
    }

    async fn state(&self, id: &str) -> String {
        let states = self.states().await;
        states.into_iter().find(|(i, _)| i == id).unwrap().1
    }

    /// A request to `model` that its runner never answers, once the router
    /// forwards it; its task ends with the status and body it gets.
    async fn stalled(&self, model: &str) -> tokio::task::JoinHandle<(u16, Value)> {
        let (client, url) = (
            self.client.clone(),
            format!("{}/v1/chat/completions", self.base),
        );
        let body = json!({"model": model, "max_tokens": 4,
            "messages": [{"role": "user", "content": STALL}]});
        let task = tokio::spawn(async move {
            let resp = client.post(url).json(&body).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        });
        self.wait_in_flight(model, 1).await;
        task
    }

    /// Waits (a minute at most) until `id` is in `want`.
    async fn wait_state(&self, id: &str, want: &str) {
        for _ in 0..1200 {
            if self.state(id).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("`{id}` never became {want}: {:?}", self.states().await);
    }

    /// Waits until the router forwards `n` requests for `id`.
    async fn wait_in_flight(&self, id: &str, n: usize) {
        let line = format!("tessera_router_in_flight{{model=\"{id}\"}} {n}");
        for _ in 0..1200 {
            let m = self.get_text("/metrics", None).await;
            if m.lines().any(|l| l == line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("`{id}` never had {n} requests in flight");
    }
}

#[tokio::test]
async fn requests_route_by_model_and_unknown_ids_are_named() {
    let r = start("route", &three_models(), &[]).await;
    assert!(r.states().await.iter().all(|(_, s)| s == "unloaded"));
    // The front serves the playground, whose model picker lists every model.
    assert!(r.get_text("/ui/", None).await.contains("id=\"model\""));
    let (status, body) = r.chat("text", "hi").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "text");
    // An alias, through the Responses API.
    let (status, body) = r
        .post(
            "/v1/responses",
            &json!({"model": "vlm", "input": "hi", "max_output_tokens": 4}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Stored where it ran; the front finds it among the loaded runners.
    let stored = format!("/v1/responses/{}", body["id"].as_str().unwrap());
    let got: Value = serde_json::from_str(&r.get_text(&stored, None).await).unwrap();
    assert_eq!(got["id"], body["id"], "{got}");
    let gone = r
        .client
        .delete(format!("{}{stored}", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200);
    let missing: Value = serde_json::from_str(&r.get_text(&stored, None).await).unwrap();
    assert_eq!(missing["error"]["param"], "response_id", "{missing}");
    // The price preview, with an image, on the model with a projector.
    let image = crate::common::image_part(64, 48, [200, 30, 30]);
    let preview = json!({"model": "vision", "messages": [{"role": "user", "content": [image]}]});
    let (status, body) = r.post("/v1/chat/completions/input_tokens", &preview).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["image_tokens"].as_u64().unwrap_or(0) > 0, "{body}");
    let (status, body) = r.chat("nope", "hi").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    // Anthropic's route: routed by `model`, its errors in its envelope.
    let anthropic = |model: &str| json!({"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]});
    let (status, m) = r.post("/v1/messages", &anthropic("text")).await;
    assert_eq!((status, &m["type"]), (200, &json!("message")), "{m}");
    let (status, m) = r.post("/v1/messages", &anthropic("nope")).await;
    assert_eq!(status, 404);
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["error"]["type"], "not_found_error");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("`nope`") && msg.contains("text, vision, stopper"),
        "{msg}"
    );
    let states = r.states().await;
    assert_eq!(
        states,
        [
            ("text", "loaded"),
            ("vision", "loaded"),
            ("stopper", "unloaded")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let metrics = r.get_text("/metrics", None).await;
    assert!(metrics.contains("model=\"text\"") && metrics.contains("model=\"vision\""));
    let types = metrics.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let unique: std::collections::HashSet<_> = metrics
        .lines()
        .filter(|l| l.starts_with("# TYPE "))
        .collect();
    assert_eq!(types, unique.len(), "a metric family is declared twice");
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn loading_past_the_limit_evicts_the_least_recent_idle_model_never_a_busy_one() {
    let r = start("evict", &three_models(), &["--models-max", "2"]).await;
    // `text` is loaded first and stays busy: the least recently used, but in flight.
    let stalled = r.stalled("text").await;
    assert_eq!(r.chat("vision", "hi").await.0, 200);
    assert_eq!(r.chat("stopper", "hi").await.0, 200);
    assert_eq!(r.state("text").await, "loaded", "a busy model was evicted");
    assert_eq!(r.state("vision").await, "unloaded");
    assert_eq!(r.state("stopper").await, "loaded");
    // A request's end is a use: once `text` is idle, `stopper` (used
    // before that end) is the least recent, and goes for `vision`.
    stalled.abort();
    r.wait_in_flight("text", 0).await;
    assert_eq!(r.chat("vision", "hi").await.0, 200);
    assert_eq!(r.state("stopper").await, "unloaded");
    let loaded = r
        .states()
        .await
        .iter()
        .filter(|(_, s)| s == "loaded")
        .count();
    assert_eq!(loaded, 2);
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_models_unload_after_the_idle_time() {
    let r = start("idle", &three_models(), &["--idle-unload-seconds", "1"]).await;
    assert_eq!(r.chat("text", "hi").await.0, 200);
    r.wait_state("text", "unloaded").await;
    // And it loads again on the next request.
    assert_eq!(r.chat("text", "hi").await.0, 200);
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_model_that_cannot_load_fails_alone_with_its_reason() {
    let d = dir("fail");
    let corrupt = d.join("corrupt.gguf");
    std::fs::write(&corrupt, b"GGUF but not really a model").unwrap();
    let toml = format!(
        "{}\n[[models]]\nid = \"corrupt\"\nmodel = {corrupt:?}\n\n\
         [[models]]\nid = \"no-mmproj\"\nmodel = {:?}\nmmproj = \"missing-mmproj.gguf\"\n",
        three_models(),
        fixtures().text
    );
    let r = start("fail", &toml, &[]).await;
    for (id, says) in [
        ("corrupt", "corrupt.gguf"),
        ("no-mmproj", "missing-mmproj.gguf"),
    ] {
        let (status, body) = r.chat(id, "hi").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "model_failed");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{id}: {msg}");
        assert_eq!(r.state(id).await, "failed");
    }
    assert_eq!(r.chat("text", "hi").await.0, 200);
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_abort_in_one_runner_fails_only_its_requests_and_it_restarts() {
    let r = start("abort", &three_models(), &[]).await;
    assert_eq!(r.chat("text", "hi").await.0, 200);
    assert_eq!(r.chat("stopper", "hi").await.0, 200);
    let pids = r.server.runner_pids();
    // A request in flight on the same runner when it aborts.
    let stalled = r.stalled("text").await;
    let (status, body) = r.chat("text", ABORT).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "model_crashed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("crashed")
    );
    let (status, body) = stalled.await.unwrap();
    assert_eq!(status, 503, "{body}");
    // The other model never noticed.
    assert_eq!(r.chat("stopper", "hi").await.0, 200);
    let stopper_pid = pids.iter().find(|(id, _)| id == "stopper").unwrap().1;
    assert!(
        r.server
            .runner_pids()
            .contains(&("stopper".into(), stopper_pid))
    );
    // The next request to the crashed model waits out the backoff and succeeds.
    let (status, body) = r.chat("text", "hi").await;
    assert_eq!(status, 200, "{body}");
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_routes_load_and_unload_with_the_admin_key() {
    let r = start(
        "admin",
        &three_models(),
        &["--admin-key", "adm", "--api-key", "usr"],
    )
    .await;
    let admin = |path: &'static str, key: &'static str| {
        let req = r
            .client
            .post(format!("{}{path}", r.base))
            .bearer_auth(key)
            .json(&json!({"model": "stopper"}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(admin("/models/load", "usr").await, 401);
    assert_eq!(admin("/models/load", "adm").await, 200);
    let models = r.models(Some("usr")).await;
    let stopper = &models["data"][2];
    assert_eq!(stopper["status"]["value"], "loaded");
    assert!(
        stopper["capabilities"]["context_size"].as_u64().is_some(),
        "{stopper}"
    );
    assert!(stopper["context_length"].as_u64().is_some(), "{stopper}");
    assert_eq!(
        stopper["architecture"]["input_modalities"],
        json!(["text"]),
        "{stopper}"
    );
    assert_eq!(admin("/models/unload", "adm").await, 200);
    let models = r.models(Some("usr")).await;
    assert_eq!(models["data"][2]["status"]["value"], "unloaded");
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_open_streams_then_stops_every_runner() {
    let r = start("drain", &three_models(), &[]).await;
    assert_eq!(r.chat("stopper", "hi").await.0, 200);
    let body = json!({"model": "text", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut resp = r
        .client
        .post(format!("{}/v1/chat/completions", r.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let pids: Vec<u32> = r.server.runner_pids().into_iter().map(|(_, p)| p).collect();
    assert_eq!(pids.len(), 2);
    let shutdown = tokio::spawn(r.server.shutdown());
    let mut rest = Vec::from(&first[..]);
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert!(String::from_utf8_lossy(&rest).contains("data: [DONE]"));
    shutdown.await.unwrap().unwrap();
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "runner {pid} still runs"
        );
    }
}

#[tokio::test]
async fn the_front_refuses_a_body_over_the_limit_before_loading_anything() {
    let r = start("limit", &three_models(), &["--max-body-bytes", "1024"]).await;
    let (status, body) = r.chat("text", &"x".repeat(4096)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-body-bytes")
    );
    let (status, body) = r
        .post("/v1/chat/completions", &json!("not an object"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(r.states().await.iter().all(|(_, s)| s == "unloaded"));
    r.server.shutdown().await.unwrap();
}

/// The tiny models take ~4.4 MiB each at the default context (0.4 MiB of
/// file, 256 KiB of F16 KV per 1,024 cells): 6 MiB holds one of them.
#[tokio::test]
async fn the_memory_budget_evicts_to_fit_and_refuses_a_model_that_never_fits() {
    let toml = format!(
        "{}\n[[models]]\nid = \"huge\"\nmodel = {:?}\n[models.options]\nctx-size = 65536\n",
        three_models(),
        fixtures().text
    );
    let r = start("memory", &toml, &["--models-memory-mb", "6"]).await;
    assert_eq!(r.chat("text", "hi").await.0, 200);
    assert_eq!(r.chat("stopper", "hi").await.0, 200);
    assert_eq!(r.state("text").await, "unloaded");
    assert_eq!(r.state("stopper").await, "loaded");
    let (status, body) = r.chat("huge", "hi").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "model_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--models-memory-mb 6")
    );
    assert_eq!(
        r.state("stopper").await,
        "loaded",
        "nothing is evicted for a model that cannot fit"
    );
    r.server.shutdown().await.unwrap();
}

/// Each crash restarts the model after a backoff (1 s, then 2 s); the third
/// in ten minutes leaves it `failed` until an admin load.
#[tokio::test]
async fn a_model_that_keeps_crashing_is_failed_until_an_admin_load() {
    let r = start("crashes", &three_models(), &[]).await;
    for _ in 0..3 {
        let (status, body) = r.chat("text", ABORT).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "model_crashed");
    }
    r.wait_state("text", "failed").await;
    let (status, body) = r.chat("text", "hi").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "model_failed");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("SIGABRT") && msg.contains("3 times"), "{msg}");
    let load = r
        .client
        .post(format!("{}/models/load", r.base))
        .json(&json!({"model": "text"}))
        .send()
        .await
        .unwrap();
    assert_eq!(load.status(), 200);
    assert_eq!(r.chat("text", "hi").await.0, 200);
    r.server.shutdown().await.unwrap();
}
