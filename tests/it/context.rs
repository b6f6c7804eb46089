//! Context accounting counts KV cells, not RoPE positions. Under M-RoPE
//! (`qwen2vl` text) an image takes far fewer positions than cells; a long
//! answer must still end with `length` when its sequence's cells run out,
//! and a concurrent request must never be harmed.

use crate::common;

use common::*;
use serde_json::{Value, json};

async fn start_mrope(extra: &[&str]) -> TestServer {
    start_qwen_on(&fixtures().text_qwen2vl, extra).await
}

fn long_image_request(max_tokens: u32) -> Value {
    let mut img = image_part(1344, 448, [30, 160, 90]);
    img["image_url"]["detail"] = json!("high");
    greedy(vec![text_part("describe it at length"), img], max_tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mrope_generation_ends_with_length_when_cells_run_out() {
    let s = start_mrope(&["--ctx-size", "2048", "--parallel", "2"]).await;
    let long = {
        let client = s.client.clone();
        let url = format!("{}/v1/chat/completions", s.base);
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .json(&long_image_request(4000))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    let (status, short) = s.post(&greedy(vec![text_part("a short one")], 200)).await;
    assert_eq!(status, 200, "{short}");
    assert_eq!(short["usage"]["completion_tokens"], 200);
    assert_eq!(short["choices"][0]["finish_reason"], "length");

    let (status, v) = long.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let usage = &v["usage"];
    let image_tokens = usage["prompt_tokens_details"]["image_tokens"]
        .as_u64()
        .unwrap();
    assert!(image_tokens > 100, "the image should be large: {usage}");
    // Every counted token had a cell: the sequence's share is exactly full.
    let total =
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();
    assert_eq!(total, 1024, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), total);
}

#[tokio::test]
async fn mrope_server_prices_images_in_cells() {
    let s = start_mrope(&[]).await;
    let body = long_image_request(1);
    let (status, pre) = s.post_to("/v1/chat/completions/input_tokens", &body).await;
    assert_eq!(status, 200, "{pre}");
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 200, "{v}");
    let usage = &v["usage"];
    assert_eq!(pre["input_tokens"], usage["prompt_tokens"]);
    assert_eq!(
        usage["images"][0]["tokens"],
        usage["prompt_tokens_details"]["image_tokens"]
    );
}
