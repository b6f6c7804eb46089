//! Client-set image budgets and the `native` geometry through the HTTP
//! API, on the Qwen2-VL fixture (28 px units, 8..4096 tokens as mtmd keeps
//! them): per image (`image_url.max_tokens`), per request
//! (`mm_processor_kwargs`), per server (`--image-min-tokens`), on chat,
//! Responses and the price preview; the preview always equals `usage`.

use crate::common;

use common::*;
use serde_json::{Value, json};

async fn start_qwen_native(extra: &[&str]) -> TestServer {
    let f = fixtures();
    let mut args = vec![
        "--model",
        path(&f.text),
        "--mmproj",
        path(&f.mmproj_qwen2vl),
    ];
    args.extend_from_slice(extra);
    start(&args).await
}

/// A 640x480 photo with `image_url` extensions and top-level fields.
fn photo(image: Value, top: Value) -> Value {
    let mut img = image_part(640, 480, [30, 140, 200]);
    if let (Some(dst), Some(src)) = (img["image_url"].as_object_mut(), image.as_object()) {
        dst.extend(src.clone());
    }
    let mut body = greedy(vec![text_part("what is this?"), img], 1);
    if let (Some(dst), Some(src)) = (body.as_object_mut(), top.as_object()) {
        dst.extend(src.clone());
    }
    body
}

