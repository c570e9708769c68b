//! The delivery history (CONTRACT section 15), end to end over real
//! sockets: every attempt kept and masked, filters and cursor pages, kept
//! through a restart and within its size; a webhook's own retry schedule,
//! the dead letter it leaves when it gives up, and replays — of one event
//! and by filter — that run through the webhook again under the event's
//! original `webhook-id` and answer the device again.

use std::collections::BTreeSet;

use edgehook::config::Settings;
use serde_json::{Value, json};

use crate::support::{Device, HostUnderTest, Scripted, Step, TestHost, cli};

/// A Standard Webhooks secret: its requests carry `webhook-id`.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn webhook_id(arrival: &crate::support::Arrival) -> String {
    arrival.seen.headers["webhook-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The attempts of a page (`deliveries` or `dead_letters`).
fn attempts<'a>(page: &'a Value, list: &str) -> &'a Vec<Value> {
    page[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {page}"))
}

/// `GET path`, which must answer `200`.
async fn get(host: &TestHost, path: &str) -> Value {
    let (status, body) = host.api("GET", path, "").await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// `GET path` once its `list` has `n` attempts.
async fn wait_for_n(host: &TestHost, path: &str, list: &str, n: usize) -> Value {
    host.wait_for(path, |page| page[list].as_array().map(Vec::len) == Some(n))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_are_kept_masked_in_filtered_pages_and_through_a_restart() {
    let mut endpoint = Scripted::start(vec![Step::status(200, "stored")]).await;
    let host = TestHost::start(&[], Settings::default()).await;
    host.create_webhook(json!({
        "event": "temp",
        "url": endpoint.url("/in?api_key=key-SECRET1"),
        "headers": { "Authorization": "Bearer SECRET2" },
        "json": { "v": "{{PARTICLE_EVENT_VALUE}}", "password": "SECRET3" },
    }))
    .await;
    let d1 = Device::connect(host.mqtt_addr(), "d1").await;
    let d2 = Device::connect(host.mqtt_addr(), "d2").await;
    for i in 0..3 {
        d1.publish("temp", format!("{i}")).await;
        d2.publish("temp", format!("{i}")).await;
    }
    for _ in 0..6 {
        endpoint.next().await;
    }

    let all = wait_for_n(&host, "/v1/deliveries?limit=100", "deliveries", 6).await;
    let text = all.to_string();
    assert!(!text.contains("SECRET"), "a secret in the history: {text}");
    for a in attempts(&all, "deliveries") {
        assert_eq!(a["outcome"], "delivered", "{a}");
        assert_eq!(a["attempt"], 1, "{a}");
        assert_eq!(a["request"]["method"], "POST", "{a}");
        assert_eq!(a["response"]["status"], 200, "{a}");
        assert_eq!(a["response"]["body"], "stored", "{a}");
        assert!(
            a["request"]["body"].as_str().unwrap().contains("\"v\""),
            "{a}"
        );
    }

    let d2_only = get(&host, "/v1/deliveries?device=d2").await;
    let d2_attempts = attempts(&d2_only, "deliveries");
    assert_eq!(d2_attempts.len(), 3);
    assert!(d2_attempts.iter().all(|a| a["device_id"] == "d2"));
    let none = get(&host, "/v1/deliveries?since=2999-01-01T00:00:00Z").await;
    assert!(attempts(&none, "deliveries").is_empty());

    let first = get(&host, "/v1/deliveries?limit=4").await;
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = get(&host, &format!("/v1/deliveries?limit=4&cursor={cursor}")).await;
    let ids: BTreeSet<_> = attempts(&first, "deliveries")
        .iter()
        .chain(attempts(&second, "deliveries"))
        .map(|a| a["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids.len(),
        6,
        "two pages, every attempt once: {first} {second}"
    );
    assert!(second["next_cursor"].is_null(), "{second}");

    let (status, bad) = host.api("GET", "/v1/deliveries?outcome=lost", "").await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("outcome"), "{bad}");

    let host = host.restart().await;
    let kept = wait_for_n(&host, "/v1/deliveries?limit=100", "deliveries", 6).await;
    assert_eq!(
        kept["deliveries"], all["deliveries"],
        "the same after a restart"
    );
    let one = &attempts(&kept, "deliveries")[0];
    let event = get(
        &host,
        &format!("/v1/deliveries/{}", one["event_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(event["event"]["device_id"], one["device_id"], "{event}");
    assert_eq!(attempts(&event, "attempts").len(), 1, "{event}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_schedule_gives_up_into_a_dead_letter_that_a_replay_delivers() {
    let mut endpoint = Scripted::start(vec![
        Step::status(503, "busy"),
        Step::status(503, "busy"),
        Step::status(503, "busy"),
        Step::status(200, "stored"),
    ])
    .await;
    // The host itself retries nothing (`retry_delays` empty): the three
    // attempts are the webhook's own schedule.
    let host = TestHost::start(&[], Settings::default()).await;
    host.create_webhook(json!({
        "event": "temp",
        "url": endpoint.url("/in"),
        "secret": SECRET,
        "retry": { "schedule": ["100ms", "200ms"] },
    }))
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21.5").await;
    let first = endpoint.next().await;
    endpoint.next().await;
    endpoint.next().await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    let (topic, error) = device.next_text().await;
    assert_eq!(topic, "devices/d1/hook-error/temp/0", "{error}");

    let dead = wait_for_n(&host, "/v1/dead-letters", "dead_letters", 1).await;
    let letter = &attempts(&dead, "dead_letters")[0];
    assert_eq!(
        (&letter["outcome"], &letter["attempt"]),
        (&json!("gave_up"), &json!(3))
    );
    let event_id = letter["event_id"].as_str().unwrap().to_owned();
    assert_eq!(
        event_id,
        webhook_id(&first),
        "the event id is its webhook-id"
    );
    let all = get(&host, &format!("/v1/deliveries/{event_id}")).await;
    let outcomes: Vec<_> = attempts(&all, "attempts")
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["retrying", "retrying", "gave_up"]);

    let (status, replayed) = host
        .api("POST", &format!("/v1/deliveries/{event_id}/replay"), "")
        .await;
    assert_eq!((status, &replayed), (202, &json!({ "replayed": 1 })));
    let again = endpoint.next().await;
    assert_eq!(
        webhook_id(&again),
        event_id,
        "a replay keeps the webhook-id"
    );
    assert_eq!(again.seen.body, first.seen.body, "the same request");
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-response/temp/0".into(), "stored".into()),
        "the answer goes to the device again"
    );
    wait_for_n(&host, "/v1/dead-letters", "dead_letters", 0).await;
    let all = get(&host, &format!("/v1/deliveries/{event_id}")).await;
    let last = attempts(&all, "attempts").last().unwrap().clone();
    assert_eq!(
        (&last["outcome"], &last["attempt"]),
        (&json!("delivered"), &json!(4))
    );

    let (status, _) = host
        .api("POST", "/v1/deliveries/0123456789abcdef/replay", "")
        .await;
    assert_eq!(status, 404);
    let (status, bad) = host
        .api(
            "POST",
            "/v1/webhooks",
            &json!({"event": "x", "url": endpoint.url("/"), "retry": {"schedule": ["23h", "2h"]}})
                .to_string(),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("retry"), "{bad}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_by_filter_sends_every_dead_letter_again() {
    let mut endpoint = Scripted::start(vec![
        Step::status(500, "down"),
        Step::status(500, "down"),
        Step::status(500, "down"),
        Step::status(200, "stored"),
    ])
    .await;
    let host = TestHost::start(&[], Settings::default()).await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in"), "secret": SECRET }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    let mut originals = BTreeSet::new();
    for i in 0..3 {
        device.publish("temp", format!("{i}")).await;
        originals.insert(webhook_id(&endpoint.next().await));
    }
    wait_for_n(&host, "/v1/dead-letters", "dead_letters", 3).await;

    let (status, bad) = host.api("POST", "/v1/deliveries/replay", "{}").await;
    assert_eq!(status, 400, "`since` is required: {bad}");
    let body = json!({ "outcome": "gave_up", "since": "1h" }).to_string();
    let (status, replayed) = host.api("POST", "/v1/deliveries/replay", &body).await;
    assert_eq!((status, &replayed), (202, &json!({ "replayed": 3 })));
    let mut again = BTreeSet::new();
    for _ in 0..3 {
        again.insert(webhook_id(&endpoint.next().await));
    }
    assert_eq!(again, originals, "each dead letter once, under its own id");
    wait_for_n(&host, "/v1/dead-letters", "dead_letters", 0).await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_keeps_within_its_size_the_oldest_going_first() {
    let mut endpoint = Scripted::start(vec![Step::status(200, "ok")]).await;
    let max = 16 * 1024;
    let host = TestHost::start(
        &[],
        Settings {
            history_max_bytes: Some(bytesize::ByteSize::b(max)),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    for i in 0..60 {
        device.publish("temp", format!("seq-{i:02}")).await;
        endpoint.next().await;
    }
    let page = host
        .wait_for("/v1/deliveries?limit=1000", |page| {
            page["deliveries"][0]["request"]["body"]
                .as_str()
                .is_some_and(|b| b.contains("seq-59"))
        })
        .await;
    let kept = attempts(&page, "deliveries");
    let oldest = kept.last().unwrap()["request"]["body"].as_str().unwrap();
    assert!(kept.len() < 60, "{} kept", kept.len());
    assert!(
        !oldest.contains("seq-00"),
        "the oldest went first: {oldest}"
    );
    assert!(host.metric("edgehook_history_bytes").await <= max);
    assert_eq!(
        host.metric("edgehook_history_attempts").await,
        kept.len() as u64
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_renders_the_request_that_a_test_then_sends() {
    let mut endpoint = Scripted::start(vec![Step::status(201, "created")]).await;
    let host = TestHost::start(&[], Settings::default()).await;
    let definition = json!({
        "event": "temp",
        "url": endpoint.url("/in/{{PARTICLE_DEVICE_ID}}"),
        "requestType": "PUT",
        "headers": { "X-Token": "tok-SECRET" },
        "json": { "celsius": "{{PARTICLE_EVENT_VALUE}}", "at": "{{PARTICLE_PUBLISHED_AT}}" },
    });
    let sample = json!({ "data": "21.5", "device_id": "d7" });
    let (status, preview) = host
        .api(
            "POST",
            "/v1/webhooks/preview",
            &json!({ "webhook": definition, "event": sample }).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let request = &preview["request"];
    assert_eq!(request["method"], "PUT");
    assert_eq!(request["url"], endpoint.url("/in/d7"));
    assert!(!preview.to_string().contains("SECRET"), "{preview}");
    let (status, bad) = host
        .api(
            "POST",
            "/v1/webhooks/preview",
            &json!({ "webhook": { "event": "temp" } }).to_string(),
        )
        .await;
    assert_eq!(status, 400, "a definition without a url: {bad}");

    let id = host.create_webhook(definition).await;
    let (status, tested) = host
        .api(
            "POST",
            &format!("/v1/webhooks/{id}/test"),
            &sample.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{tested}");
    let arrival = endpoint.next().await;
    assert_eq!(arrival.seen.uri.path(), "/in/d7");
    let sent: Value = serde_json::from_slice(&arrival.seen.body).unwrap();
    let previewed: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["celsius"], previewed["celsius"], "the same rendering");
    assert_eq!(tested["attempt"]["response"]["status"], 201, "{tested}");
    assert_eq!(tested["attempt"]["response"]["body"], "created");
    assert_eq!(tested["attempt"]["outcome"], "delivered");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_shows_and_replays_deliveries() {
    let mut endpoint =
        Scripted::start(vec![Step::status(500, "down"), Step::status(200, "stored")]).await;
    let host = TestHost::start(&[], Settings::default()).await;
    let id = host
        .create_webhook(json!({ "event": "temp", "url": endpoint.url("/in"), "secret": SECRET }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21.5").await;
    let event_id = webhook_id(&endpoint.next().await);
    wait_for_n(&host, "/v1/dead-letters", "dead_letters", 1).await;
    let api = format!("http://{}", host.host.api_addr);
    let login = [
        "--api",
        api.as_str(),
        "--token",
        host.host.api_token.as_str(),
    ];

    let list = [&["deliveries", "list", "--dead", "--json"][..], &login].concat();
    let (ok, out, err) = cli(&list).await;
    assert!(ok, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(
        (&rows[0]["event_id"], &rows[0]["webhook"]),
        (&json!(event_id), &json!(id))
    );
    let table = [&["deliveries", "list", "--outcome", "gave_up"][..], &login].concat();
    let (ok, out, err) = cli(&table).await;
    assert!(
        ok && out.contains(&event_id) && out.contains("status 500"),
        "{out}{err}"
    );

    let show = [&["deliveries", "show", event_id.as_str()][..], &login].concat();
    let (ok, out, err) = cli(&show).await;
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["event"]["data"], "21.5", "{out}");

    let replay = [&["deliveries", "replay", event_id.as_str()][..], &login].concat();
    let (ok, out, err) = cli(&replay).await;
    assert!(ok && out.contains("Replaying 1"), "{out}{err}");
    assert_eq!(webhook_id(&endpoint.next().await), event_id);
    let (ok, _, err) =
        cli(&[&["deliveries", "list", "--outcome", "lost"][..], &login].concat()).await;
    assert!(!ok && err.contains("outcome"), "{err}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_history_of_no_bytes_keeps_nothing() {
    let mut endpoint = Scripted::start(vec![Step::status(200, "stored")]).await;
    let host = TestHost::start(
        &[],
        Settings {
            history_max_bytes: Some(bytesize::ByteSize::b(0)),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21.5").await;
    endpoint.next().await;
    // The attempt is recorded, or not, before the answer is published.
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    assert_eq!(
        device.next_text().await.0,
        "devices/d1/hook-response/temp/0"
    );
    assert_eq!(host.metric("edgehook_history_dropped_total").await, 0);

    // A reload turns the history on; the next event's attempt is then the
    // only one the writer was ever given.
    let on = edgehook::config::Config::build(Settings {
        allow_private_networks: Some(true),
        ..Settings::default()
    })
    .unwrap();
    host.host.reload(&on);
    device.publish("temp", "marker").await;
    endpoint.next().await;
    let page = wait_for_n(&host, "/v1/deliveries", "deliveries", 1).await;
    let kept = &attempts(&page, "deliveries")[0];
    assert!(
        kept["request"]["body"].as_str().unwrap().contains("marker"),
        "{page}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_token_the_history_is_neither_read_nor_replayed_nor_tried() {
    let mut endpoint = Scripted::start(vec![Step::status(200, "stored")]).await;
    let host = TestHost::start(&[], Settings::default()).await;
    let id = host
        .create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21.5").await;
    endpoint.next().await;
    let page = wait_for_n(&host, "/v1/deliveries", "deliveries", 1).await;
    let event_id = page["deliveries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let api = host.api_addr();
    let wrong = Some("wrong-token-wrong-token");
    for (method, path, body) in [
        ("GET", "/v1/deliveries".to_owned(), String::new()),
        ("GET", format!("/v1/deliveries/{event_id}"), String::new()),
        ("GET", "/v1/dead-letters".to_owned(), String::new()),
        (
            "POST",
            format!("/v1/deliveries/{event_id}/replay"),
            String::new(),
        ),
        (
            "POST",
            "/v1/deliveries/replay".to_owned(),
            json!({ "since": "1h" }).to_string(),
        ),
        (
            "POST",
            "/v1/webhooks/preview".to_owned(),
            json!({ "webhook": { "event": "t", "url": endpoint.url("/p") } }).to_string(),
        ),
        ("POST", format!("/v1/webhooks/{id}/test"), String::new()),
    ] {
        for token in [None, wrong] {
            let (status, answer) =
                crate::support::http_request(api, method, &path, token, &body).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert!(!answer.to_string().contains(&event_id), "{answer}");
        }
    }
    // Nothing was replayed or tried: the next request the endpoint sees is
    // the one an authorised test sends.
    let (status, tested) = host
        .api(
            "POST",
            &format!("/v1/webhooks/{id}/test"),
            r#"{"data": "marker"}"#,
        )
        .await;
    assert_eq!(status, 200, "{tested}");
    let next = endpoint.next().await;
    assert!(
        String::from_utf8_lossy(&next.seen.body).contains("marker"),
        "{:?}",
        next.seen.body
    );
    host.host.stop().await;
}
