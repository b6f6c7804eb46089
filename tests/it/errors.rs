//! Every bad input gets OpenAI's error envelope with the right status, and
//! the server keeps serving afterwards.

use crate::common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn bad_requests_get_400_envelopes() {
    let s = start_mlp(&[]).await;
    let user =
        |content: serde_json::Value| json!({"messages": [{"role": "user", "content": content}]});

    let (status, v) = s.post_raw("{\"messages\": [").await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("not valid JSON"));

    let (status, v) = s.post(&json!({"model": "x"})).await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("messages"));

    let (status, v) = s.post(&json!({"messages": []})).await;
    assert_eq!(status, 400);
    assert_eq!(assert_envelope(&v)["param"], "messages");

    let (status, v) = s
        .post(&user(
            json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]),
        ))
        .await;
    assert_eq!(status, 400);
    let e = assert_envelope(&v);
    assert_eq!(e["param"], "messages[0].content[0].image_url");
    assert!(e["message"].as_str().unwrap().contains("base64"));

    let not_image = data_url(b"this is plain text, not pixels", "image/png");
    let (status, v) = s
        .post(&user(
            json!([{"type": "image_url", "image_url": {"url": not_image}}]),
        ))
        .await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("not an image"));

    let (status, v) = s
        .post(&user(
            json!([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]),
        ))
        .await;
    // Audio parts are understood; this model has no ear for them.
    assert_eq!(status, 400);
    let e = assert_envelope(&v);
    assert!(
        e["message"].as_str().unwrap().contains("cannot hear audio"),
        "{e}"
    );
    assert_eq!(e["param"], "messages[0].content[0].input_audio");
    assert_eq!(e["code"], "audio_not_supported");

    let (status, v) = s
        .post(&json!({"messages": [{"role": "wizard", "content": "hi"}]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(assert_envelope(&v)["param"], "messages[0].role");

    // Each choice takes a sequence: more than --parallel (4 here) is refused.
    let mut req = user(json!("hi"));
    req["n"] = json!(5);
    let (status, v) = s.post(&req).await;
    assert_eq!(status, 400);
    let e = assert_envelope(&v);
    assert_eq!(e["param"], "n");
    assert!(e["message"].as_str().unwrap().contains("n = 5"));

    for (field, value) in [
        ("temperature", json!(3.5)),
        ("top_p", json!(0)),
        ("max_tokens", json!(0)),
    ] {
        let mut req = user(json!("hi"));
        req[field] = value;
        let (status, v) = s.post(&req).await;
        assert_eq!(status, 400, "{field}");
        assert_eq!(assert_envelope(&v)["param"], field);
    }

    let (status, v) = s
        .post(&user(
            json!([{"type": "image_url", "image_url": {"url": "ftp://host/cat.png"}}]),
        ))
        .await;
    assert_eq!(status, 400);
    assert_envelope(&v);

    // Unknown fields are ignored, as OpenAI does; the server still answers.
    let (status, v) = s
        .post(
            &json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
                      "frobnicate": true, "logit_bias": {}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn images_need_a_vision_projector() {
    let f = fixtures();
    let s = start(&["--model", path(&f.text)]).await;
    let (status, v) = s
        .post(&greedy(
            vec![text_part("see"), image_part(8, 8, [1, 2, 3])],
            2,
        ))
        .await;
    assert_eq!(status, 400);
    let e = assert_envelope(&v);
    assert!(e["message"].as_str().unwrap().contains("--mmproj"));
    // Text still works on the text-only model.
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 3)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn prompt_longer_than_the_context_is_400() {
    // llama.cpp pads the context to a multiple of 256; ask for exactly that.
    let s = start_mlp(&["--ctx-size", "256", "--parallel", "1"]).await;
    let long = "word ".repeat(400);
    for stream in [false, true] {
        let mut req = greedy(vec![text_part(&long)], 4);
        req["stream"] = json!(stream);
        let (status, v) = s.post(&req).await;
        assert_eq!(status, 400, "{v}");
        let e = assert_envelope(&v);
        assert_eq!(e["code"], "context_length_exceeded");
        assert!(e["message"].as_str().unwrap().contains("--ctx-size"));
    }
    // An image that does not fit the context either.
    // 11 images x 25 tokens = 275 > 256.
    let parts = vec![image_part(8, 8, [0, 0, 0]); 11];
    let (status, v) = s.post(&greedy(parts, 2)).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "context_length_exceeded");
    // Generation that reaches the end of the context stops with `length`.
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 1000)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let total = v["usage"]["total_tokens"].as_u64().unwrap();
    assert!(total <= 256, "{total}");
    assert!(total >= 250, "stopped before the context was full: {total}");
}

#[tokio::test]
async fn oversized_body_is_413_and_too_many_images_is_400() {
    let s = start_mlp(&["--max-body-bytes", "2000", "--max-images", "1"]).await;
    let big = "x".repeat(5000);
    let (status, v) = s.post(&greedy(vec![text_part(&big)], 2)).await;
    assert_eq!(status, 413);
    assert_envelope(&v);
    let parts = vec![image_part(2, 2, [0, 0, 0]), image_part(2, 2, [0, 0, 0])];
    let (status, v) = s.post(&greedy(parts, 2)).await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("--max-images"));
}

#[tokio::test]
async fn fields_not_implemented_are_refused_by_name_never_ignored() {
    let s = start_mlp(&[]).await;
    for (field, value) in [
        ("functions", json!([{"name": "f"}])),
        ("audio", json!({"voice": "alloy", "format": "wav"})),
        ("prediction", json!({"type": "content", "content": "x"})),
    ] {
        let mut body = greedy(vec![text_part("hi")], 2);
        body[field] = value;
        let (status, v) = s.post(&body).await;
        assert_eq!(status, 400, "{field}: {v}");
        let e = assert_envelope(&v);
        assert_eq!(e["param"], field, "{v}");
        assert_eq!(e["code"], "unsupported_parameter", "{v}");
    }
    // Values that ask for nothing are fine, as OpenAI's defaults are.
    let mut body = greedy(vec![text_part("hi")], 2);
    body["tools"] = json!([]);
    body["presence_penalty"] = json!(0);
    body["logprobs"] = json!(false);
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 200, "{v}");
}
