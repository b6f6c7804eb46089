//! Anthropic's Messages API on the real engine: the same prompt and answer
//! as the equivalent chat request, exact usage in Anthropic's names, its
//! event stream, tool use with images in tool results, stop sequences,
//! thinking blocks, count_tokens, and errors in Anthropic's envelope.

use crate::common;

use common::*;
use serde_json::{Value, json};
use tessera::fixtures::families::family_fixture;

fn b64_png(w: u32, h: u32, rgb: [u8; 3]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(png(w, h, rgb))
}

fn image_block(rgb: [u8; 3]) -> Value {
    json!({"type": "image", "source": {"type": "base64", "media_type": "image/png",
        "data": b64_png(64, 48, rgb)}})
}

fn ask(max_tokens: u32) -> Value {
    json!({"max_tokens": max_tokens, "temperature": 0, "system": "Answer briefly.",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"}, image_block([200, 40, 40])]}]})
}

fn joined(blocks: &Value, kind: &str, field: &str) -> String {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == kind)
        .map(|b| b[field].as_str().unwrap())
        .collect()
}

/// A stream's events as (event name, data).
async fn events(s: &TestServer, body: &Value) -> Vec<(String, Value)> {
    let resp = s
        .client
        .post(format!("{}/v1/messages", s.base))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let mut out = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let name = frame.lines().find_map(|l| l.strip_prefix("event: "));
        let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
        if let (Some(n), Some(d)) = (name, data) {
            out.push((n.to_string(), serde_json::from_str(d).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_an_image_matches_chat_with_exact_usage() {
    let s = start_mlp(&[]).await;
    let (status, m) = s.post_to("/v1/messages", &ask(6)).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (&m["type"], &m["role"]),
        (&json!("message"), &json!("assistant"))
    );
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(m["stop_reason"], "max_tokens");
    assert_eq!(m["stop_sequence"], Value::Null);
    let chat = json!({"max_tokens": 6, "temperature": 0, "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": data_url(&png(64, 48, [200, 40, 40]), "image/png")}}]}]});
    let (_, c) = s.post(&chat).await;
    let u = &m["usage"];
    let prompt = c["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        u["input_tokens"].as_u64().unwrap() + u["cache_read_input_tokens"].as_u64().unwrap(),
        prompt,
        "{m}"
    );
    assert_eq!(u["output_tokens"], 6);
    assert_eq!(u["cache_creation_input_tokens"], 0);
    assert_eq!(joined(&m["content"], "text", "text"), content(&c));
    // count_tokens: the whole prompt, image included, without generating.
    let (status, n) = s.post_to("/v1/messages/count_tokens", &ask(6)).await;
    assert_eq!(status, 200, "{n}");
    assert_eq!(n["input_tokens"].as_u64(), Some(prompt));
    let mut no_max = ask(6);
    no_max.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(s.post_to("/v1/messages/count_tokens", &no_max).await.0, 200);

    // A stop sequence taken from that answer ends the next one there.
    let text = joined(&m["content"], "text", "text");
    let stop: String = text.chars().skip(2).take(2).collect();
    let mut stopped = ask(6);
    stopped["stop_sequences"] = json!([stop]);
    let (_, m2) = s.post_to("/v1/messages", &stopped).await;
    assert_eq!(m2["stop_reason"], "stop_sequence", "{m2}");
    assert_eq!(m2["stop_sequence"], json!(stop));
    assert!(text.starts_with(&joined(&m2["content"], "text", "text")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_builds_the_same_message() {
    let s = start_mlp(&[]).await;
    let (_, whole) = s.post_to("/v1/messages", &ask(8)).await;
    let mut body = ask(8);
    body["stream"] = json!(true);
    let evs = events(&s, &body).await;
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "ping", "content_block_start"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    for (name, data) in &evs {
        assert_eq!(data["type"], name.as_str(), "the data names its event");
    }
    let start = &evs[0].1["message"];
    assert_eq!(
        start["id"].as_str().unwrap().len(),
        whole["id"].as_str().unwrap().len()
    );
    let prompt = |u: &Value| {
        u["input_tokens"].as_u64().unwrap() + u["cache_read_input_tokens"].as_u64().unwrap()
    };
    assert_eq!(prompt(&start["usage"]), prompt(&whole["usage"]));
    let text: String = evs
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, joined(&whole["content"], "text", "text"));
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 8);
}

