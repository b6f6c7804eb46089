//! One streaming chat client for the benchmarks: a request's timings and
//! answer, as both servers are measured.

use super::stats::Sample;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Instant;

pub(super) fn user(n: usize, image: Option<String>) -> Value {
    let text = format!("Request {n}: describe what you see in detail, then tell a story about it.");
    match image {
        None => json!({"role": "user", "content": text}),
        Some(url) => json!({"role": "user", "content": [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": url}}
        ]}),
    }
}

pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) url: String,
    pub(super) max_tokens: u32,
}

impl Client {
    /// Streams one chat request; returns the timings and the answer text.
    pub(super) async fn run(&self, messages: Vec<Value>) -> anyhow::Result<(Sample, String)> {
        let body = json!({
            "model": "bench",
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": 0,
            // Real models may end at once; both servers then still
            // generate max_tokens (llama-server's extension, Tessera's too).
            "ignore_eos": true,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let start = Instant::now();
        let resp = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        let mut text = String::new();
        let mut stamps: Vec<Instant> = Vec::new();
        let mut usage_tokens = None;
        let mut prompt_tokens = None;
        'read: while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                        continue;
                    };
                    if data == "[DONE]" {
                        break 'read;
                    }
                    let v: Value = serde_json::from_str(data)?;
                    if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                        usage_tokens = Some(n as u32);
                    }
                    if let Some(n) = v["usage"]["prompt_tokens"].as_u64() {
                        prompt_tokens = Some(n as u32);
                    }
                    if let Some(c) = v["choices"][0]["delta"]["content"].as_str()
                        && !c.is_empty()
                    {
                        stamps.push(Instant::now());
                        text.push_str(c);
                    }
                }
            }
        }
        let first = *stamps
            .first()
            .ok_or_else(|| anyhow::anyhow!("no content"))?;
        let last = *stamps.last().unwrap_or(&first);
        let tokens = usage_tokens.unwrap_or(stamps.len() as u32);
        let decode = last.duration_since(first).as_secs_f64();
        let sample = Sample {
            ttft: first.duration_since(start),
            itl: (stamps.len() > 1).then(|| last.duration_since(first) / (stamps.len() as u32 - 1)),
            tokens,
            decode_tps: (tokens > 1 && decode > 0.0).then(|| (tokens - 1) as f64 / decode),
            prompt_tokens,
        };
        Ok((sample, text))
    }
}
