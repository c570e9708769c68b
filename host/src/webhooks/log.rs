//! The delivery log of one webhook: its last requests and its last errors,
//! each with the triggering event, the request as sent and the response or
//! error — what `GET /v1/webhooks/{id}/log` shows.
//!
//! Recording is cheap: the log takes the request and outcome the delivery
//! is done with, and one shared entry serves both lists, under a short
//! lock. The secrets of a request (credentials in headers, the URL and
//! form bodies) are masked only when the log is read.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::event::Event;
use crate::exchange::{HookRequest, Outcome};

/// Requests, and separately errors, kept per webhook.
pub const KEPT: usize = 10;

/// Bytes of a body shown in the log; the rest is cut.
const BODY_SHOWN: usize = 4096;

/// What replaces a secret; `*` needs no percent-encoding in a form or a
/// query, so the mask reads the same there.
const MASK: &str = "***";

/// One delivery as it happened.
#[derive(Debug)]
struct Entry {
    at: SystemTime,
    event: Event,
    request: Option<HookRequest>,
    outcome: Outcome,
}

#[derive(Debug, Default)]
struct Entries {
    requests: VecDeque<Arc<Entry>>,
    errors: VecDeque<Arc<Entry>>,
}

/// The last deliveries of one webhook.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    entries: Mutex<Entries>,
}

impl DeliveryLog {
    /// Records one delivery: the request sent (none when the plugin failed
    /// before there was one) and the response or the error. A failure or a
    /// status outside 2xx is also kept among the errors.
    pub fn record(&self, event: &Event, request: Option<HookRequest>, outcome: Outcome) {
        let failed = match &outcome {
            Outcome::Response(r) => !(200..300).contains(&r.status),
            Outcome::Failed(_) => true,
        };
        let entry = Arc::new(Entry {
            at: SystemTime::now(),
            event: event.clone(),
            request,
            outcome,
        });
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if failed {
            push(&mut entries.errors, entry.clone());
        }
        push(&mut entries.requests, entry);
    }

    /// The log as JSON: `{"requests": [...], "errors": [...]}`, newest first,
    /// secrets masked.
    pub fn to_json(&self) -> Value {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let view = |list: &VecDeque<Arc<Entry>>| {
            list.iter().rev().map(|e| entry_json(e)).collect::<Vec<_>>()
        };
        json!({ "requests": view(&entries.requests), "errors": view(&entries.errors) })
    }
}

fn push(list: &mut VecDeque<Arc<Entry>>, entry: Arc<Entry>) {
    if list.len() == KEPT {
        list.pop_front();
    }
    list.push_back(entry);
}

fn entry_json(e: &Entry) -> Value {
    let mut out = json!({
        "at": humantime::format_rfc3339_millis(e.at).to_string(),
        "event": {
            "id": e.event.id,
            "device_id": e.event.device.as_str(),
            "name": e.event.name.as_str(),
            "data": shown(&e.event.data),
            "published_at": e.event.published_at,
        },
        "request": e.request.as_ref().map(request_json),
    });
    match &e.outcome {
        Outcome::Response(r) => {
            out["response"] = json!({
                "status": r.status,
                "headers": headers_json(&r.headers),
                "body": shown(&r.body),
            });
        }
        Outcome::Failed(why) => out["error"] = Value::String(why.clone()),
    }
    out
}

fn request_json(r: &HookRequest) -> Value {
    let is_form = r.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type") && v.starts_with("application/x-www-form-urlencoded")
    });
    let body = if is_form {
        mask_pairs(url::form_urlencoded::parse(&r.body))
    } else {
        shown(&r.body)
    };
    json!({
        "method": r.method.as_str(),
        "url": mask_url(&r.url),
        "headers": headers_json(&r.headers),
        "body": body,
    })
}

fn headers_json(headers: &[(String, String)]) -> Value {
    headers
        .iter()
        .map(|(k, v)| {
            let value = if secret_header(k) {
                // Keep the scheme ("Basic", "Bearer"): it helps debugging.
                match v.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} {MASK}"),
                    None => MASK.to_owned(),
                }
            } else {
                v.clone()
            };
            json!([k, value])
        })
        .collect()
}

fn secret_header(name: &str) -> bool {
    const NAMES: [&str; 7] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "webhook-signature",
    ];
    NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Whether a query or form field is likely a credential.
fn secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "signature",
        "auth",
    ]
    .iter()
    .any(|s| name.contains(s))
}

fn mask_pairs<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        let v = if secret_field(&k) { MASK } else { &*v };
        out.append_pair(&k, v);
    }
    out.finish()
}

fn mask_url(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    if url.query().is_some() {
        let query = mask_pairs(url.query_pairs());
        url.set_query(Some(&query));
    }
    url.to_string()
}

/// The first [`BODY_SHOWN`] bytes as text.
fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(BODY_SHOWN)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > BODY_SHOWN {
        text.push_str(&format!("… ({} bytes in all)", bytes.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::exchange::HookResponse;
    use crate::topic::{DeviceId, EventName};

    fn event() -> Event {
        Event::received(
            DeviceId::try_from("d1").unwrap(),
            EventName::try_from("temp").unwrap(),
            Bytes::from_static(b"21.5"),
        )
    }

    fn request() -> HookRequest {
        HookRequest {
            method: http::Method::POST,
            url: url::Url::parse("https://user:pw@example.com/in?api_key=K1&x=1").unwrap(),
            headers: vec![
                ("Authorization".into(), "Basic dXNlcjpwdw==".into()),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: Bytes::from_static(b"token=T1&data=21.5"),
        }
    }

    #[test]
    fn secrets_are_masked_and_errors_kept_apart() {
        let log = DeliveryLog::default();
        let ok = HookResponse {
            status: 200,
            headers: vec![],
            body: Bytes::from_static(b"ok"),
        };
        log.record(&event(), Some(request()), Outcome::Response(ok));
        log.record(
            &event(),
            Some(request()),
            Outcome::Failed("timeout after 20 s waiting for example.com".into()),
        );
        let view = log.to_json();
        assert_eq!(view["requests"].as_array().unwrap().len(), 2);
        assert_eq!(view["errors"].as_array().unwrap().len(), 1);
        assert_eq!(
            view["errors"][0]["error"],
            "timeout after 20 s waiting for example.com"
        );
        let text = view.to_string();
        for secret in ["pw@", "K1", "T1", "dXNlcjpwdw"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let req = &view["requests"][1]["request"];
        assert_eq!(req["body"], "token=***&data=21.5");
        assert_eq!(
            req["url"],
            "https://user:***@example.com/in?api_key=***&x=1"
        );
        assert_eq!(req["headers"][0], json!(["Authorization", "Basic ***"]));
        assert!(req["body"].as_str().unwrap().contains("data=21.5"));
        assert_eq!(view["requests"][1]["response"]["status"], 200);
        assert_eq!(view["requests"][0]["event"]["data"], "21.5");
    }

    #[test]
    fn only_the_last_ten_are_kept() {
        let log = DeliveryLog::default();
        for _ in 0..25 {
            log.record(&event(), None, Outcome::Failed("plugin p trapped".into()));
        }
        let view = log.to_json();
        assert_eq!(view["requests"].as_array().unwrap().len(), KEPT);
        assert_eq!(view["errors"].as_array().unwrap().len(), KEPT);
    }
}
