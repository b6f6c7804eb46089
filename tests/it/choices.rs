//! `n` > 1 on the real engine: the prompt (images included) is evaluated
//! once and its cells copied to the other choices' sequences; each choice
//! samples on its own; usage counts the prompt once and every choice's
//! completion.

use crate::common;

use common::*;
use serde_json::{Value, json};
use tessera::fixtures::families::FAMILY_FIXTURES;

fn with_image(n: u32, temperature: f64, max_tokens: u32) -> Value {
    json!({
        "messages": [{"role": "user", "content": [
            text_part("what is this?"),
            image_part(200, 150, [200, 40, 90]),
        ]}],
        "n": n,
        "temperature": temperature,
        "seed": 7,
        "max_tokens": max_tokens,
        "logprobs": true,
    })
}

fn choice_text(v: &Value, i: usize) -> String {
    v["choices"][i]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_choices_share_one_prompt_evaluation_and_usage_counts_it_once() {
    let _alone = exclusive().await;
    // Without the embedding cache, so that every piece is encoded.
    let s = start_mlp(&["--parallel", "4", "--image-cache-mb", "0"]).await;
    // First, on an empty cache: the image's pieces are encoded once (not
    // three times) and the prompt is counted once, in usage and metrics.
    let (status, three) = s.post(&with_image(3, 0.0, 12)).await;
    assert_eq!(status, 200, "{three}");
    let u = &three["usage"];
    let prompt_tokens = u["prompt_tokens"].as_u64().unwrap();
    let pieces = u["images"][0]["tiles"].as_f64().unwrap() + 1.0; // + thumbnail
    assert_eq!(s.metric("tessera_image_encode_seconds_count").await, pieces);
    assert_eq!(
        s.metric("tessera_prompt_tokens_total").await,
        prompt_tokens as f64
    );
    // Greedy: every choice is the single-choice answer, token for token.
    let (status, one) = s.post(&with_image(1, 0.0, 12)).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        one["usage"]["prompt_tokens"].as_u64().unwrap(),
        prompt_tokens
    );
    let choices = three["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3, "{three}");
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i, "{three}");
        assert_eq!(choice_text(&three, i), content(&one), "choice {i}: {three}");
    }
    // Completion tokens are every choice's, exactly (one logprob per token).
    let sampled: usize = choices
        .iter()
        .map(|c| c["logprobs"]["content"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        u["completion_tokens"].as_u64().unwrap(),
        sampled as u64,
        "{u}"
    );
    assert_eq!(sampled, 36);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        prompt_tokens + sampled as u64
    );

    // Sampling: each choice draws on its own seed, reproducibly.
    let (_, a) = s.post(&with_image(3, 1.5, 12)).await;
    let (_, b) = s.post(&with_image(3, 1.5, 12)).await;
    let texts: Vec<String> = (0..3).map(|i| choice_text(&a, i)).collect();
    assert_eq!(
        texts,
        (0..3).map(|i| choice_text(&b, i)).collect::<Vec<_>>()
    );
    let distinct: std::collections::HashSet<&String> = texts.iter().collect();
    assert!(distinct.len() > 1, "every choice drew the same: {texts:?}");
    s.server.engine.wait_active(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_choices_carry_their_index_and_one_usage() {
    let _alone = exclusive().await;
    let s = start_mlp(&["--parallel", "2"]).await;
    let (_, whole) = s.post(&with_image(2, 0.0, 10)).await;
    let mut body = with_image(2, 0.0, 10);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let frames = s.stream(&body).await;
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let mut text = [String::new(), String::new()];
    let (mut roles, mut finishes, mut usages) = ([0, 0], [0, 0], Vec::new());
    for f in &frames[..frames.len() - 1] {
        let v: Value = serde_json::from_str(f).unwrap();
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            usages.push(u.clone());
        }
        for c in v["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            if c["delta"]["role"] == "assistant" {
                roles[i] += 1;
            }
            if !c["finish_reason"].is_null() {
                finishes[i] += 1;
            }
            text[i].push_str(c["delta"]["content"].as_str().unwrap_or_default());
        }
    }
    assert_eq!((roles, finishes), ([1, 1], [1, 1]));
    for (i, t) in text.iter().enumerate() {
        assert_eq!(*t, choice_text(&whole, i), "choice {i}");
    }
    assert_eq!(usages.len(), 1, "{usages:?}");
    for field in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(usages[0][field], whole["usage"][field], "{field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_is_bounded_by_the_servers_sequences() {
    let _alone = exclusive().await;
    let s = start_mlp(&["--parallel", "2"]).await;
    for n in [0, 3, 129] {
        let (status, v) = s.post(&with_image(n, 0.0, 4)).await;
        assert_eq!(status, 400, "n={n}: {v}");
        assert_eq!(assert_envelope(&v)["param"], "n", "{v}");
    }
    let (_, v) = s.post(&with_image(3, 0.0, 4)).await;
    assert!(error_message(&v).contains("--parallel"), "{v}");
}

/// A job of two choices waits at the head of the queue (counted in its
/// depth) while one sequence of two is busy, and runs once it frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choices_wait_for_enough_free_sequences() {
    let _alone = exclusive().await;
    let s = start_mlp(&["--parallel", "2"]).await;
    let mut running = greedy(vec![text_part("tell me a long story")], 3000);
    running["stream"] = json!(true);
    let mut stream = s.open_stream(&running).await;
    // Its first chunk: the sequence is taken.
    assert!(stream.chunk().await.unwrap().is_some());
    let waiting = {
        let (client, url) = (s.client.clone(), format!("{}/v1/chat/completions", s.base));
        tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&with_image(2, 0.0, 6))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    let mut queued = false;
    for _ in 0..20_000 {
        let depth = tessera::soak::gauge(&s.client, &s.base, "tessera_queue_depth").await;
        if depth == Some(1.0) {
            queued = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(queued, "the two-choice job never showed in the queue");
    assert!(!waiting.is_finished());
    drop(stream); // the running client leaves: its sequence frees
    let (status, v) = waiting.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"].as_array().unwrap().len(), 2);
    s.server.engine.wait_active(0).await;
}

/// The copied cells give the same continuation on every family's memory:
/// M-RoPE, sliding windows, LFM2's recurrent state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_forks_its_prompt_cells() {
    let _alone = exclusive().await;
    for f in FAMILY_FIXTURES {
        let (text, proj) = f.write(&fixtures().dir).unwrap();
        let s = start(&[
            "--model",
            path(&text),
            "--mmproj",
            path(&proj),
            "--parallel",
            "2",
        ])
        .await;
        let (status, v) = s.post(&with_image(2, 0.0, 8)).await;
        assert_eq!(status, 200, "{}: {v}", f.name);
        assert_eq!(choice_text(&v, 0), choice_text(&v, 1), "{}: {v}", f.name);
        let sampled: usize = (0..2)
            .map(|i| {
                v["choices"][i]["logprobs"]["content"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(v["usage"]["completion_tokens"], sampled, "{}: {v}", f.name);
    }
}
