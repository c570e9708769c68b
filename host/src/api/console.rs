//! `GET /`: the web console (CONTRACT section 10), a page of hand-written
//! HTML, CSS and JavaScript compiled into the binary.
//!
//! The page and its assets hold no data, so they are served without the
//! token; every call the page makes goes to the API with
//! `Authorization: Bearer`, the token kept in the tab's `sessionStorage`.
//! Each answer carries a Content-Security-Policy that allows scripts,
//! styles and connections from this origin only, and no framing.
//!
//! The one figure of the host's configuration the page shows without
//! asking the API (the Iottly webhooks a project may have) is written into
//! the page once, when the routes are built.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the console's answers allow the browser to load and run.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE_CSS: &str = include_str!("console/style.css");

/// Where the page takes the Iottly limit.
const IOTTLY_MAX_SLOT: &str = "{IOTTLY_MAX_WEBHOOKS}";

/// The page and its assets; the page shows `iottly_max_webhooks` as the
/// limit of webhooks per Iottly project.
pub fn routes<S: Clone + Send + Sync + 'static>(iottly_max_webhooks: usize) -> Router<S> {
    let page = Bytes::from(INDEX_HTML.replace(IOTTLY_MAX_SLOT, &iottly_max_webhooks.to_string()));
    Router::new()
        .route(
            "/",
            get(move || {
                let page = page.clone();
                async move { asset(page, "text/html; charset=utf-8") }
            }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
}

/// `body` with its type and the console's security headers. The assets
/// change only with the binary, so the browser revalidates on each load
/// (`no-cache`) rather than keep a stale page after an upgrade.
fn asset(body: impl IntoResponse, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}
