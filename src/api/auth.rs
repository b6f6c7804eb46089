//! Bearer-token auth. With no `--api-key`, every route is open (a laptop
//! default); with keys, every route but `/health` (and `/metrics` when
//! `--metrics-public`) needs `Authorization: Bearer <key>`.

use super::SharedState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Routes that never need a key.
const PUBLIC: &[&str] = &["/health", "/openapi.json", "/docs"];

/// Compares in time that depends only on the lengths, not on where the
/// first difference is.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// True when `presented` matches one of `keys`; every key is compared.
pub fn key_matches(keys: &[String], presented: &str) -> bool {
    keys.iter().fold(false, |ok, k| {
        ct_eq(k.as_bytes(), presented.as_bytes()) | ok
    })
}

pub async fn require_key(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let public = PUBLIC
        .iter()
        .any(|p| path == *p || path.starts_with("/docs/"))
        || (path == "/metrics" && state.metrics_public);
    if state.api_keys.is_empty() || public {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(key) if key_matches(&state.api_keys, key) => next.run(req).await,
        Some(_) => unauthorized("Incorrect API key provided; check the Authorization header"),
        None => unauthorized(
            "You didn't provide an API key: send `Authorization: Bearer YOUR_KEY` (the server was started with --api-key)",
        ),
    }
}

fn unauthorized(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
        .code("invalid_api_key")
        .into_response()
}

/// Reads `--api-key-file`: one key per line; blank lines and `#` comments skipped.
pub fn keys_from_file(path: &std::path::Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
        let keys = vec!["a1".to_string(), "b2".to_string()];
        assert!(key_matches(&keys, "b2"));
        assert!(!key_matches(&keys, "c3"));
    }
}
