//! `POST /v1/completions` on the real engine: raw prompts (strings, lists,
//! token ids), `n`, `echo`, legacy log-probabilities, the chunk stream,
//! exact usage, and clear refusals.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn text(v: &Value, i: usize) -> String {
    v["choices"][i]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_complete_with_exact_usage() {
    let s = start_mlp(&[]).await;
    let ask = |extra: Value| {
        let mut b = json!({"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (status, a) = s.post_to("/v1/completions", &ask(json!({}))).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["object"], "text_completion");
    assert!(a["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(a["choices"][0]["finish_reason"], "length");
    assert_eq!(a["choices"][0]["index"], 0);
    assert_eq!(a["usage"]["completion_tokens"], 5);
    let prompt = a["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt >= 4, "{a}");
    assert!(!text(&a, 0).is_empty());
    // Default max_tokens is OpenAI's 16.
    let mut dflt = ask(json!({}));
    dflt.as_object_mut().unwrap().remove("max_tokens");
    let (_, d) = s.post_to("/v1/completions", &dflt).await;
    assert_eq!(d["usage"]["completion_tokens"], 16);
    // echo: the prompt, then the same completion.
    let (_, e) = s
        .post_to("/v1/completions", &ask(json!({"echo": true})))
        .await;
    assert_eq!(text(&e, 0), format!("Once upon a time{}", text(&a, 0)));
    // Two prompts, two completions each: four choices, usage summed.
    let (status, m) = s
        .post_to(
            "/v1/completions",
            &ask(json!({"prompt": ["Once upon a time", "Hello"], "n": 2})),
        )
        .await;
    assert_eq!(status, 200, "{m}");
    let indexes: Vec<u64> = (0..4)
        .map(|i| m["choices"][i]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    assert_eq!(text(&m, 0), text(&a, 0));
    assert_eq!(text(&m, 1), text(&a, 0), "greedy: both choices alike");
    assert_eq!(m["usage"]["completion_tokens"], 20);
    let (_, h) = s
        .post_to("/v1/completions", &ask(json!({"prompt": "Hello"})))
        .await;
    assert_eq!(
        m["usage"]["prompt_tokens"].as_u64().unwrap(),
        prompt + h["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    // Token ids are taken as given.
    let (status, t) = s
        .post_to("/v1/completions", &ask(json!({"prompt": [5, 6, 7]})))
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["usage"]["prompt_tokens"], 3);
    let (status, v) = s
        .post_to("/v1/completions", &ask(json!({"prompt": [5, 99_999_999]})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(assert_envelope(&v)["param"], "prompt[1]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logprobs_and_the_stream_agree_with_the_whole_answer() {
    let s = start_mlp(&[]).await;
    let body = json!({"prompt": "Tell me", "max_tokens": 6, "temperature": 0, "logprobs": 2});
    let (status, whole) = s.post_to("/v1/completions", &body).await;
    assert_eq!(status, 200, "{whole}");
    let lp = &whole["choices"][0]["logprobs"];
    let tokens: Vec<&str> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens.len(), 6, "{lp}");
    assert_eq!(tokens.concat(), text(&whole, 0));
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), 6);
    assert!(lp["top_logprobs"][0].as_object().unwrap().len() <= 2);
    assert_eq!(lp["text_offset"][0], 0);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["echo"] = json!(false);
    streamed.as_object_mut().unwrap().remove("logprobs");
    streamed["stream_options"] = json!({"include_usage": true});
    let events = s.stream_to("/v1/completions", &streamed).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(joined, text(&whole, 0));
    let last = chunks.last().unwrap();
    assert_eq!(last["usage"]["completion_tokens"], 6, "{last}");
    assert_eq!(
        last["usage"]["prompt_tokens"],
        whole["usage"]["prompt_tokens"]
    );
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "length");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_completions_cannot_do_is_refused_by_name() {
    let s = start_mlp(&[]).await;
    for (extra, param) in [
        (json!({"suffix": "end"}), "suffix"),
        (json!({"best_of": 3}), "best_of"),
        (json!({"echo": true, "logprobs": 1}), "echo"),
        (json!({"prompt": {"text": "x"}}), "prompt"),
        (json!({"prompt": []}), "prompt"),
        (json!({"prompt": "x", "temperature": 9}), "temperature"),
    ] {
        let mut body = json!({"prompt": "hi", "max_tokens": 2});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = s.post_to("/v1/completions", &body).await;
        assert_eq!(status, 400, "{extra}: {v}");
        assert_eq!(assert_envelope(&v)["param"], param, "{v}");
    }
}
