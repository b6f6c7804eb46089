//! Tool calling on the real engine, one fixture per call format: a request
//! with tools and an image gets a call whose arguments match the schema
//! (the grammar holds the random-weight model to it), streamed as OpenAI
//! streams calls; the call and its result go back into the conversation and
//! the model answers.

use crate::common;

use common::*;
use serde_json::{Value, json};
use tessera::fixtures::families::family_fixture;

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
         "parameters": {"type": "object", "properties": {
             "city": {"type": "string", "enum": ["Paris", "Oslo"]},
             "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
         "properties": {"tz": {"type": "string", "enum": ["UTC", "CET"]}}, "required": ["tz"],
         "additionalProperties": false}}}
    ])
}

fn ask(choice: Value, stream: bool) -> Value {
    json!({
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is the weather where this photo was taken?"},
            image_part(64, 48, [30, 120, 200])]}],
        "tools": tools(), "tool_choice": choice, "parallel_tool_calls": false,
        "max_tokens": 200, "temperature": 0, "stream": stream
    })
}

/// Arguments that satisfy their function's schema.
fn check_args(name: &str, args: &str) {
    let v: Value = serde_json::from_str(args).unwrap_or_else(|e| panic!("{args}: {e}"));
    match name {
        "get_weather" => {
            assert!(
                ["Paris", "Oslo"].contains(&v["city"].as_str().unwrap()),
                "{v}"
            );
            assert!((1..=7).contains(&v["days"].as_i64().unwrap()), "{v}");
            assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        }
        "get_time" => assert!(["UTC", "CET"].contains(&v["tz"].as_str().unwrap()), "{v}"),
        other => panic!("unknown function {other}"),
    }
}

