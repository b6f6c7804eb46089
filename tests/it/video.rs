//! Video end to end on real servers, with clips ffmpeg makes here: every
//! family prices a video exactly (preview = usage = llama.cpp's decoded
//! cells) at two frame rates and three lengths, frames reach the model in
//! order, a follow-up reuses the video's cells and a new conversation its
//! embeddings, every input form is the same video, budgets shape the
//! sampling, and hostile files are refused without harm to other requests.

use crate::common::clips::*;
use crate::common::*;
use serde_json::{Value, json};
use tessera::fixtures::families::{FAMILY_FIXTURES, family_fixture};

fn ask(video: Value, max_tokens: u32) -> Value {
    greedy(
        vec![text_part("What happens in this video?"), video],
        max_tokens,
    )
}

fn mp4(bytes: &[u8]) -> Value {
    video_part(bytes, "video/mp4")
}

/// Frames the sampling rule takes (`video/sample.rs`), computed apart.
fn expected_frames(seconds: f64, fps: f64, most: u32, merge: u32) -> u32 {
    let at_rate = ((seconds * fps).floor() as u32).max(1);
    let most = most - most % merge;
    (at_rate.min(most) / merge * merge).max(merge)
}

/// Posts `body` after its preview; checks that the preview, the usage and
/// llama.cpp's decoded cells agree, and returns the usage.
async fn exact(s: &TestServer, body: &Value, at: &str) -> Value {
    let (status, pre) = s.post_to("/v1/chat/completions/input_tokens", body).await;
    assert_eq!(status, 200, "{at}: {pre}");
    let before = s.metric("tessera_llama_decoded_tokens").await;
    let (status, v) = s.post(body).await;
    assert_eq!(status, 200, "{at}: {v}");
    let u = v["usage"].clone();
    let video = &u["videos"][0];
    assert_eq!(
        pre["input_tokens"], u["prompt_tokens"],
        "{at}: preview {pre}"
    );
    assert_eq!(pre["video_tokens"], video["tokens"], "{at}");
    assert_eq!(
        u["prompt_tokens_details"]["video_tokens"], video["tokens"],
        "{at}"
    );
    assert_eq!(u["prompt_tokens_details"]["image_tokens"], 0, "{at}");
    let pieces = video["frames"].as_u64().unwrap() / video["frames_per_piece"].as_u64().unwrap();
    assert_eq!(
        video["timestamps"].as_array().unwrap().len() as u64,
        pieces,
        "{at}"
    );
    assert_eq!(
        video["tokens"].as_u64().unwrap(),
        pieces * video["piece_tokens"].as_u64().unwrap(),
        "{at}"
    );
    let decoded = (s.metric("tessera_llama_decoded_tokens").await - before) as u64;
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(
        decoded,
        u["prompt_tokens"].as_u64().unwrap() - cached,
        "{at}: llama.cpp decoded {decoded} cells: {u}"
    );
    u
}

#[tokio::test]
async fn every_family_prices_a_video_exactly_at_two_rates_and_three_lengths() {
    if !ffmpeg_ready() {
        return;
    }
    let _alone = exclusive().await;
    let clips = [1.0, 3.0, 12.0].map(|d| (d, testsrc(64, 48, 10, d, "mp4")));
    for f in FAMILY_FIXTURES {
        let s = start_family(f, &["--max-video-frames", "8"]).await;
        // llama.cpp's decode counter reads 1 until it counts anything.
        let (status, v) = s.post(&greedy(vec![text_part("hi")], 1)).await;
        assert_eq!(status, 200, "{v}");
        let merge = if f.name.starts_with("qwen") { 2 } else { 1 };
        for fps in [1.0, 2.0] {
            for (seconds, bytes) in &clips {
                let mut part = mp4(bytes);
                part["video_url"]["fps"] = json!(fps);
                let at = format!("{} {seconds} s at {fps} fps", f.name);
                let u = exact(&s, &ask(part, 1), &at).await;
                let video = &u["videos"][0];
                assert_eq!(video["frames_per_piece"], merge, "{at}");
                assert_eq!(
                    video["frames"],
                    expected_frames(*seconds, fps, 8, merge),
                    "{at}: {video}"
                );
                assert_eq!(
                    (video["width"].as_u64(), video["height"].as_u64()),
                    (Some(64), Some(48))
                );
            }
        }
    }
}

