//! `/v1/embeddings` on the real engine, with the fixture embedding model
//! (the tiny text model with last-token pooling): unit vectors, one per
//! input in order, deterministic, exact usage, base64 and `dimensions`,
//! and the clear refusals between embedding and chat servers.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn vector(v: &Value, i: usize) -> Vec<f32> {
    v["data"][i]["embedding"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

async fn embed_server(extra: &[&str]) -> TestServer {
    let f = fixtures();
    let mut args = vec!["--model", path(&f.text_embed), "--embeddings"];
    args.extend_from_slice(extra);
    start(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unit_vector_per_input_in_order_with_exact_usage() {
    let s = embed_server(&[]).await;
    let (_, models) = s.get("/v1/models").await;
    let m = &models["data"][0];
    assert_eq!(m["architecture"]["output_modalities"], json!(["embedding"]));
    assert_eq!(m["capabilities"]["embeddings"]["pooling"], "last");
    let dims = m["capabilities"]["embeddings"]["dimensions"]
        .as_u64()
        .unwrap();
    let (status, one) = s
        .post_to("/v1/embeddings", &json!({"input": "hello world"}))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["object"], "list");
    assert_eq!(one["data"][0]["object"], "embedding");
    let hello = vector(&one, 0);
    assert_eq!(hello.len() as u64, dims);
    assert!((norm(&hello) - 1.0).abs() < 1e-4);
    let tokens = one["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(one["usage"]["total_tokens"].as_u64(), Some(tokens));

    let batch = json!({"input": ["the sky", "hello world", [5, 6, 7], "hello world"]});
    let (status, many) = s.post_to("/v1/embeddings", &batch).await;
    assert_eq!(status, 200, "{many}");
    let indexes: Vec<u64> = (0..4)
        .map(|i| many["data"][i]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    assert_eq!(vector(&many, 1), hello, "deterministic, batched or not");
    assert_eq!(vector(&many, 3), hello);
    assert_ne!(vector(&many, 0), hello);
    let (_, sky) = s
        .post_to("/v1/embeddings", &json!({"input": "the sky"}))
        .await;
    let sky_tokens = sky["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        many["usage"]["prompt_tokens"].as_u64(),
        Some(sky_tokens + 2 * tokens + 3),
        "token ids count as given"
    );
    // The same tokenizer as completions on the chat model.
    let chat = start_mlp(&[]).await;
    let (_, c) = chat
        .post_to(
            "/v1/completions",
            &json!({"prompt": "hello world", "max_tokens": 1}),
        )
        .await;
    assert_eq!(c["usage"]["prompt_tokens"].as_u64(), Some(tokens));

    // base64: little-endian f32s, the same values.
    let (_, b) = s
        .post_to(
            "/v1/embeddings",
            &json!({"input": "hello world", "encoding_format": "base64"}),
        )
        .await;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, hello);
    // dimensions: the first values, rescaled to unit length.
    let (_, d) = s
        .post_to(
            "/v1/embeddings",
            &json!({"input": "hello world", "dimensions": 8}),
        )
        .await;
    let short = vector(&d, 0);
    assert_eq!(short.len(), 8);
    assert!((norm(&short) - 1.0).abs() < 1e-4);
    let scale = short[0] / hello[0];
    assert!((short[1] - hello[1] * scale).abs() < 1e-5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooling_and_the_refusals_between_embedding_and_chat_servers() {
    let last = embed_server(&["-b", "64"]).await;
    let mean = embed_server(&["--pooling", "mean"]).await;
    let body = json!({"input": "hello world"});
    let (_, a) = last.post_to("/v1/embeddings", &body).await;
    let (status, b) = mean.post_to("/v1/embeddings", &body).await;
    assert_eq!(status, 200, "{b}");
    assert_ne!(vector(&a, 0), vector(&b, 0), "mean pooling is not last");
    for (bad, param) in [
        (json!({"input": ""}), "input"),
        (json!({"input": []}), "input"),
        (
            json!({"input": [{"type": "text", "text": "x"}]}),
            "input[0]",
        ),
        (json!({"input": "x", "dimensions": 100000}), "dimensions"),
        (
            json!({"input": "x", "encoding_format": "int8"}),
            "encoding_format",
        ),
        (json!({"input": "word ".repeat(200)}), "input[0]"),
    ] {
        let (status, v) = last.post_to("/v1/embeddings", &bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert_eq!(assert_envelope(&v)["param"], param, "{v}");
    }
    // An embeddings server generates nothing; a chat server embeds nothing.
    let (status, v) = last
        .post(&json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(assert_envelope(&v)["code"], "model_not_supported");
    let chat = start_mlp(&[]).await;
    let (status, v) = chat.post_to("/v1/embeddings", &body).await;
    assert_eq!(status, 400);
    let e = assert_envelope(&v);
    assert_eq!(e["code"], "model_not_supported");
    assert!(e["message"].as_str().unwrap().contains("--embeddings"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_in_inputs_are_priced_and_pooled_with_last_token_pooling() {
    let f = fixtures();
    let s = start(&[
        "--model",
        path(&f.text_embed),
        "--mmproj",
        path(&f.mmproj_mlp),
        "--embeddings",
    ])
    .await;
    let parts = |rgb: Option<[u8; 3]>| {
        let mut p = vec![json!({"type": "text", "text": "a photo of"})];
        if let Some(c) = rgb {
            p.push(image_part(64, 48, c));
        }
        json!({"input": [p]})
    };
    let (status, text) = s.post_to("/v1/embeddings", &parts(None)).await;
    assert_eq!(status, 200, "{text}");
    let (status, red) = s
        .post_to("/v1/embeddings", &parts(Some([200, 30, 30])))
        .await;
    assert_eq!(status, 200, "{red}");
    let (_, red2) = s
        .post_to("/v1/embeddings", &parts(Some([200, 30, 30])))
        .await;
    let (_, blue) = s
        .post_to("/v1/embeddings", &parts(Some([30, 30, 200])))
        .await;
    assert!((norm(&vector(&red, 0)) - 1.0).abs() < 1e-4);
    assert_eq!(vector(&red, 0), vector(&red2, 0));
    assert_ne!(vector(&red, 0), vector(&blue, 0), "the image is seen");
    assert_ne!(vector(&red, 0), vector(&text, 0));
    // The image's price is the chat price of the same picture (same settings).
    let chat = start(&["--model", path(&f.text), "--mmproj", path(&f.mmproj_mlp)]).await;
    let msg = |with: bool| {
        let mut p = vec![text_part("x")];
        if with {
            p.push(image_part(64, 48, [200, 30, 30]));
        }
        json!({"messages": [{"role": "user", "content": p}]})
    };
    let (_, a) = chat
        .post_to("/v1/chat/completions/input_tokens", &msg(true))
        .await;
    let (_, b) = chat
        .post_to("/v1/chat/completions/input_tokens", &msg(false))
        .await;
    let image_price = a["input_tokens"].as_u64().unwrap() - b["input_tokens"].as_u64().unwrap();
    assert_eq!(
        red["usage"]["prompt_tokens"].as_u64().unwrap(),
        text["usage"]["prompt_tokens"].as_u64().unwrap() + image_price
    );
    // Mean pooling cannot cover an image decoded apart from its text.
    let mean = start(&[
        "--model",
        path(&f.text_embed),
        "--mmproj",
        path(&f.mmproj_mlp),
        "--embeddings",
        "--pooling",
        "mean",
    ])
    .await;
    let (status, v) = mean
        .post_to("/v1/embeddings", &parts(Some([200, 30, 30])))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["param"], "input[0]");
}