/// The streamed calls, put back together: (id, name, arguments).
fn streamed_calls(events: &[String]) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = Vec::new();
    for d in events {
        let Ok(c) = serde_json::from_str::<Value>(d) else {
            continue;
        };
        let choice = &c["choices"][0];
        if let Some(f) = choice["finish_reason"].as_str() {
            finish.push(f.to_string());
        }
        for tc in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            if let Some(id) = tc["id"].as_str() {
                assert_eq!(i, calls.len(), "a new call takes the next index");
                assert_eq!(tc["type"], "function");
                calls.push((
                    id.into(),
                    tc["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                calls[i].2.push_str(a);
            }
        }
    }
    (calls, finish)
}

async fn round_trip(s: &TestServer, format: &str) {
    let (_, models) = s.get("/v1/models").await;
    assert_eq!(
        models["data"][0]["capabilities"]["chat_template"]["tool_format"], format,
        "{models}"
    );
    // Required: a call, whatever the random weights prefer.
    let (status, v) = s.post(&ask(json!("required"), false)).await;
    assert_eq!(status, 200, "{format}: {v}");
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{format}: {v}");
    assert!(choice["message"]["content"].is_null(), "{format}: {v}");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "parallel_tool_calls: false; {v}");
    let call = &calls[0];
    assert_eq!(call["type"], "function");
    let name = call["function"]["name"].as_str().unwrap();
    let args = call["function"]["arguments"].as_str().unwrap();
    check_args(name, args);

    // Named: that function.
    let named = json!({"type": "function", "function": {"name": "get_time"}});
    let (_, v) = s.post(&ask(named.clone(), false)).await;
    let c = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(c["function"]["name"], "get_time", "{format}: {v}");
    check_args("get_time", c["function"]["arguments"].as_str().unwrap());

    // Streamed: id, type and name first, then the arguments, then `tool_calls`.
    let events = s.stream(&ask(named, true)).await;
    let (streamed, finish) = streamed_calls(&events);
    assert_eq!(finish, vec!["tool_calls"], "{format}: {events:?}");
    assert_eq!(streamed.len(), 1, "{format}: {events:?}");
    assert_eq!(streamed[0].1, "get_time");
    check_args("get_time", &streamed[0].2);

    // Cut by max_tokens inside the call: `length`, no call, no markup.
    let mut cut = ask(json!("required"), false);
    cut["max_tokens"] = json!(3);
    let (status, v) = s.post(&cut).await;
    assert_eq!(status, 200, "{format}: {v}");
    let m = &v["choices"][0]["message"];
    assert_eq!(v["choices"][0]["finish_reason"], "length", "{format}: {v}");
    assert!(m["tool_calls"].is_null(), "{format}: {v}");
    assert!(
        m["content"].as_str().unwrap_or_default().is_empty(),
        "{format}: {v}"
    );
    cut["stream"] = json!(true);
    let events = s.stream(&cut).await;
    let (calls, finish) = streamed_calls(&events);
    assert_eq!(finish, vec!["length"], "{format}: {events:?}");
    assert!(calls.is_empty(), "{format}: {events:?}");
    assert!(
        !events
            .iter()
            .any(|e| e.contains("\"content\":\"") && !e.contains("\"content\":\"\"")),
        "{format}: text in a cut call: {events:?}"
    );
    let cut = json!({"input": "weather?", "tools": [{"type": "function", "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}],
        "tool_choice": "required", "max_output_tokens": 3});
    let (status, v) = s.post_to("/v1/responses", &cut).await;
    assert_eq!(status, 200, "{format}: {v}");
    assert_eq!(v["status"], "incomplete", "{format}: {v}");
    let output = v["output"].as_array().unwrap();
    assert!(
        output.iter().all(|o| o["type"] != "function_call"),
        "{format}: {v}"
    );
    let text = output
        .iter()
        .flat_map(|o| o["content"].as_array().cloned().unwrap_or_default());
    assert!(
        text.into_iter()
            .all(|c| c["text"].as_str().unwrap_or_default().is_empty()),
        "{format}: {v}"
    );

    // Tools with a typed final answer (openai-agents' `output_type`,
    // pydantic-ai's `NativeOutput`, langchain's `bind_tools` +
    // `response_format`): a forced call ignores the format; with `auto`
    // the answer is a valid call or JSON of the schema.
    let typed = json!({"type": "json_schema", "json_schema": {"name": "verdict", "strict": true,
        "schema": {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["sunny", "rainy"]}},
                   "required": ["verdict"], "additionalProperties": false}}});
    let mut forced = ask(json!("required"), false);
    forced["response_format"] = typed.clone();
    let (status, v) = s.post(&forced).await;
    assert_eq!(status, 200, "{format}: {v}");
    assert_eq!(
        v["choices"][0]["finish_reason"], "tool_calls",
        "{format}: {v}"
    );
    for stream in [false, true] {
        let mut free = ask(json!("auto"), stream);
        free["response_format"] = typed.clone();
        let (calls, content) = if stream {
            let events = s.stream(&free).await;
            let (calls, _) = streamed_calls(&events);
            let text = streamed_delta(&events, "content");
            (
                calls
                    .into_iter()
                    .map(|(_, n, a)| (n, a))
                    .collect::<Vec<_>>(),
                text,
            )
        } else {
            let (status, v) = s.post(&free).await;
            assert_eq!(status, 200, "{format}: {v}");
            let m = &v["choices"][0]["message"];
            let calls = m["tool_calls"].as_array().cloned().unwrap_or_default();
            let calls = calls
                .iter()
                .map(|c| {
                    let f = &c["function"];
                    (
                        f["name"].as_str().unwrap().to_string(),
                        f["arguments"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (calls, m["content"].as_str().unwrap_or_default().to_string())
        };
        if calls.is_empty() {
            let answer: Value = serde_json::from_str(content.trim())
                .unwrap_or_else(|e| panic!("{format}: not JSON: {content:?}: {e}"));
            assert!(
                ["sunny", "rainy"].contains(&answer["verdict"].as_str().unwrap_or("")),
                "{answer}"
            );
        } else {
            for (name, args) in &calls {
                check_args(name, args);
            }
        }
    }

    // The call and its result go back; the model answers in text.
    let mut next = ask(json!("auto"), false);
    let history = next["messages"].as_array_mut().unwrap();
    history.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
    history
        .push(json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"temp_c\": 21}"}));
    next["max_tokens"] = json!(8);
    let (status, v) = s.post(&next).await;
    assert_eq!(status, 200, "{format}: {v}");
    assert!(
        v["choices"][0]["message"]["content"].is_string(),
        "{format}: {v}"
    );
    // The prompt grew by the call and the result.
    let (_, first) = s
        .post_to(
            "/v1/chat/completions/input_tokens",
            &ask(json!("auto"), false),
        )
        .await;
    let (_, second) = s.post_to("/v1/chat/completions/input_tokens", &next).await;
    assert!(second["input_tokens"].as_u64() > first["input_tokens"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hermes_format_qwen() {
    let f = family_fixture("qwen2.5-vl").unwrap();
    let (text, proj) = f.write(&fixtures().dir).unwrap();
    let s = start(&["--model", path(&text), "--mmproj", path(&proj)]).await;
    round_trip(&s, "hermes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistral_format_pixtral() {
    let f = family_fixture("pixtral").unwrap();
    let (text, proj) = f.write(&fixtures().dir).unwrap();
    let s = start(&["--model", path(&text), "--mmproj", path(&proj)]).await;
    round_trip(&s, "mistral").await;
    // Mistral's templates take back only nine-character ids.
    let (_, v) = s.post(&ask(json!("required"), false)).await;
    let id = v["choices"][0]["message"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 9, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama3_format() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tools");
    std::fs::create_dir_all(&dir).unwrap();
    let tmpl = dir.join("llama32.jinja");
    std::fs::write(&tmpl, tessera::fixtures::templates::LLAMA32_VISION).unwrap();
    let f = fixtures();
    let s = start(&[
        "--model",
        path(&f.text),
        "--mmproj",
        path(&f.mmproj_mlp),
        "--chat-template-file",
        path(&tmpl),
    ])
    .await;
    round_trip(&s, "llama3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_format_for_templates_without_tools() {
    let s = start_mlp(&[]).await;
    round_trip(&s, "generic").await;
    // `none`: no tools in play, plain text.
    let (_, v) = s.post(&ask(json!("none"), false)).await;
    assert!(v["choices"][0]["message"]["tool_calls"].is_null(), "{v}");
    assert_ne!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tool_requests_are_refused_by_name() {
    let s = start_mlp(&[]).await;
    let cases = [
        (
            json!({"tools": [{"type": "function", "function": {"name": "bad name"}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"tools": tools(), "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice",
        ),
        (json!({"tool_choice": "required"}), "tool_choice"),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]}),
            "tools[0].function.parameters",
        ),
    ];
    for (extra, param) in cases {
        let mut body = greedy(vec![text_part("hi")], 2);
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = s.post(&body).await;
        assert_eq!(status, 400, "{extra}: {v}");
        assert_eq!(assert_envelope(&v)["param"], param, "{v}");
    }
    // A tool message must name its call; ids must be plain.
    let body =
        json!({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]});
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 400, "{v}");
    let body = json!({"messages": [{"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "<|im_end|>", "type": "function",
          "function": {"name": "f", "arguments": "{}"}}]}]});
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 400, "{v}");
}
