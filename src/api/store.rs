//! Stored responses (`store: true`, OpenAI's default): a bounded, in-memory
//! map from response id to the response, the items it was generated from
//! and the items it produced, so that `previous_response_id`,
//! `item_reference` and `GET /v1/responses/{id}` resolve. Bounded by
//! count, bytes and age; the oldest go first. Lost on restart.
//!
//! Items are shared (`Arc`) between the responses of one conversation, but
//! each response counts every item it holds: the count is an upper bound
//! on the memory held, never an undercount.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Responses kept at most; 0 turns storing off.
    pub max: usize,
    pub bytes: usize,
    pub ttl: Duration,
}

/// One stored response.
#[derive(Debug)]
pub struct Stored {
    /// The response object, as served.
    pub response: Value,
    /// What the model was given: earlier turns' items, then this request's
    /// input items (each with its id).
    pub context: Vec<Arc<Value>>,
    /// The response's output items.
    pub output: Vec<Arc<Value>>,
}

impl Stored {
    fn bytes(&self) -> usize {
        let size = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
        size(&self.response)
            + self
                .context
                .iter()
                .chain(&self.output)
                .map(|v| size(v))
                .sum::<usize>()
    }

    /// Ids of the items this response brought (its own input and output).
    fn own_ids(&self, own_from: usize) -> impl Iterator<Item = &str> {
        self.context[own_from.min(self.context.len())..]
            .iter()
            .chain(&self.output)
            .filter_map(|v| v["id"].as_str())
    }
}

struct Entry {
    stored: Arc<Stored>,
    /// Where this response's own input starts in its context.
    own_from: usize,
    bytes: usize,
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Ids, oldest first.
    order: VecDeque<String>,
    /// Item id -> item, for `item_reference`.
    items: HashMap<String, Arc<Value>>,
    bytes: usize,
}

pub struct ResponseStore {
    limits: Limits,
    inner: Mutex<Inner>,
}

impl ResponseStore {
    pub fn new(limits: Limits) -> Self {
        ResponseStore {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.limits.max > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind: usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `stored` under `id`, evicting the oldest to fit. `own_from`:
    /// where its own input starts in its context. False when it cannot fit
    /// at all (or storing is off).
    pub fn put(&self, id: String, stored: Stored, own_from: usize) -> bool {
        let bytes = stored.bytes();
        if !self.enabled() || bytes > self.limits.bytes {
            return false;
        }
        let mut inner = self.lock();
        inner.expire(self.limits.ttl);
        inner.remove(&id);
        while inner.entries.len() >= self.limits.max || inner.bytes + bytes > self.limits.bytes {
            let Some(oldest) = inner.order.front().cloned() else {
                break;
            };
            inner.remove(&oldest);
        }
        let stored = Arc::new(stored);
        for v in stored.context[own_from.min(stored.context.len())..]
            .iter()
            .chain(&stored.output)
        {
            if let Some(item_id) = v["id"].as_str() {
                inner.items.insert(item_id.to_string(), v.clone());
            }
        }
        inner.bytes += bytes;
        inner.order.push_back(id.clone());
        inner.entries.insert(
            id,
            Entry {
                stored,
                own_from,
                bytes,
                at: Instant::now(),
            },
        );
        true
    }

    pub fn get(&self, id: &str) -> Option<Arc<Stored>> {
        let mut inner = self.lock();
        inner.expire(self.limits.ttl);
        inner.entries.get(id).map(|e| e.stored.clone())
    }

    /// A stored item (input or output) by its id.
    pub fn item(&self, id: &str) -> Option<Arc<Value>> {
        let mut inner = self.lock();
        inner.expire(self.limits.ttl);
        inner.items.get(id).cloned()
    }

    pub fn delete(&self, id: &str) -> bool {
        let mut inner = self.lock();
        inner.expire(self.limits.ttl);
        inner.remove(id)
    }

    /// (responses, bytes) held now.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.bytes)
    }
}

impl Inner {
    fn remove(&mut self, id: &str) -> bool {
        let Some(e) = self.entries.remove(id) else {
            return false;
        };
        self.order.retain(|o| o != id);
        self.bytes = self.bytes.saturating_sub(e.bytes);
        for item in e.stored.own_ids(e.own_from) {
            self.items.remove(item);
        }
        true
    }

