//! One instance per event: an event's `on-response` runs in the instance of
//! its `on-event` (when the pool has room), no event sees another's, and
//! instances kept through slow requests never take the pool from new
//! events.

use std::time::Duration;

use edgehook::config::Settings;
use edgehook_tests::INSTANCES;

use crate::support::{Device, HostUnderTest, Scripted, Step, TestHost};

fn manifest(url: &str) -> String {
    format!("event = \"reading\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nurl = \"{url}\"\n")
}

/// The `webhook-id` of a request: its event's id.
fn event_id(seen: &crate::support::Seen) -> String {
    seen.headers["webhook-id"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_response_runs_in_the_instance_of_its_events_on_event_and_no_other() {
    let mut endpoint = Scripted::start(vec![Step::status(200, "ok")]).await;
    let host = TestHost::start(
        &[("instances", INSTANCES, &manifest(&endpoint.url("/")))],
        Settings::default(),
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "counter").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        device.publish("reading", "1").await;
        let id = event_id(&endpoint.next().await.seen);
        assert_eq!(
            device.next_text().await.0,
            "devices/counter/hook-sent/reading"
        );
        assert_eq!(
            device.next_text().await,
            (
                "devices/counter/hook-response/reading/0".to_owned(),
                format!("kept {id}")
            )
        );
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "every event has its own id: {ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_kept_through_slow_requests_leave_half_the_pool_to_new_events() {
    // Two pool slots: the first slow request keeps its instance (one slot
    // of two), the second may not (that would leave none), so the third
    // event still gets an instance while both requests hang.
    let slow = Duration::from_secs(5);
    let mut endpoint = Scripted::start(vec![
        Step::status(200, "a").after(slow),
        Step::status(200, "b").after(slow),
        Step::status(200, "c"),
    ])
    .await;
    let host = TestHost::start(
        &[("instances", INSTANCES, &manifest(&endpoint.url("/")))],
        Settings {
            plugin_instances: Some(2),
            ..Settings::default()
        },
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "slowpoke").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        device.publish("reading", "1").await;
        ids.push(event_id(&endpoint.next().await.seen));
    }
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let (topic, text) = device.next_text().await;
        if topic.starts_with("devices/slowpoke/hook-response/") {
            answers.push(text);
        }
    }
    assert_eq!(answers[0], "fresh", "the third event is answered first");
    answers[1..].sort();
    assert_eq!(
        answers[1..],
        ["fresh".to_owned(), format!("kept {}", ids[0])],
        "of the slow ones, only the first kept its instance"
    );
}
