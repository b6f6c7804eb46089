//! The image-embedding cache on the real engine: the same image in a new
//! conversation skips the vision encoder and answers exactly as a server
//! without the cache; a different image never hits; the cache keeps within
//! `--image-cache-mb`.

use crate::common;

use common::*;
use serde_json::{Value, json};
use tessera::fixtures::families::FAMILY_FIXTURES;

/// A picture whose tiles all differ (a solid colour would make every tile
/// the same piece).
fn gradient(w: u32, h: u32, seed: u32) -> Value {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            ((x * 5 + seed * 31) % 256) as u8,
            ((y * 7 + seed * 17) % 256) as u8,
            ((x * y + seed) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    json!({"type": "image_url", "image_url": {"url": data_url(&out, "image/png")}})
}

/// The first conversation, and a second one with another system prompt and
/// the image elsewhere: the prefix cache cannot serve the second.
fn first(img: &Value) -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "You describe pictures."},
            {"role": "user", "content": [text_part("What is this?"), img.clone()]}
        ],
        "max_tokens": 12,
        "temperature": 0
    })
}

fn second(img: &Value) -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": [img.clone(), text_part("And what colour is it?")]}
        ],
        "max_tokens": 12,
        "temperature": 0
    })
}

struct Counts {
    hits: f64,
    misses: f64,
    encodes: f64,
}

async fn counts(s: &TestServer) -> Counts {
    Counts {
        hits: s.metric("tessera_image_cache_hits_total").await,
        misses: s.metric("tessera_image_cache_misses_total").await,
        encodes: s.metric("tessera_image_encode_seconds_count").await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_image_in_a_new_conversation_skips_the_encoder() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let uncached = start_mlp(&["--image-cache-mb", "0"]).await;
    let img = gradient(200, 150, 1);
    let (status, a) = s.post(&first(&img)).await;
    assert_eq!(status, 200, "{a}");
    let pieces = a["usage"]["images"][0]["tiles"].as_f64().unwrap() + 1.0;
    let before = counts(&s).await;
    assert_eq!((before.hits, before.misses), (0.0, pieces));

    let (status, b) = s.post(&second(&img)).await;
    assert_eq!(status, 200, "{b}");
    let after = counts(&s).await;
    assert_eq!(
        after.hits - before.hits,
        pieces,
        "every piece from the cache"
    );
    assert_eq!(after.misses, before.misses);
    assert_eq!(after.encodes, before.encodes, "the encoder never ran");
    // Exactly the answer of a server that encodes the image again.
    let (_, reference) = uncached.post(&second(&img)).await;
    assert_eq!(content(&b), content(&reference));
    assert_eq!(
        b["usage"]["prompt_tokens"],
        reference["usage"]["prompt_tokens"]
    );
    assert_eq!(
        uncached.metric("tessera_image_cache_bytes").await,
        0.0,
        "--image-cache-mb 0 keeps nothing"
    );

    // A different picture of the same size never hits.
    let other = gradient(200, 150, 2);
    let (status, _) = s.post(&second(&other)).await;
    assert_eq!(status, 200);
    let last = counts(&s).await;
    assert_eq!(last.hits, after.hits);
    assert_eq!(last.misses - after.misses, pieces);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_stays_within_its_bound() {
    let _alone = exclusive().await;
    let s = start_mlp(&["--image-cache-mb", "1"]).await;
    // 13 pieces of 25 x 64 floats each per request: 20 requests are
    // 1.6 MiB of embeddings, more than the cache holds.
    for seed in 0..20 {
        let (status, v) = s.post(&first(&gradient(200, 150, 100 + seed))).await;
        assert_eq!(status, 200, "{v}");
        let bytes = s.metric("tessera_image_cache_bytes").await;
        assert!(bytes <= (1 << 20) as f64, "{bytes} bytes held");
    }
    assert!(s.metric("tessera_image_cache_evictions_total").await > 0.0);
    assert!(s.metric("tessera_image_cache_bytes").await > 0.0);
    // The least recently used went first: the first image is encoded again.
    let misses = s.metric("tessera_image_cache_misses_total").await;
    let (_, v) = s.post(&second(&gradient(200, 150, 100))).await;
    let pieces = v["usage"]["images"][0]["tiles"].as_f64().unwrap() + 1.0;
    assert_eq!(
        s.metric("tessera_image_cache_misses_total").await - misses,
        pieces
    );
}

/// Decoding from kept embeddings is exact on every family: M-RoPE
/// positions, non-causal image attention (Gemma 3), projectors that slice
/// an image into several chunks (SmolVLM), recurrent state (LFM2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_answers_from_the_cache_as_without_it() {
    let _alone = exclusive().await;
    for f in FAMILY_FIXTURES {
        let (text, proj) = f.write(&fixtures().dir).unwrap();
        let args = ["--model", path(&text), "--mmproj", path(&proj)];
        let s = start(&args).await;
        let img = gradient(300, 220, 3);
        let (status, a) = s.post(&first(&img)).await;
        assert_eq!(status, 200, "{}: {a}", f.name);
        let hits = s.metric("tessera_image_cache_hits_total").await;
        let (_, b) = s.post(&second(&img)).await;
        assert!(
            s.metric("tessera_image_cache_hits_total").await > hits,
            "{}: no hit",
            f.name
        );
        drop(s);
        let uncached = start(&[&args[..], &["--image-cache-mb", "0"]].concat()).await;
        let (_, reference) = uncached.post(&second(&img)).await;
        assert_eq!(content(&b), content(&reference), "{}", f.name);
    }
}
