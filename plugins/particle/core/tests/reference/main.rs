//! Every example of Particle's webhook reference (seed 004), reproduced:
//! the request each example gives (method, URL with query, headers, body)
//! and the messages the device receives.
mod requests;
mod responses;
mod variables;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edgehook_particle::{
    DefinitionError, Event, Method, Outcome, Reply, ReplyKind, Request, Response, Webhook,
};
use serde_json::{Value, json};

/// The device of the reference's examples.
const DEVICE: &str = "3f002b000000000000000000";
/// The publication time of the reference's default-data example.
const PUBLISHED_AT: &str = "2017-02-01T21:08:05.763Z";

fn event<'a>(name: &'a str, data: &'a [u8]) -> Event<'a> {
    Event {
        id: "01J0000000000000000000000",
        device_id: DEVICE,
        name,
        data,
        published_at: PUBLISHED_AT,
        product_id: None,
    }
}

fn webhook(definition: Value) -> Webhook {
    Webhook::from_json(&definition).unwrap_or_else(|e| panic!("{definition}: {e}"))
}

fn request(definition: Value, name: &str, data: &[u8]) -> Request {
    webhook(definition)
        .request(&event(name, data))
        .expect("request renders")
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).expect("UTF-8 body")
}

fn ok(body: &[u8]) -> Outcome<'_> {
    Outcome::Response(Response {
        status: 200,
        headers: &[],
        body,
    })
}

fn response(kind: ReplyKind, topic: &str, payload: &[u8]) -> Reply {
    Reply {
        kind,
        topic: topic.to_owned(),
        payload: payload.to_vec(),
        unchunked: false,
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON_ACCEPT: (&str, &str) = ("accept", "application/json");
const JSON_TYPE: (&str, &str) = ("content-type", "application/json");
