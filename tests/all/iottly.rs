//! Iottly-style webhooks (CONTRACT section 7): the routes with their
//! refusals and limit, the exact request of each body shape at a loopback
//! endpoint, the type, channel and project filters, one-way delivery, and
//! the webhooks kept across a restart.

use edgehook::config::Settings;
use serde_json::{Value, json};

use crate::support::{Device, Endpoint, HostUnderTest, Seen, TestHost};

/// Creates an Iottly webhook in `project`; its id.
async fn create(host: &TestHost, project: &str, webhook: Value) -> String {
    host.create_at(&format!("/v1/projects/{project}/webhooks"), webhook)
        .await
}

/// The next `n` requests at `endpoint`, sorted by path.
async fn next(endpoint: &mut Endpoint, n: usize) -> Vec<Seen> {
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        seen.push(endpoint.next().await);
    }
    seen.sort_by(|a, b| a.uri.path().cmp(b.uri.path()));
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_refuse_bad_input_keep_the_limit_and_survive_a_restart() {
    let settings = Settings {
        iottly_max_webhooks: Some(2),
        ..Settings::default()
    };
    let host = TestHost::start(&[], settings).await;
    host.register(&["p1", "empty"], &[("d1", Some("p1"))]).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let url = endpoint.url("/hook");

    // A project with webhooks and no devices is still in use.
    let only = create(&host, "empty", json!({"url": url, "type": "user"})).await;
    let (status, body) = host.api("DELETE", "/v1/groups/empty", "").await;
    assert_eq!(status, 409, "{body}");
    let path = format!("/v1/projects/empty/webhooks/{only}");
    assert_eq!(host.api("DELETE", &path, "").await.0, 204);
    assert_eq!(host.api("DELETE", "/v1/groups/empty", "").await.0, 204);

    let post = |project: &str, body: Value| {
        let path = format!("/v1/projects/{project}/webhooks");
        let host = &host;
        async move { host.api("POST", &path, &body.to_string()).await }
    };
    let (status, body) = post("nope", json!({"url": url, "type": "user"})).await;
    assert_eq!(status, 404, "{body}");
    for (webhook, field) in [
        (json!({"url": url, "type": "both"}), "`type`"),
        (
            json!({"url": "ftp://example.com/", "type": "user"}),
            "`url`",
        ),
        (
            json!({"url": url, "type": "user", "headers":
                {"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1"}}),
            "`headers`",
        ),
    ] {
        let (status, body) = post("p1", webhook).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().starts_with(field), "{body}");
    }

    let first = create(
        &host,
        "p1",
        json!({"description": "a", "url": url, "type": "user", "headers": {"X-Key": "k"}}),
    )
    .await;
    let second = create(&host, "p1", json!({"url": url, "type": "iottly"})).await;
    let (status, body) = post("p1", json!({"url": url, "type": "user"})).await;
    assert_eq!(status, 409, "beyond iottly_max_webhooks: {body}");

    let (status, list) = host.api("GET", "/v1/projects/p1/webhooks", "").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert_eq!(list[0]["description"], "a");
    assert_eq!(list[0]["headers"]["X-Key"], "***", "secrets are write-only");
    let (status, _) = host.api("GET", "/v1/projects/nope/webhooks", "").await;
    assert_eq!(status, 404);

    let path = format!("/v1/projects/p1/webhooks/{second}");
    assert_eq!(host.api("DELETE", &path, "").await.0, 204);
    assert_eq!(host.api("DELETE", &path, "").await.0, 404);

    let host = host.restart().await;
    let (_, list) = host.api("GET", "/v1/projects/p1/webhooks", "").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], first.as_str());
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21").await;
    let seen = endpoint.next().await;
    assert_eq!(
        seen.header("x-key"),
        Some("k"),
        "in force again after the restart"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_body_shape_each_filter_and_nothing_back_to_the_device() {
    let host = TestHost::start(&[], Settings::default()).await;
    host.register(
        &["p1", "p2"],
        &[("d1", Some("p1")), ("d2", Some("p2")), ("d3", None)],
    )
    .await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let mut failing = Endpoint::start(500, "broken").await;
    let envelope = create(
        &host,
        "p1",
        json!({"description": "all", "url": endpoint.url("/envelope"), "type": "user",
            "headers": {"X-Api-Key": "k1", "X-Other": "two"}}),
    )
    .await;
    create(
        &host,
        "p1",
        json!({"url": endpoint.url("/payload"), "type": "user", "payload_only": true}),
    )
    .await;
    create(
        &host,
        "p1",
        json!({"url": endpoint.url("/channel"), "type": "user", "channel": "c1",
            "payload_only": true}),
    )
    .await;
    create(
        &host,
        "p1",
        json!({"url": endpoint.url("/agent"), "type": "iottly"}),
    )
    .await;
    let broken = create(
        &host,
        "p1",
        json!({"url": failing.url("/broken"), "type": "user"}),
    )
    .await;
    host.create_webhook(json!({"event": "marker", "url": endpoint.url("/marker")}))
        .await;

    let mut d1 = Device::connect(host.mqtt_addr(), "d1").await;
    let d2 = Device::connect(host.mqtt_addr(), "d2").await;
    let d3 = Device::connect(host.mqtt_addr(), "d3").await;

    // Not JSON: the payload is a JSON string; no channel, so not /channel.
    d1.publish("temp", "hot").await;
    let seen = next(&mut endpoint, 2).await;
    let (env, payload) = (&seen[0], &seen[1]);
    assert_eq!(env.uri.path(), "/envelope");
    assert_eq!(env.method, "POST");
    assert_eq!(env.header("content-type"), Some("application/json"));
    assert_eq!(env.header("x-api-key"), Some("k1"));
    assert_eq!(env.header("x-other"), Some("two"));
    let body: Value = serde_json::from_slice(&env.body).unwrap();
    let at = body["msg"]["devicetimestamp"].as_str().unwrap().to_owned();
    assert!(at.ends_with('Z') && at.len() == 24, "{body}");
    assert_eq!(
        body,
        json!({"msg": {"from": "d1", "event": "temp", "devicetimestamp": at, "payload": "hot"}})
    );
    assert_eq!(payload.uri.path(), "/payload");
    assert_eq!(payload.header("content-type"), Some("application/json"));
    assert_eq!(&payload.body[..], br#""hot""#);

    // A channel's event: its webhook_payload alone at /channel.
    let data = r#"{"webhook_channel":"c1","webhook_payload":{"t":1}}"#;
    d1.publish("temp", data).await;
    let seen = next(&mut endpoint, 3).await;
    assert_eq!(seen[0].uri.path(), "/channel");
    assert_eq!(&seen[0].body[..], br#"{"t":1}"#);
    let body: Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(
        body["msg"]["payload"],
        serde_json::from_str::<Value>(data).unwrap()
    );
    assert_eq!(&seen[2].body[..], data.as_bytes(), "payload_only: the data");

    // Another channel: not /channel. The agent's own event: only /agent.
    d1.publish("temp", r#"{"webhook_channel":"c2"}"#).await;
    assert_eq!(next(&mut endpoint, 2).await[0].uri.path(), "/envelope");
    d1.publish("iottly/status", r#"{"up":true}"#).await;
    d2.publish("marker", "m").await;
    let seen = next(&mut endpoint, 2).await;
    let paths: Vec<&str> = seen.iter().map(|s| s.uri.path()).collect();
    assert_eq!(paths, ["/agent", "/marker"], "no user webhook took it");
    let agent = &seen[0];
    let body: Value = serde_json::from_slice(&agent.body).unwrap();
    assert_eq!(body["msg"]["event"], "iottly/status");
    assert_eq!(body["msg"]["payload"], json!({"up": true}));

    // Devices of another project and of none: only the marker arrives.
    for device in [&d2, &d3] {
        device.publish("temp", "21").await;
        device.publish("marker", "m").await;
        assert_eq!(endpoint.next().await.uri.path(), "/marker");
    }

    // One-way: the failures went to the log, and d1 heard nothing before
    // the marker's hook-sent.
    let log = host
        .wait_for_log(&broken, |l| l["errors"].as_array().unwrap().len() == 3)
        .await;
    assert_eq!(log["errors"][0]["response"]["status"], 500, "{log}");
    for _ in 0..3 {
        assert_eq!(failing.next().await.uri.path(), "/broken");
    }
    host.wait_for_log(&envelope, |l| l["requests"].as_array().unwrap().len() == 3)
        .await;
    // Nothing goes back, so the plugin ran once per event: `on-event`
    // only, never `on-response`.
    let metrics = host.metrics().await;
    let calls = format!("edgehook_plugin_calls_total{{plugin=\"webhook/{envelope}\"}} 3\n");
    assert!(metrics.contains(&calls), "{calls} in {metrics}");
    d1.publish("marker", "m").await;
    assert_eq!(d1.next().await.0, "devices/d1/hook-sent/marker");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_replaces_a_webhook_keeping_the_secrets_sent_back_masked() {
    let host = TestHost::start(&[], Settings::default()).await;
    host.register(&["p1", "p2"], &[("d1", Some("p1"))]).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let id = create(
        &host,
        "p1",
        json!({"description": "first", "url": endpoint.url("/old"), "type": "iottly",
            "headers": {"X-Api-Key": "key-SECRET", "X-Other": "one"}}),
    )
    .await;
    let path = format!("/v1/projects/p1/webhooks/{id}");

    // What the console sends back: the view, edited, its secret masked.
    let (_, list) = host.api("GET", "/v1/projects/p1/webhooks", "").await;
    let mut edited = list[0].clone();
    assert_eq!(edited["headers"]["X-Api-Key"], "***", "{edited}");
    let edited = edited.as_object_mut().unwrap();
    for shown in ["id", "project_id"] {
        edited.remove(shown);
    }
    edited.insert("description".into(), json!("second"));
    edited.insert("url".into(), json!(endpoint.url("/new")));
    edited.insert("type".into(), json!("user"));
    edited["headers"]["X-Other"] = json!("two");
    let (status, view) = host
        .api("PUT", &path, &Value::Object(edited.clone()).to_string())
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["id"], id.as_str(), "the id stays");
    assert_eq!(
        (&view["description"], &view["type"], &view["project_id"]),
        (&json!("second"), &json!("user"), &json!("p1"))
    );
    assert_eq!(view["headers"]["X-Api-Key"], "***", "{view}");
    let (_, list) = host.api("GET", "/v1/projects/p1/webhooks", "").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "replaced, not added");

    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21").await;
    let seen = endpoint.next().await;
    assert_eq!(seen.uri.path(), "/new", "the new URL and type in force");
    assert_eq!(
        seen.header("x-api-key"),
        Some("key-SECRET"),
        "the masked header kept the stored secret"
    );
    assert_eq!(seen.header("x-other"), Some("two"));

    let body = |url: &str, kind: &str| json!({"url": url, "type": kind}).to_string();
    let (status, refusal) = host
        .api("PUT", &path, &body(&endpoint.url("/"), "both"))
        .await;
    assert_eq!(status, 400, "{refusal}");
    assert!(
        refusal["error"].as_str().unwrap().starts_with("`type`"),
        "{refusal}"
    );
    let elsewhere = json!({"url": "https://example.com/", "type": "user",
        "headers": {"X-Api-Key": "***"}});
    let (status, refusal) = host.api("PUT", &path, &elsewhere.to_string()).await;
    assert_eq!(
        status, 400,
        "a kept secret follows its destination: {refusal}"
    );
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .starts_with("`headers.X-Api-Key`"),
        "{refusal}"
    );
    let ok = body(&endpoint.url("/"), "user");
    for (path, why) in [
        ("/v1/projects/p1/webhooks/nope".to_owned(), "an unknown id"),
        (
            format!("/v1/projects/p2/webhooks/{id}"),
            "another project's",
        ),
        (
            format!("/v1/projects/nope/webhooks/{id}"),
            "an unknown project",
        ),
    ] {
        let (status, refusal) = host.api("PUT", &path, &ok).await;
        assert_eq!(status, 404, "{why}: {refusal}");
    }
    host.host.stop().await;
}
