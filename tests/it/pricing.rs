//! The price computed before encoding equals the context positions the
//! image takes after encoding, for every fixture projector and a spread of
//! sizes; the preview endpoint reports the same figure; limits hold.

use crate::common;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZES: &[(u32, u32)] = &[
    (1, 1),
    (7, 5),
    (40, 40),
    (300, 300),
    (100, 1000),
    (1000, 100),
    (640, 480),
    (4000, 1000),
];

fn request(w: u32, h: u32, detail: &str) -> Value {
    let mut img = image_part(w, h, [(w % 256) as u8, 100, (h % 256) as u8]);
    img["image_url"]["detail"] = json!(detail);
    greedy(vec![text_part("price me"), img], 1)
}

async fn preview(s: &TestServer, body: &Value) -> (u16, Value) {
    s.post_to("/v1/chat/completions/input_tokens", body).await
}

async fn assert_exact(s: &TestServer) {
    for &(w, h) in SIZES {
        for detail in ["auto", "low", "high"] {
            let body = request(w, h, detail);
            let (status, pre) = preview(s, &body).await;
            assert_eq!(status, 200, "{pre}");
            let (status, v) = s.post(&body).await;
            assert_eq!(status, 200, "{w}x{h} {detail}: {v}");
            let usage = &v["usage"];
            let image = &usage["images"][0];
            let price = image["tokens"].as_u64().unwrap();
            let thumb = image["thumbnail"]["tokens"].as_u64().unwrap_or(0);
            assert_eq!(
                price,
                image["tiles"].as_u64().unwrap() * image["tile_tokens"].as_u64().unwrap() + thumb
            );
            // The planned price is what mtmd put into the context.
            assert_eq!(
                usage["prompt_tokens_details"]["image_tokens"]
                    .as_u64()
                    .unwrap(),
                price,
                "{w}x{h} {detail}: {usage}"
            );
            // The preview says exactly what the request then reports.
            assert_eq!(
                pre["input_tokens"], usage["prompt_tokens"],
                "{w}x{h} {detail}"
            );
            assert_eq!(pre["images"][0], *image);
            assert_eq!(pre["object"], "chat.completion.input_tokens");
            let expected = match detail {
                "low" => "low",
                "high" => "high",
                _ if w <= image["tile_size"].as_u64().unwrap() as u32
                    && h <= image["tile_size"].as_u64().unwrap() as u32 =>
                {
                    "low"
                }
                _ => "high",
            };
            assert_eq!(image["detail"], expected, "{w}x{h} {detail}");
        }
    }
}

const POLICIES: [&str; 3] = ["fit", "internvl", "openai"];

#[tokio::test]
async fn price_is_exact_for_the_fixed_mlp_projector() {
    for policy in POLICIES {
        let s = start_mlp(&["--tiling", policy]).await;
        let (_, models) = s.get("/v1/models").await;
        let images = &models["data"][0]["capabilities"]["images"];
        assert_eq!(images["thumbnail_rule"], "fixed");
        assert_eq!(images["tile_size"], 40);
        assert_eq!(images["tile_tokens"], 25);
        assert_eq!(images["tiling"], policy);
        assert_exact(&s).await;
    }
}

#[tokio::test]
async fn price_is_exact_for_the_dynamic_qwen2vl_projector() {
    for policy in POLICIES {
        let s = start_qwen(&["--tiling", policy]).await;
        let (_, models) = s.get("/v1/models").await;
        let caps = &models["data"][0]["capabilities"];
        assert_eq!(caps["vision"], true);
        let arch = &models["data"][0]["architecture"];
        // Video is listed where ffmpeg is found (CI installs it).
        let video = std::process::Command::new("ffprobe")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
        let mut modalities = serde_json::json!(["text", "image"]);
        if video {
            modalities = serde_json::json!(["text", "image", "video"]);
        }
        assert_eq!(arch["input_modalities"], modalities);
        assert_eq!(arch["output_modalities"], serde_json::json!(["text"]));
        let per_sequence = caps["context_size"].as_u64().unwrap() / 4; // --parallel 4
        assert_eq!(
            models["data"][0]["context_length"].as_u64(),
            Some(per_sequence)
        );
        assert_eq!(caps["images"]["thumbnail_rule"], "dynamic");
        assert_eq!(caps["images"]["tile_size"], 448);
        assert_eq!(caps["images"]["tile_tokens"], 16 * 16 + 2);
        assert_eq!(caps["images"]["thumbnail_budget"], 75);
        assert_eq!(caps["images"]["tiling"], policy);
        assert_exact(&s).await;
    }
}

