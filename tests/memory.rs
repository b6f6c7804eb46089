//! The image memory bound, measured: the server runs in this process, so
//! this process's peak resident memory (Linux `VmHWM`, reset through
//! `/proc/self/clear_refs`) is the server's while huge images arrive at
//! once, or client JSON the template context would amplify. In its own
//! binary, each test `exclusive`, so nothing else moves the peak.

#[path = "it/common/mod.rs"]
mod common;

use common::*;
use serde_json::{Value, json};

const BUDGET_MIB: u64 = 256;
/// What the bound leaves out: request bodies in flight, the engine's
/// preprocessed pieces for its running sequences, allocator slack.
const SLACK_MIB: u64 = 160;

fn status_kib(field: &str) -> u64 {
    tessera::metrics::proc_status_kib(field).unwrap_or(0)
}

/// Starts a new peak at the current resident size.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A 13000x13000 PNG (~0.5 MB), written row by row: the test never holds it decoded.
fn huge_png(side: u32) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Rgb);
        let mut header = enc.write_header().expect("png header");
        let mut rows = header.stream_writer().expect("png stream");
        let row: Vec<u8> = (0..side * 3).map(|i| (i / 3 % 251) as u8).collect();
        for _ in 0..side {
            rows.write_all(&row).expect("png row");
        }
        rows.finish().expect("png end");
    }
    out
}

fn jpeg(side: u32) -> Vec<u8> {
    // Smooth, so the file stays small (the request bodies are not what is measured).
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([(x / 64) as u8, (y / 64) as u8, 90])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("encode jpeg");
    out
}

fn request(bytes: &[u8], mime: &str) -> Value {
    greedy(
        vec![
            text_part("x"),
            json!({"type": "image_url", "image_url": {"url": data_url(bytes, mime), "detail": "high"}}),
        ],
        1,
    )
}

/// Sends `n` copies of `body` at once; returns the peak growth in MiB.
async fn flood(s: &TestServer, body: &Value, n: usize) -> u64 {
    flood_expecting(s, body, n, 200).await
}

async fn flood_expecting(s: &TestServer, body: &Value, n: usize, want: u16) -> u64 {
    assert!(reset_peak(), "cannot reset VmHWM");
    let base = status_kib("VmRSS:");
    let sends = (0..n).map(|_| {
        let client = s.client.clone();
        let url = format!("{}/v1/chat/completions", s.base);
        let body = body.clone();
        tokio::spawn(async move {
            let resp = client.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        })
    });
    for r in futures::future::join_all(sends.collect::<Vec<_>>()).await {
        let (status, text) = r.unwrap();
        assert_eq!(status, want, "{text}");
    }
    (status_kib("VmHWM:").saturating_sub(base)) >> 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_memory_stays_under_the_budget_whatever_arrives() {
    if !std::path::Path::new("/proc/self/clear_refs").exists() {
        eprintln!("skipped: needs Linux /proc");
        return;
    }
    let _alone = exclusive().await;
    let s = start_qwen(&[
        "--max-decode-memory",
        &BUDGET_MIB.to_string(),
        "--max-image-pixels",
        "200000000",
        "--max-queue",
        "64",
    ])
    .await;
    let png = huge_png(13000);
    let jpg = jpeg(10000);
    // Warm up: the encoder's buffers exist before anything is measured.
    let (status, v) = s.post(&request(&jpeg(64), "image/jpeg")).await;
    assert_eq!(status, 200, "{v}");

    // 32 PNGs of 169 megapixels each (500 MB apiece decoded whole) are
    // averaged down as they stream in.
    let grew = flood(&s, &request(&png, "image/png"), 32).await;
    eprintln!("32 x 13000x13000 PNG: peak RSS +{grew} MiB (budget {BUDGET_MIB} MiB)");
    assert!(grew < BUDGET_MIB + SLACK_MIB, "+{grew} MiB");

    // JPEGs are scaled inside the IDCT: a 10000x10000 one (600 MB decoded
    // whole, more than the whole budget) costs about 40 MB.
    let grew = flood(&s, &request(&jpg, "image/jpeg"), 8).await;
    eprintln!("8 x 10000x10000 JPEG: peak RSS +{grew} MiB (budget {BUDGET_MIB} MiB)");
    assert!(grew < BUDGET_MIB + SLACK_MIB, "+{grew} MiB");
    assert_eq!(s.get("/health").await.0, 200);
}

/// Eight 7 MB bodies, each held a few times over (the test's own client
/// copies, the server's bytes, the parsed request): about 32 MiB apiece.
const BODIES_MIB: u64 = 8 * 32;

/// Client JSON that the template context amplifies: a 7 MB body of short
/// tool-call argument strings (each fenced, about 100 bytes more) took
/// +1.04 GB before; Llama 3.2's `custom_tools` nested 100 deep, printed
/// with `tojson(indent=4)`, +4.4 GB. Both are refused (strings counted
/// before fencing, rendering capped) within the slack.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn template_amplification_stays_bounded() {
    if !std::path::Path::new("/proc/self/clear_refs").exists() {
        eprintln!("skipped: needs Linux /proc");
        return;
    }
    let _alone = exclusive().await;
    let llama = template_file(
        "memory-llama32.jinja",
        tessera::fixtures::templates::LLAMA32_VISION,
    );
    let s = start_qwen(&[
        "--chat-template-file",
        common::path(&llama),
        "--max-queue",
        "64",
    ])
    .await;
    assert_eq!(s.post(&greedy(vec![text_part("hi")], 1)).await.0, 200);

    let body = tool_call_strings(1_750_000);
    let grew = flood_expecting(&s, &body, 8, 400).await;
    eprintln!("8 x 7 MB of short tool-call strings: peak RSS +{grew} MiB");
    assert!(grew < BODIES_MIB, "+{grew} MiB");

    // Nested 100 deep, 20,000 numbers at the bottom (no strings to count),
    // each printed on a line of 400 spaces: the rendering cap stops it.
    let body = nested_custom_tools(100, 20_000);
    let grew = flood_expecting(&s, &body, 8, 400).await;
    eprintln!("8 x custom_tools nested 100 deep: peak RSS +{grew} MiB");
    assert!(grew < BODIES_MIB, "+{grew} MiB");
    assert_eq!(s.get("/health").await.0, 200);
}