#[tokio::test]
async fn frames_reach_the_model_in_order() {
    if !ffmpeg_ready() {
        return;
    }
    let _alone = exclusive().await;
    let forward = testsrc(96, 64, 10, 3.0, "mp4");
    let src = "testsrc2=size=96x64:rate=10:duration=3";
    let backward = clip(
        "testsrc-reversed.mp4",
        &[
            "-f", "lavfi", "-i", src, "-vf", "reverse", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        ],
    );
    for name in ["qwen2-vl", "gemma3"] {
        let f = family_fixture(name).unwrap();
        let s = start_family(f, &[]).await;
        // The tiny fixtures' greedy text barely moves with the picture;
        // their log-probabilities move with every input embedding.
        let answer = |bytes: Vec<u8>| {
            let s = &s;
            async move {
                let mut body = ask(mp4(&bytes), 1);
                body["logprobs"] = json!(true);
                body["top_logprobs"] = json!(5);
                let (status, v) = s.post(&body).await;
                assert_eq!(status, 200, "{v}");
                (
                    v["choices"][0]["logprobs"]["content"][0]["top_logprobs"].clone(),
                    v["usage"]["prompt_tokens"].clone(),
                )
            }
        };
        let (a, tokens_a) = answer(forward.clone()).await;
        let (again, _) = answer(forward.clone()).await;
        let (b, tokens_b) = answer(backward.clone()).await;
        assert!(a.as_array().is_some_and(|l| l.len() == 5), "{a}");
        // The second reading reuses cached cells, which moves the
        // log-probabilities by float noise only; the order, by far more.
        let (noise, moved) = (gap(&a, &again), gap(&a, &b));
        eprintln!("{name}: same video {noise:e}, reversed {moved:e}");
        assert!(
            noise < 1e-2,
            "{name}: the same video read differently: {a} {again}"
        );
        assert_eq!(tokens_a, tokens_b, "{name}: same frames, same price");
        assert!(
            moved > 5.0 * noise.max(1e-4),
            "{name}: the reversed video read the same: {a} {b}"
        );
    }
}

/// The largest difference between two top-log-probability lists (infinite
/// when their tokens differ).
fn gap(a: &Value, b: &Value) -> f64 {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    a.iter()
        .zip(b)
        .map(|(x, y)| match x["token"] == y["token"] {
            true => (x["logprob"].as_f64().unwrap() - y["logprob"].as_f64().unwrap()).abs(),
            false => f64::INFINITY,
        })
        .fold(0.0, f64::max)
}

#[tokio::test]
async fn a_follow_up_reuses_the_video_and_a_new_conversation_its_embeddings() {
    if !ffmpeg_ready() {
        return;
    }
    let _alone = exclusive().await;
    let f = family_fixture("qwen2-vl").unwrap();
    let s = start_family(f, &[]).await;
    let video = mp4(&testsrc(64, 48, 10, 2.0, "mp4"));
    let first = ask(video.clone(), 4);
    let (status, v) = s.post(&first).await;
    assert_eq!(status, 200, "{v}");
    let video_tokens = v["usage"]["prompt_tokens_details"]["video_tokens"]
        .as_u64()
        .unwrap();
    let follow = json!({
        "messages": [
            first["messages"][0].clone(),
            {"role": "assistant", "content": content(&v)},
            {"role": "user", "content": "And then?"}
        ],
        "max_tokens": 4, "temperature": 0
    });
    let (status, v) = s.post(&follow).await;
    assert_eq!(status, 200, "{v}");
    let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached > video_tokens,
        "the follow-up re-decoded the video: {}",
        v["usage"]
    );
    // Another conversation: the frames' embeddings come from the cache.
    let (hits, misses) = (
        s.metric("tessera_image_cache_hits_total").await,
        s.metric("tessera_image_cache_misses_total").await,
    );
    let other = json!({
        "messages": [
            {"role": "system", "content": "Be brief."},
            first["messages"][0].clone()
        ],
        "max_tokens": 1, "temperature": 0
    });
    let (status, v) = s.post(&other).await;
    assert_eq!(status, 200, "{v}");
    let pieces = v["usage"]["videos"][0]["timestamps"]
        .as_array()
        .unwrap()
        .len() as f64;
    assert_eq!(
        s.metric("tessera_image_cache_hits_total").await - hits,
        pieces
    );
    assert_eq!(s.metric("tessera_image_cache_misses_total").await, misses);
}

