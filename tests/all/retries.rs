//! Failed deliveries, end to end: retries on the schedule and after a
//! `Retry-After`, what is never retried, Particle's sleeping hosts, webhooks
//! disabled after failing in a row, and per-host concurrency — with a real
//! device over MQTT, Particle-style webhooks, and real HTTP servers on
//! loopback that answer as scripted.

use std::time::Duration;

use edgehook::config::Settings;
use serde_json::json;

use crate::support::{Device, HostUnderTest, Scripted, Step, TestHost, closed_port, is_marker};

/// What the device is told when its request was skipped (Particle's words).
const SLEEPING: &str = "Sleeping, too many errors, please wait and try again";

/// The value of the sample `series` (name and labels, as written), or
/// panics when `/metrics` has no such line.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in the metrics:\n{text}"))
        .parse()
        .unwrap()
}

/// Whether `seen` carries the data `marker` (a Particle body names it).
fn carries_the_marker(seen: &crate::support::Seen) -> bool {
    String::from_utf8_lossy(&seen.body).contains("marker")
}

/// Publishes `temp2` (which the webhook on `temp` matches too) after what
/// must have no sequel, and checks that neither `endpoint` nor `device`
/// got anything before the marker's request and its hook-sent.
async fn nothing_before_marker(endpoint: &mut Scripted, device: &mut Device, why: &str) {
    device.publish("temp2", "marker").await;
    let before = endpoint.before_marker(carries_the_marker).await;
    assert!(before.is_empty(), "{why}; then came: {before:?}");
    let before = device.before_marker("devices/d1/hook-sent/temp2").await;
    assert!(before.is_empty(), "{why}; then came: {before:?}");
}

