//! What stored responses mean to a request and to the routes that read
//! them: `previous_response_id` and `item_reference` resolved against the
//! store, a finished response kept, and `GET` / `DELETE
//! /v1/responses/{id}` and its `input_items`.

use super::error::ApiError;
use super::state::SharedState;
use super::store::{ResponseStore, Stored};
use crate::openai::ErrorEnvelope;
use crate::openai::responses::{ResponseObject, ResponsesRequest};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The items a request's answer is generated from.
pub(super) struct Turn {
    /// The previous response's context and output (empty without
    /// `previous_response_id`).
    pub earlier: Vec<Arc<Value>>,
    /// This request's input items, references resolved, each with an id.
    pub input: Vec<Arc<Value>>,
}

impl Turn {
    pub fn items(&self) -> impl Iterator<Item = &Value> {
        self.earlier.iter().chain(&self.input).map(|v| v.as_ref())
    }
}

fn not_found(what: String, param: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", what).param(param)
}

/// Resolves the request's `previous_response_id` and item references.
pub(super) fn resolve(store: &ResponseStore, r: &ResponsesRequest) -> Result<Turn, ApiError> {
    let mut earlier = Vec::new();
    if let Some(id) = &r.previous_response_id {
        let Some(prev) = store.get(id) else {
            return Err(not_found(
                format!("Previous response with id '{id}' not found: it was never stored (`store: false`), has expired or was evicted (see --responses-store-max), or the server restarted; resend the conversation in `input`"),
                "previous_response_id",
            ).code("previous_response_not_found"));
        };
        earlier.extend(prev.context.iter().chain(&prev.output).cloned());
    }
    let input = match &r.input {
        Value::String(s) => vec![Arc::new(with_id(
            json!({"type": "message", "role": "user", "content": s}),
        ))],
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(reference(store, i, item)?);
            }
            out
        }
        _ => {
            return Err(
                ApiError::invalid("`input` must be a string or a list of input items")
                    .param("input"),
            );
        }
    };
    Ok(Turn { earlier, input })
}

fn reference(store: &ResponseStore, i: usize, item: &Value) -> Result<Arc<Value>, ApiError> {
    if item["type"] != "item_reference" {
        return Ok(Arc::new(with_id(item.clone())));
    }
    let Some(id) = item["id"].as_str() else {
        return Err(
            ApiError::invalid(format!("input[{i}]: an item_reference needs an `id`"))
                .param(format!("input[{i}].id")),
        );
    };
    store.item(id).ok_or_else(|| {
        not_found(
            format!("input[{i}]: item with id '{id}' not found: it was never stored (`store: false`), has expired or was evicted, or the server restarted; send the item itself"),
            format!("input[{i}].id"),
        )
    })
}

/// An input item as stored and listed: with an id, its content as parts.
fn with_id(mut item: Value) -> Value {
    let kind = item["type"].as_str().map(String::from).unwrap_or_else(|| {
        if item.get("role").is_some() {
            "message".into()
        } else {
            String::new()
        }
    });
    if let Value::Object(o) = &mut item {
        if kind == "message" {
            o.insert("type".into(), json!("message"));
            if let Some(Value::String(text)) = o.get("content") {
                let part = if o.get("role") == Some(&json!("assistant")) {
                    "output_text"
                } else {
                    "input_text"
                };
                let parts = json!([{"type": part, "text": text}]);
                o.insert("content".into(), parts);
            }
        }
        if !o.get("id").is_some_and(Value::is_string) {
            let prefix = match kind.as_str() {
                "message" => "msg",
                "function_call" => "fc",
                "function_call_output" => "fco",
                "reasoning" => "rs",
                _ => "item",
            };
            o.insert("id".into(), json!(super::response_object::new_id(prefix)));
        }
    }
    item
}

/// Where a response is kept once it is finished (`store` not false).
pub(super) struct Keep {
    store: Arc<ResponseStore>,
    context: Vec<Arc<Value>>,
    own_from: usize,
}

impl Keep {
    /// `None` when the request says `store: false` or storing is off.
    pub fn of(store: &Arc<ResponseStore>, r: &ResponsesRequest, turn: Turn) -> Option<Keep> {
        if r.store == Some(false) || !store.enabled() {
            return None;
        }
        let own_from = turn.earlier.len();
        let mut context = turn.earlier;
        context.extend(turn.input);
        Some(Keep {
            store: store.clone(),
            context,
            own_from,
        })
    }