#[tokio::test]
async fn every_input_form_is_the_same_video_and_budgets_shape_it() {
    if !ffmpeg_ready() {
        return;
    }
    let _alone = exclusive().await;
    let f = family_fixture("qwen2-vl").unwrap();
    let s = start_family(f, &[]).await;
    let bytes = testsrc(64, 48, 10, 3.0, "webm");
    let b64 = data_url(&bytes, "video/webm");
    let raw = b64.split_once(',').unwrap().1.to_string();
    let price = |body: Value| {
        let s = &s;
        async move {
            let (status, v) = s.post_to("/v1/chat/completions/input_tokens", &body).await;
            assert_eq!(status, 200, "{v}");
            v
        }
    };
    let by_url = price(ask(
        json!({"type": "video_url", "video_url": {"url": b64}}),
        1,
    ))
    .await;
    assert_eq!(by_url["videos"][0]["frames"], 6, "{by_url}");
    for part in [
        json!({"type": "input_video", "input_video": {"data": raw, "format": "webm"}}),
        json!({"type": "input_video", "input_video": raw}),
    ] {
        let v = price(ask(part, 1)).await;
        assert_eq!(v["input_tokens"], by_url["input_tokens"], "{v}");
    }
    // The Responses API's input_video, as input_image is shaped.
    let body = json!({"input": [{"role": "user", "content": [
        {"type": "input_text", "text": "What happens in this video?"},
        {"type": "input_video", "video_url": b64}]}], "max_output_tokens": 1});
    let (status, v) = s.post_to("/v1/responses", &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["usage"]["input_tokens_details"]["video_tokens"],
        by_url["video_tokens"]
    );
    // mm_processor_kwargs over the server's flags, the part over both.
    let mut body = ask(json!({"type": "video_url", "video_url": {"url": b64}}), 1);
    body["mm_processor_kwargs"] = json!({"fps": 1.0});
    assert_eq!(price(body.clone()).await["videos"][0]["frames"], 2);
    body["messages"][0]["content"][1]["video_url"]["max_frames"] = json!(2);
    body["mm_processor_kwargs"] = json!({"fps": 2.0});
    assert_eq!(price(body.clone()).await["videos"][0]["frames"], 2);
    // The server's caps hold against a request that asks for more.
    body["messages"][0]["content"][1]["video_url"] =
        json!({"url": b64, "fps": 60, "max_frames": 100000, "max_pixels": 100000000});
    let v = price(body.clone()).await;
    assert_eq!(v["videos"][0]["frames"], 32, "{v}");
    let (w, h) = (
        v["videos"][0]["frame_width"].as_u64().unwrap(),
        v["videos"][0]["frame_height"].as_u64().unwrap(),
    );
    assert!(w * h <= 448 * 448, "{v}");
    // A token budget samples fewer pieces; below one piece it is a 400.
    let piece = by_url["videos"][0]["piece_tokens"].as_u64().unwrap();
    body["messages"][0]["content"][1]["video_url"] = json!({"url": b64, "max_tokens": piece * 2});
    let v = price(body.clone()).await;
    assert_eq!(v["videos"][0]["tokens"].as_u64(), Some(piece * 2), "{v}");
    body["messages"][0]["content"][1]["video_url"]["max_tokens"] = json!(piece - 1);
    let (status, v) = s.post_to("/v1/chat/completions/input_tokens", &body).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "video_budget_too_small");
    body["messages"][0]["content"][1]["video_url"] = json!({"url": b64, "fps": 0});
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 400, "{v}");
}

