//! Bearer-token auth. With no `--api-key`, every route is open (a laptop
//! default); with keys, every route but `/health`, the API's documents and
//! the playground's page and assets (and `/metrics` when
//! `--metrics-public`) needs `Authorization: Bearer <key>`.

use super::error::ApiError;
use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// Routes that never need a key.
/// (The playground's page and assets hold no data: the page asks for a key
/// before it calls the API.)
const PUBLIC: &[&str] = &["/health", "/openapi.json", "/docs", "/", "/ui"];

/// Who may call what: the keys, and whether `/metrics` is open.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub keys: ApiKeys,
    /// `/metrics` without a key.
    pub metrics_public: bool,
}

/// The accepted keys, kept only as SHA-256 digests: a presented key is
/// hashed and compared digest to digest in constant time (`subtle`), so
/// the time taken says nothing about a key's length or contents.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Vec<[u8; 32]>);

impl ApiKeys {
    pub fn new<S: AsRef<str>>(keys: &[S]) -> Self {
        ApiKeys(keys.iter().map(|k| digest(k.as_ref())).collect())
    }

    /// No key configured: the API is open.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `presented` matches one of the keys; every key is compared.
    pub fn matches(&self, presented: &str) -> bool {
        let p = digest(presented);
        let hit = self
            .0
            .iter()
            .fold(subtle::Choice::from(0), |ok, k| ok | k.ct_eq(&p));
        bool::from(hit)
    }
}

fn digest(s: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).into()
}

pub async fn require_key(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let public = PUBLIC
        .iter()
        .any(|p| path == *p || path.starts_with("/docs/") || path.starts_with("/ui/"))
        || (path == "/metrics" && gate.metrics_public);
    if gate.keys.is_empty() || public {
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
        // Anthropic's SDKs send the key as `x-api-key`.
        .or_else(|| req.headers().get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim);
    match presented {
        Some(key) if gate.keys.matches(key) => next.run(req).await,
        Some(_) => unauthorized(
            "Incorrect API key provided; check the Authorization (or x-api-key) header",
        ),
        None => unauthorized(
            "You didn't provide an API key: send `Authorization: Bearer YOUR_KEY` or `x-api-key: YOUR_KEY` (the server was started with --api-key)",
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

/// `--api-key` values and the keys of `--api-key-file`.
pub fn configured_keys(config: &crate::config::Config) -> anyhow::Result<Vec<String>> {
    let mut keys: Vec<String> = config
        .api_key
        .iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if let Some(path) = &config.api_key_file {
        let from_file = keys_from_file(path)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot read --api-key-file {}", path.display()))?;
        anyhow::ensure!(!from_file.is_empty(), "{} holds no API key", path.display());
        keys.extend(from_file);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_digest() {
        let keys = ApiKeys::new(&["secret", "b2"]);
        assert!(keys.matches("secret"));
        assert!(keys.matches("b2"));
        assert!(!keys.matches("secreT"));
        assert!(!keys.matches("secret2"));
        assert!(!keys.matches(""));
        assert!(ApiKeys::new::<&str>(&[]).is_empty());
    }
}
