//! Speculation (`--spec-type ngram`) changes how fast an answer comes,
//! never what it says: the same requests on servers with and without it
//! give the same answers and usage (greedy and seeded sampling, an image in
//! the prompt, two sequences in one batch), and guesses are made and
//! confirmed along the way.

use crate::common::*;
use serde_json::{Value, json};

/// Text that repeats itself, as an extraction answer copies its prompt.
fn copy_heavy() -> String {
    let line = "invoice 4471: 12 boxes of nails, 3 hammers, 40 m of rope; ";
    format!("Copy this exactly: {}", line.repeat(6))
}

fn ask(parts: Vec<Value>, extra: Value) -> Value {
    let mut body = greedy(parts, 48);
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    body
}

/// What must not change: every choice's text and finish, and the usage.
fn answer(v: &Value) -> Value {
    json!({"choices": v["choices"].as_array().map(|c| c.iter()
        .map(|c| json!([c["message"]["content"], c["finish_reason"]])).collect::<Vec<_>>()),
        "usage": [v["usage"]["prompt_tokens"], v["usage"]["completion_tokens"]]})
}

async fn answers(s: &TestServer) -> Vec<Value> {
    let text = copy_heavy();
    let bodies = [
        ask(vec![text_part(&text)], json!({})),
        ask(
            vec![text_part(&text)],
            json!({"temperature": 0.9, "seed": 7}),
        ),
        ask(
            vec![image_part(64, 48, [20, 200, 60]), text_part(&text)],
            json!({}),
        ),
    ];
    let mut out = Vec::new();
    for body in &bodies {
        let (status, v) = s.post(body).await;
        assert_eq!(status, 200, "{v}");
        out.push(answer(&v));
    }
    // Two at once: guesses share the batch with another sequence.
    let other = ask(
        vec![text_part("Count: one two three, one two three, one two")],
        json!({}),
    );
    let ((s1, a), (s2, b)) = tokio::join!(s.post(&bodies[0]), s.post(&other));
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    out.push(answer(&a));
    out.push(answer(&b));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn speculation_changes_nothing_but_speed() {
    let _alone = exclusive().await;
    let plain = start_mlp(&[]).await;
    let expected = answers(&plain).await;
    assert_eq!(plain.metric("tessera_draft_tokens_total").await, 0.0);
    drop(plain);
    // Prompt lookup, and a draft model: the text model itself, which must
    // then guess its own greedy tokens right wherever it sees the same text
    // (a draft cache out of step with its sequence would not).
    let draft = fixtures().text.clone();
    let configs: [&[&str]; 2] = [
        &["--spec-type", "ngram", "--draft-max", "8"],
        &["--model-draft", path(&draft), "--draft-max", "4"],
    ];
    for flags in configs {
        let spec = start_mlp(flags).await;
        let got = answers(&spec).await;
        for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
            assert_eq!(e, g, "{flags:?}: request {i} changed under speculation");
        }
        let guessed = spec.metric("tessera_draft_tokens_total").await;
        let confirmed = spec.metric("tessera_draft_accepted_tokens_total").await;
        eprintln!("{flags:?}: {confirmed} of {guessed} guesses confirmed");
        assert!(
            confirmed > 0.0,
            "{flags:?}: no guess was ever confirmed ({guessed} made)"
        );
        // Some guesses miss: the miss path ran too.
        assert!(
            confirmed < guessed,
            "{flags:?}: no guess was ever wrong ({guessed} made)"
        );
    }
}
