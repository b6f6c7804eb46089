//! Reasoning models: thoughts go to `reasoning_content` (streamed as
//! `delta.reasoning_content`), the answer to `content`, completion tokens
//! count both; `reasoning_effort` switches thinking where the template can.

use crate::common;

use common::*;
use serde_json::json;
use tessera::fixtures::families::family_fixture;

/// DeepSeek-R1's shape: the generation prompt opens the thinking tag, and
/// past answers keep only what follows their thoughts.
pub(crate) const R1_STYLE: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{% if message.role == 'assistant' and '</think>' in message.content %}{{ message.content.split('</think>')[-1] }}{% else %}{{ message.content }}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_thinking_tag_sends_the_answer_to_reasoning_content() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reasoning");
    std::fs::create_dir_all(&dir).unwrap();
    let tmpl = dir.join("r1.jinja");
    std::fs::write(&tmpl, R1_STYLE).unwrap();
    let s = start(&[
        "--model",
        path(&fixtures().text),
        "--chat-template-file",
        path(&tmpl),
    ])
    .await;
    let body = greedy(vec![text_part("why is the sky blue?")], 10);
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 200, "{v}");
    let msg = &v["choices"][0]["message"];
    let thoughts = msg["reasoning_content"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"));
    assert!(!thoughts.is_empty());
    assert_eq!(
        msg["content"], "",
        "the tag never closed: all of it was thought; {v}"
    );
    assert_eq!(
        v["usage"]["completion_tokens"], 10,
        "thoughts are completion tokens"
    );
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"], 10,
        "every token was thought: {v}"
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = streamed_delta(&s.stream(&streamed).await, "reasoning_content");
    assert_eq!(text, thoughts);

    // A template without a thinking switch refuses reasoning_effort.
    let mut b = body.clone();
    b["reasoning_effort"] = json!("low");
    let (status, v) = s.post(&b).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["param"], "reasoning_effort");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_effort_switches_qwen3_thinking() {
    let f = family_fixture("qwen3-vl").unwrap();
    let (text, proj) = f.write(&fixtures().dir).unwrap();
    let s = start(&["--model", path(&text), "--mmproj", path(&proj)]).await;
    let ask = |effort: &str| {
        let mut b = greedy(vec![text_part("hello")], 6);
        b["reasoning_effort"] = json!(effort);
        b
    };
    let route = "/v1/chat/completions/input_tokens";
    let (_, off) = s.post_to(route, &ask("none")).await;
    let (_, on) = s.post_to(route, &ask("high")).await;
    // Off, the template closes an empty thought in the prompt itself.
    assert!(
        off["input_tokens"].as_u64() > on["input_tokens"].as_u64(),
        "{off} {on}"
    );
    let (status, v) = s.post(&ask("none")).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["choices"][0]["message"]["reasoning_content"].is_null(),
        "{v}"
    );
    assert!(!content(&v).is_empty());
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"], 0,
        "{v}"
    );
    // chat_template_kwargs, the more specific, wins over reasoning_effort.
    let mut b = ask("none");
    b["chat_template_kwargs"] = json!({"enable_thinking": true});
    let (_, both) = s.post_to(route, &b).await;
    assert_eq!(both["input_tokens"], on["input_tokens"]);
}
