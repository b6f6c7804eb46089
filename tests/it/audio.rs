//! Audio end to end on real servers, with sounds made here: every audio
//! family (Qwen2-Audio, Music Flamingo, Qwen2.5-Omni) prices a clip exactly
//! (preview = usage = llama.cpp's decoded cells) across one and two 30 s
//! windows and other rates, the answer depends on the sound and repeats,
//! a full context ends with `length`, a follow-up reuses the clip's cells
//! and a new conversation its embeddings, the omni model takes an image and a clip in one
//! prompt, every input form and format is the same clip, and hostile files
//! are refused in bounded time without harm to other requests.

use crate::common::clips::ffmpeg_ready;
use crate::common::sounds::*;
use crate::common::*;
use serde_json::{Value, json};
use tessera::fixtures::audio::{AUDIO_FAMILIES, AudioFamily, ULTRAVOX, audio_family};

async fn start_audio(f: &AudioFamily, extra: &[&str]) -> TestServer {
    let (text, proj) = f.write(&fixtures().dir).expect("write audio fixture");
    start_pair(&text, &proj, extra).await
}

fn ask(audio: Value, max_tokens: u32) -> Value {
    greedy(vec![text_part("What do you hear?"), audio], max_tokens)
}

fn wav_part(bytes: &[u8]) -> Value {
    audio_part(bytes, "wav")
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
    assert_eq!(pre["input_tokens"], u["prompt_tokens"], "{at}: {pre}");
    let clip_tokens: u64 = u["audio"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(pre["audio_tokens"], clip_tokens, "{at}");
    assert_eq!(
        u["prompt_tokens_details"]["audio_tokens"], clip_tokens,
        "{at}"
    );
    // Every answer token but the last is decoded too.
    let decoded = (s.metric("tessera_llama_decoded_tokens").await - before) as u64;
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    let answer = u["completion_tokens"].as_u64().unwrap();
    assert_eq!(
        decoded,
        u["prompt_tokens"].as_u64().unwrap() - cached + answer.saturating_sub(1),
        "{at}: llama.cpp decoded {decoded} cells: {u}"
    );
    u
}

#[tokio::test]
async fn every_audio_family_prices_a_clip_exactly() {
    let _alone = exclusive().await;
    let clips = [
        ("1 s at 16 kHz", wav(16_000, 1, 1.0, Sound::Tone(440.0)), 1),
        ("31 s at 16 kHz", wav(16_000, 1, 31.0, Sound::Noise), 2),
        (
            "2 s at 44.1 kHz stereo",
            wav(44_100, 2, 2.0, Sound::Tone(220.0)),
            1,
        ),
        ("0.25 s at 8 kHz", wav(8_000, 1, 0.25, Sound::Noise), 1),
    ];
    let mut per_window = Vec::new();
    for f in AUDIO_FAMILIES {
        let s = start_audio(f, &["--ctx-size", "8192", "--parallel", "2"]).await;
        let (_, models) = s.get("/v1/models").await;
        let input = &models["data"][0]["architecture"]["input_modalities"];
        assert!(
            input.as_array().unwrap().contains(&json!("audio")),
            "{}: {models}",
            f.name
        );
        for (what, bytes, windows) in &clips {
            let at = format!("{} / {what}", f.name);
            let u = exact(&s, &ask(wav_part(bytes), 2), &at).await;
            let a = &u["audio"][0];
            assert_eq!(a["windows"], *windows, "{at}: {a}");
            assert_eq!(a["format"], "wav", "{at}");
            assert_eq!(a["model_sample_rate"], 16_000, "{at}");
            let seconds = a["duration"].as_f64().unwrap();
            assert_eq!(
                a["samples"].as_f64().unwrap(),
                (seconds * 16_000.0).round(),
                "{at}"
            );
            if *windows == 1 && what.starts_with("1 s") {
                per_window.push((f.name, a["tokens"].as_u64().unwrap()));
            }
        }
    }
    // Both pool 1,500 encoder frames to 750 a window; Qwen2-Audio wraps
    // the clip in <|audio_bos|> / <|audio_eos|>, Music Flamingo puts
    // <sound> before it (text the fixture vocabulary spells in pieces).
    let tokens = |name: &str| per_window.iter().find(|p| p.0 == name).unwrap().1;
    assert!(tokens("qwen2-audio") > 750, "{per_window:?}");
    assert!(tokens("music-flamingo") > 750, "{per_window:?}");
    assert_ne!(
        tokens("qwen2-audio"),
        tokens("music-flamingo"),
        "{per_window:?}"
    );
    assert_eq!(
        tokens("qwen2-audio"),
        tokens("qwen2.5-omni"),
        "{per_window:?}"
    );
}

#[tokio::test]
async fn a_follow_up_reuses_the_clip_and_a_new_conversation_its_embeddings() {
    let f = audio_family("music-flamingo").unwrap();
    let s = start_audio(f, &[]).await;
    let clip = wav_part(&wav(16_000, 1, 3.0, Sound::Tone(330.0)));
    let first = ask(clip.clone(), 4);
    let u1 = exact(&s, &first, "first turn").await;
    let (_, v) = s.post(&first).await;
    let mut follow = first.clone();
    let msgs = follow["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": content(&v)}));
    msgs.push(json!({"role": "user", "content": "And then?"}));
    let u2 = exact(&s, &follow, "follow-up").await;
    let audio_tokens = u1["audio"][0]["tokens"].as_u64().unwrap();
    assert!(
        u2["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
            > audio_tokens,
        "{u2}"
    );
    // Another conversation with the same clip: its windows come from the
    // embedding cache, not the encoder.
    let hits = s.metric("tessera_image_cache_hits_total").await;
    let other = greedy(vec![text_part("Describe it."), clip], 2);
    exact(&s, &other, "new conversation").await;
    assert!(s.metric("tessera_image_cache_hits_total").await > hits);
}

