//! The delivery log of one webhook: its last requests and its last errors,
//! each with the triggering event, the request as sent and the response or
//! error — what `GET /v1/webhooks/{id}/log` shows.
//!
//! Recording is cheap: the log takes the request and outcome the delivery
//! is done with, and one shared entry serves both lists, under a short
//! lock. Secrets (credentials in headers, the URL, form bodies and
//! credential-like members of JSON bodies, by the rule of
//! [`crate::secrets`]) are masked only when the log is read.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::event::Event;
use crate::exchange::{HookRequest, Outcome};
use crate::secrets;

/// Requests, and separately errors, kept per webhook.
pub const KEPT: usize = 10;

/// Bytes of a body shown in the log; the rest is cut.
const BODY_SHOWN: usize = 4096;

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
            "data": shown_masked(&e.event.data),
            "published_at": e.event.published_at,
        },
        "request": e.request.as_ref().map(request_json),
    });
    match &e.outcome {
        Outcome::Response(r) => {
            out["response"] = json!({
                "status": r.status,
                "headers": headers_json(&r.headers),
                "body": shown_masked(&r.body),
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
        shown(secrets::pairs(&String::from_utf8_lossy(&r.body)).as_bytes())
    } else {
        shown_masked(&r.body)
    };
    json!({
        "method": r.method.as_str(),
        "url": secrets::url(r.url.as_str()),
        "headers": headers_json(&r.headers),
        "body": body,
    })
}

fn headers_json(headers: &[(String, String)]) -> Value {
    headers
        .iter()
        .map(|(k, v)| json!([k, secrets::header(k, v)]))
        .collect()
}

/// A body as [`shown`], its credential-like JSON members masked when it is
/// JSON.
fn shown_masked(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => shown(secrets::json_text(text).as_bytes()),
        Err(_) => shown(bytes),
    }
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
    use crate::exchange::Answer;
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
            url: url::Url::parse("https://user:pw@example.com/in?api_key=key-k1&x=1").unwrap(),
            headers: vec![
                ("Authorization".into(), "Basic dXNlcjpwdw==".into()),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: Bytes::from_static(b"token=tok-t1&data=21.5"),
            answer: Answer::Plugin,
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
        // Secrets that no timestamp or event id can contain by chance
        // ("T1" did, in "2026-12-01T10:19").
        for secret in ["pw@", "key-k1", "tok-t1", "dXNlcjpwdw"] {
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
    fn json_bodies_are_masked_at_any_depth() {
        let log = DeliveryLog::default();
        let mut request = request();
        request.headers = vec![("Content-Type".into(), "application/json".into())];
        request.body =
            Bytes::from_static(br#"{"v":1,"auth":{"token":"tok-2"},"l":[{"secret":"sec-2"}]}"#);
        let response = HookResponse {
            status: 200,
            headers: vec![("Set-Cookie".into(), "sid=cookie-2".into())],
            body: Bytes::from_static(br#"{"access_token":"access-2","ok":true}"#),
        };
        log.record(&event(), Some(request), Outcome::Response(response));
        let view = log.to_json();
        let text = view.to_string();
        for secret in ["tok-2", "sec-2", "cookie-2", "access-2"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let entry = &view["requests"][0];
        assert_eq!(
            entry["request"]["body"],
            r#"{"auth":"***","l":[{"secret":"***"}],"v":1}"#
        );
        assert_eq!(
            entry["response"]["body"],
            r#"{"access_token":"***","ok":true}"#
        );
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
