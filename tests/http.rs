//! HTTP hygiene: bearer auth, request ids, CORS and compression.

mod common;

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
