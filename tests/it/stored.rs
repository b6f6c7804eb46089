//! Stored responses on the real engine: `previous_response_id` and
//! `item_reference` give the model the same conversation as spelled out
//! (images included, the prefix cache reused), `GET` / `DELETE` and
//! `input_items` read the store, and its bounds and `store: false` hold.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn image_url() -> String {
    data_url(&png(300, 200, [200, 40, 40]), "image/png")
}

fn first_input() -> Value {
    json!([{"role": "user", "content": [
        {"type": "input_text", "text": "What is in this picture?"},
        {"type": "input_image", "image_url": image_url()}]}])
}

fn answer_text(r: &Value) -> String {
    r["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_response_id_continues_the_conversation() {
    let _alone = exclusive().await;
    let s = start_qwen(&["--parallel", "2"]).await;
    let first = json!({"input": first_input(), "max_output_tokens": 6, "temperature": 0});
    let (status, r1) = s.post_to("/v1/responses", &first).await;
    assert_eq!(status, 200, "{r1}");
    assert_eq!(r1["store"], true, "stored by default, as OpenAI");
    let id = r1["id"].as_str().unwrap();
    let (status, got) = s.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got, r1, "GET returns the response as served");

    let next = json!({"previous_response_id": id, "input": "and the colours?",
        "max_output_tokens": 6, "temperature": 0});
    let (status, r2) = s.post_to("/v1/responses", &next).await;
    assert_eq!(status, 200, "{r2}");
    assert_eq!(r2["previous_response_id"], id);
    let cached = r2["usage"]["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    let image_tokens = r1["usage"]["input_tokens_details"]["image_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached > image_tokens, "the image prefix was reused: {r2}");

    // The same conversation spelled out, unstored: same prompt, same answer.
    let mut spelled = first_input().as_array().unwrap().clone();
    spelled.push(json!({"role": "assistant", "content": answer_text(&r1)}));
    spelled.push(json!({"role": "user", "content": "and the colours?"}));
    let fresh = start_qwen(&["--parallel", "1"]).await;
    let (_, plain) = fresh
        .post_to(
            "/v1/responses",
            &json!({"input": spelled, "store": false, "max_output_tokens": 6, "temperature": 0}),
        )
        .await;
    assert_eq!(plain["store"], false);
    assert_eq!(r2["usage"]["input_tokens"], plain["usage"]["input_tokens"]);
    assert_eq!(answer_text(&r2), answer_text(&plain));

    // Its input items: the first turn (image included), its answer, the new message.
    let id2 = r2["id"].as_str().unwrap();
    let (status, items) = s
        .get(&format!("/v1/responses/{id2}/input_items?order=asc"))
        .await;
    assert_eq!(status, 200, "{items}");
    let data = items["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{items}");
    assert_eq!(data[0]["content"][1]["type"], "input_image");
    assert_eq!(data[1]["id"], r1["output"][0]["id"]);
    assert_eq!(data[2]["content"][0]["text"], "and the colours?");
    assert!(data.iter().all(|d| d["id"].is_string()));
    assert_eq!(items["has_more"], false);
    // Newest first by default; pages by cursor.
    let (_, page) = s
        .get(&format!("/v1/responses/{id2}/input_items?limit=2"))
        .await;
    assert_eq!(page["data"][0]["id"], data[2]["id"]);
    assert_eq!(page["has_more"], true);
    let last = page["last_id"].as_str().unwrap();
    let (_, rest) = s
        .get(&format!(
            "/v1/responses/{id2}/input_items?limit=2&after={last}"
        ))
        .await;
    assert_eq!(rest["data"][0]["id"], data[0]["id"]);
    assert_eq!(rest["has_more"], false);
    let (status, bad) = s
        .get(&format!("/v1/responses/{id2}/input_items?limit=0"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(assert_envelope(&bad)["param"], "limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_references_and_streamed_responses_are_stored() {
    let s = start_mlp(&[]).await;
    let (_, r1) = s
        .post_to(
            "/v1/responses",
            &json!({"input": first_input(), "max_output_tokens": 4, "temperature": 0}),
        )
        .await;
    let msg = r1["output"][0]["id"].as_str().unwrap();
    // As the AI SDK sends a second turn: earlier output by reference.
    let mut by_ref = first_input().as_array().unwrap().clone();
    by_ref.push(json!({"type": "item_reference", "id": msg}));
    by_ref.push(json!({"role": "user", "content": "more?"}));
    let mut spelled = first_input().as_array().unwrap().clone();
    spelled.push(r1["output"][0].clone());
    spelled.push(json!({"role": "user", "content": "more?"}));
    let ask = |input: Vec<Value>| json!({"input": input, "max_output_tokens": 4, "temperature": 0});
    let (status, a) = s.post_to("/v1/responses", &ask(by_ref)).await;
    assert_eq!(status, 200, "{a}");
    let (_, b) = s.post_to("/v1/responses", &ask(spelled)).await;
    assert_eq!(a["usage"]["input_tokens"], b["usage"]["input_tokens"]);
    assert_eq!(answer_text(&a), answer_text(&b));

    // A streamed response is stored as its final event shows it.
    let resp = s
        .client
        .post(format!("{}/v1/responses", s.base))
        .json(&json!({"input": "hi", "stream": true, "max_output_tokens": 3}))
        .send()
        .await
        .unwrap();
    let events = sse_data(&resp.text().await.unwrap());
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    let streamed = &last["response"];
    assert_eq!(streamed["store"], true);
    let (status, got) = s
        .get(&format!(
            "/v1/responses/{}",
            streamed["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(&got, streamed);
}

async fn delete(s: &TestServer, id: &str) -> (u16, Value) {
    let resp = s
        .client
        .delete(format!("{}/v1/responses/{id}", s.base))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_unstored_deleted_and_evicted_ids_are_404s() {
    let s = start_mlp(&["--responses-store-max", "2"]).await;
    let ask = |extra: Value| {
        let mut b = json!({"input": "hi", "max_output_tokens": 2});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (_, unstored) = s
        .post_to("/v1/responses", &ask(json!({"store": false})))
        .await;
    assert_eq!(unstored["store"], false);
    let gone = unstored["id"].as_str().unwrap().to_string();
    let (status, v) = s.get(&format!("/v1/responses/{gone}")).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = s
        .post_to("/v1/responses", &ask(json!({"previous_response_id": gone})))
        .await;
    assert_eq!(status, 404, "{v}");
    let e = assert_envelope(&v);
    assert_eq!(e["param"], "previous_response_id");
    assert_eq!(e["code"], "previous_response_not_found");
    let (status, v) = s
        .post_to(
            "/v1/responses",
            &ask(json!({"input": [{"type": "item_reference", "id": "msg_nope"}]})),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(assert_envelope(&v)["param"], "input[0].id");

    // Deleted: gone for GET, DELETE and previous_response_id.
    let (_, r) = s.post_to("/v1/responses", &ask(json!({}))).await;
    let id = r["id"].as_str().unwrap().to_string();
    let (status, v) = delete(&s, &id).await;
    assert_eq!((status, &v["deleted"]), (200, &json!(true)), "{v}");
    assert_eq!(delete(&s, &id).await.0, 404);
    assert_eq!(s.get(&format!("/v1/responses/{id}")).await.0, 404);

    // --responses-store-max 2: a third response evicts the oldest.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, r) = s.post_to("/v1/responses", &ask(json!({}))).await;
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    assert_eq!(s.get(&format!("/v1/responses/{}", ids[0])).await.0, 404);
    assert_eq!(s.get(&format!("/v1/responses/{}", ids[2])).await.0, 200);

    // Storing off: responses say so.
    let off = start_mlp(&["--responses-store-max", "0"]).await;
    let (_, r) = off.post_to("/v1/responses", &ask(json!({}))).await;
    assert_eq!(r["store"], false);
}
