//! `POST /v1/responses` on the real engine: input as a string or as items
//! with images, instructions, function tools, the typed event stream, and
//! the refusals (stored responses: `stored.rs`).

use crate::common;

use common::*;
use serde_json::{Value, json};

fn image_url() -> String {
    data_url(&png(64, 48, [200, 40, 40]), "image/png")
}

/// The stream's events as (event name, data).
async fn events(s: &TestServer, body: &Value) -> Vec<Value> {
    let resp = s
        .client
        .post(format!("{}/v1/responses", s.base))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    sse_data(&text)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_image_input_with_exact_usage() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let body = json!({
        "instructions": "Answer briefly.",
        "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What is in this picture?"},
            {"type": "input_image", "image_url": image_url(), "detail": "low"}]}],
        "max_output_tokens": 6, "temperature": 0
    });
    let (status, r) = s.post_to("/v1/responses", &body).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["object"], "response");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(r["status"], "incomplete", "the fixture runs to length: {r}");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(r["store"], true);
    let item = &r["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    let text = item["content"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(item["content"][0]["type"], "output_text");
    assert!(!text.is_empty());
    // The same conversation through Chat Completions: same prompt, same answer.
    let chat = json!({"messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": image_url(), "detail": "low"}}]}],
        "max_tokens": 6, "temperature": 0});
    let (_, c) = s.post(&chat).await;
    let u = &r["usage"];
    assert_eq!(u["input_tokens"], c["usage"]["prompt_tokens"], "{r}");
    assert_eq!(u["input_tokens_details"]["image_tokens"], 25);
    assert_eq!(u["output_tokens"], 6);
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["input_tokens"].as_u64().unwrap() + 6)
    );
    assert_eq!(text, content(&c));

    // A plain string is one user message.
    let (status, r) = s
        .post_to(
            "/v1/responses",
            &json!({"input": "hello", "max_output_tokens": 3}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["usage"]["output_tokens"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_builds_the_same_response() {
    let s = start_mlp(&[]).await;
    let body = json!({"input": "tell me a story", "max_output_tokens": 8, "temperature": 0});
    let (_, whole) = s.post_to("/v1/responses", &body).await;
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let evs = events(&s, &streamed).await;
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        &kinds[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(kinds.last(), Some(&"response.incomplete"), "{kinds:?}");
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64, "{e}");
    }
    let deltas: String = evs
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let last = evs.last().unwrap();
    let final_text = last["response"]["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(deltas, final_text);
    assert_eq!(
        final_text,
        whole["output"][0]["content"][0]["text"].as_str().unwrap()
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 8);
    assert_eq!(evs[0]["response"]["id"], last["response"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_tools_round_trip() {
    let s = start_mlp(&[]).await;
    let tools = json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Oslo"]}},
                       "required": ["city"], "additionalProperties": false}}]);
    let mut input = vec![json!({"role": "user", "content": [
        {"type": "input_text", "text": "Weather there?"},
        {"type": "input_image", "image_url": image_url()}]})];
    let body = json!({"input": input, "tools": tools, "tool_choice": "required", "max_output_tokens": 200, "temperature": 0});
    let (status, r) = s.post_to("/v1/responses", &body).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "completed", "{r}");
    let call = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "function_call")
        .unwrap()
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap()["city"],
        "Oslo"
    );
    // Streamed: the call arrives as an item with its arguments.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let evs = events(&s, &streamed).await;
    let done = evs
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["arguments"], call["arguments"]);
    assert_eq!(evs.last().unwrap()["type"], "response.completed");

    let first_turn =
        json!({"input": input, "tools": tools, "tool_choice": "none", "max_output_tokens": 4});
    let (_, base) = s.post_to("/v1/responses", &first_turn).await;
    input.push(json!({"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": call["arguments"]}));
    input.push(json!({"type": "function_call_output", "call_id": call["call_id"], "output": "{\"temp_c\": 3}"}));
    let (status, r2) = s
        .post_to(
            "/v1/responses",
            &json!({"input": input, "tools": tools, "tool_choice": "none", "max_output_tokens": 4}),
        )
        .await;
    assert_eq!(status, 200, "{r2}");
    assert_eq!(r2["output"][0]["type"], "message");
    assert!(r2["usage"]["input_tokens"].as_u64() > base["usage"]["input_tokens"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tools_and_items_are_refused_by_name() {
    let s = start_mlp(&[]).await;
    for (extra, param) in [
        (json!({"tools": [{"type": "web_search"}]}), "tools[0].type"),
        (
            json!({"input": [{"type": "input_file", "file_id": "f"}]}),
            "input[0].type",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
            "input[0].content[0].image_url",
        ),
    ] {
        let mut body = json!({"input": "hi", "max_output_tokens": 2});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = s.post_to("/v1/responses", &body).await;
        assert_eq!(status, 400, "{extra}: {v}");
        assert_eq!(assert_envelope(&v)["param"], param, "{v}");
    }
}
