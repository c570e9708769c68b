//! What crosses the sandbox's boundary: the event and the outcome as the
//! guest is given them, and the request and replies it returns, checked
//! against the plugin's limits and turned into host values.

use bytes::Bytes;

use super::bindings::v0_2::edgehook::webhook::types as wit;
use super::call_error::CallError;
use super::plugin::Plugin;
use crate::event::Event;
use crate::exchange::{Answer, HookRequest, Outcome, Reply, ReplyKind};
use crate::topic::check_reply_suffix;

impl Plugin {
    pub(super) fn plugin_error(&self, message: String) -> CallError {
        CallError::Plugin {
            plugin: self.name.clone(),
            message,
        }
    }

    fn invalid(&self, reason: String) -> CallError {
        CallError::Invalid {
            plugin: self.name.clone(),
            reason,
        }
    }

    pub(super) fn check_request(&self, r: wit::Request) -> Result<HookRequest, CallError> {
        let limit = self.limits().request_body;
        if r.body.len() > limit {
            return Err(self.invalid(format!(
                "request body of {} bytes exceeds the limit of {limit} bytes",
                r.body.len(),
            )));
        }
        // The URL is shown as the views show it: it may hold credentials.
        let url = url::Url::parse(&r.url).map_err(|e| {
            self.invalid(format!(
                "request URL {:?}: {e}",
                crate::secrets::url(&r.url)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(self.invalid(format!(
                "request URL {:?} is not an http(s) URL with a host",
                crate::secrets::url(&r.url)
            )));
        }
        for (name, value) in &r.headers {
            if http::HeaderName::try_from(name.as_str()).is_err()
                || http::HeaderValue::try_from(value.as_str()).is_err()
            {
                return Err(self.invalid(format!("header {name:?} is not a valid HTTP header")));
            }
        }
        let method = match r.method {
            wit::Method::Get => http::Method::GET,
            wit::Method::Post => http::Method::POST,
            wit::Method::Put => http::Method::PUT,
            wit::Method::Patch => http::Method::PATCH,
            wit::Method::Delete => http::Method::DELETE,
            wit::Method::Head => http::Method::HEAD,
        };
        Ok(HookRequest {
            method,
            url,
            headers: r.headers,
            body: Bytes::from(r.body),
            answer: match r.answer {
                wit::Answer::Plugin => Answer::Plugin,
                wit::Answer::Default => Answer::Default,
                wit::Answer::None => Answer::None,
            },
        })
    }

    pub(super) fn check_replies(&self, replies: Vec<wit::Reply>) -> Result<Vec<Reply>, CallError> {
        let limits = self.limits();
        if replies.len() > limits.replies {
            return Err(self.invalid(format!(
                "{} device messages exceed the limit of {}",
                replies.len(),
                limits.replies
            )));
        }
        let total: usize = replies.iter().map(|r| r.payload.len()).sum();
        if total > limits.reply_bytes {
            return Err(self.invalid(format!(
                "device messages of {total} bytes exceed the limit of {} bytes",
                limits.reply_bytes
            )));
        }
        replies
            .into_iter()
            .map(|r| {
                if let Some(topic) = &r.topic {
                    check_reply_suffix(topic).map_err(|e| self.invalid(e))?;
                }
                Ok(Reply {
                    kind: match r.kind {
                        wit::ReplyKind::Response => ReplyKind::Response,
                        wit::ReplyKind::Error => ReplyKind::Error,
                    },
                    topic: r.topic,
                    payload: Bytes::from(r.payload),
                    unchunked: r.unchunked,
                })
            })
            .collect()
    }
}

pub(super) fn to_wit_event(event: &Event, group: Option<&str>) -> wit::Event {
    wit::Event {
        id: event.id.clone(),
        device_id: event.device.as_str().to_owned(),
        name: event.name.as_str().to_owned(),
        data: event.data.to_vec(),
        published_at: event.published_at.clone(),
        group: group.map(str::to_owned),
    }
}

pub(super) fn to_wit_outcome(outcome: &Outcome) -> wit::Outcome {
    match outcome {
        Outcome::Response(r) => wit::Outcome::Response(wit::Response {
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.to_vec(),
        }),
        Outcome::Failed(text) => wit::Outcome::Failed(text.clone()),
    }
}