#[tokio::test]
async fn tiling_settings_change_the_plan() {
    let s = start_qwen(&[
        "--max-tiles",
        "4",
        "--thumbnail-tokens",
        "40",
        "--tile-size",
        "224",
    ])
    .await;
    let (_, v) = s.post(&request(4000, 1000, "high")).await;
    let image = &v["usage"]["images"][0];
    assert_eq!(
        (image["cols"].as_u64(), image["rows"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(image["tile_size"], 224);
    assert_eq!(image["tile_tokens"], 8 * 8 + 2);
    assert!(image["thumbnail"]["tokens"].as_u64().unwrap() <= 40);
    assert_eq!(
        v["usage"]["prompt_tokens_details"]["image_tokens"],
        image["tokens"]
    );
}

/// A PNG whose header claims `w` x `h` pixels, with almost no data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, ty: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = ty.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn with_image_url(url: &str) -> Value {
    greedy(
        vec![
            text_part("x"),
            json!({"type": "image_url", "image_url": {"url": url}}),
        ],
        1,
    )
}

#[tokio::test]
async fn every_image_limit_is_enforced_with_a_clear_400() {
    let s = start_mlp(&[
        "--max-image-bytes",
        "8000",
        "--max-image-pixels",
        "250000",
        "--max-request-image-bytes",
        "3000",
    ])
    .await;
    // A decompression bomb: 100k x 100k claimed in the header, refused before
    // any pixel buffer exists.
    let bomb = data_url(&png_header_only(100_000, 100_000), "image/png");
    let (status, v) = s.post(&with_image_url(&bomb)).await;
    assert_eq!(status, 400, "{v}");
    let msg = error_message(&v);
    assert!(
        msg.contains("100000x100000") && msg.contains("--max-image-pixels"),
        "{msg}"
    );

    // Pixels: 600 x 600 = 360,000 > 250,000.
    let big = data_url(&png(600, 600, [1, 2, 3]), "image/png");
    let (status, v) = s.post(&with_image_url(&big)).await;
    assert_eq!(status, 400);
    let msg = error_message(&v);
    assert!(msg.contains("360000"), "{msg}");

    // Bytes per image: a noisy PNG well over 8000 bytes.
    let noisy: Vec<u8> = (0..120 * 120 * 3).map(|i| (i * 7919 % 251) as u8).collect();
    let img = image::RgbImage::from_raw(120, 120, noisy).unwrap();
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    assert!(bytes.len() > 8000);
    let (status, v) = s
        .post(&with_image_url(&data_url(&bytes, "image/png")))
        .await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("--max-image-bytes"));

    // Bytes per request: two small images, together over 3000 bytes.
    let small = png(30, 30, [9, 9, 9]);
    let mut parts = vec![text_part("x")];
    let n = 3000 / small.len() + 1;
    for _ in 0..n {
        parts.push(
            json!({"type": "image_url", "image_url": {"url": data_url(&small, "image/png")}}),
        );
    }
    let (status, v) = s.post(&greedy(parts, 1)).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_message(&v).contains("--max-request-image-bytes"));
    // The server still serves.
    let (status, _) = s.post(&greedy(vec![text_part("still here")], 2)).await;
    assert_eq!(status, 200);
}

/// A one-shot-per-connection HTTP server on 127.0.0.1 serving `body`.
async fn image_host(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}/cat.png")
}

#[tokio::test]
async fn remote_images_are_refused_on_loopback_by_default() {
    let url = image_host(png(20, 20, [250, 0, 0])).await;
    let s = start_mlp(&["--allow-http-image-urls"]).await;
    let (status, v) = s.post(&with_image_url(&url)).await;
    assert_eq!(status, 400, "{v}");
    let msg = error_message(&v);
    assert!(msg.contains("--allow-private-image-urls"), "{msg}");

    let https_loopback = url.replace("http://", "https://");
    let (status, _) = s.post(&with_image_url(&https_loopback)).await;
    assert_eq!(status, 400, "https to loopback is refused too");

    // The answer tells nothing of the server's name resolution: a name
    // that resolves to loopback and one that does not resolve at all get
    // the same message, without addresses.
    let (_, local) = s.post(&with_image_url("https://localhost/x.png")).await;
    let (_, missing) = s
        .post(&with_image_url("https://no-such-host.invalid/x.png"))
        .await;
    assert_eq!(error_message(&local), error_message(&missing));
    for leak in [
        "127.0.0.1",
        "::1",
        "resolves to",
        "no-such-host",
        "localhost",
    ] {
        assert!(!error_message(&local).contains(leak), "{local}");
    }
}

