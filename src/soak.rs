//! `tessera bench --soak`: a flood of mixed traffic at a concurrency well
//! above the server's `--parallel`, then a check that nothing was lost.
//! Valid text and image requests (streaming or not), invalid bodies,
//! clients that hang up at random points, and whatever the queue refuses.
//! Afterwards every accepted request must have finished or been cancelled
//! by its own client, `/metrics` must read no active sequence and an empty
//! queue, and a normal request must still be answered.

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text {
        stream: bool,
    },
    Image {
        stream: bool,
    },
    Invalid,
    /// Hangs up after this many chunks of a stream.
    Disconnect {
        after: usize,
    },
}

/// What happened to the soak's requests, and the server's end state.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SoakReport {
    pub requests: usize,
    /// 200 with a complete answer (usage, or `[DONE]`).
    pub completed: usize,
    /// Hung up by the soak's own clients.
    pub cancelled: usize,
    /// Invalid bodies answered with a 4xx error envelope.
    pub rejected_invalid: usize,
    /// 429 (queue full) or 503 with `Retry-After`.
    pub rejected_busy: usize,
    /// Anything else: a lost, malformed or wrong answer. Must be empty.
    pub unexpected: Vec<String>,
    pub peak_rss_mib: f64,
    pub end_active_sequences: u64,
    pub end_queue_depth: u64,
    pub final_request_ok: bool,
    pub seconds: f64,
}

impl SoakReport {
    pub fn clean(&self) -> bool {
        self.unexpected.is_empty()
            && self.end_active_sequences == 0
            && self.end_queue_depth == 0
            && self.final_request_ok
    }
}

fn body(kind: Kind, i: usize, rng: &mut StdRng) -> String {
    let max_tokens = rng.random_range(1..48);
    let text = |stream| {
        json!({"messages": [{"role": "user", "content": format!("soak request {i}")}],
               "max_tokens": max_tokens, "stream": stream,
               "stream_options": {"include_usage": true}})
    };
    let v = match kind {
        Kind::Text { stream } => text(stream),
        Kind::Disconnect { .. } => {
            let mut v = text(true);
            v["max_tokens"] = json!(400);
            v
        }
        Kind::Image { stream } => json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": crate::bench::images::image_url(i, 48)}}]}],
            "max_tokens": max_tokens / 2 + 1, "stream": stream}),
        Kind::Invalid => {
            return [
                "{not json".to_string(),
                json!({"messages": []}).to_string(),
                json!({"messages": [{"role": "wizard", "content": "x"}]}).to_string(),
                json!({"messages": [{"role": "user", "content": [{"type": "image_url",
                    "image_url": {"url": "data:image/png;base64,!!!"}}]}]})
                .to_string(),
                json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 50})
                    .to_string(),
            ][i % 5]
                .clone();
        }
    };
    v.to_string()
}

enum Outcome {
    Completed,
    Cancelled,
    RejectedInvalid,
    RejectedBusy,
    Unexpected(String),
}

async fn one(client: &reqwest::Client, url: &str, kind: Kind, body: String) -> Outcome {
    let sent = client
        .post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return Outcome::Unexpected(format!("{kind:?}: transport error {e}")),
    };
    let status = resp.status().as_u16();
    if status == 429 || (status == 503 && resp.headers().contains_key("retry-after")) {
        return Outcome::RejectedBusy;
    }
    if kind == Kind::Invalid {
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        return match (status, v["error"]["message"].as_str()) {
            (400..=499, Some(m)) if !m.is_empty() => Outcome::RejectedInvalid,
            _ => Outcome::Unexpected(format!("invalid body got {status}: {v}")),
        };
    }
    if status != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Outcome::Unexpected(format!("{kind:?} got {status}: {text}"));
    }
    match kind {
        Kind::Disconnect { after } => {
            let mut chunks = resp.bytes_stream();
            for _ in 0..after {
                if chunks.next().await.is_none() {
                    break;
                }
            }
            Outcome::Cancelled
        }
        Kind::Text { stream: true } | Kind::Image { stream: true } => {
            let text = resp.text().await.unwrap_or_default();
            if text.trim_end().ends_with("data: [DONE]") {
                Outcome::Completed
            } else {
                Outcome::Unexpected(format!("{kind:?}: stream without [DONE]"))
            }
        }
        _ => {
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            if v["usage"]["completion_tokens"].is_u64() && v["choices"][0]["message"].is_object() {
                Outcome::Completed
            } else {
                Outcome::Unexpected(format!("{kind:?}: malformed answer {v}"))
            }
        }
    }
}

