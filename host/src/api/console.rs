//! `GET /`: the web console (README "Web console"), a page of hand-written
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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use sha2::{Digest, Sha256};

/// What the console's answers allow the browser to load and run.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("console/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// The page's files, served under `/console/`: name, text, type. `app.js`
/// imports the others (one module per view).
const FILES: [(&str, &str, &str); 12] = [
    (
        "style.css",
        include_str!("console/style.css"),
        "text/css; charset=utf-8",
    ),
    ("app.js", include_str!("console/app.js"), JS),
    ("api.js", include_str!("console/api.js"), JS),
    ("webhooks.js", include_str!("console/webhooks.js"), JS),
    ("builder.js", include_str!("console/builder.js"), JS),
    ("exchange.js", include_str!("console/exchange.js"), JS),
    ("history.js", include_str!("console/history.js"), JS),
    ("log.js", include_str!("console/log.js"), JS),
    ("events.js", include_str!("console/events.js"), JS),
    ("plugins.js", include_str!("console/plugins.js"), JS),
    ("devices.js", include_str!("console/devices.js"), JS),
    ("health.js", include_str!("console/health.js"), JS),
];

/// Where the page takes the Iottly limit.
const IOTTLY_MAX_SLOT: &str = "{IOTTLY_MAX_WEBHOOKS}";

/// The page and its assets; the page shows `iottly_max_webhooks` as the
/// limit of webhooks per Iottly project.
pub fn routes<S: Clone + Send + Sync + 'static>(iottly_max_webhooks: usize) -> Router<S> {
    let page = Asset::new(page(iottly_max_webhooks), "text/html; charset=utf-8");
    FILES.iter().fold(
        Router::new().route("/", serve(page)),
        |router, (name, text, content_type)| {
            router.route(
                &format!("/console/{name}"),
                serve(Asset::new(*text, content_type)),
            )
        },
    )
}

/// The page's HTML with the host's Iottly limit in place.
fn page(iottly_max_webhooks: usize) -> String {
    INDEX_HTML.replace(IOTTLY_MAX_SLOT, &iottly_max_webhooks.to_string())
}

fn serve<S: Clone + Send + Sync + 'static>(asset: Asset) -> MethodRouter<S> {
    get(move |headers: HeaderMap| std::future::ready(asset.respond(&headers)))
}

/// One file of the console, ready to serve.
#[derive(Debug, Clone)]
struct Asset {
    body: Bytes,
    content_type: &'static str,
    /// The body's digest: the browser revalidates on each load
    /// (`no-cache`, so an upgraded binary's page is never stale) and gets
    /// `304` without the body while the file is unchanged.
    etag: HeaderValue,
}

impl Asset {
    fn new(body: impl Into<Bytes>, content_type: &'static str) -> Self {
        let body = body.into();
        let digest = Sha256::digest(&body);
        let etag = HeaderValue::try_from(format!("\"{}\"", hex::encode(&digest[..16])))
            .expect("quoted hex is a valid header value");
        Self {
            body,
            content_type,
            etag,
        }
    }

    /// The file, or `304` when `If-None-Match` names its digest; with the
    /// console's security headers either way.
    fn respond(&self, request: &HeaderMap) -> Response {
        let unchanged = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .flat_map(|value| value.as_bytes().split(|b| *b == b','))
            .any(|tag| tag.trim_ascii() == self.etag.as_bytes());
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, self.etag.clone()),
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
        ];
        if unchanged {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.body.clone()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_the_configured_iottly_limit() {
        let html = page(7);
        assert!(html.contains(r#"name="edgehook-iottly-max-webhooks" content="7""#));
        assert!(!html.contains(IOTTLY_MAX_SLOT));
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        let served: Vec<&str> = FILES.iter().map(|(name, ..)| *name).collect();
        for (_, text, _) in FILES {
            for import in text.split("from './").skip(1) {
                let name = import.split('\'').next().unwrap_or_default();
                assert!(served.contains(&name), "{name} is imported but not served");
            }
        }
        for (name, ..) in FILES {
            assert!(
                INDEX_HTML.contains(&format!("/console/{name}")),
                "the page does not load or preload {name}"
            );
        }
    }

    #[test]
    fn an_unchanged_file_is_not_sent_again() {
        let (_, text, content_type) = FILES[1];
        let asset = Asset::new(text, content_type);
        let first = asset.respond(&HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        assert_eq!(
            first.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );

        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        let second = asset.respond(&again);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

        again.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"stale\""));
        assert_eq!(asset.respond(&again).status(), StatusCode::OK);
    }
}
