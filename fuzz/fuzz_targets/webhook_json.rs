//! The webhook definition: any bytes are read as a Particle webhook; one
//! that is accepted renders the request of a fixed event, and the device
//! replies for a failure, an error status and a 200 whose body follows the
//! definition in the input.
//!
//! Input: the definition, then optionally a `0xff` byte (never in JSON
//! text) and the response body.
#![no_main]

use edgehook_particle::{Event, Outcome, Response, Webhook};
use libfuzzer_sys::fuzz_target;

const EVENT: Event<'static> = Event {
    id: "01J0000000000000000000000",
    device_id: "3f002b000000000000000000",
    name: "temp/room",
    data: br#"{"temp": 21.5, "hum": 40, "c": [{"ca": "<a&b>"}, 2.5e-7], "s": "x y"}"#,
    published_at: "2017-02-01T21:08:05.763Z",
    product_id: None,
};

fuzz_target!(|data: &[u8]| {
    let (definition, body) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(hook) = Webhook::from_slice(definition) else {
        return;
    };
    let _ = (hook.event(), hook.device_id(), hook.disabled(), hook.name());
    let _ = hook.request(&EVENT);
    let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    for outcome in [
        Outcome::Failed("connection refused"),
        Outcome::Response(Response {
            status: 404,
            headers: &headers,
            body: b"nope",
        }),
        Outcome::Response(Response {
            status: 200,
            headers: &headers,
            body,
        }),
    ] {
        if let Ok(replies) = hook.replies(&EVENT, &outcome) {
            for reply in replies {
                // What the crate promises the host about reply topics.
                assert!(!reply.topic.is_empty(), "{reply:?}");
                assert!(!reply.topic.starts_with("events/"), "{reply:?}");
                assert!(!reply.topic.contains(['+', '#', '\0']), "{reply:?}");
            }
        }
    }
});
