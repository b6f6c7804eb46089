//! Hostile input, round two: requests built to crash, stall or bloat the
//! server are refused by name, and the server goes on serving.

use crate::common;

use common::*;
use serde_json::{Value, json};

/// `$defs.a0` -> `a1` -> ... -> `a{n}`, a string.
fn ref_chain(n: usize) -> Value {
    let mut defs = serde_json::Map::new();
    for i in 0..n {
        defs.insert(
            format!("a{i}"),
            json!({"$ref": format!("#/$defs/a{}", i + 1)}),
        );
    }
    defs.insert(format!("a{n}"), json!({"type": "string"}));
    json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/a0"}}, "$defs": defs})
}

fn optional_properties(n: usize) -> Value {
    let props: serde_json::Map<String, Value> = (0..n)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    json!({"type": "object", "properties": props})
}

/// Before the caps, 1,600 links overflowed a tokio worker's stack and
/// aborted the process, and 1,600 optional properties held the runtime
/// for seconds: through every door a schema comes in, each is a 400 that
/// names the cap, and the server answers the next request.
#[tokio::test]
async fn schemas_that_would_overflow_or_stall_the_converter_are_refused() {
    let s = start_mlp(&[]).await;
    for (schema, says) in [
        (ref_chain(1_600), "deeper than 64 levels"),
        (optional_properties(1_600), "1600 properties"),
        (optional_properties(800), "800 optional properties"),
        (
            json!({"enum": (0..40_000).map(|i| format!("value {i}")).collect::<Vec<_>>()}),
            "more than 1000 `enum`",
        ),
    ] {
        let mut chat = greedy(vec![text_part("x")], 4);
        chat["response_format"] =
            json!({"type": "json_schema", "json_schema": {"name": "a", "schema": schema}});
        let (status, v) = s.post(&chat).await;
        assert_eq!(status, 400, "{v}");
        assert!(error_message(&v).contains(says), "{v}");
        assert_eq!(
            assert_envelope(&v)["param"],
            "response_format.json_schema.schema"
        );

        let mut tools = greedy(vec![text_part("x")], 4);
        tools["tools"] =
            json!([{"type": "function", "function": {"name": "f", "parameters": schema}}]);
        let (status, v) = s.post(&tools).await;
        assert_eq!(status, 400, "{v}");
        assert!(error_message(&v).contains(says), "{v}");
        assert_eq!(assert_envelope(&v)["param"], "tools[0].function.parameters");

        let responses = json!({"input": "x", "max_output_tokens": 4,
            "text": {"format": {"type": "json_schema", "name": "a", "schema": schema}}});
        let (status, v) = s.post_to("/v1/responses", &responses).await;
        assert_eq!(status, 400, "{v}");
        assert!(error_message(&v).contains(says), "{v}");
    }
    // A chain within the cap is served, and constrains the answer.
    let mut ok = greedy(vec![text_part("x")], 8);
    ok["response_format"] =
        json!({"type": "json_schema", "json_schema": {"name": "a", "schema": ref_chain(40)}});
    let (status, v) = s.post(&ok).await;
    assert_eq!(status, 200, "{v}");
    assert!(content(&v).starts_with("{"), "{v}");
}