    fn expire(&mut self, ttl: Duration) {
        while let Some(oldest) = self.order.front().cloned() {
            let old = self
                .entries
                .get(&oldest)
                .is_none_or(|e| e.at.elapsed() >= ttl);
            if !old {
                break;
            }
            self.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits(max: usize, bytes: usize) -> Limits {
        Limits {
            max,
            bytes,
            ttl: Duration::from_secs(3600),
        }
    }

    fn stored(n: usize, text: &str) -> Stored {
        Stored {
            response: json!({"id": format!("resp_{n}")}),
            context: vec![Arc::new(
                json!({"id": format!("msg_in{n}"), "type": "message", "content": text}),
            )],
            output: vec![Arc::new(
                json!({"id": format!("msg_out{n}"), "type": "message"}),
            )],
        }
    }

    #[test]
    fn keeps_and_finds_responses_and_their_items() {
        let s = ResponseStore::new(limits(10, 1 << 20));
        assert!(s.put("resp_1".into(), stored(1, "hi"), 0));
        assert_eq!(s.get("resp_1").unwrap().response["id"], "resp_1");
        assert!(s.item("msg_in1").is_some());
        assert!(s.item("msg_out1").is_some());
        assert!(s.get("resp_2").is_none());
        assert!(s.delete("resp_1"));
        assert!(!s.delete("resp_1"));
        assert!(s.item("msg_out1").is_none());
        assert_eq!(s.size(), (0, 0));
    }

    #[test]
    fn count_limit_evicts_the_oldest() {
        let s = ResponseStore::new(limits(2, 1 << 20));
        for n in 1..=3 {
            assert!(s.put(format!("resp_{n}"), stored(n, "x"), 0));
        }
        assert!(s.get("resp_1").is_none());
        assert!(s.item("msg_in1").is_none());
        assert!(s.get("resp_2").is_some() && s.get("resp_3").is_some());
    }

    #[test]
    fn byte_limit_evicts_and_refuses_what_never_fits() {
        let one = stored(1, "x").bytes();
        let s = ResponseStore::new(limits(100, one * 2 + one / 2));
        for n in 1..=3 {
            assert!(s.put(format!("resp_{n}"), stored(n, "x"), 0));
        }
        assert!(s.get("resp_1").is_none());
        assert!(s.size().1 <= one * 2 + one / 2);
        assert!(!s.put("big".into(), stored(9, &"y".repeat(one * 3)), 0));
        assert!(s.get("resp_3").is_some(), "a refused one evicts nothing");
    }

    #[test]
    fn expired_responses_are_gone() {
        let s = ResponseStore::new(Limits {
            max: 10,
            bytes: 1 << 20,
            ttl: Duration::ZERO,
        });
        assert!(s.put("resp_1".into(), stored(1, "x"), 0));
        assert!(s.get("resp_1").is_none());
        assert!(s.item("msg_in1").is_none());
    }

    #[test]
    fn earlier_turns_items_stay_with_their_own_response() {
        let s = ResponseStore::new(limits(10, 1 << 20));
        let first = stored(1, "a");
        let mut second = stored(2, "b");
        second.context.insert(0, first.context[0].clone());
        assert!(s.put("resp_1".into(), first, 0));
        assert!(s.put("resp_2".into(), second, 1));
        assert!(s.delete("resp_2"));
        assert!(s.item("msg_in1").is_some(), "resp_1 still holds it");
        assert!(s.item("msg_in2").is_none());
    }

    #[test]
    fn off_stores_nothing() {
        let s = ResponseStore::new(limits(0, 1 << 20));
        assert!(!s.enabled());
        assert!(!s.put("resp_1".into(), stored(1, "x"), 0));
    }
}
