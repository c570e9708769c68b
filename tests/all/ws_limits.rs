//! The WebSocket API's limits (README, "Live telemetry and commands: the
//! WebSocket API", Limits) over real sockets: subscriptions per connection,
//! streams per subscription, the largest message a client may send, the
//! longest command and the commands in progress. (The connection limit is
//! in `ws.rs`.)

use edgehook::config::Settings;
use serde_json::{Value, json};

use crate::support::{Device, HostUnderTest, TestHost, Ws};

/// The next frame, which must be an `error` answering `request_id`; its
/// message.
async fn error_for(ws: &mut Ws, request_id: &str) -> String {
    let frame = ws.next().await;
    assert_eq!(
        (&frame["type"], &frame["request_id"]),
        (&json!("error"), &json!(request_id)),
        "{frame}"
    );
    frame["payload"]["message"]
        .as_str()
        .expect("an error message")
        .to_owned()
}

fn subscribe(request_id: &str, payload: Value) -> Value {
    json!({ "type": "subscribe", "request_id": request_id, "payload": payload })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_holds_64_subscriptions_and_is_told_when_it_asks_for_more() {
    let host = TestHost::start(&[], Settings::default()).await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    let mut ids = Vec::new();
    for _ in 0..64 {
        ids.push(ws.subscribe("d1", Some(&["temp"])).await);
    }
    ws.send(subscribe("over", json!({ "device_id": "d1" })))
        .await;
    let message = error_for(&mut ws, "over").await;
    assert!(message.contains("64"), "{message}");

    // The connection stays open, and an unsubscribe makes room.
    ws.send(json!({ "type": "unsubscribe", "request_id": "u", "payload": { "subscription_id": ids[0] } }))
        .await;
    let reply = ws.next().await;
    assert_eq!(
        (&reply["type"], &reply["request_id"]),
        (&json!("unsubscribed"), &json!("u")),
        "{reply}"
    );
    let extra = ws.subscribe("d1", None).await;
    // The refused subscription sends nothing: the one event comes once to
    // each of the 64 subscriptions held, never under another id.
    device.publish("temp", "21.5").await;
    let mut seen = Vec::new();
    for _ in 0..64 {
        let frame = ws.next().await;
        assert_eq!(frame["type"], "telemetry", "{frame}");
        seen.push(
            frame["payload"]["subscription_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    seen.sort();
    let mut held: Vec<String> = ids[1..].to_vec();
    held.push(extra.clone());
    held.sort();
    assert_eq!(seen, held);
    // The marker: an event only the unfiltered subscription takes comes
    // next, so no 65th `temp` frame came for the refused one.
    device.publish("marker", "1").await;
    let frame = ws.next().await;
    assert_eq!(
        (
            &frame["payload"]["stream"],
            &frame["payload"]["subscription_id"]
        ),
        (&json!("marker"), &json!(extra)),
        "{frame}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_names_at_most_64_streams() {
    let host = TestHost::start(&[], Settings::default()).await;
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    let streams: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();

    ws.send(subscribe(
        "many",
        json!({ "device_id": "d1", "streams": streams }),
    ))
    .await;
    let message = error_for(&mut ws, "many").await;
    assert!(message.contains("64"), "{message}");

    ws.send(subscribe(
        "most",
        json!({ "device_id": "d1", "streams": streams[..64] }),
    ))
    .await;
    let reply = ws.next().await;
    assert_eq!(
        (&reply["type"], &reply["request_id"]),
        (&json!("subscribed"), &json!("most")),
        "{reply}"
    );
    host.host.stop().await;
}

/// A subscribe message of exactly `len` bytes (padded in its request id).
fn message_of(len: usize) -> String {
    let bare = subscribe("", json!({ "device_id": "d1" })).to_string();
    let text = subscribe(&"r".repeat(len - bare.len()), json!({ "device_id": "d1" })).to_string();
    assert_eq!(text.len(), len);
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_of_64_kib_is_read_and_a_larger_one_ends_the_connection() {
    let host = TestHost::start(&[], Settings::default()).await;
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;

    ws.send_text(&message_of(64 << 10)).await;
    let reply = ws.next().await;
    assert_eq!(reply["type"], "subscribed", "{reply}");

    ws.send_text(&message_of((64 << 10) + 1)).await;
    let (frames, close) = ws.read_to_end().await;
    assert_eq!(frames, 0, "the large message was answered");
    if let Some(close) = close {
        assert_ne!(
            u16::from(close.code),
            1000,
            "a normal close for a refused message: {close:?}"
        );
    }
    // The host goes on serving others.
    let mut other = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    other.subscribe("d1", None).await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_over_16_kib_is_refused_and_one_of_16_kib_reaches_the_device() {
    let host = TestHost::start(&[], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    let command = |request_id: &str, len: usize| {
        json!({ "type": "command", "request_id": request_id,
                "payload": { "device_id": "d1", "command": "c".repeat(len) } })
    };

    ws.send(command("long", (16 << 10) + 1)).await;
    let message = error_for(&mut ws, "long").await;
    assert!(message.contains("16384"), "{message}");

    ws.send(command("most", 16 << 10)).await;
    let (topic, payload) = device.next_text().await;
    assert_eq!(
        topic, "devices/d1/commands",
        "the refused command came first"
    );
    let sent: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(sent["request_id"], "most", "the refused command came first");
    assert_eq!(sent["command"].as_str().unwrap().len(), 16 << 10);

    // The HTTP route keeps the same limit.
    let (status, body) = host
        .api(
            "POST",
            "/v1/devices/d1/commands",
            &json!({ "command": "c".repeat((16 << 10) + 1) }).to_string(),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_most_ten_thousand_commands_are_in_progress() {
    let host = TestHost::start(&[], Settings::default()).await;
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    // Nobody answers: each command waits for its device (60 s).
    for i in 0..10_000 {
        ws.send(json!({ "type": "command", "request_id": format!("c{i}"),
                        "payload": { "device_id": "silent", "command": "uptime" } }))
            .await;
    }
    ws.send(json!({ "type": "command", "request_id": "over",
                    "payload": { "device_id": "silent", "command": "uptime" } }))
        .await;
    // The first frame: every earlier command was taken.
    let message = error_for(&mut ws, "over").await;
    assert!(message.contains("10000"), "{message}");
    // Over the HTTP route too (the limit is over all connections).
    let (status, body) = host
        .api(
            "POST",
            "/v1/devices/silent/commands",
            &json!({ "command": "uptime" }).to_string(),
        )
        .await;
    assert!(
        status == 503 || status == 429,
        "the 10,001st command over HTTP: {status} {body}"
    );
    host.host.stop().await;
}