fn webhook_id(arrival: &crate::support::Arrival) -> String {
    arrival.seen.headers["webhook-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_is_retried_and_the_device_gets_only_the_answer_that_followed() {
    let mut endpoint =
        Scripted::start(vec![Step::status(503, "busy"), Step::status(200, "stored")]).await;
    let host = TestHost::retrying("200ms, 400ms").await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;

    let first = endpoint.next().await;
    let second = endpoint.next().await;
    assert_eq!(
        (first.seen.method.as_str(), first.seen.uri.path()),
        (second.seen.method.as_str(), second.seen.uri.path())
    );
    assert_eq!(first.seen.body, second.seen.body, "the same request again");
    assert!(!webhook_id(&first).is_empty());
    assert_eq!(
        webhook_id(&first),
        webhook_id(&second),
        "a retry keeps the event's webhook-id, so the receiver can deduplicate"
    );
    assert!(
        second.at - first.at >= Duration::from_millis(150),
        "the retry waited for its delay: {:?}",
        second.at - first.at
    );
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-sent/temp".into(), String::new())
    );
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-response/temp/0".into(), "stored".into())
    );
    nothing_before_marker(
        &mut endpoint,
        &mut device,
        "one hook-sent, one hook-response, and no hook-error for the 503",
    )
    .await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_retries_run_out_the_device_gets_one_hook_error_and_the_drop_is_counted() {
    let mut endpoint = Scripted::start(vec![Step::status(500, "oops")]).await;
    let host = TestHost::retrying("200ms, 400ms").await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;

    let ids: Vec<String> = [
        endpoint.next().await,
        endpoint.next().await,
        endpoint.next().await,
    ]
    .iter()
    .map(webhook_id)
    .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-sent/temp".into(), String::new())
    );
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-error/temp/0".into(),
            "error status 500 from 127.0.0.1".into()
        )
    );
    let text = host.metrics().await;
    assert_eq!(
        sample(&text, r#"edgehook_dropped_total{reason="retries"}"#),
        1.0
    );
    assert_eq!(sample(&text, "edgehook_retries_total"), 2.0);
    assert_eq!(
        sample(&text, r#"edgehook_requests_total{outcome="error_status"}"#),
        3.0
    );
    nothing_before_marker(
        &mut endpoint,
        &mut device,
        "1 attempt + 2 retries, then no more",
    )
    .await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_is_not_retried() {
    let mut endpoint = Scripted::start(vec![Step::status(404, "no such thing")]).await;
    let host = TestHost::retrying("50ms, 50ms").await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/missing") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;

    endpoint.next().await;
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-sent/temp".into(), String::new())
    );
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-error/temp/0".into(),
            "error status 404 from 127.0.0.1".into()
        )
    );
    let text = host.metrics().await;
    assert_eq!(sample(&text, "edgehook_retries_total"), 0.0);
    assert_eq!(
        sample(&text, r#"edgehook_dropped_total{reason="retries"}"#),
        0.0
    );
    nothing_before_marker(&mut endpoint, &mut device, "a 404 is final").await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_retried_no_sooner_than_its_retry_after() {
    let mut endpoint = Scripted::start(vec![
        Step::status(429, "slow down").header("Retry-After", "1"),
        Step::status(200, "stored"),
    ])
    .await;
    let host = TestHost::retrying("50ms").await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;

    let first = endpoint.next().await;
    let second = endpoint.next().await;
    let waited = second.at - first.at;
    assert!(
        waited >= Duration::from_millis(900),
        "the retry came {waited:?} after the 429, before its Retry-After of 1 s"
    );
    assert_eq!(webhook_id(&first), webhook_id(&second));
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-response/temp/0".into(), "stored".into())
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_closed_without_an_answer_is_retried() {
    let mut endpoint = Scripted::start(vec![Step::Close, Step::status(200, "stored")]).await;
    let host = TestHost::retrying("100ms").await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;

    let first = endpoint.next().await;
    let second = endpoint.next().await;
    assert_eq!(webhook_id(&first), webhook_id(&second));
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-sent/temp".into(), String::new())
    );
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-response/temp/0".into(), "stored".into())
    );
    let text = host.metrics().await;
    assert_eq!(
        sample(&text, r#"edgehook_requests_total{outcome="transport"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"edgehook_requests_total{outcome="success"}"#),
        1.0
    );
    assert_eq!(sample(&text, "edgehook_retries_total"), 1.0);
    nothing_before_marker(
        &mut endpoint,
        &mut device,
        "one hook-sent and one hook-response",
    )
    .await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_retried_until_the_retries_run_out() {
    let (_closed, port) = closed_port();
    let host = TestHost::retrying("100ms, 100ms").await;
    host.create_webhook(json!({ "event": "temp", "url": format!("http://127.0.0.1:{port}/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;

    let (topic, error) = loop {
        let (topic, text) = device.next_text().await;
        if !topic.contains("/hook-sent/") {
            break (topic, text);
        }
    };
    assert_eq!(topic, "devices/d1/hook-error/temp/0");
    assert!(
        error.starts_with("request to 127.0.0.1 failed: ")
            && error.ends_with(" (gave up after 3 attempts)"),
        "{error}"
    );
    let text = host.metrics().await;
    assert_eq!(
        sample(&text, r#"edgehook_requests_total{outcome="transport"}"#),
        3.0
    );
    assert_eq!(sample(&text, "edgehook_retries_total"), 2.0);
    assert_eq!(
        sample(&text, r#"edgehook_dropped_total{reason="retries"}"#),
        1.0
    );
    host.host.stop().await;
}

/// A host with no retries of failed or skipped requests, a webhook on
/// "sick" to a server at 127.0.0.1 that answers 500 to everything, and one
/// on "well" to a healthy server named `localhost` (throttled apart); once
/// 127.0.0.1 has failed 5 times in a row (it now sleeps).
async fn sleeping_host() -> (TestHost, Scripted, Scripted, Device) {
    let mut failing = Scripted::start(vec![Step::status(500, "down")]).await;
    let healthy = Scripted::start(vec![Step::status(200, "fine")]).await;
    let host = TestHost::start(
        &[],
        Settings {
            retry_delays: Some(String::new()),
            skip_retry_delays: Some(String::new()),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "sick", "url": failing.url("/in") }))
        .await;
    host.create_webhook(json!({ "event": "well", "url": healthy.localhost_url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    for i in 0..5 {
        device.publish("sick", format!("{i}")).await;
        failing.next().await;
        assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/sick");
        assert_eq!(
            device.next_text().await,
            (
                "devices/d1/hook-error/sick/0".into(),
                "error status 500 from 127.0.0.1".into()
            )
        );
    }
    (host, failing, healthy, device)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_too_many_errors_sleeps_and_its_events_are_skipped_while_others_flow() {
    let (host, mut failing, mut healthy, mut device) = sleeping_host().await;

    device.publish("sick", "5").await;
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-error/sick/0".into(), SLEEPING.into()),
        "skipped at once, with Particle's words, and no hook-sent"
    );
    // A marker to the same server under the name `localhost`, which is
    // not sleeping.
    host.create_webhook(json!({ "event": "mark", "url": failing.localhost_url("/marker") }))
        .await;
    device.publish("mark", "").await;
    let before = failing.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "the sleeping host does not see the skipped request: {before:?}"
    );
    // Whatever else the skipped event brought (see the next test).
    for (topic, _) in device.before_marker("devices/d1/hook-sent/mark").await {
        assert_eq!(topic, "devices/d1/hook-error/sick/0");
    }
    assert_eq!(device.next_text().await.0, "devices/d1/hook-error/mark/0");

    device.publish("well", "ok?").await;
    healthy.next().await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/well");
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-response/well/0".into(), "fine".into()),
        "another host still answers while 127.0.0.1 sleeps"
    );

    let text = host.metrics().await;
    assert!(sample(&text, "edgehook_skipped_total") >= 1.0, "{text}");
    assert_eq!(sample(&text, "edgehook_sleeping_hosts"), 1.0);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_skipped_for_good_gets_one_hook_error() {
    let (host, _failing, mut healthy, mut device) = sleeping_host().await;

    device.publish("sick", "5").await;

    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-error/sick/0".into(), SLEEPING.into())
    );
    device.publish("well", "marker").await;
    healthy.next().await;
    let more = device.before_marker("devices/d1/hook-sent/well").await;
    assert!(
        more.is_empty(),
        "one event, one hook-error, as for an event whose retries ran out; then came: {more:?}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_failing_in_a_row_is_disabled_until_it_is_replaced() {
    let mut endpoint = Scripted::start(vec![Step::status(404, "gone")]).await;
    let host = TestHost::start(
        &[],
        Settings {
            disable_after: Some(3),
            ..Settings::default()
        },
    )
    .await;
    let definition = json!({ "event": "temp", "url": endpoint.url("/gone") });
    let id = host.create_webhook(definition.clone()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    for i in 0..3 {
        device.publish("temp", format!("{i}")).await;
        endpoint.next().await;
        assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
        assert_eq!(
            device.next_text().await,
            (
                "devices/d1/hook-error/temp/0".into(),
                "error status 404 from 127.0.0.1".into()
            )
        );
    }

    device.publish("temp", "3").await;
    let (topic, error) = device.next_text().await;
    assert_eq!(topic, "devices/d1/hook-error/temp/0");
    assert!(
        error.starts_with("Too many errors, webhook disabled"),
        "{error}"
    );
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "a disabled webhook sends nothing: {before:?}"
    );
    let before = device.before_marker("devices/d1/hook-sent/marker").await;
    assert!(before.is_empty(), "one hook-error: {before:?}");
    assert_eq!(device.next_text().await.0, "devices/d1/hook-error/marker/0");
    let text = host.metrics().await;
    let disabled = format!(r#"edgehook_webhook_disabled{{plugin="webhook/{id}"}}"#);
    assert_eq!(sample(&text, &disabled), 1.0);
    assert_eq!(sample(&text, "edgehook_webhooks_disabled"), 1.0);

    let (status, body) = host
        .api(
            "PUT",
            &format!("/v1/webhooks/{id}"),
            &definition.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sample(&host.metrics().await, &disabled), 0.0);
    device.publish("temp", "4").await;
    let seen = endpoint.next().await;
    assert_eq!(seen.seen.uri.path(), "/gone", "replaced, it runs again");
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_does_not_hold_up_a_fast_one() {
    // The slow endpoint answers only when the test lets it: the fast one's
    // answer coming at all shows it did not wait for the slow one's.
    let mut slow = Scripted::start(vec![Step::status(200, "late").held()]).await;
    let mut fast = Scripted::start(vec![Step::status(200, "quick")]).await;
    let host = TestHost::retrying("").await;
    host.create_webhook(json!({ "event": "slow", "url": slow.url("/in") }))
        .await;
    host.create_webhook(json!({ "event": "fast", "url": fast.localhost_url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    for i in 0..50 {
        device.publish("slow", format!("{i}")).await;
    }
    slow.next().await;
    device.publish("fast", "now").await;

    fast.next().await;
    let mut before = Vec::new();
    let answered = loop {
        let (topic, text) = device.next_text().await;
        if topic == "devices/d1/hook-response/fast/0" {
            break (topic, text);
        }
        before.push(topic);
    };
    assert_eq!(answered.1, "quick");
    assert_eq!(
        before,
        ["devices/d1/hook-sent/fast"],
        "nothing of the slow webhook came first"
    );
    slow.release();
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn host_concurrency_caps_the_requests_in_progress_to_one_host() {
    let mut endpoint = Scripted::start(vec![
        Step::status(200, "done").after(Duration::from_secs(1)),
    ])
    .await;
    let host = TestHost::start(
        &[],
        Settings {
            host_concurrency: Some(2),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "job", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    for i in 0..6 {
        device.publish("job", format!("{i}")).await;
    }

    let mut answers = 0;
    while answers < 6 {
        let (topic, text) = device.next_text().await;
        if topic == "devices/d1/hook-response/job/0" {
            assert_eq!(text, "done");
            answers += 1;
        }
    }
    for _ in 0..6 {
        endpoint.next().await;
    }
    assert_eq!(
        endpoint.peak_in_progress(),
        2,
        "at most 2 requests at once, and the 2 were used"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_webhook_is_tried_no_more_and_the_device_hears_why() {
    let mut endpoint = Scripted::start(vec![Step::status(500, "down")]).await;
    // Long enough that the DELETE comes before the first retry is due.
    let host = TestHost::retrying("2s, 2s, 2s").await;
    let id = host
        .create_webhook(json!({ "event": "temp", "url": endpoint.url("/deleted") }))
        .await;
    host.create_webhook(json!({ "event": "later", "url": endpoint.url("/later") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;
    assert_eq!(endpoint.next().await.seen.uri.path(), "/deleted");
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    let (status, body) = host.api("DELETE", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(status, 200, "{body}");

    // Its event is finished at once, with the reason.
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-error/temp/0".into(),
            format!("not delivered: webhook/{id} was deleted")
        )
    );
    // A webhook failing on the same schedule, started after the DELETE:
    // its retry comes after any the deleted webhook could have made.
    device.publish("later", "x").await;
    let first = endpoint.next().await;
    let second = endpoint.next().await;
    assert_eq!(
        [first.seen.uri.path(), second.seen.uri.path()],
        ["/later", "/later"],
        "no attempt of the deleted webhook after its DELETE"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_webhook_tries_the_old_definition_no_more() {
    let mut endpoint = Scripted::start(vec![Step::status(500, "down")]).await;
    // Long enough that the PUT comes before the first retry is due.
    let host = TestHost::retrying("2s, 2s, 2s").await;
    let id = host
        .create_webhook(json!({ "event": "temp", "url": endpoint.url("/old") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;
    assert_eq!(endpoint.next().await.seen.uri.path(), "/old");
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    let replacement = json!({ "event": "temp", "url": endpoint.url("/new") }).to_string();
    let (status, body) = host
        .api("PUT", &format!("/v1/webhooks/{id}"), &replacement)
        .await;
    assert_eq!(status, 200, "{body}");

    // The event that waited for its retry ends at once, saying why.
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-error/temp/0".into(),
            format!(
                "not delivered: webhook/{id} was replaced; its new definition takes the events that come from now on"
            )
        )
    );
    // The next event goes to the new destination, and its retry after it:
    // no attempt of the old definition came in between.
    device.publish("temp", "22").await;
    let first = endpoint.next().await;
    let second = endpoint.next().await;
    assert_eq!(
        [first.seen.uri.path(), second.seen.uri.path()],
        ["/new", "/new"],
        "no attempt of the old definition after the PUT"
    );
    host.host.stop().await;
}
