//! `response_format`: the answer is constrained by a grammar and parses as
//! JSON valid against the schema, with images too.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "colour": {"enum": ["red", "green", "blue"]},
            "count": {"type": "integer", "minimum": 0, "maximum": 9}
        },
        "required": ["colour", "count"],
        "additionalProperties": false
    })
}

#[tokio::test]
async fn json_schema_answers_parse_and_validate_with_images() {
    let s = start_mlp(&[]).await;
    for rgb in [[250, 0, 0], [0, 0, 250], [10, 200, 10]] {
        let mut req = greedy(
            vec![
                text_part("Which colour, how many?"),
                image_part(64, 32, rgb),
            ],
            120,
        );
        req["response_format"] = json!({
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema(), "strict": true}
        });
        let (status, v) = s.post(&req).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
        let answer: Value = serde_json::from_str(&content(&v)).expect("valid JSON");
        let obj = answer.as_object().expect("an object");
        assert_eq!(obj.len(), 2, "{answer}");
        assert!(["red", "green", "blue"].contains(&answer["colour"].as_str().unwrap()));
        assert!((0..=9).contains(&answer["count"].as_i64().unwrap()));
    }
}

#[tokio::test]
async fn unsupported_schema_features_are_named() {
    let s = start_mlp(&[]).await;
    let mut req = greedy(vec![text_part("x")], 5);
    req["response_format"] = json!({
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 5}}}}
    });
    let (status, v) = s.post(&req).await;
    assert_eq!(status, 400);
    let e = assert_envelope(&v);
    assert!(e["message"].as_str().unwrap().contains("multipleOf"), "{e}");
    assert_eq!(e["param"], "response_format.json_schema.schema");
    req["response_format"] = json!({"type": "xml"});
    let (status, v) = s.post(&req).await;
    assert_eq!(status, 400);
    assert_eq!(assert_envelope(&v)["param"], "response_format.type");
}

#[tokio::test]
async fn json_object_holds_the_answer_to_a_json_object() {
    let s = start_mlp(&[]).await;
    let plain = greedy(
        vec![text_part("describe it"), image_part(32, 32, [9, 9, 9])],
        60,
    );
    let (status, free) = s.post(&plain).await;
    assert_eq!(status, 200, "{free}");
    assert!(!content(&free).trim_start().starts_with('{'), "{free}");
    let mut req = plain.clone();
    req["response_format"] = json!({"type": "json_object"});
    let (status, v) = s.post(&req).await;
    assert_eq!(status, 200, "{v}");
    let text = content(&v);
    assert!(text.trim_start().starts_with('{'), "not an object: {text}");
    if v["choices"][0]["finish_reason"] == "stop" {
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert!(parsed.is_object(), "{parsed}");
    }
}
