//! The committed OpenAPI document is what the code generates, and the
//! server serves it.

use crate::common;

#[test]
fn committed_spec_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let generated = tessera::api::openapi::json();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    let spec: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for route in [
        "/v1/chat/completions",
        "/v1/chat/completions/input_tokens",
        "/v1/models",
        "/v1/models/{id}",
        "/health",
        "/metrics",
    ] {
        assert!(spec["paths"].get(route).is_some(), "{route} undocumented");
    }
    let chat = &spec["paths"]["/v1/chat/completions"]["post"]["responses"];
    assert!(chat["200"]["content"].get("text/event-stream").is_some());
    assert!(chat["429"].is_object() && chat["400"].is_object());
    let schemas = &spec["components"]["schemas"];
    assert!(schemas["ErrorEnvelope"].is_object());
    assert!(
        schemas["ChatCompletionRequest"]["properties"]
            .get("top_k")
            .is_some()
    );
    assert!(schemas["Usage"]["properties"].get("images").is_some());
    // Every route behind the key documents its 401.
    for (route, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let open = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if !open {
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {route}: no 401"
                );
            }
        }
    }
    // A schema-valid body is an accepted one: at least one message, and
    // content required on every role but assistant.
    let messages = &schemas["ChatCompletionRequest"]["properties"]["messages"];
    assert_eq!(messages["minItems"], 1, "{messages}");
    for (shape, role, content_required) in [
        ("InstructionMessage", "InstructionRole", true),
        ("UserMessage", "UserRole", true),
        ("AssistantTurn", "AssistantRole", false),
    ] {
        let required = schemas[shape]["required"].as_array().unwrap();
        assert!(required.contains(&"role".into()), "{shape}");
        assert_eq!(
            required.contains(&"content".into()),
            content_required,
            "{shape}"
        );
        assert!(schemas[role]["enum"].is_array(), "{role}");
    }
}

#[tokio::test]
async fn the_server_serves_its_spec_and_swagger_ui_without_a_key() {
    let s = common::start_mlp(&["--api-key", "k"]).await;
    let resp = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let served: serde_json::Value = resp.json().await.unwrap();
    let expected: serde_json::Value = serde_json::from_str(&tessera::api::openapi::json()).unwrap();
    assert_eq!(served, expected);
    // Swagger UI, from vendored assets (nothing fetched at build or run time).
    let resp = s
        .client
        .get(format!("{}/docs/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let resp = s
        .client
        .get(format!("{}/docs/swagger-initializer.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("/openapi.json"));
}
