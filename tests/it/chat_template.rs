//! Which chat template renders prompts, on a real server: the model's own,
//! `--chat-template-file`, or a ChatML fallback that `/v1/models` admits to;
//! template errors and `chat_template_kwargs` reach the client.

use crate::common;

use common::*;
use serde_json::json;
use tessera::fixtures::gguf::Value as GgufValue;
use tessera::fixtures::{TextVariant, text_model, write_if_changed};

fn broken_template_model() -> std::path::PathBuf {
    let path = fixtures().dir.join("tiny-text-broken-template.gguf");
    let mut b = text_model(1, TextVariant::RunsToLength);
    b.kv(
        "tokenizer.chat_template",
        GgufValue::Str("{% for %}".into()),
    );
    write_if_changed(&path, &b).expect("write fixture");
    path
}

#[tokio::test]
async fn a_template_that_does_not_compile_is_reported_not_hidden() {
    let model = broken_template_model();
    let s = start(&["--model", path(&model)]).await;
    let (_, models) = s.get("/v1/models").await;
    let t = &models["data"][0]["capabilities"]["chat_template"];
    assert_eq!(t["source"], "chatml_fallback", "{t}");
    assert!(t["error"].as_str().unwrap().contains("syntax"), "{t}");
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 2)).await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn chat_template_file_replaces_the_models_template() {
    let model = broken_template_model();
    let file = template_file(
        "long-preamble.jinja",
        "{{ 'A long preamble that only this template adds. ' * 4 }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n",
    );
    let s = start(&["--model", path(&model), "--chat-template-file", path(&file)]).await;
    let (_, models) = s.get("/v1/models").await;
    let t = &models["data"][0]["capabilities"]["chat_template"];
    assert_eq!(t["source"], "file");
    assert_eq!(t["path"], path(&file));
    let plain = start(&["--model", path(&model)]).await;
    let body = greedy(vec![text_part("hi")], 1);
    let (_, with_file) = s.post(&body).await;
    let (_, fallback) = plain.post(&body).await;
    let tokens = |v: &serde_json::Value| v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        tokens(&with_file) > tokens(&fallback) + 20,
        "{with_file} vs {fallback}"
    );
}

#[tokio::test]
async fn a_chat_template_file_that_does_not_compile_stops_the_start() {
    let file = template_file("broken.jinja", "{% if %}");
    let argv = [
        "tessera",
        "--port",
        "0",
        "--model",
        path(&fixtures().text),
        "--chat-template-file",
        path(&file),
    ];
    let config = <tessera::config::Config as clap::Parser>::parse_from(argv);
    let err = tessera::start(config)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("does not compile"), "{err}");
}

#[tokio::test]
async fn template_errors_and_kwargs_reach_the_client() {
    use tessera::fixtures::families::family_fixture;
    // Gemma 3's template refuses two user turns in a row, in its own words.
    let gemma = family_fixture("gemma3").unwrap();
    let (text, _) = gemma.write(&fixtures().dir).unwrap();
    let s = start(&["--model", path(&text)]).await;
    let body = json!({"messages": [
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"}
    ], "max_tokens": 1});
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_message(&v).contains("must alternate"), "{v}");
    // Qwen3-VL's template closes an empty think block when thinking is off.
    let qwen3 = family_fixture("qwen3-vl").unwrap();
    let (text, _) = qwen3.write(&fixtures().dir).unwrap();
    let s = start(&["--model", path(&text)]).await;
    let mut body = greedy(vec![text_part("hi")], 1);
    let (_, thinking) = s.post(&body).await;
    body["chat_template_kwargs"] = json!({"enable_thinking": false});
    let (_, off) = s.post(&body).await;
    let tokens = |v: &serde_json::Value| v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(tokens(&off) > tokens(&thinking), "{off} vs {thinking}");
}
