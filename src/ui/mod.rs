//! The playground page: plain HTML, CSS and JavaScript modules compiled
//! into the binary (`include_str!`), so it works offline, needs no build
//! step and fetches nothing from elsewhere. It talks only to the public API
//! (`/v1/models`, the price preview, `/v1/chat/completions`), so it shows
//! nothing a client could not see; its assets are public, and the page
//! asks for a key when the API answers 401.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// (path under `/ui/`, content type, body)
const JS: &str = "text/javascript; charset=utf-8";
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("app.js")),
    ("api.js", JS, include_str!("api.js")),
    ("plan.js", JS, include_str!("plan.js")),
    ("chat.js", JS, include_str!("chat.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("style.css"),
    ),
];

const INDEX: &str = include_str!("index.html");

/// Everything the page may load or call: this origin, and images the user
/// picked (data and blob URLs). No inline script, no other host.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// `/` redirects to `/ui/`; `/ui` and `/ui/` serve the page, `/ui/NAME` its
/// assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route(
            "/ui",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        );
    for &(name, kind, body) in ASSETS {
        r = r.route(
            &format!("/ui/{name}"),
            get(move || async move { page(kind, body) }),
        );
    }
    r
}

fn page(kind: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // The page changes with the binary: revalidate rather than keep a stale copy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every asset the page names is served, and nothing it loads comes
    /// from another host.
    #[test]
    fn the_page_loads_only_its_own_assets() {
        let all: String = ASSETS.iter().map(|a| a.2).chain([INDEX]).collect();
        for (name, _, _) in ASSETS {
            assert!(all.contains(name), "{name} is never loaded");
        }
        for bad in ["http://", "https://", "//cdn", "@import"] {
            assert!(!all.contains(bad), "the page refers to {bad}");
        }
        assert!(!INDEX.contains("<script>"), "no inline script (CSP)");
    }
}
