//! The devices' unit tests: event data, dealing, reading answers, broker URLs.

use super::broker::Broker;
use super::plan::{Pace, Plan, event_data};
use super::topics::{Answer, Topics};

#[test]
fn event_data_is_json_padded_to_the_size() {
    let data = event_data(42, 64);
    assert_eq!(data.len(), 64);
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["seq"], 42);
    assert_eq!(&event_data(7, 0)[..], br#"{"seq":7,"value":""}"#);
}

#[test]
fn events_are_dealt_round_robin() {
    let plan = Plan {
        devices: 3,
        events: 10,
        size: 64,
        pace: Pace::Flood,
    };
    assert_eq!((0..3).map(|d| plan.share(d)).collect::<Vec<_>>(), [4, 3, 3]);
    assert_eq!(plan.local(1, 7), Some(2));
    assert_eq!(plan.local(2, 7), None);
    assert_eq!(plan.local(1, 10), None);
}

#[test]
fn answers_are_read_from_topic_and_payload() {
    let topics = Topics::new("bench-001");
    let read = |topic: &str, payload: &'static [u8]| topics.read(topic, payload);
    assert_eq!(
        read("devices/bench-001/hook-response/load/0", b"17"),
        Some(Answer::Response(17))
    );
    assert_eq!(
        read("devices/bench-001/hook-error/load/17/0", b"boom"),
        Some(Answer::Error(17, b"boom"))
    );
    assert_eq!(read("devices/bench-001/hook-response/load/1", b"17"), None);
    assert_eq!(read("devices/bench-001/hook-response/load/0", b"{}"), None);
    assert_eq!(read("devices/bench-002/hook-response/load/0", b"17"), None);
}

#[test]
fn broker_urls_give_address_and_credentials() {
    let broker = Broker::from_url("mqtt://u:p@10.0.0.1").unwrap();
    assert_eq!(broker.to_string(), "10.0.0.1:1883");
    assert_eq!(broker.credentials, Some(("u".into(), "p".into())));
    let broker = Broker::from_url("mqtt://127.0.0.1:1884").unwrap();
    assert_eq!(broker.to_string(), "127.0.0.1:1884");
    assert!(Broker::from_url("mqtts://example.com").is_err());
}