/// A YUV4MPEG header over `frames` grey frames of `w`x`h` (or none):
/// headers can claim any size or rate without the frames to back them.
fn y4m(w: u32, h: u32, rate: &str, frames: usize, frame_bytes: usize) -> Vec<u8> {
    let mut out = format!("YUV4MPEG2 W{w} H{h} F{rate} Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..frames {
        out.extend_from_slice(b"FRAME\n");
        out.extend(std::iter::repeat_n(128u8, frame_bytes));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_videos_are_refused_and_spare_other_requests() {
    if !ffmpeg_ready() {
        return;
    }
    let _alone = exclusive().await;
    let s = start_qwen(&[]).await;
    let good = testsrc(64, 48, 10, 3.0, "mp4");
    let webm = testsrc(64, 48, 10, 3.0, "webm");
    let many_streams = {
        let src = "testsrc2=size=16x16:rate=1:duration=1";
        let mut args = vec!["-f", "lavfi", "-i", src];
        for _ in 0..40 {
            args.extend(["-map", "0:v"]);
        }
        args.extend(["-c:v", "ffv1"]);
        clip("many-streams.mkv", &args)
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "invalid_video",
        ),
        (
            "text",
            b"this is not a video at all".to_vec(),
            "invalid_video",
        ),
        (
            "16000x16000 header",
            y4m(16000, 16000, "25:1", 0, 0),
            "video_too_large",
        ),
        (
            "a 10-hour frame",
            y4m(64, 48, "1:36000", 1, 64 * 48 * 3 / 2),
            "video_too_large",
        ),
        ("40 streams", many_streams, "invalid_video"),
        // Its header still promises 3 s; the frames stop after one.
        (
            "a header that lies",
            webm[..webm.len() * 2 / 5].to_vec(),
            "invalid_video",
        ),
    ];
    // A text request runs beside each refusal, untouched.
    for (name, bytes, code) in cases {
        let plain = greedy(vec![text_part("hello")], 4);
        let body = ask(video_part(&bytes, "video/mp4"), 4);
        let ((status, v), (ok, other)) = tokio::join!(s.post(&body), s.post(&plain));
        assert_eq!(status, 400, "{name}: {v}");
        assert_eq!(assert_envelope(&v)["code"], code, "{name}: {v}");
        if name == "a header that lies" {
            assert!(error_message(&v).contains("header"), "{v}");
        }
        assert_eq!(ok, 200, "{name}: the other request failed: {other}");
        assert_eq!(other["usage"]["completion_tokens"], 4);
    }
    // An endlessly looping GIF is one pass of its frames.
    let gif = clip(
        "loop.gif",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x32:rate=5:duration=2",
            "-loop",
            "0",
        ],
    );
    let (status, v) = s.post(&ask(video_part(&gif, "image/gif"), 1)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["videos"][0]["frames"], 4, "{}", v["usage"]);
    // APNG's header holds no duration: its packets are counted instead.
    let apng = clip(
        "anim.apng",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x32:rate=5:duration=2",
            "-f",
            "apng",
        ],
    );
    let (status, v) = s.post(&ask(video_part(&apng, "image/apng"), 1)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["videos"][0]["duration"], 2.0, "{}", v["usage"]);
}

#[tokio::test]
async fn without_ffmpeg_or_a_projector_video_is_a_clear_400() {
    if !ffmpeg_ready() {
        return;
    }
    let _alone = exclusive().await;
    let bytes = testsrc(64, 48, 10, 1.0, "mp4");
    let s = start_qwen(&["--ffmpeg", "/nonexistent/ffmpeg"]).await;
    let (status, v) = s.post(&ask(mp4(&bytes), 1)).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "videos_not_supported");
    assert!(error_message(&v).contains("--ffmpeg"), "{v}");
    let (status, _) = s.post(&greedy(vec![text_part("hi")], 1)).await;
    assert_eq!(status, 200, "the server runs on without ffmpeg");
    drop(s);
    let s = start(&["--model", path(&fixtures().text)]).await;
    let (status, v) = s.post(&ask(mp4(&bytes), 1)).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "videos_not_supported");
}
