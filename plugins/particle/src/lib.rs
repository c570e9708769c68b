//! The built-in plugin that runs every Particle-style webhook.
//!
//! The host hands the webhook's JSON definition to the plugin as its
//! configuration; [`edgehook_particle`] reads it and does the work. This
//! crate only maps between the guest SDK's types and the core crate's:
//! `on-event` renders the request (none if the webhook is `disabled`),
//! `on-response` renders the device messages. A definition or template that
//! fails becomes the call's error, which the host publishes as a
//! `hook-error`.

use edgehook_guest::{
    Answer, Error, Event, Method, Outcome, Reply, Request, Response, Result, Webhook,
};
use edgehook_particle as hook;
use std::cell::RefCell;
use std::rc::Rc;

/// The plugin.
#[derive(Debug)]
pub struct Particle;

impl Webhook for Particle {
    fn on_event(event: Event) -> Result<Option<Request>> {
        let webhook = definition()?;
        if webhook.disabled() {
            return Ok(None);
        }
        let request = webhook.request(&borrow(&event)).map_err(error)?;
        let method = match request.method {
            hook::Method::Get => Method::Get,
            hook::Method::Post => Method::Post,
            hook::Method::Put => Method::Put,
            hook::Method::Delete => Method::Delete,
        };
        Ok(Some(Request {
            method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            answer: Answer::Plugin,
        }))
    }

    fn on_response(event: Event, outcome: Outcome) -> Result<Vec<Reply>> {
        let webhook = definition()?;
        let outcome = match &outcome {
            Outcome::Response(Response {
                status,
                headers,
                body,
            }) => hook::Outcome::Response(hook::Response {
                status: *status,
                headers,
                body,
            }),
            Outcome::Failed(reason) => hook::Outcome::Failed(reason),
        };
        let replies = webhook.replies(&borrow(&event), &outcome).map_err(error)?;
        Ok(replies.into_iter().map(reply).collect())
    }
}

/// The webhook definition the host passed as configuration, read once per
/// instance: the host runs an event's `on-response` in the instance of its
/// `on-event` when it can, and then it is not read again. Kept with the
/// text it was read from, so that another configuration (as the native
/// tests give each test) is read afresh.
fn definition() -> Result<Rc<hook::Webhook>> {
    thread_local! {
        static DEFINITION: RefCell<Option<(String, Rc<hook::Webhook>)>> = const { RefCell::new(None) };
    }
    let json = edgehook_guest::config_json();
    DEFINITION.with_borrow_mut(|cached| {
        if let Some((text, webhook)) = cached
            && *text == json
        {
            return Ok(webhook.clone());
        }
        let webhook = Rc::new(
            hook::Webhook::from_slice(json.as_bytes())
                .map_err(|e| Error::new(format!("webhook definition: {e}")))?,
        );
        *cached = Some((json, webhook.clone()));
        Ok(webhook)
    })
}

fn borrow(event: &Event) -> hook::Event<'_> {
    hook::Event {
        id: &event.id,
        device_id: &event.device_id,
        name: &event.name,
        data: &event.data,
        published_at: &event.published_at,
        product_id: event.group.as_deref(),
    }
}

fn error(err: hook::RenderError) -> Error {
    Error::new(err.to_string())
}

fn reply(reply: hook::Reply) -> Reply {
    let message = match reply.kind {
        hook::ReplyKind::Response => Reply::response(reply.payload),
        hook::ReplyKind::Error => Reply::error(
            String::from_utf8(reply.payload)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    };
    let message = message.topic(reply.topic);
    if reply.unchunked {
        message.unchunked()
    } else {
        message
    }
}

edgehook_guest::export!(Particle);

#[cfg(test)]
mod tests {
    use edgehook_guest::{ReplyKind, testing};
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_the_request_of_the_definition() {
        testing::set_config(json!({
            "event": "temp", "url": "https://example.com/{{PARTICLE_DEVICE_ID}}",
            "requestType": "PUT", "json": {"t": "{{{t}}}"}, "noDefaults": true
        }));
        let request = Particle::on_event(testing::event("dev-1", "temp", br#"{"t": 21.5}"#))
            .unwrap()
            .unwrap();
        assert_eq!(request.method, Method::Put);
        assert_eq!(request.url, "https://example.com/dev-1");
        assert_eq!(request.body, br#"{"t":"21.5"}"#);
        assert_eq!(
            request.headers,
            [
                ("accept".to_owned(), "application/json".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
    }

    #[test]
    fn disabled_webhooks_send_nothing_and_bad_ones_say_why() {
        testing::set_config(json!({"event": "t", "url": "https://x.test", "disabled": true}));
        assert_eq!(
            Particle::on_event(testing::event("d", "t", b"")).unwrap(),
            None
        );
        testing::set_config(json!({"event": "t", "url": "https://x.test", "colour": 1}));
        let err = Particle::on_event(testing::event("d", "t", b"")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("webhook definition: `colour`: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn maps_replies_with_their_topics() {
        testing::set_config(json!({
            "event": "temp", "url": "https://example.com/in",
            "responseTopic": "{{PARTICLE_DEVICE_ID}}/hook-response/temp", "unchunked": true
        }));
        let response = |status| {
            Outcome::Response(Response {
                status,
                headers: vec![],
                body: b"42".to_vec(),
            })
        };
        let event = || testing::event("dev-1", "temp", b"1");
        let replies = Particle::on_response(event(), response(200)).unwrap();
        assert_eq!(
            replies,
            [Reply::response(b"42".to_vec())
                .topic("dev-1/hook-response/temp")
                .unchunked()]
        );
        let replies = Particle::on_response(event(), response(404)).unwrap();
        assert_eq!(
            replies,
            [Reply::error("error status 404 from example.com").topic("hook-error/temp")]
        );
        let replies = Particle::on_response(event(), Outcome::Failed("timed out".into())).unwrap();
        assert_eq!(replies[0].kind, ReplyKind::Error);
        assert_eq!(replies[0].payload, b"timed out");
    }
}