fn weather_tools() -> Value {
    json!([{"name": "get_weather", "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Oslo"]}},
            "required": ["city"], "additionalProperties": false}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_use_round_trip_with_an_image_in_the_tool_result() {
    let f = family_fixture("qwen2.5-vl").unwrap();
    let (text, proj) = f.write(&fixtures().dir).unwrap();
    let s = start(&["--model", path(&text), "--mmproj", path(&proj)]).await;
    let first = json!({"max_tokens": 200, "temperature": 0, "tools": weather_tools(),
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let (status, m) = s.post_to("/v1/messages", &first).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["stop_reason"], "tool_use", "{m}");
    let call = m["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Oslo"}));
    // Streamed: the call's input arrives as input_json_delta.
    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let evs = events(&s, &streamed).await;
    let partial: String = evs
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        call["input"]
    );
    assert!(
        evs.iter()
            .any(|(_, d)| d["content_block"]["type"] == "tool_use")
    );

    // The result holds a screenshot: it is priced like any image.
    let result = |content: Value| {
        json!({"max_tokens": 4, "tools": weather_tools(), "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [call.clone()]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                "content": content}]}]})
    };
    let plain = result(json!([{"type": "text", "text": "3 C"}]));
    let shot = result(json!([{"type": "text", "text": "3 C"}, image_block([10, 90, 200])]));
    let (status, a) = s.post_to("/v1/messages", &plain).await;
    assert_eq!(status, 200, "{a}");
    let (status, b) = s.post_to("/v1/messages", &shot).await;
    assert_eq!(status, 200, "{b}");
    let (_, na) = s.post_to("/v1/messages/count_tokens", &plain).await;
    let (_, nb) = s.post_to("/v1/messages/count_tokens", &shot).await;
    assert!(
        nb["input_tokens"].as_u64() > na["input_tokens"].as_u64(),
        "{na} {nb}"
    );
    let total = |m: &Value| {
        m["usage"]["input_tokens"].as_u64().unwrap()
            + m["usage"]["cache_read_input_tokens"].as_u64().unwrap()
    };
    assert_eq!(Some(total(&b)), nb["input_tokens"].as_u64());
    assert_eq!(Some(total(&a)), na["input_tokens"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thoughts_are_thinking_blocks() {
    let tmpl = template_file("r1-anthropic.jinja", crate::reasoning::R1_STYLE);
    let s = start(&[
        "--model",
        path(&fixtures().text),
        "--chat-template-file",
        path(&tmpl),
    ])
    .await;
    let body = json!({"max_tokens": 6, "temperature": 0,
        "messages": [{"role": "user", "content": "why?"}]});
    let (status, m) = s.post_to("/v1/messages", &body).await;
    assert_eq!(status, 200, "{m}");
    let thought = joined(&m["content"], "thinking", "thinking");
    assert!(!thought.is_empty(), "{m}");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let evs = events(&s, &streamed).await;
    let deltas: String = evs
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "thinking_delta")
        .map(|(_, d)| d["delta"]["thinking"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, thought);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_anthropics_envelope_and_the_key_may_be_x_api_key() {
    let s = start_mlp(&["--api-key", "sekrit", "--max-body-bytes", "4096"]).await;
    let send = |body: Value, key: Option<(&'static str, &'static str)>| {
        let mut req = s.client.post(format!("{}/v1/messages", s.base)).json(&body);
        if let Some((h, v)) = key {
            req = req.header(h, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let kind = |v: &Value| {
        assert_eq!(v["type"], "error", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        v["error"]["type"].as_str().unwrap().to_string()
    };
    let key = Some(("x-api-key", "sekrit"));
    let (status, v) = send(ask(2), None).await;
    assert_eq!((status, kind(&v)), (401, "authentication_error".into()));
    let (status, v) = send(ask(2), Some(("x-api-key", "wrong"))).await;
    assert_eq!((status, kind(&v)), (401, "authentication_error".into()));
    let small = json!({"max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]});
    let (status, v) = send(small.clone(), key).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = send(small.clone(), Some(("authorization", "Bearer sekrit"))).await;
    assert_eq!(status, 200, "{v}");
    let mut no_max = small.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let (status, v) = send(no_max, key).await;
    assert_eq!((status, kind(&v)), (400, "invalid_request_error".into()));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    let doc = json!({"max_tokens": 2, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "data": "x"}}]}]});
    let (status, v) = send(doc, key).await;
    assert_eq!((status, kind(&v)), (400, "invalid_request_error".into()));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[0].content[0]"),
        "{v}"
    );
    // Over --max-body-bytes: request_too_large, before any handler.
    let long =
        json!({"max_tokens": 2, "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let (status, v) = send(long, key).await;
    assert_eq!((status, kind(&v)), (413, "request_too_large".into()));
    // Chat keeps OpenAI's envelope on the same server.
    let (status, v) = s.post(&json!({"messages": []})).await;
    assert_eq!(status, 401);
    assert_envelope(&v);
}

/// Images in tool results through the OpenAI dialects too: chat's `tool`
/// messages (an extension) and Responses' `function_call_output` parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_results_hold_images_in_the_openai_dialects_too() {
    let f = family_fixture("qwen2.5-vl").unwrap();
    let (text, proj) = f.write(&fixtures().dir).unwrap();
    let s = start(&["--model", path(&text), "--mmproj", path(&proj)]).await;
    let call = json!({"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}});
    let chat = |content: Value| {
        json!({"max_tokens": 2, "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": content}]})
    };
    let plain = chat(json!([{"type": "text", "text": "3 C"}]));
    let shot = chat(json!([{"type": "text", "text": "3 C"},
        image_part(64, 48, [10, 90, 200])]));
    let (_, a) = s.post_to("/v1/chat/completions/input_tokens", &plain).await;
    let (status, b) = s.post_to("/v1/chat/completions/input_tokens", &shot).await;
    assert_eq!(status, 200, "{b}");
    assert!(b["image_tokens"].as_u64() > Some(0), "{b}");
    assert!(b["input_tokens"].as_u64() > a["input_tokens"].as_u64());
    let (status, c) = s.post(&shot).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["usage"]["prompt_tokens"], b["input_tokens"]);

    let output = json!([{"type": "input_text", "text": "3 C"},
        {"type": "input_image", "image_url": data_url(&png(64, 48, [10, 90, 200]), "image/png")}]);
    let input = json!([{"role": "user", "content": "Weather in Oslo?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": output}]);
    let (status, r) = s
        .post_to(
            "/v1/responses",
            &json!({"input": input, "max_output_tokens": 2}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["usage"]["input_tokens"], b["input_tokens"], "{r}");
    // An image in an assistant message is still refused, by name.
    let bad = json!({"max_tokens": 2, "messages": [{"role": "assistant", "content": [
        image_part(8, 8, [0, 0, 0])]}]});
    let (status, v) = s.post(&bad).await;
    assert_eq!(status, 400);
    assert_eq!(
        assert_envelope(&v)["param"],
        "messages[0].content[0].image_url"
    );
}