    pub fn put(self, r: &ResponseObject) {
        let (Ok(response), Ok(Value::Array(output))) =
            (serde_json::to_value(r), serde_json::to_value(&r.output))
        else {
            return;
        };
        let stored = Stored {
            response,
            context: self.context,
            output: output.into_iter().map(Arc::new).collect(),
        };
        if !self.store.put(r.id.clone(), stored, self.own_from) {
            tracing::warn!(id = %r.id, "response too large for --responses-store-mb; not stored");
        }
    }
}

fn unknown(id: &str) -> ApiError {
    not_found(
        format!(
            "Response with id '{id}' not found (never stored, expired, evicted, or the server restarted)"
        ),
        "response_id",
    )
}

/// A stored response.
#[utoipa::path(get, path = "/v1/responses/{response_id}", tag = "responses",
    params(("response_id" = String, Path, description = "The response's id")),
    responses(
        (status = 200, description = "The stored response", body = ResponseObject),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 404, description = "Not stored, expired or evicted", body = ErrorEnvelope),
    ))]
pub async fn get_response(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.store.get(&id) {
        Some(s) => Ok(Json(s.response.clone())),
        None => Err(unknown(&id)),
    }
}

/// Deletes a stored response.
#[utoipa::path(delete, path = "/v1/responses/{response_id}", tag = "responses",
    params(("response_id" = String, Path, description = "The response's id")),
    responses(
        (status = 200, description = "`{id, object: \"response\", deleted: true}`", body = Object),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 404, description = "Not stored, expired or evicted", body = ErrorEnvelope),
    ))]
pub async fn delete_response(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if state.store.delete(&id) {
        Ok(Json(
            json!({"id": id, "object": "response", "deleted": true}),
        ))
    } else {
        Err(unknown(&id))
    }
}

/// The items a stored response was generated from (earlier turns
/// included), newest first unless `order=asc`.
#[utoipa::path(get, path = "/v1/responses/{response_id}/input_items", tag = "responses",
    params(
        ("response_id" = String, Path, description = "The response's id"),
        ("limit" = Option<u32>, Query, description = "1-100, default 20"),
        ("order" = Option<String>, Query, description = "`asc` or `desc` (default)"),
        ("after" = Option<String>, Query, description = "An item id: list the items after it"),
        ("before" = Option<String>, Query, description = "An item id: list the items before it"),
    ),
    responses(
        (status = 200, description = "`{object: \"list\", data, first_id, last_id, has_more}`", body = Object),
        (status = 400, description = "Bad limit, order or cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 404, description = "Not stored, expired or evicted", body = ErrorEnvelope),
    ))]
pub async fn input_items(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let stored = state.store.get(&id).ok_or_else(|| unknown(&id))?;
    let page = Page::of(&q)?;
    Ok(Json(page.list(&stored.context)?))
}

struct Page<'a> {
    limit: usize,
    desc: bool,
    after: Option<&'a str>,
    before: Option<&'a str>,
}

impl<'a> Page<'a> {
    fn of(q: &'a HashMap<String, String>) -> Result<Self, ApiError> {
        let limit = match q.get("limit") {
            None => 20,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid("limit must be a whole number from 1 to 100").param("limit")
                })?,
        };
        let desc = match q.get("order").map(String::as_str) {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err(ApiError::invalid("order must be asc or desc").param("order")),
        };
        Ok(Page {
            limit,
            desc,
            after: q.get("after").map(String::as_str),
            before: q.get("before").map(String::as_str),
        })
    }

    fn list(&self, items: &[Arc<Value>]) -> Result<Value, ApiError> {
        let mut all: Vec<&Value> = items.iter().map(|v| v.as_ref()).collect();
        if self.desc {
            all.reverse();
        }
        let find = |id: &str, param: &str| {
            all.iter().position(|v| v["id"] == id).ok_or_else(|| {
                ApiError::invalid(format!("{param}: no item {id:?} in this response's input"))
                    .param(param.to_string())
            })
        };
        let start = match self.after {
            Some(a) => find(a, "after")? + 1,
            None => 0,
        };
        let end = match self.before {
            Some(b) => find(b, "before")?,
            None => all.len(),
        };
        let window = all.get(start..end.max(start)).unwrap_or_default();
        let data: Vec<&Value> = window.iter().take(self.limit).copied().collect();
        Ok(json!({
            "object": "list",
            "first_id": data.first().map(|v| v["id"].clone()),
            "last_id": data.last().map(|v| v["id"].clone()),
            "has_more": window.len() > data.len(),
            "data": data,
        }))
    }
}
