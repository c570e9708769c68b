//! Plugins of `edgehook:webhook@0.1.0`: their values converted to and from
//! those of the current world, so that one path checks what every plugin
//! returns.
//!
//! A 0.1.0 event has no group, and a 0.1.0 request always leaves the answer
//! to the plugin's `on-response`.

use super::bindings::v0_1::edgehook::webhook::host as old_host;
use super::bindings::v0_1::edgehook::webhook::types as old;
use super::bindings::v0_2::edgehook::webhook::host as new_host;
use super::bindings::v0_2::edgehook::webhook::types as wit;
use crate::event::Event;
use crate::exchange::Outcome;

/// A log level of the first release.
pub(super) fn level(level: old_host::Level) -> new_host::Level {
    match level {
        old_host::Level::Trace => new_host::Level::Trace,
        old_host::Level::Debug => new_host::Level::Debug,
        old_host::Level::Info => new_host::Level::Info,
        old_host::Level::Warn => new_host::Level::Warn,
        old_host::Level::Error => new_host::Level::Error,
    }
}

pub(super) fn event(event: &Event) -> old::Event {
    old::Event {
        id: event.id.clone(),
        device_id: event.device.as_str().to_owned(),
        name: event.name.as_str().to_owned(),
        data: event.data.to_vec(),
        published_at: event.published_at.clone(),
    }
}

pub(super) fn outcome(outcome: &Outcome) -> old::Outcome {
    match outcome {
        Outcome::Response(r) => old::Outcome::Response(old::Response {
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.to_vec(),
        }),
        Outcome::Failed(text) => old::Outcome::Failed(text.clone()),
    }
}

pub(super) fn request(r: old::Request) -> wit::Request {
    wit::Request {
        method: match r.method {
            old::Method::Get => wit::Method::Get,
            old::Method::Post => wit::Method::Post,
            old::Method::Put => wit::Method::Put,
            old::Method::Patch => wit::Method::Patch,
            old::Method::Delete => wit::Method::Delete,
            old::Method::Head => wit::Method::Head,
        },
        url: r.url,
        headers: r.headers,
        body: r.body,
        answer: wit::Answer::Plugin,
    }
}

pub(super) fn reply(r: old::Reply) -> wit::Reply {
    wit::Reply {
        kind: match r.kind {
            old::ReplyKind::Response => wit::ReplyKind::Response,
            old::ReplyKind::Error => wit::ReplyKind::Error,
        },
        topic: r.topic,
        payload: r.payload,
        unchunked: r.unchunked,
    }
}
