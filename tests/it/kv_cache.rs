//! KV-cache types and flash attention: a quantized cache serves text and
//! images with the same usage, `/v1/models` reports its types and size,
//! and a quantized value cache without flash attention stops the start.

use crate::common;

use clap::Parser as _;
use common::*;
use serde_json::json;
use tessera::config::Config;

/// The tiny text model with 32-wide heads: quantized cache blocks hold 32
/// values, so narrower heads cannot be quantized.
fn heads_of_32() -> std::path::PathBuf {
    use tessera::fixtures::{TINY_TEXT, TextDims, TextVariant, text_model_with, write_if_changed};
    let dims = TextDims {
        n_head: 2,
        n_head_kv: 1,
        ..TINY_TEXT
    };
    let file = fixtures().dir.join("tiny-text-head32.gguf");
    write_if_changed(&file, &text_model_with(1, TextVariant::RunsToLength, dims)).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quantized_cache_serves_images_and_reports_its_size() {
    let _alone = exclusive().await;
    let (text, mlp) = (heads_of_32(), fixtures().mmproj_mlp.clone());
    let f16 = start_pair(&text, &mlp, &[]).await;
    let q8 = start_pair(
        &text,
        &mlp,
        &[
            "--cache-type-k",
            "q8_0",
            "--cache-type-v",
            "q8_0",
            "--flash-attn",
            "on",
        ],
    )
    .await;
    let kv = |v: &serde_json::Value| v["data"][0]["capabilities"]["kv_cache"].clone();
    let (_, a) = f16.get("/v1/models").await;
    let (_, b) = q8.get("/v1/models").await;
    assert_eq!(kv(&a)["type_k"], "f16");
    assert_eq!(
        (kv(&b)["type_k"].clone(), kv(&b)["type_v"].clone()),
        (json!("q8_0"), json!("q8_0"))
    );
    assert_eq!(kv(&b)["flash_attn"], "on");
    let (fb, qb) = (
        kv(&a)["bytes"].as_u64().unwrap(),
        kv(&b)["bytes"].as_u64().unwrap(),
    );
    assert!(fb > 0);
    assert_eq!(
        qb,
        fb * 34 / 64,
        "q8_0 takes 34 bytes per 32 values, f16 64"
    );
    let body = greedy(
        vec![
            text_part("what is this?"),
            image_part(64, 48, [200, 40, 40]),
        ],
        6,
    );
    let (status, x) = f16.post(&body).await;
    assert_eq!(status, 200, "{x}");
    let (status, y) = q8.post(&body).await;
    assert_eq!(status, 200, "{y}");
    assert_eq!(x["usage"]["prompt_tokens"], y["usage"]["prompt_tokens"]);
    assert_eq!(y["usage"]["completion_tokens"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_a_quantized_cache_cannot_hold_fail_the_load_saying_why() {
    let config = Config::parse_from([
        "tessera",
        "--port",
        "0",
        "--model",
        path(&fixtures().text),
        "--cache-type-k",
        "q8_0",
    ]);
    let server = tessera::start(config).await.unwrap();
    let status = server.engine.wait_ready().await;
    let why = format!("{status:?}");
    assert!(
        why.contains("multiple of 32") && why.contains("q8_0"),
        "{why}"
    );
}

#[test]
fn a_quantized_value_cache_needs_flash_attention() {
    let c = Config::parse_from(["tessera", "--cache-type-v", "q4_0", "--flash-attn", "off"]);
    let e = c.check().unwrap_err();
    assert!(
        e.contains("--cache-type-v q4_0") && e.contains("--flash-attn"),
        "{e}"
    );
    let ok = Config::parse_from(["tessera", "--cache-type-k", "q4_0", "--flash-attn", "off"]);
    assert!(ok.check().is_ok(), "a quantized key cache alone is fine");
}
