//! HTTP hygiene: bearer auth, request ids, CORS and compression.

use crate::common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn api_keys_guard_every_route_but_health() {
    let s = start_mlp(&["--api-key", "k1,k2"]).await;
    let url = |p: &str| format!("{}{p}", s.base);
    let resp = s.client.get(url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    for auth in [None, Some("Bearer nope"), Some("Basic k1")] {
        let mut req = s.client.get(url("/v1/models"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(assert_envelope(&v)["type"], "authentication_error");
    }
    for key in ["k1", "k2"] {
        let resp = s
            .client
            .post(url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&greedy(vec![text_part("hi")], 2))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{key}");
    }
}

#[tokio::test]
async fn api_keys_from_a_file() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("keys.txt");
    std::fs::write(&file, "# team keys\nalpha\n\nbeta\n").unwrap();
    let s = start_mlp(&["--api-key-file", path(&file)]).await;
    let resp = s
        .client
        .get(format!("{}/v1/models", s.base))
        .bearer_auth("beta")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = s
        .client
        .get(format!("{}/v1/models", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn request_ids_cors_and_compression() {
    let s = start_mlp(&["--cors-origin", "http://app.example"]).await;
    // x-request-id: echoed when given, generated when not.
    let resp = s
        .client
        .get(format!("{}/v1/models", s.base))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-42");
    let resp = s
        .client
        .get(format!("{}/v1/models", s.base))
        .send()
        .await
        .unwrap();
    assert!(!resp.headers()["x-request-id"].is_empty());
    // An id that could forge log fields (spaces, `=`, quotes) or is too
    // long is replaced by a fresh one, not echoed or logged.
    for forged in ["x model=forged status=ok", "a\"b", &"x".repeat(200)] {
        let resp = s
            .client
            .get(format!("{}/v1/models", s.base))
            .header("x-request-id", forged)
            .send()
            .await
            .unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap();
        assert!(id != forged && uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    // CORS preflight for the configured origin only.
    let preflight = |origin: &'static str| {
        s.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/chat/completions", s.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("http://app.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Compression for JSON answers, never for event streams.
    let mut body = greedy(vec![text_part("zip me")], 40);
    let resp = s
        .client
        .post(format!("{}/v1/chat/completions", s.base))
        .header("accept-encoding", "gzip")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    body["stream"] = json!(true);
    let resp = s
        .client
        .post(format!("{}/v1/chat/completions", s.base))
        .header("accept-encoding", "gzip")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
    assert!(resp.text().await.unwrap().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn without_cors_origins_no_cors_headers() {
    let s = start_mlp(&[]).await;
    let resp = s
        .client
        .get(format!("{}/v1/models", s.base))
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn metrics_in_prometheus_text() {
    let s = start_mlp(&["--api-key", "k", "--metrics-public"]).await;
    let body = greedy(
        vec![text_part("count me"), image_part(80, 40, [1, 2, 3])],
        4,
    );
    let resp = s
        .client
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth("k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    // /metrics is public here; the API is not.
    let resp = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert_eq!(
        value("tessera_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"),
        1.0
    );
    assert_eq!(value("tessera_completion_tokens_total"), 4.0);
    assert_eq!(
        value("tessera_prompt_tokens_total"),
        v["usage"]["prompt_tokens"].as_f64().unwrap()
    );
    assert_eq!(
        value("tessera_image_tokens_total"),
        v["usage"]["prompt_tokens_details"]["image_tokens"]
            .as_f64()
            .unwrap()
    );
    assert_eq!(value("tessera_time_to_first_token_seconds_count"), 1.0);
    assert_eq!(value("tessera_inter_token_latency_seconds_count"), 3.0);
    // 100x50 on 40 px tiles: a 2x1 grid.
    // 80x40 on 40 px tiles: a 2x1 grid, no padding.
    assert_eq!(value("tessera_image_tiles_sum"), 2.0);
    // Three pieces (two tiles and the thumbnail) of one solid colour: the
    // same piece, encoded once and then served from the embedding cache.
    assert_eq!(value("tessera_image_cache_misses_total"), 1.0);
    assert_eq!(value("tessera_image_cache_hits_total"), 2.0);
    assert_eq!(value("tessera_image_encode_seconds_count"), 1.0);
    assert!(value("tessera_image_cache_bytes") > 0.0);
    assert_eq!(value("tessera_active_sequences"), 0.0);
    // Without --metrics-public, /metrics needs the key too.
    let closed = start_mlp(&["--api-key", "k"]).await;
    let resp = closed
        .client
        .get(format!("{}/metrics", closed.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
