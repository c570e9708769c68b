//! The WebSocket API (`GET /v1/stream`, CONTRACT section 9) over real
//! sockets: a tokio-tungstenite client, devices on the embedded broker and
//! on mosquitto.

use std::time::Duration;

use edgehook::config::Settings;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::support::{Device, Endpoint, HostUnderTest, Mosquitto, TestHost, WAIT, Ws};

/// The status of a refused handshake.
fn refused_with(result: Result<Ws, Error>) -> u16 {
    match result {
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("refused otherwise than by HTTP: {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_and_the_connection_limit_are_checked_before_the_upgrade() {
    let settings = Settings {
        ws_max_connections: Some(2),
        ..Settings::default()
    };
    let host = TestHost::start(&[], settings).await;
    let addr = host.host.api_addr;
    let token = host.host.api_token.clone();
    assert_eq!(refused_with(Ws::try_connect(addr, None, None).await), 401);
    assert_eq!(
        refused_with(Ws::try_connect(addr, Some("wrong-key"), None).await),
        401
    );
    assert_eq!(
        refused_with(Ws::try_connect(addr, None, Some("wrong-key")).await),
        401
    );

    let by_query = Ws::try_connect(addr, Some(&token), None).await.unwrap();
    let mut by_header = Ws::try_connect(addr, None, Some(&token)).await.unwrap();
    assert_eq!(
        refused_with(Ws::try_connect(addr, Some(&token), None).await),
        503,
        "a third connection is over ws_max_connections"
    );
    by_header.subscribe("d1", None).await;

    // A closed connection gives its slot back.
    by_query.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match Ws::try_connect(addr, Some(&token), None).await {
            Ok(mut ws) => {
                ws.subscribe("d1", None).await;
                break;
            }
            Err(Error::Http(r)) if r.status() == 503 => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot never came back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
}

/// The next frame, which must be telemetry: (subscription, stream, value).
async fn telemetry(ws: &mut Ws) -> (String, String, Value) {
    let frame = ws.next().await;
    assert_eq!(frame["type"], "telemetry", "{frame}");
    let p = &frame["payload"];
    assert!(
        p["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
        "{frame}"
    );
    (
        p["subscription_id"].as_str().unwrap().to_owned(),
        p["stream"].as_str().unwrap().to_owned(),
        p["value"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_follows_the_device_and_stream_filters_until_unsubscribed() {
    let host = TestHost::start(&[], Settings::default()).await;
    let token = host.host.api_token.clone();
    let d1 = Device::connect(host.mqtt_addr(), "d1").await;
    let d2 = Device::connect(host.mqtt_addr(), "d2").await;
    let mut ws = Ws::connect(host.host.api_addr, &token).await;
    let mut watch_d2 = Ws::connect(host.host.api_addr, &token).await;
    let temp_only = ws.subscribe("d1", Some(&["temp"])).await;
    let all = ws.subscribe("d1", None).await;
    assert_ne!(temp_only, all);
    let d2_all = watch_d2.subscribe("d2", None).await;

    // d2's event is in the stream before d1's: seen by its watcher first,
    // so had the device filter let it through it would come first here.
    d2.publish("temp", "99").await;
    assert_eq!(
        telemetry(&mut watch_d2).await,
        (d2_all, "temp".into(), json!(99))
    );
    d1.publish("hum", "40").await;
    d1.publish("temp", "{\"c\": 21.5}").await;
    d1.publish("note", "not json").await;
    assert_eq!(
        telemetry(&mut ws).await,
        (all.clone(), "hum".into(), json!(40))
    );
    let temp = json!({"c": 21.5});
    let mut both = vec![telemetry(&mut ws).await, telemetry(&mut ws).await];
    both.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (temp_only.clone(), "temp".to_owned(), temp.clone()),
        (all.clone(), "temp".to_owned(), temp),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(both, expected);
    assert_eq!(
        telemetry(&mut ws).await,
        (all.clone(), "note".into(), json!("not json"))
    );

    ws.send(json!({"type": "unsubscribe", "request_id": "u1", "payload": {"subscription_id": temp_only}}))
        .await;
    let reply = ws.next().await;
    assert_eq!(reply["type"], "unsubscribed", "{reply}");
    assert_eq!(reply["request_id"], "u1");
    d1.publish("temp", "22").await;
    assert_eq!(telemetry(&mut ws).await, (all, "temp".into(), json!(22)));
    d1.publish("marker", "1").await;
    let (_, stream, _) = telemetry(&mut ws).await;
    assert_eq!(stream, "marker", "only the remaining subscription saw temp");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_messages_get_an_error_frame_and_the_connection_stays_open() {
    let host = TestHost::start(&[], Settings::default()).await;
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    let error = async |ws: &mut Ws, message: &str| -> Value {
        ws.send_text(message).await;
        let frame = ws.next().await;
        assert_eq!(frame["type"], "error", "{message}: {frame}");
        frame
    };
    let frame = error(&mut ws, "{not json").await;
    assert!(
        frame["payload"]["message"]
            .as_str()
            .unwrap()
            .starts_with("not JSON")
    );
    assert!(frame.get("request_id").is_none());
    let frame = error(
        &mut ws,
        r#"{"type":"dance","request_id":"r1","payload":{}}"#,
    )
    .await;
    assert_eq!(frame["request_id"], "r1");
    assert!(
        frame["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown type")
    );
    let frame = error(
        &mut ws,
        r#"{"type":"subscribe","request_id":"r2","payload":{}}"#,
    )
    .await;
    assert_eq!(frame["request_id"], "r2");
    assert!(
        frame["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("`device_id`"),
        "{frame}"
    );
    let frame = error(
        &mut ws,
        r#"{"type":"command","request_id":"r3","payload":{"device_id":"d1"}}"#,
    )
    .await;
    assert!(
        frame["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("`command`"),
        "{frame}"
    );
    let frame = error(
        &mut ws,
        r#"{"type":"unsubscribe","request_id":"r4","payload":{"subscription_id":"sub_404"}}"#,
    )
    .await;
    assert_eq!(frame["request_id"], "r4");
    let frame = error(
        &mut ws,
        r#"{"type":"command","request_id":"a/b","payload":{"device_id":"d1","command":"x"}}"#,
    )
    .await;
    assert!(
        frame["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("request id"),
        "{frame}"
    );
    ws.subscribe("d1", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_pings_and_closes_a_client_that_never_pongs() {
    // A pong timeout ten ping intervals long: a client that reads answers
    // well within it even on a loaded machine.
    let settings = Settings {
        ws_ping_interval: Some(Duration::from_millis(100)),
        ws_pong_timeout: Some(Duration::from_secs(1)),
        ..Settings::default()
    };
    let host = TestHost::start(&[], settings).await;
    let token = host.host.api_token.clone();
    // This one never reads, so its library never answers the pings.
    let mut silent = Ws::connect(host.host.api_addr, &token).await;
    let mut alive = Ws::connect(host.host.api_addr, &token).await;
    // Reading answers the pings: twenty of them span two pong timeouts.
    let mut pings = 0;
    while pings < 20 {
        match alive.next_message().await {
            Some(Message::Ping(_)) => pings += 1,
            other => panic!("expected pings, got {other:?} after {pings} ping(s)"),
        }
    }
    alive.subscribe("d1", None).await;

    let close = silent.close_frame().await;
    assert_eq!(close.code, CloseCode::Policy, "{close:?}");
    assert!(close.reason.contains("no pong within 1s"), "{close:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_every_connection_with_1001() {
    let TestHost { host, dir: _dir } = TestHost::start(&[], Settings::default()).await;
    let mut a = Ws::connect(host.api_addr, &host.api_token).await;
    let mut b = Ws::connect(host.api_addr, &host.api_token).await;
    a.subscribe("d1", None).await;
    let stopped = tokio::spawn(host.stop());
    for ws in [&mut a, &mut b] {
        let close = ws.close_frame().await;
        assert_eq!(close.code, CloseCode::Away, "{close:?}");
    }
    tokio::time::timeout(WAIT, stopped).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_connections_each_get_the_telemetry() {
    let host = TestHost::start(&[], Settings::default()).await;
    let addr = host.host.api_addr;
    let token = host.host.api_token.clone();
    let clients = futures::future::join_all((0..200).map(|_| {
        let token = token.clone();
        async move {
            let mut ws = Ws::connect(addr, &token).await;
            ws.subscribe("d1", Some(&["temp"])).await;
            ws
        }
    }))
    .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21").await;
    let values = futures::future::join_all(clients.into_iter().map(|mut ws| async move {
        let (_, stream, value) = telemetry(&mut ws).await;
        (stream, value)
    }))
    .await;
    assert_eq!(values.len(), 200);
    assert!(values.iter().all(|v| *v == ("temp".to_owned(), json!(21))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_consumer_is_cut_off_and_webhook_delivery_goes_on() {
    const EVENTS: usize = 2_000;
    const PROBE_EVERY: usize = 100;
    let host = TestHost::start(&[], Settings::default()).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    // The load is telemetry only; every 250th event is also delivered to a
    // webhook, the probe of the delivery pipeline.
    host.create_webhook(json!({ "event": "probe", "url": endpoint.url("/probe") }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    // Subscribed, then never read while 5,000 events a second flow: frames
    // of 4 KiB soon fill the socket buffers and the frame queue.
    let mut slow = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    slow.subscribe("d1", None).await;

    let payload = "x".repeat(8192);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for n in 1..=EVENTS {
        if n % 5 == 0 {
            tick.tick().await;
        }
        let name = if n % PROBE_EVERY == 0 {
            "probe"
        } else {
            "load"
        };
        device.publish(name, payload.as_str()).await;
    }
    let published = started.elapsed();
    for n in 0..EVENTS / PROBE_EVERY {
        let seen = tokio::time::timeout(WAIT, endpoint.next())
            .await
            .unwrap_or_else(|_| panic!("only {n} probes were delivered in time"));
        assert_eq!(seen.uri.path(), "/probe");
    }
    eprintln!(
        "{EVENTS} events published in {published:?}, every probe delivered after {:?}",
        started.elapsed()
    );

    // It was cut off: what it reads ends before the last event (a client
    // that kept up would get all of them and the connection would stay).
    let (frames, close) = slow.read_to_end().await;
    assert!(frames < EVENTS, "{frames} frames");
    if let Some(close) = close {
        assert_eq!(close.code, CloseCode::Policy, "{close:?}");
        assert!(close.reason.contains("too slow"), "{close:?}");
    }
}

/// Sends `command` to device `device` as `request_id` over `ws`; the
/// device's copy of it, checked against the contract's shape.
async fn command(
    ws: &mut Ws,
    device: &mut Device,
    request_id: Option<&str>,
    command: &str,
) -> Value {
    let mut message = json!({"type": "command", "payload": {"device_id": device.id, "command": command, "stream_output": true}});
    if let Some(id) = request_id {
        message["request_id"] = json!(id);
    }
    ws.send(message).await;
    let (topic, text) = device.next_text().await;
    assert_eq!(topic, format!("devices/{}/commands", device.id));
    let sent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sent["command"], command, "{sent}");
    assert_eq!(sent["stream_output"], true, "{sent}");
    if let Some(id) = request_id {
        assert_eq!(sent["request_id"], id, "{sent}");
    }
    sent
}

/// A device answers a command with two chunks and its end; the client
/// gets them in order, then a later event of the device is the next
/// frame (the answers were not events).
async fn command_round_trip(host: &TestHost, mut device: Device, mqtt: &str) {
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    let subscription = ws.subscribe(&device.id, None).await;
    let sent = command(&mut ws, &mut device, Some("cmd-1"), "uptime").await;
    assert_eq!(sent["request_id"], "cmd-1");
    let id = device.id.clone();
    device
        .publish_raw(
            &format!("devices/{id}/command-output/cmd-1"),
            r#"{"chunk":"up 3 days\n","fd":"stdout"}"#,
        )
        .await;
    device
        .publish_raw(
            &format!("devices/{id}/command-output/cmd-1"),
            r#"{"chunk":"low disk\n","fd":"stderr"}"#,
        )
        .await;
    device
        .publish_raw(
            &format!("devices/{id}/command-done/cmd-1"),
            r#"{"exit_code":0}"#,
        )
        .await;
    let expected = [
        json!({"type": "command_output", "request_id": "cmd-1", "payload": {"chunk": "up 3 days\n", "fd": "stdout"}}),
        json!({"type": "command_output", "request_id": "cmd-1", "payload": {"chunk": "low disk\n", "fd": "stderr"}}),
        json!({"type": "command_done", "request_id": "cmd-1", "payload": {"exit_code": 0}}),
    ];
    for want in expected {
        assert_eq!(ws.next().await, want, "through {mqtt}");
    }

    // No request id: the host makes one, and the frames carry it.
    let sent = command(&mut ws, &mut device, None, "date").await;
    let generated = sent["request_id"].as_str().unwrap().to_owned();
    device
        .publish_raw(&format!("devices/{id}/command-done/{generated}"), "3")
        .await;
    let done = ws.next().await;
    assert_eq!(done["type"], "command_done", "{done}");
    assert_eq!(done["request_id"], generated.as_str());
    assert_eq!(done["payload"], json!({"exit_code": 3}));

    device.publish("marker", "1").await;
    let (sub, stream, _) = telemetry(&mut ws).await;
    assert_eq!((sub, stream), (subscription, "marker".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_round_trip_through_the_embedded_broker() {
    let host = TestHost::start(&[], Settings::default()).await;
    let device = Device::connect(host.mqtt_addr(), "agent-1").await;
    command_round_trip(&host, device, "the embedded broker").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_round_trip_through_mosquitto() {
    let broker = Mosquitto::start().await;
    let settings = Settings {
        mqtt_url: Some(format!("mqtt://{}", broker.addr)),
        mqtt_client_id: Some("edgehook-test-ws".into()),
        ..Settings::default()
    };
    let host = TestHost::start(&[], settings).await;
    let device = Device::connect(broker.addr, "agent-2").await;
    command_round_trip(&host, device, "mosquitto").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_device_ends_its_command_with_an_error_and_ids_are_not_reused_meanwhile() {
    let settings = Settings {
        // Long enough for the second request to come while the first
        // command is still waiting, even on a loaded machine.
        command_timeout: Some(Duration::from_secs(3)),
        ..Settings::default()
    };
    let host = TestHost::start(&[], settings).await;
    let mut device = Device::connect(host.mqtt_addr(), "quiet").await;
    let mut ws = Ws::connect(host.host.api_addr, &host.host.api_token).await;
    command(&mut ws, &mut device, Some("c1"), "sleep 100").await;
    ws.send(json!({"type": "command", "request_id": "c1", "payload": {"device_id": "quiet", "command": "again"}}))
        .await;
    let in_use = ws.next().await;
    assert_eq!(in_use["type"], "error", "{in_use}");
    assert!(
        in_use["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("already in use"),
        "{in_use}"
    );
    let timed_out = ws.next().await;
    assert_eq!(timed_out["type"], "error", "{timed_out}");
    assert_eq!(timed_out["request_id"], "c1");
    let message = timed_out["payload"]["message"].as_str().unwrap();
    assert!(
        message.contains("did not answer command c1 within 3s"),
        "{message}"
    );
    // A late answer goes nowhere; the id is free again.
    device
        .publish_raw("devices/quiet/command-done/c1", "0")
        .await;
    command(&mut ws, &mut device, Some("c1"), "again").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backends_without_a_socket_post_a_command_and_read_its_output() {
    let host = TestHost::start(&[], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d7").await;
    let (status, body) = host
        .api("POST", "/v1/devices/d7/commands", r#"{"command":"uptime"}"#)
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["request_id"].as_str().unwrap().to_owned();
    let (topic, text) = device.next_text().await;
    assert_eq!(topic, "devices/d7/commands");
    let sent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        sent,
        json!({"request_id": id, "command": "uptime", "stream_output": false})
    );

    let (status, record) = host.api("GET", &format!("/v1/commands/{id}"), "").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["state"], "running");
    device
        .publish_raw(
            &format!("devices/d7/command-output/{id}"),
            r#"{"chunk":"up\n","fd":"stdout"}"#,
        )
        .await;
    device
        .publish_raw(
            &format!("devices/d7/command-done/{id}"),
            r#"{"exit_code":0}"#,
        )
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let record = loop {
        let (_, record) = host.api("GET", &format!("/v1/commands/{id}"), "").await;
        if record["state"] == "done" {
            break record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never done: {record}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record["output"], json!([{"chunk": "up\n", "fd": "stdout"}]));
    assert_eq!(record["done"], json!({"exit_code": 0}));
    assert_eq!(record["device_id"], "d7");

    let (status, _) = host.api("GET", "/v1/commands/nope", "").await;
    assert_eq!(status, 404);
    let (status, body) = host
        .api("POST", "/v1/devices/d7/commands", r#"{"cmd":"x"}"#)
        .await;
    assert_eq!(status, 400, "{body}");
}
