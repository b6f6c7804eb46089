//! Many clients at once: continuous batching, prefix reuse, backpressure,
//! disconnects and graceful shutdown, on the real engine.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn colour(i: u32) -> [u8; 3] {
    [
        (i * 37 % 256) as u8,
        (i * 91 % 256) as u8,
        (255 - i * 23 % 256) as u8,
    ]
}

fn image_request(i: u32) -> Value {
    greedy(
        vec![text_part("what is this?"), image_part(24, 24, colour(i))],
        12,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_requests_match_sequential_runs() {
    let _alone = exclusive().await;
    let batched = start_mlp(&["--parallel", "8"]).await;
    let mut handles = Vec::new();
    for i in 0..8 {
        let client = batched.client.clone();
        let url = format!("{}/v1/chat/completions", batched.base);
        handles.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .json(&image_request(i))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }));
    }
    let mut together = Vec::new();
    for h in handles {
        together.push(h.await.unwrap());
    }
    // The same requests, one at a time, on a fresh single-sequence server.
    let single = start_mlp(&["--parallel", "1"]).await;
    for (i, t) in together.iter().enumerate() {
        let (status, alone) = single.post(&image_request(i as u32)).await;
        assert_eq!(status, 200);
        assert_eq!(t["usage"]["prompt_tokens"], alone["usage"]["prompt_tokens"]);
        assert_eq!(t["usage"]["completion_tokens"], 12);
        assert_eq!(t["usage"]["prompt_tokens_details"]["image_tokens"], 25);
        assert_eq!(content(t), content(&alone), "request {i}: batched != alone");
    }
    let distinct: std::collections::HashSet<String> = together.iter().map(content).collect();
    assert!(
        distinct.len() > 1,
        "different images should not all answer alike"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_gets_429_with_retry_after() {
    let s = start_mlp(&["--parallel", "1", "--max-queue", "1", "--ctx-size", "65536"]).await;
    // A occupies the only sequence for a long time (up to 65k tokens).
    let long = json!({
        "messages": [{"role": "user", "content": "go on forever"}],
        "max_tokens": 60000, "temperature": 0, "stream": true
    });
    let mut a = s.open_stream(&long).await;
    a.chunk().await.unwrap().expect("A is running");
    // B and C arrive while A runs: one waits in the queue, the other is refused.
    let send = |body: Value| {
        let client = s.client.clone();
        let url = format!("{}/v1/chat/completions", s.base);
        tokio::spawn(async move {
            let resp = client.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            let retry = resp.headers().get("retry-after").cloned();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, retry, body)
        })
    };
    let mut b = send(greedy(vec![text_part("b")], 3));
    let mut c = send(greedy(vec![text_part("c")], 3));
    // The queued one cannot finish while A runs, so the first to answer is the refusal.
    let (first, other) = tokio::select! {
        r = &mut b => (r.unwrap(), c),
        r = &mut c => (r.unwrap(), b),
    };
    let (status, retry, body) = first;
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some(), "429 carries Retry-After");
    assert_eq!(assert_envelope(&body)["type"], "rate_limit_error");
    // Hanging up on A frees the sequence; the queued request then runs.
    drop(a);
    let (status, _, body) = other.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["completion_tokens"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_abandoned_streams_free_their_sequences() {
    let s = start_mlp(&["--parallel", "2"]).await;
    let before = s.server.engine.generated_tokens();
    for i in 0..50 {
        let body = json!({
            "messages": [{"role": "user", "content": format!("story {i}")}],
            "max_tokens": 2000, "temperature": 0, "stream": true
        });
        let mut resp = s.open_stream(&body).await;
        assert_eq!(resp.status(), 200);
        resp.chunk().await.unwrap().expect("first chunk");
        drop(resp);
    }
    let (status, v) = s.post(&greedy(vec![text_part("still serving?")], 5)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    // Abandoned streams stopped early: far fewer than 50 x 2000 tokens.
    let spent = s.server.engine.generated_tokens() - before;
    assert!(
        spent < 50 * 2000 / 2,
        "{spent} tokens generated for abandoned streams"
    );
}

fn turn(image: Value, follow_up: Option<&str>, answer: &str) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You describe pictures."}),
        json!({"role": "user", "content": [text_part("what is in it?"), image]}),
    ];
    if let Some(q) = follow_up {
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(json!({"role": "user", "content": q}));
    }
    json!({"messages": messages, "max_tokens": 8, "temperature": 0})
}

#[tokio::test]
async fn a_follow_up_turn_reuses_the_image_prefix() {
    let _alone = exclusive().await;
    let s = start_qwen(&["--parallel", "2"]).await;
    let a = image_part(300, 200, [200, 40, 40]);
    let b = image_part(300, 200, [40, 40, 200]);
    let (_, first) = s.post(&turn(a.clone(), None, "")).await;
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let answer = content(&first);
    let image_tokens = first["usage"]["prompt_tokens_details"]["image_tokens"]
        .as_u64()
        .unwrap();
    let (_, second) = s
        .post(&turn(a.clone(), Some("and the colours?"), &answer))
        .await;
    let cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached > image_tokens, "the image was reused: {cached}");
    // Same greedy output as an uncached run.
    let fresh = start_qwen(&["--parallel", "1"]).await;
    let (_, uncached) = fresh
        .post(&turn(a, Some("and the colours?"), &answer))
        .await;
    assert_eq!(
        uncached["usage"]["prompt_tokens_details"]["cached_tokens"],
        0
    );
    assert_eq!(content(&second), content(&uncached));
    assert_eq!(
        second["usage"]["prompt_tokens"],
        uncached["usage"]["prompt_tokens"]
    );
    // A different image of the same size: its placeholders look alike, but
    // only the text before it is reused.
    let (_, other) = s.post(&turn(b, Some("and the colours?"), &answer)).await;
    let other_cached = other["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        other_cached + image_tokens <= cached,
        "different image reused: {other_cached} vs {cached}"
    );
    assert!(other_cached > 0, "the system prompt is still shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_drains_a_running_stream() {
    let s = start_mlp(&["--parallel", "2"]).await;
    let body = json!({
        "messages": [{"role": "user", "content": "finish me"}],
        "max_tokens": 300, "temperature": 0, "stream": true
    });
    let mut resp = s.open_stream(&body).await;
    let mut text = String::from_utf8(resp.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    let TestServer { server, base, .. } = s;
    let shutdown = tokio::spawn(server.shutdown());
    while let Some(chunk) = resp.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = sse_data(&text);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "stream drained"
    );
    let fin: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "length");
    shutdown.await.unwrap().unwrap();
    // New connections are refused once it has shut down.
    assert!(reqwest::get(format!("{base}/health")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_timeout_ends_a_stream_cleanly_instead_of_cutting_it() {
    let s = start_mlp(&[
        "--parallel",
        "1",
        "--ctx-size",
        "65536",
        "--request-timeout",
        "1",
    ])
    .await;
    let body = json!({
        "messages": [{"role": "user", "content": "never stop"}],
        "max_tokens": 60000, "temperature": 0, "stream": true,
        "stream_options": {"include_usage": true}
    });
    let events = s.stream(&body).await;
    // The connection is not cut: the stream ends as any other, with
    // finish_reason `length`, a usage chunk and [DONE].
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    let fin: Value = serde_json::from_str(&events[events.len() - 3]).unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "length");
    let generated = usage["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(
        generated < 60000,
        "the deadline stopped it early: {generated}"
    );
}