#[tokio::test]
async fn the_omni_model_takes_an_image_and_a_clip_in_one_prompt() {
    let f = audio_family("qwen2.5-omni").unwrap();
    let s = start_audio(f, &[]).await;
    let (_, models) = s.get("/v1/models").await;
    let input = models["data"][0]["architecture"]["input_modalities"].clone();
    assert!(
        input.as_array().unwrap().contains(&json!("image")),
        "{input}"
    );
    assert!(
        input.as_array().unwrap().contains(&json!("audio")),
        "{input}"
    );
    let body = greedy(
        vec![
            text_part("Match the picture to the sound."),
            image_part(64, 48, [200, 30, 30]),
            wav_part(&wav(16_000, 1, 1.5, Sound::Tone(500.0))),
        ],
        2,
    );
    let u = exact(&s, &body, "image + audio").await;
    assert!(
        u["prompt_tokens_details"]["image_tokens"].as_u64().unwrap() > 0,
        "{u}"
    );
    assert!(
        u["prompt_tokens_details"]["audio_tokens"].as_u64().unwrap() > 0,
        "{u}"
    );
    assert_eq!(u["images"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_input_form_and_format_is_the_same_clip() {
    let f = audio_family("qwen2-audio").unwrap();
    let s = start_audio(f, &[]).await;
    let bytes = wav(16_000, 1, 1.0, Sound::Tone(440.0));
    let price = |body: Value| {
        let s = &s;
        async move {
            let (status, v) = s.post_to("/v1/chat/completions/input_tokens", &body).await;
            assert_eq!(status, 200, "{v}");
            v["audio_tokens"].as_u64().unwrap()
        }
    };
    let base = price(ask(wav_part(&bytes), 1)).await;
    let url = json!({"type": "audio_url", "audio_url": {"url": data_url(&bytes, "audio/wav")}});
    assert_eq!(price(ask(url, 1)).await, base);
    // `format` is informative: the bytes decide.
    assert_eq!(price(ask(audio_part(&bytes, "mp3"), 1)).await, base);
    let (status, v) = s
        .post_to(
            "/v1/responses",
            &json!({"input": [{"role": "user", "content": [
                {"type": "input_text", "text": "What do you hear?"},
                wav_part(&bytes)]}], "max_output_tokens": 1}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["input_tokens_details"]["audio_tokens"], base);
    if ffmpeg_ready() {
        for ext in ["mp3", "flac", "ogg", "m4a"] {
            let (status, v) = s.post(&ask(audio_part(&encoded_tone(ext), ext), 1)).await;
            assert_eq!(status, 200, "{ext}: {v}");
            let a = &v["usage"]["audio"][0];
            assert_eq!(a["format"], ext, "{a}");
            assert_eq!(a["sample_rate"], 44_100, "{ext}: {a}");
            assert!(
                (a["duration"].as_f64().unwrap() - 1.0).abs() < 0.1,
                "{ext}: {a}"
            );
            assert_eq!(a["tokens"], base, "{ext}: {a}");
        }
    }
}

#[tokio::test]
async fn hostile_audio_is_refused_in_bounded_time_beside_a_healthy_request() {
    let f = audio_family("qwen2-audio").unwrap();
    let s = start_audio(f, &["--max-audio-seconds", "60"]).await;
    let second: Vec<f32> = vec![0.1; 16_000];
    let hour = 16_000 * 2 * 3600 * 10;
    let mut truncated_flac = if ffmpeg_ready() {
        encoded_tone("flac")
    } else {
        Vec::new()
    };
    truncated_flac.truncate(truncated_flac.len() / 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a header claiming ten hours",
            wav_of(16_000, 1, &second, Some(hour)),
            "60 s",
        ),
        (
            "a header promising 10 s of 1",
            wav_of(16_000, 1, &second, Some(320_000)),
            "ended after",
        ),
        (
            "ten hours of silence, declared",
            wav_of(8_000, 1, &[], Some(8_000 * 2 * 36_000)),
            "limit",
        ),
        ("a zero-length clip", wav_of(16_000, 1, &[], None), "empty"),
        (
            "text sent as audio",
            b"{\"not\": \"audio\"}".to_vec(),
            "not a format",
        ),
        ("a PNG sent as audio", png(8, 8, [1, 2, 3]), "not a format"),
        ("4 kHz", wav(4_000, 1, 1.0, Sound::Noise), "sample rate"),
        (
            "nine channels",
            wav(16_000, 9, 0.5, Sound::Noise),
            "channels",
        ),
        ("a truncated FLAC", truncated_flac, "ended after"),
    ];
    for (what, bytes, says) in cases {
        if bytes.is_empty() {
            continue;
        }
        let (text, clip) = (
            greedy(vec![text_part("Say something.")], 4),
            ask(audio_part(&bytes, "wav"), 2),
        );
        let (healthy, hostile) = (s.post(&text), s.post(&clip));
        let started = std::time::Instant::now();
        let ((ok, _), (status, v)) = tokio::join!(healthy, hostile);
        assert_eq!(ok, 200, "{what}: the healthy request failed");
        assert_eq!(status, 400, "{what}: {v}");
        let e = assert_envelope(&v);
        assert!(e["message"].as_str().unwrap().contains(says), "{what}: {v}");
        assert!(
            e["code"] == "invalid_audio" || e["code"] == "audio_too_long",
            "{what}: {v}"
        );
        assert!(
            started.elapsed().as_secs() < 30,
            "{what} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_model_without_audio_says_so() {
    let s = start_mlp(&[]).await;
    let (_, models) = s.get("/v1/models").await;
    let input = models["data"][0]["architecture"]["input_modalities"].clone();
    assert!(
        !input.as_array().unwrap().contains(&json!("audio")),
        "{input}"
    );
    let (status, v) = s
        .post(&ask(wav_part(&wav(16_000, 1, 1.0, Sound::Silence)), 2))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "audio_not_supported");
    let (_, models) = s.get("/v1/models").await;
    let id = models["data"][0]["id"].as_str().unwrap().to_string();
    assert!(
        error_message(&v).contains(&format!("model `{id}` cannot hear audio")),
        "{v}"
    );
    // Audio is for user messages.
    let body = json!({"messages": [
        {"role": "system", "content": [wav_part(&wav(16_000, 1, 1.0, Sound::Silence))]},
        {"role": "user", "content": "hi"}]});
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn a_family_the_pinned_mtmd_would_abort_on_has_its_audio_refused() {
    // Ultravox: mtmd counts 187 tokens a window, its graph makes 188, and
    // the mismatch aborts the process; the server keeps serving text.
    let s = start_audio(&ULTRAVOX, &[]).await;
    let (_, models) = s.get("/v1/models").await;
    let input = models["data"][0]["architecture"]["input_modalities"].clone();
    assert!(
        !input.as_array().unwrap().contains(&json!("audio")),
        "{input}"
    );
    let (status, v) = s
        .post(&ask(wav_part(&wav(16_000, 1, 1.0, Sound::Tone(440.0))), 2))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "audio_not_supported");
    assert!(
        error_message(&v).contains("187 tokens but its encoder makes 188"),
        "{v}"
    );
    let (status, _) = s.post(&greedy(vec![text_part("Still here?")], 2)).await;
    assert_eq!(status, 200);
}

/// A multipart form of text fields and one `file`.
fn form(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "tessera-test-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
             content-type: audio/wav\r\n\r\n"
        )
        .bytes(),
    );
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn transcribe(
    s: &TestServer,
    route: &str,
    fields: &[(&str, &str)],
    file: &[u8],
) -> (u16, String) {
    let (kind, body) = form(fields, file);
    let r = s
        .client
        .post(format!("{}{route}", s.base))
        .header("content-type", kind)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn transcriptions_and_translations_answer_in_every_format() {
    let f = audio_family("qwen2-audio").unwrap();
    let s = start_audio(f, &[]).await;
    let clip = wav(16_000, 1, 2.5, Sound::Tone(300.0));
    let route = "/v1/audio/transcriptions";
    let base = [("model", "m"), ("max_tokens", "3")];
    let (status, body) = transcribe(&s, route, &base, &clip).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let u = &v["usage"];
    assert_eq!(u["type"], "tokens");
    assert_eq!(u["output_tokens"], 3, "{v}");
    let audio = u["input_token_details"]["audio_tokens"].as_u64().unwrap();
    assert!(audio > 750, "{v}");
    assert_eq!(
        u["input_tokens"].as_u64().unwrap(),
        audio + u["input_token_details"]["text_tokens"].as_u64().unwrap()
    );
    // The same clip in chat costs the same audio tokens.
    let (_, chat) = s.post(&ask(wav_part(&clip), 1)).await;
    assert_eq!(
        chat["usage"]["prompt_tokens_details"]["audio_tokens"],
        audio
    );
    // Greedy by default (temperature 0): the same text twice.
    let (_, again) = transcribe(&s, route, &base, &clip).await;
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap()["text"],
        v["text"]
    );
    let text = v["text"].as_str().unwrap();
    let fmt = |f: &'static str| [("model", "m"), ("max_tokens", "3"), ("response_format", f)];
    let (_, plain) = transcribe(&s, route, &fmt("text"), &clip).await;
    assert_eq!(plain, format!("{text}\n"));
    let (_, srt) = transcribe(&s, route, &fmt("srt"), &clip).await;
    assert_eq!(srt, format!("1\n00:00:00,000 --> 00:00:02,500\n{text}\n\n"));
    let (_, vtt) = transcribe(&s, route, &fmt("vtt"), &clip).await;
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n"),
        "{vtt}"
    );
    let (_, verbose) = transcribe(&s, "/v1/audio/translations", &fmt("verbose_json"), &clip).await;
    let verbose: Value = serde_json::from_str(&verbose).unwrap();
    assert_eq!(verbose["task"], "translate");
    assert_eq!(verbose["duration"], 2.5);
    assert_eq!(verbose["segments"][0]["end"], 2.5);
    // Streamed: deltas, then the whole text with its usage.
    let stream = [("model", "m"), ("max_tokens", "3"), ("stream", "true")];
    let (status, events) = transcribe(&s, route, &stream, &clip).await;
    assert_eq!(status, 200);
    let events: Vec<Value> = sse_data(&events)
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let done = events.last().unwrap();
    assert_eq!(done["type"], "transcript.text.done", "{events:?}");
    assert_eq!(done["text"], v["text"]);
    assert_eq!(done["usage"]["output_tokens"], 3);
    let deltas: String = events[..events.len() - 1]
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas.trim(), text);
    // Bad forms and bad audio name the field.
    let (status, body) = transcribe(&s, route, &base, b"not audio at all").await;
    assert_eq!(status, 400, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["error"]["param"], "file", "{e}");
    assert_eq!(e["error"]["code"], "invalid_audio", "{e}");
    let (status, body) = transcribe(&s, route, &fmt("xml"), &clip).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = transcribe(&s, route, &[("model", "m")], b"").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`file`"), "{body}");
    // Not a form at all: OpenAI's envelope, not the framework's text.
    let (status, v) = s.post_to(route, &json!({"file": "x"})).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_message(&v).contains("multipart/form-data"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_audio_family_hears_the_clip_repeats_itself_and_ends_a_full_context() {
    let _alone = exclusive().await;
    let tone = wav(16_000, 1, 2.0, Sound::Tone(440.0));
    let noise = wav(16_000, 1, 2.0, Sound::Noise);
    let first = |bytes: &[u8]| {
        let mut body = ask(wav_part(bytes), 1);
        body["logprobs"] = json!(true);
        body["top_logprobs"] = json!(5);
        body
    };
    let lp = |v: &Value| v["choices"][0]["logprobs"]["content"][0]["top_logprobs"].clone();
    for f in AUDIO_FAMILIES {
        let s = start_audio(f, &["--ctx-size", "8192", "--parallel", "2"]).await;
        // The answer depends on the sound, and the same sound gives the same answer.
        let (_, a) = s.post(&first(&tone)).await;
        let (_, b) = s.post(&first(&noise)).await;
        assert_ne!(lp(&a), lp(&b), "{}: tone and noise read alike", f.name);
        let (_, x) = s.post(&ask(wav_part(&tone), 16)).await;
        let (_, y) = s.post(&ask(wav_part(&tone), 16)).await;
        assert_eq!(
            content(&x),
            content(&y),
            "{}: greedy output changed",
            f.name
        );
        // A follow-up reuses the clip's cells.
        let mut follow = ask(wav_part(&tone), 2);
        let msgs = follow["messages"].as_array_mut().unwrap();
        msgs.push(json!({"role": "assistant", "content": content(&x)}));
        msgs.push(json!({"role": "user", "content": "Again?"}));
        let (_, v) = s.post(&follow).await;
        let clip = v["usage"]["audio"][0]["tokens"].as_u64().unwrap();
        let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap();
        assert!(cached > clip, "{}: {}", f.name, v["usage"]);
        // A full context ends with `length`, every counted token in a
        // cell, while a request beside it completes.
        let long = {
            let (client, url) = (s.client.clone(), format!("{}/v1/chat/completions", s.base));
            let body = ask(wav_part(&tone), 8000);
            tokio::spawn(async move {
                let resp = client.post(url).json(&body).send().await.unwrap();
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            })
        };
        let (status, short) = s.post(&greedy(vec![text_part("short")], 50)).await;
        assert_eq!(status, 200, "{}: {short}", f.name);
        assert_eq!(short["usage"]["completion_tokens"], 50, "{}", f.name);
        let (status, v) = long.await.unwrap();
        assert_eq!(status, 200, "{}: {v}", f.name);
        assert_eq!(v["choices"][0]["finish_reason"], "length", "{}", f.name);
        let u = &v["usage"];
        let total = u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap();
        assert_eq!(
            total, 4096,
            "{}: every counted token had a cell: {u}",
            f.name
        );
    }
}