/// The image's usage entry, after checking that the preview said the same.
async fn priced(s: &TestServer, body: &Value) -> Value {
    let (status, pre) = s.post_to("/v1/chat/completions/input_tokens", body).await;
    assert_eq!(status, 200, "{pre}");
    let (status, v) = s.post(body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(pre["input_tokens"], v["usage"]["prompt_tokens"], "{v}");
    assert_eq!(pre["images"][0], v["usage"]["images"][0]);
    assert_eq!(
        v["usage"]["images"][0]["tokens"],
        v["usage"]["prompt_tokens_details"]["image_tokens"]
    );
    v["usage"]["images"][0].clone()
}

fn tokens(image: &Value) -> u64 {
    image["tokens"].as_u64().unwrap()
}

#[tokio::test]
async fn a_photo_costs_what_llama_server_charges_and_says_what_the_model_saw() {
    let s = start_qwen_native(&[]).await;
    let image = priced(&s, &photo(json!({}), json!({}))).await;
    // One image at 644x476 = 23 x 17 units, plus the two wrapper tokens:
    // llama-server's 391 + 2 on the same GGUFs (it was 5 pieces, 1,106).
    assert_eq!(tokens(&image), 393, "{image}");
    assert_eq!(image["policy"], "native");
    assert_eq!(image["resized"], json!({"width": 644, "height": 476}));
    // 644x476 is 0.2% fewer pixels than 640x480: rounding to 28 px units.
    assert_eq!(image["downscaled"], true);
    assert_eq!(
        (image["cols"].as_u64(), image["rows"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(image.get("tile_boxes").is_none() && image["thumbnail"].is_null());
    // `fit` stays selectable per request, with its tile boxes.
    let fit = priced(
        &s,
        &photo(json!({}), json!({"mm_processor_kwargs": {"tiling": "fit"}})),
    )
    .await;
    assert_eq!((tokens(&fit), &fit["policy"]), (1106, &json!("fit")));
    assert_eq!(fit["tile_boxes"][3], json!([448, 448, 640, 480]));
}

#[tokio::test]
async fn budgets_per_image_per_request_and_per_server() {
    let s = start_qwen_native(&[]).await;
    let capped = priced(&s, &photo(json!({"max_tokens": 100}), json!({}))).await;
    assert!(tokens(&capped) <= 102 && tokens(&capped) > 80, "{capped}");
    assert_eq!(capped["downscaled"], true);
    let pixels = json!({"mm_processor_kwargs": {"max_pixels": 100_000}});
    let p = priced(&s, &photo(json!({}), pixels.clone())).await;
    let area = p["resized"]["width"].as_u64().unwrap() * p["resized"]["height"].as_u64().unwrap();
    assert!(area <= 100_000, "{p}");
    // The image's own cap wins over the request's.
    let both = priced(&s, &photo(json!({"max_tokens": 40}), pixels)).await;
    assert!(tokens(&both) <= 42, "{both}");
    let grown = priced(&s, &photo(json!({"min_tokens": 1024}), json!({}))).await;
    assert!(tokens(&grown) >= 1026, "{grown}");
    // `low`: the thumbnail budget (75) as one whole image.
    let low = priced(&s, &photo(json!({"detail": "low"}), json!({}))).await;
    assert!(
        tokens(&low) <= 75 && low.get("tile_boxes").is_none(),
        "{low}"
    );

    let floor = start_qwen_native(&["--image-min-tokens", "1024"]).await;
    assert!(tokens(&priced(&floor, &photo(json!({}), json!({}))).await) >= 1026);
    // A request may still ask for less than the server's default.
    let less = priced(&floor, &photo(json!({"max_tokens": 64}), json!({}))).await;
    assert!(tokens(&less) <= 66, "{less}");
}

#[tokio::test]
async fn a_budget_the_model_cannot_meet_is_a_clear_400() {
    let s = start_qwen_native(&[]).await;
    for (image, top, param) in [
        (
            json!({"max_tokens": 4}),
            json!({}),
            "messages[0].content[1].image_url",
        ),
        (
            json!({}),
            json!({"mm_processor_kwargs": {"max_pixels": 1000}}),
            "messages[0].content[1].image_url",
        ),
        (
            json!({"max_tokens": 0}),
            json!({}),
            "messages[0].content[1].image_url",
        ),
        (
            json!({}),
            json!({"mm_processor_kwargs": {"min_tokens": 9, "max_tokens": 8}}),
            "mm_processor_kwargs",
        ),
    ] {
        let body = photo(image, top);
        for route in ["/v1/chat/completions", "/v1/chat/completions/input_tokens"] {
            let (status, v) = s.post_to(route, &body).await;
            assert_eq!(status, 400, "{route}: {v}");
            assert_eq!(v["error"]["param"], param, "{v}");
        }
    }
    let (_, v) = s.post(&photo(json!({"max_tokens": 4}), json!({}))).await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert_eq!(v["error"]["code"], "image_budget_too_small");
    assert!(msg.contains("cannot cost less than 1"), "{msg}");
    // Unknown processor settings are named, not ignored.
    let (status, v) = s
        .post(&photo(
            json!({}),
            json!({"mm_processor_kwargs": {"do_pan_and_scan": true}}),
        ))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("do_pan_and_scan"),
        "{v}"
    );
}

#[tokio::test]
async fn responses_take_the_same_budgets() {
    let s = start_qwen_native(&[]).await;
    let url = image_part(640, 480, [30, 140, 200])["image_url"]["url"].clone();
    let input = |extra: Value| {
        let mut part = json!({"type": "input_image", "image_url": url});
        if let (Some(dst), Some(src)) = (part.as_object_mut(), extra.as_object()) {
            dst.extend(src.clone());
        }
        json!([{"role": "user", "content": [{"type": "input_text", "text": "what is this?"}, part]}])
    };
    let cost = |body: Value| {
        let s = &s;
        async move {
            let (status, r) = s.post_to("/v1/responses", &body).await;
            assert_eq!(status, 200, "{r}");
            r["usage"]["input_tokens_details"]["image_tokens"]
                .as_u64()
                .unwrap()
        }
    };
    let plain = cost(json!({"input": input(json!({})), "max_output_tokens": 1})).await;
    assert_eq!(plain, 393);
    let capped =
        cost(json!({"input": input(json!({"max_tokens": 100})), "max_output_tokens": 1})).await;
    assert!(capped <= 102, "{capped}");
    let kwargs = cost(json!({
        "input": input(json!({})), "max_output_tokens": 1,
        "mm_processor_kwargs": {"tiling": "fit"}
    }))
    .await;
    assert_eq!(kwargs, 1106);
}
