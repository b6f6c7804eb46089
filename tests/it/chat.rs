//! End-to-end Chat Completions on the real llama.cpp engine and the
//! generated fixtures.

use crate::common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn non_streaming_answer_with_exact_usage() {
    let s = start_mlp(&[]).await;
    let (status, v) = s.post(&greedy(vec![text_part("hello")], 8)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 0);
    assert_eq!(v["model"], "tiny-text");
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert!(!content(&v).is_empty());
    let u = &v["usage"];
    assert_eq!(u["completion_tokens"], 8);
    let prompt = u["prompt_tokens"].as_u64().unwrap();
    assert!(prompt > 0);
    assert_eq!(u["total_tokens"].as_u64().unwrap(), prompt + 8);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["prompt_tokens_details"]["image_tokens"], 0);
}

#[tokio::test]
async fn usage_counts_images_exactly_mlp() {
    let s = start_mlp(&[]).await;
    let red = [200, 10, 10];
    let mut prompt = Vec::new();
    for n in 0..3 {
        let mut parts = vec![text_part("look")];
        for _ in 0..n {
            let mut img = image_part(64, 48, red);
            img["image_url"]["detail"] = json!("low");
            parts.push(img);
        }
        let (status, v) = s.post(&greedy(parts, 2)).await;
        assert_eq!(status, 200, "{v}");
        let u = &v["usage"];
        // The fixture projector: (40 px / 8 px)^2 = 25 tokens per image (`low`:
        // the thumbnail only).
        assert_eq!(u["prompt_tokens_details"]["image_tokens"], 25 * n);
        prompt.push(u["prompt_tokens"].as_u64().unwrap());
    }
    assert_eq!(prompt[1], prompt[0] + 25);
    assert_eq!(prompt[2], prompt[0] + 50);
}

#[tokio::test]
async fn usage_counts_images_exactly_qwen2vl() {
    let s = start_qwen(&[]).await;
    let (_, base) = s.post(&greedy(vec![text_part("look")], 2)).await;
    // 112x84 fits one 448 px tile, so `auto` sends the thumbnail only: the
    // largest 28 px grid within 75 positions at about 4:3 is 9 x 8 = 72
    // tokens, plus <|vision_start|> and <|vision_end|> around them.
    let img = image_part(112, 84, [0, 90, 200]);
    let (status, v) = s
        .post(&greedy(vec![text_part("look"), img.clone()], 2))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens_details"]["image_tokens"], 74);
    assert_eq!(
        v["usage"]["prompt_tokens"].as_u64().unwrap(),
        base["usage"]["prompt_tokens"].as_u64().unwrap() + 74
    );
    // `high` under the default `fit` tiling: the image fits one 448 px tile
    // (16 x 16 + 2 cells) and gets no thumbnail. Under `internvl`, 4:3 is a
    // 4 x 3 grid with the image upscaled, plus the thumbnail.
    let mut high = img;
    high["image_url"]["detail"] = json!("high");
    let body = greedy(vec![text_part("look"), high], 2);
    let (_, big) = s.post(&body).await;
    assert_eq!(big["usage"]["prompt_tokens_details"]["image_tokens"], 258);
    let internvl = start_qwen(&["--tiling", "internvl"]).await;
    let (_, big) = internvl.post(&body).await;
    assert_eq!(
        big["usage"]["prompt_tokens_details"]["image_tokens"],
        12 * 258 + 74
    );
}

#[tokio::test]
async fn the_image_changes_the_answer() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let ask = |rgb| greedy(vec![text_part("what colour?"), image_part(32, 32, rgb)], 12);
    let (_, red) = s.post(&ask([255, 0, 0])).await;
    let (_, blue) = s.post(&ask([0, 0, 255])).await;
    let (_, red_again) = s.post(&ask([255, 0, 0])).await;
    assert_eq!(
        content(&red),
        content(&red_again),
        "greedy is deterministic"
    );
    assert_ne!(
        content(&red),
        content(&blue),
        "the image must reach the decoder"
    );
}