/// A gauge from `/metrics` (None when unreadable).
pub async fn gauge(client: &reqwest::Client, url: &str, name: &str) -> Option<f64> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Runs the soak: `requests` in all, `concurrency` at once, seeded.
pub async fn soak(url: &str, requests: usize, concurrency: usize, seed: u64) -> SoakReport {
    let client = reqwest::Client::new();
    let idle = poll_idle(client.clone(), url.to_string());
    soak_until(url, requests, concurrency, seed, idle).await
}

/// Hung-up streams are noticed at their next token: a server seen only
/// over HTTP gets a bounded moment to reach its idle state.
async fn poll_idle(client: reqwest::Client, url: String) {
    for _ in 0..300 {
        let active = gauge(&client, &url, "tessera_active_sequences").await;
        let queued = gauge(&client, &url, "tessera_queue_depth").await;
        if active == Some(0.0) && queued == Some(0.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The soak, with the end state read once `idle` resolves (a server in
/// the same process can say when it is idle instead of being polled).
pub async fn soak_until(
    url: &str,
    requests: usize,
    concurrency: usize,
    seed: u64,
    idle: impl std::future::Future<Output = ()>,
) -> SoakReport {
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let peak = Arc::new(std::sync::Mutex::new(0f64));
    let watcher = {
        let (client, url, peak) = (client.clone(), url.to_string(), peak.clone());
        tokio::spawn(async move {
            loop {
                if let Some(rss) = gauge(&client, &url, "process_resident_memory_bytes").await
                    && let Ok(mut p) = peak.lock()
                {
                    *p = p.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut tasks = Vec::with_capacity(requests);
    for i in 0..requests {
        let kind = match rng.random_range(0..10) {
            0..=2 => Kind::Text {
                stream: rng.random(),
            },
            3..=5 => Kind::Image {
                stream: rng.random(),
            },
            6 | 7 => Kind::Disconnect {
                after: rng.random_range(0..6),
            },
            _ => Kind::Invalid,
        };
        let body = body(kind, i, &mut rng);
        let (client, url, limit) = (client.clone(), url.to_string(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _turn = limit.acquire_owned().await;
            let outcome = one(&client, &url, kind, body).await;
            // A well-behaved client honours Retry-After (1 s) before its
            // next request, instead of spinning on refusals.
            if matches!(outcome, Outcome::RejectedBusy) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            outcome
        }));
    }
    let mut report = SoakReport {
        requests,
        ..SoakReport::default()
    };
    for t in tasks {
        match t.await {
            Ok(Outcome::Completed) => report.completed += 1,
            Ok(Outcome::Cancelled) => report.cancelled += 1,
            Ok(Outcome::RejectedInvalid) => report.rejected_invalid += 1,
            Ok(Outcome::RejectedBusy) => report.rejected_busy += 1,
            Ok(Outcome::Unexpected(e)) => report.unexpected.push(e),
            Err(e) => report.unexpected.push(format!("client task failed: {e}")),
        }
    }
    idle.await;
    let active = gauge(&client, url, "tessera_active_sequences").await;
    let queued = gauge(&client, url, "tessera_queue_depth").await;
    report.end_active_sequences = active.unwrap_or(-1.0) as u64;
    report.end_queue_depth = queued.unwrap_or(-1.0) as u64;
    watcher.abort();
    report.peak_rss_mib = peak.lock().map(|p| *p).unwrap_or(0.0) / (1 << 20) as f64;
    let mut check = StdRng::seed_from_u64(seed ^ 1);
    let normal = body(Kind::Text { stream: false }, requests, &mut check);
    report.final_request_ok = matches!(
        one(&client, url, Kind::Text { stream: false }, normal).await,
        Outcome::Completed
    );
    report.seconds = started.elapsed().as_secs_f64();
    report
}
