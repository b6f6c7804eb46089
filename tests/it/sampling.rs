//! The sampling and output controls on the real engine: logprobs (stream
//! and not), logit_bias, the penalties, their validation, and defaults
//! taken from the GGUF's `general.sampling.*` keys.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn ask(max_tokens: u32) -> Value {
    greedy(vec![text_part("tell me about the sea")], max_tokens)
}

fn logprob_tokens(v: &Value) -> Vec<Value> {
    v["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no logprobs in {v}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logprobs_match_the_greedy_choice_and_the_stream() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let mut body = ask(12);
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(3);
    let (status, v) = s.post(&body).await;
    assert_eq!(status, 200, "{v}");
    let tokens = logprob_tokens(&v);
    assert_eq!(
        tokens.len() as u64,
        v["usage"]["completion_tokens"].as_u64().unwrap()
    );
    let mut text = String::new();
    for t in &tokens {
        let top = t["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3, "{t}");
        // Greedy picks the most likely token, so it heads its own list.
        assert_eq!(top[0]["token"], t["token"], "{t}");
        assert_eq!(top[0]["logprob"], t["logprob"], "{t}");
        assert!(
            top[0]["logprob"].as_f64() >= top[1]["logprob"].as_f64(),
            "{t}"
        );
        assert!(t["logprob"].as_f64().unwrap() <= 0.0);
        let bytes: Vec<u8> = t["bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert_eq!(text, content(&v), "the tokens spell the answer");

    // Without logprobs the field is null.
    let (_, plain) = s.post(&ask(12)).await;
    assert!(plain["choices"][0]["logprobs"].is_null(), "{plain}");
    assert_eq!(content(&plain), content(&v));

    // Streamed: the same entries, spread over the chunks.
    body["stream"] = json!(true);
    let streamed: Vec<Value> = s
        .stream(&body)
        .await
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .flat_map(|c| {
            c["choices"][0]["logprobs"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    // Same tokens; values equal up to float noise (the stream reuses the
    // cached prompt, whose last logits come from a differently shaped batch).
    assert_eq!(streamed.len(), tokens.len());
    for (a, b) in streamed.iter().zip(&tokens) {
        assert_eq!(a["token"], b["token"]);
        let (x, y) = (
            a["logprob"].as_f64().unwrap(),
            b["logprob"].as_f64().unwrap(),
        );
        assert!((x - y).abs() < 1e-3, "{a} vs {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logit_bias_bans_and_forces_tokens() {
    let s = start_mlp(&[]).await;
    let first_token = |v: &Value| logprob_tokens(v)[0]["token"].clone();
    let mut body = ask(1);
    body["logprobs"] = json!(true);
    let (_, v) = s.post(&body).await;
    let first = first_token(&v);
    // The API has no token ids, so find the first token's: the id whose
    // ban changes it.
    let mut found = None;
    for id in 0..4096u32 {
        let mut b = body.clone();
        b["logit_bias"] = json!({ id.to_string(): -100 });
        let (status, r) = s.post(&b).await;
        if status == 400 {
            break; // past the vocabulary
        }
        assert_eq!(status, 200, "{r}");
        if first_token(&r) != first {
            found = Some(id);
            break;
        }
    }
    let id = found.expect("banning some id changes the first token");
    // Banned for a whole answer: it never appears.
    let mut b = ask(12);
    b["logprobs"] = json!(true);
    b["logit_bias"] = json!({ id.to_string(): -100 });
    let (_, banned) = s.post(&b).await;
    assert!(
        logprob_tokens(&banned).iter().all(|t| t["token"] != first),
        "{banned}"
    );
    // +100 makes it the only choice.
    b["logit_bias"] = json!({ id.to_string(): 100 });
    let (_, forced) = s.post(&b).await;
    let toks = logprob_tokens(&forced);
    assert_eq!(toks.len(), 12, "{forced}");
    assert!(toks.iter().all(|t| t["token"] == first), "{forced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn penalties_change_a_repetitive_answer() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let (_, plain) = s.post(&ask(40)).await;
    let distinct = |v: &Value| {
        let toks = logprob_tokens(v);
        toks.iter()
            .map(|t| t["token"].as_str().unwrap().to_string())
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let mut base = ask(40);
    base["logprobs"] = json!(true);
    let (_, base_v) = s.post(&base).await;
    assert_eq!(content(&base_v), content(&plain));
    for field in [
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
    ] {
        let mut b = base.clone();
        b[field] = json!(2.0);
        let (status, v) = s.post(&b).await;
        assert_eq!(status, 200, "{v}");
        assert_ne!(content(&v), content(&plain), "{field} changed nothing");
        assert!(
            distinct(&v) >= distinct(&base_v),
            "{field}: fewer distinct tokens"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_controls_are_refused_by_name() {
    let s = start_mlp(&[]).await;
    for (field, value, param) in [
        ("presence_penalty", json!(2.5), "presence_penalty"),
        ("frequency_penalty", json!(-3), "frequency_penalty"),
        ("repetition_penalty", json!(0), "repetition_penalty"),
        ("min_p", json!(1.5), "min_p"),
        ("top_logprobs", json!(21), "top_logprobs"),
        ("logit_bias", json!({"abc": 1}), "logit_bias"),
        ("logit_bias", json!({"99999999": 1}), "logit_bias"),
        ("logit_bias", json!({"1": 101}), "logit_bias"),
    ] {
        let mut b = ask(2);
        b[field] = value.clone();
        if field == "top_logprobs" {
            b["logprobs"] = json!(true);
        }
        let (status, v) = s.post(&b).await;
        assert_eq!(status, 400, "{field}={value}: {v}");
        assert_eq!(assert_envelope(&v)["param"], param, "{v}");
    }
    let mut b = ask(2);
    b["top_logprobs"] = json!(2);
    let (status, v) = s.post(&b).await;
    assert_eq!(status, 400, "top_logprobs without logprobs: {v}");
}

/// A model whose GGUF recommends greedy decoding gets it when the request
/// says nothing, whatever the seed; `/v1/models` says where it came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gguf_sampling_keys_are_the_defaults() {
    use tessera::fixtures::gguf::Value as G;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sampling");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("greedy-by-default.gguf");
    let mut m = tessera::fixtures::text_model(1, tessera::fixtures::TextVariant::RunsToLength);
    m.kv("general.sampling.temp", G::F32(0.0));
    m.kv("general.sampling.top_k", G::I32(7));
    tessera::fixtures::write_if_changed(&path, &m).unwrap();
    let s = start(&["--model", path.to_str().unwrap()]).await;
    let (_, models) = s.get("/v1/models").await;
    let d = &models["data"][0]["capabilities"]["sampling_defaults"];
    assert_eq!(d["source"], "gguf", "{models}");
    assert_eq!(d["temperature"], 0.0);
    assert_eq!(d["top_k"], 7);
    let mut outs = std::collections::HashSet::new();
    for seed in 0..4 {
        let b = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 16, "seed": seed});
        let (status, v) = s.post(&b).await;
        assert_eq!(status, 200, "{v}");
        outs.insert(content(&v));
    }
    assert_eq!(outs.len(), 1, "seeds changed a greedy default: {outs:?}");
    let (_, greedy_v) = s.post(&greedy(vec![text_part("hi")], 16)).await;
    assert!(outs.contains(&content(&greedy_v)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_k_and_min_p_narrow_hot_sampling_to_the_greedy_choice() {
    let _alone = exclusive().await;
    let s = start_mlp(&[]).await;
    let (_, greedy_v) = s.post(&ask(24)).await;
    let hot = |field: Option<(&str, Value)>| {
        let mut b = ask(24);
        b["temperature"] = json!(2.0);
        b["seed"] = json!(7);
        if let Some((k, v)) = field {
            b[k] = v;
        }
        b
    };
    let (status, wild) = s.post(&hot(None)).await;
    assert_eq!(status, 200, "{wild}");
    assert_ne!(content(&wild), content(&greedy_v), "hot sampling wanders");
    // top_k 1 keeps the likeliest token only; min_p 1 only those as likely.
    for field in [("top_k", json!(1)), ("min_p", json!(1.0))] {
        let (status, v) = s.post(&hot(Some(field.clone()))).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(content(&v), content(&greedy_v), "{}", field.0);
    }
}