#[tokio::test]
async fn images_keep_their_order_across_turns() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let red = image_part(16, 16, [255, 0, 0]);
    let blue = image_part(16, 16, [0, 0, 255]);
    let conv = |a: &Value, b: &Value| {
        json!({
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [a, text_part("and")]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [text_part("now"), b]}
            ],
            "max_tokens": 10, "temperature": 0
        })
    };
    let (s1, one) = s.post(&conv(&red, &blue)).await;
    let (s2, two) = s.post(&conv(&blue, &red)).await;
    assert_eq!((s1, s2), (200, 200));
    // 16x16 fits a 40 px tile: `auto` sends one 25-token thumbnail each.
    assert_eq!(one["usage"]["prompt_tokens_details"]["image_tokens"], 50);
    assert_ne!(content(&one), content(&two));
}

#[tokio::test]
async fn seed_reproduces_sampling() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let req = |seed: i64| {
        json!({
            "messages": [{"role": "user", "content": "tell me something"}],
            "max_completion_tokens": 16, "temperature": 1.0, "top_p": 0.95, "top_k": 40,
            "seed": seed
        })
    };
    let (_, a) = s.post(&req(42)).await;
    let (_, b) = s.post(&req(42)).await;
    assert_eq!(content(&a), content(&b));
    assert_eq!(a["usage"]["completion_tokens"], 16);
    let mut differs = false;
    for seed in 43..48 {
        let (_, c) = s.post(&req(seed)).await;
        differs |= content(&c) != content(&a);
    }
    assert!(differs, "different seeds must be able to change the sample");
}

#[tokio::test]
async fn stop_sequence_ends_the_answer_without_leaking() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let (_, full) = s.post(&greedy(vec![text_part("go")], 24)).await;
    let text = content(&full);
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() >= 10, "fixture output too short: {text:?}");
    let stop: String = chars[6..8].iter().collect();
    let expected = &text[..text.find(&stop).unwrap()];
    let mut req = greedy(vec![text_part("go")], 24);
    req["stop"] = json!([stop.clone(), "\u{1F600}never"]);
    let (status, v) = s.post(&req).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(content(&v), expected);
    assert!(!content(&v).contains(&stop));
    // Streaming: the same, and the stop text never appears in any delta.
    req["stream"] = json!(true);
    req["stop"] = json!(stop);
    let events = s.stream(&req).await;
    let streamed: String = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| {
            let v: Value = serde_json::from_str(e).unwrap();
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(streamed, expected);
}

#[tokio::test]
async fn end_of_turn_gives_finish_reason_stop() {
    let f = fixtures();
    let s = start(&[
        "--model",
        path(&f.text_stopper),
        "--mmproj",
        path(&f.mmproj_mlp),
    ])
    .await;
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 30)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(content(&v), "");
    assert_eq!(v["usage"]["completion_tokens"], 0);
    // `ignore_eos` (llama-server's extension for load tests): the same
    // model now runs to max_tokens.
    let mut body = greedy(vec![text_part("hi")], 7);
    body["ignore_eos"] = json!(true);
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length", "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 7);
}

