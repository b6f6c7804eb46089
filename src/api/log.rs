//! One tracing span per chat request, with what an operator needs (id,
//! model, images, tiles, tokens, TTFT, finish reason) and, unless
//! `--log-prompts`, no prompt text; image bytes are never logged.

use std::time::Instant;
use tracing::Span;
use tracing::field::Empty;

pub struct RequestLog {
    span: Span,
    started: Instant,
    first_token: Option<Instant>,
}

/// The request's id, as the request-id layer set it.
pub fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A client's `x-request-id` is kept only when it is a plain id (at most
/// 128 letters, digits, `-`, `_`, `.`, `:`): anything else, which could
/// forge `key=value` fields in a text log, is dropped and a fresh id made.
pub async fn scrub_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let plain = |v: &axum::http::HeaderValue| {
        (1..=128).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    let headers = req.headers_mut();
    if headers.get_all("x-request-id").iter().count() > 1
        || headers.get("x-request-id").is_some_and(|v| !plain(v))
    {
        headers.remove("x-request-id");
    }
    req
}

impl RequestLog {
    pub fn new(id: &str, model: &str) -> Self {
        let span = tracing::info_span!(
            "request",
            id = %id,
            model = %model,
            images = Empty,
            tiles = Empty,
            prompt_tokens = Empty,
            cached_tokens = Empty,
            image_cache_hits = Empty,
            completion_tokens = Empty,
            ttft_ms = Empty,
            finish_reason = Empty,
        );
        RequestLog {
            span,
            started: Instant::now(),
            first_token: None,
        }
    }

    /// The request's span: preparation runs inside it, and the engine's
    /// job carries it, so every log line of the request names its id.
    pub fn span(&self) -> &Span {
        &self.span
    }

    pub fn images(&self, images: usize, tiles: u32) {
        self.span.record("images", images);
        self.span.record("tiles", tiles);
    }

    pub fn prompt(&self, usage: &crate::engine::PromptUsage) {
        self.span.record("prompt_tokens", usage.prompt_tokens);
        self.span.record("cached_tokens", usage.cached_tokens);
        // Image chunks decoded from the embedding cache, encoder skipped.
        self.span
            .record("image_cache_hits", usage.image_chunks_cached);
    }

    /// Only with `--log-prompts`.
    pub fn prompt_text(&self, text: &str) {
        let _g = self.span.enter();
        tracing::info!(prompt = %text, "prompt");
    }

    pub fn token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(Instant::now());
        }
    }

    pub fn finish(&self, reason: &str, completion_tokens: u32) {
        if let Some(t) = self.first_token {
            let ms = t.duration_since(self.started).as_secs_f64() * 1e3;
            self.span.record("ttft_ms", ms.round());
        }
        self.span.record("completion_tokens", completion_tokens);
        self.span.record("finish_reason", reason);
        let _g = self.span.enter();
        tracing::info!(
            elapsed_ms = (self.started.elapsed().as_secs_f64() * 1e3).round(),
            "request finished"
        );
    }
}
