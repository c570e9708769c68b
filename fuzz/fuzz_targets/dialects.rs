//! The Iottly and Mainflux webhook parsers: any bytes are a `POST` body of
//! each route (an Iottly webhook, a Mainflux batch, a Mainflux `PUT`). What
//! they accept is within the limits, survives the round trip through its
//! stored JSON, and reads back with every credential masked.
#![no_main]

use edgehook::dialects::{iottly, mainflux};
use edgehook::fleet::GroupId;
use edgehook::secrets::{MASK, is_secret_name};
use edgehook::topic::DeviceId;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The stored form reads back as itself.
fn round_trips<T: serde::Serialize + serde::de::DeserializeOwned>(definition: &T) {
    let stored = serde_json::to_string(definition).unwrap();
    let read: T = serde_json::from_str(&stored).unwrap();
    assert_eq!(serde_json::to_string(&read).unwrap(), stored);
}

/// A view shows no credential: secret headers end in the mask, and a URL
/// password, if any, is the mask.
fn masked(view: &Value) {
    for (name, value) in view["headers"].as_object().unwrap() {
        if is_secret_name(name) {
            assert!(value.as_str().unwrap().ends_with(MASK), "{name}: {value}");
        }
    }
    let url = url::Url::parse(view["url"].as_str().unwrap()).unwrap();
    assert!(matches!(url.password(), None | Some(MASK)), "{url}");
}

fuzz_target!(|body: &[u8]| {
    let project = GroupId::try_from("p1").unwrap();
    if let Ok(webhook) = iottly::parse(project, body) {
        assert!(webhook.headers.len() <= iottly::MAX_HEADERS);
        round_trips(&webhook);
        masked(&iottly::view("id", &webhook));
    }
    let thing = DeviceId::try_from("t1").unwrap();
    if let Ok(batch) = mainflux::parse_batch(body) {
        assert!(batch.len() <= mainflux::MAX_BATCH);
        for input in batch {
            let webhook = input.definition(thing.clone(), None);
            assert!(webhook.headers.len() <= mainflux::MAX_HEADERS);
            round_trips(&webhook);
            masked(&mainflux::view("id", &webhook));
        }
    }
    if let Ok(input) = mainflux::parse_one(body) {
        let webhook = input.definition(thing, Some(GroupId::try_from("g1").unwrap()));
        round_trips(&webhook);
        masked(&mainflux::view("id", &webhook));
    }
});