#[tokio::test]
async fn streaming_framing_matches_openai() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let mut req = greedy(
        vec![text_part("stream please"), image_part(20, 20, [9, 9, 9])],
        10,
    );
    let (_, whole) = s.post(&req).await;
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let events = s.stream(&req).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert_eq!(c["model"], "tiny-text");
        assert!(
            c.get("usage").is_some(),
            "include_usage puts usage on every chunk"
        );
    }
    // First: the role.
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[0]["choices"][0]["finish_reason"].is_null());
    // Last before usage: empty delta with the finish reason.
    let n = chunks.len();
    let fin = &chunks[n - 2];
    assert_eq!(fin["choices"][0]["delta"], json!({}));
    assert_eq!(fin["choices"][0]["finish_reason"], "length");
    // Usage chunk: no choices, exact usage equal to the non-streamed one.
    let usage = &chunks[n - 1];
    assert_eq!(usage["choices"], json!([]));
    // Same usage as the non-streamed run, except that this second run of the
    // same prompt reuses the cached prefix (all but the last prompt token).
    let mut expected = whole["usage"].clone();
    let prompt = expected["prompt_tokens"].as_u64().unwrap();
    expected["prompt_tokens_details"]["cached_tokens"] = json!(prompt - 1);
    assert_eq!(usage["usage"], expected);
    // Content deltas in between, concatenating to the non-streamed answer.
    let text: String = chunks[1..n - 2]
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["finish_reason"].is_null());
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, content(&whole));

    // Without include_usage: no usage key and no usage chunk.
    req["stream_options"] = json!({"include_usage": false});
    let events = s.stream(&req).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    for e in &events[..events.len() - 1] {
        let c: Value = serde_json::from_str(e).unwrap();
        assert!(c.get("usage").is_none());
        assert_eq!(c["choices"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn disconnect_mid_stream_frees_the_engine() {
    // One sequence: the next request can only run once the abandoned one
    // has let go of it, so a broken cancellation shows as 1500+ tokens.
    let s = start_mlp(&["--parallel", "1"]).await;
    let before = s.server.engine.generated_tokens();
    let req = json!({
        "messages": [{"role": "user", "content": "a long story"}],
        "max_tokens": 1500, "temperature": 0, "stream": true
    });
    let mut resp = s.open_stream(&req).await;
    assert_eq!(resp.status(), 200);
    // Read a few chunks, then hang up.
    for _ in 0..3 {
        resp.chunk().await.unwrap().expect("a chunk");
    }
    drop(resp);
    let (status, v) = s.post(&greedy(vec![text_part("next")], 4)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 4);
    // The abandoned stream stopped early instead of running to 1500 tokens.
    let spent = s.server.engine.generated_tokens() - before;
    assert!(
        spent < 1500,
        "abandoned generation kept running: {spent} tokens"
    );
}

#[tokio::test]
async fn models_and_health() {
    let s = start_mlp(&["--alias", "my-vlm"]).await;
    let (status, v) = s.get("/health").await;
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
    let (status, v) = s.get("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "my-vlm");
    assert_eq!(v["data"][0]["object"], "model");
    let (status, v) = s.get("/v1/models/my-vlm").await;
    assert_eq!((status, v["id"].as_str()), (200, Some("my-vlm")));
    let (status, v) = s.get("/v1/models/other").await;
    assert_eq!(status, 404);
    assert_envelope(&v);
    let (status, v) = s.get("/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_envelope(&v);
}

#[tokio::test]
async fn health_is_503_when_the_model_cannot_load() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bad = dir.join("not-a-model.gguf");
    std::fs::write(&bad, b"GGUF but not really").unwrap();
    let mut argv = vec!["tessera", "--port", "0", "--model"];
    argv.push(path(&bad));
    let config = <tessera::config::Config as clap::Parser>::parse_from(argv);
    let server = tessera::start(config).await.unwrap();
    assert!(matches!(
        server.engine.wait_ready().await,
        tessera::engine::Status::Failed(_)
    ));
    let resp = reqwest::get(format!("http://{}/health", server.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_envelope(&v);
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{}/v1/chat/completions", server.addr))
        .json(&greedy(vec![text_part("hi")], 2))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_a_whole_answer_frees_its_sequence() {
    // One sequence, so the next request runs only once it is let go.
    let s = start_mlp(&["--parallel", "1"]).await;
    let before = s.server.engine.generated_tokens();
    let long = json!({
        "messages": [{"role": "user", "content": "a long story"}],
        "max_tokens": 20000, "temperature": 0
    });
    let leaving = {
        let (client, url) = (s.client.clone(), format!("{}/v1/chat/completions", s.base));
        tokio::spawn(async move { client.post(url).json(&long).send().await })
    };
    s.server.engine.wait_active(1).await;
    leaving.abort();
    let _ = leaving.await;
    let (status, v) = s.post(&greedy(vec![text_part("next")], 4)).await;
    assert_eq!(status, 200, "{v}");
    let spent = s.server.engine.generated_tokens() - before;
    assert!(
        spent < 20000,
        "the abandoned answer kept running: {spent} tokens"
    );
}