#[tokio::test]
async fn remote_images_are_fetched_when_allowed() {
    let _alone = exclusive().await;
    let url = image_host(png(20, 20, [250, 0, 0])).await;
    let s = start_mlp(&["--allow-http-image-urls", "--allow-private-image-urls"]).await;
    let (status, v) = s.post(&with_image_url(&url)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens_details"]["image_tokens"], 25);
    // The same picture inline gives the same answer.
    let inline = data_url(&png(20, 20, [250, 0, 0]), "image/png");
    let (_, w) = s.post(&with_image_url(&inline)).await;
    assert_eq!(content(&v), content(&w));

    // Without --allow-http-image-urls, plain http is refused.
    let strict = start_mlp(&["--allow-private-image-urls"]).await;
    let (status, v) = strict.post(&with_image_url(&url)).await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("http://"));
    // And --no-remote-images switches fetching off.
    let off = start_mlp(&["--no-remote-images"]).await;
    let (status, v) = off.post(&with_image_url(&url)).await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("switched off"));
}

/// An image server on 127.0.0.1 with an image, a redirect to the cloud
/// metadata address and a redirect back to its own image.
async fn redirecting_host(body: Vec<u8>) -> String {
    use axum::response::Redirect;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let own = format!("{base}/cat.png");
    let app = axum::Router::new()
        .route(
            "/cat.png",
            axum::routing::get(move || async move { ([("content-type", "image/png")], body) }),
        )
        .route(
            "/to-metadata",
            axum::routing::get(|| async {
                Redirect::temporary("http://169.254.169.254/latest/meta-data/")
            }),
        )
        .route(
            "/to-own",
            axum::routing::get(move || async move { Redirect::temporary(&own) }),
        )
        .route(
            "/hop/{n}",
            axum::routing::get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    match n {
                        0 => Redirect::temporary("/cat.png"),
                        n => Redirect::temporary(&format!("/hop/{}", n - 1)),
                    }
                },
            ),
        )
        // Headers never come: only the fetch timeout ends the wait.
        .route(
            "/never",
            axum::routing::get(std::future::pending::<&'static str>),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_refused_even_from_an_allowed_host() {
    let base = redirecting_host(png(20, 20, [0, 250, 0])).await;
    // Only this one address is allowed; every other non-public one stays refused.
    let s = start_mlp(&[
        "--allow-http-image-urls",
        "--image-fetch-allow-ip",
        "127.0.0.1",
    ])
    .await;
    let (status, v) = s.post(&with_image_url(&format!("{base}/cat.png"))).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = s
        .post(&with_image_url(&format!("{base}/to-metadata")))
        .await;
    assert_eq!(status, 400, "{v}");
    let msg = error_message(&v);
    // Refused, without telling the client where the redirect led.
    assert!(
        msg.contains("not allowed") && !msg.contains("169.254"),
        "{msg}"
    );
    let (status, v) = s.post(&with_image_url(&format!("{base}/to-own"))).await;
    assert_eq!(
        status, 200,
        "a redirect to an allowed address is followed: {v}"
    );
}

#[tokio::test]
async fn the_redirect_cap_and_the_fetch_timeout_hold() {
    let base = redirecting_host(png(20, 20, [0, 250, 0])).await;
    let s = start_mlp(&[
        "--allow-http-image-urls",
        "--allow-private-image-urls",
        "--image-fetch-max-redirects",
        "2",
        "--image-fetch-timeout",
        "1",
    ])
    .await;
    // /hop/1 redirects twice (to /hop/0, then to the image): at the cap.
    let (status, v) = s.post(&with_image_url(&format!("{base}/hop/1"))).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = s.post(&with_image_url(&format!("{base}/hop/2"))).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_message(&v).contains("more than 2 redirects"), "{v}");
    let (status, v) = s.post(&with_image_url(&format!("{base}/never"))).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_message(&v).contains("longer than 1 s"), "{v}");
}

#[tokio::test]
async fn images_past_the_whole_decode_budget_get_a_400_naming_the_flag() {
    let s = start_qwen(&["--max-decode-memory", "16"]).await;
    let mut img = image_part(4000, 3000, [40, 80, 120]);
    img["image_url"]["detail"] = json!("high");
    let (status, v) = s.post(&greedy(vec![text_part("look"), img], 2)).await;
    assert_eq!(status, 400, "{v}");
    let e = assert_envelope(&v);
    assert_eq!(e["code"], "image_too_large", "{v}");
    assert!(error_message(&v).contains("--max-decode-memory"), "{v}");
    // A small image still fits.
    let (status, v) = s
        .post(&greedy(
            vec![text_part("look"), image_part(64, 64, [1, 2, 3])],
            2,
        ))
        .await;
    assert_eq!(status, 200, "{v}");
}
