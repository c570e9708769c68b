//! The webhooks API, the webhooks directory, the store that keeps API
//! webhooks across restarts, the delivery log and the event stream — over
//! real sockets, as `curl`, `edgehook webhook …` and `edgehook subscribe`
//! use them.

use std::time::Duration;

use edgehook::config::Settings;
use edgehook::remote::{ApiArgs, ApiClient};
use serde_json::{Value, json};

use crate::support::{Device, Endpoint, HostUnderTest, TestHost, WAIT, is_marker};

async fn host() -> TestHost {
    TestHost::start(&[], Settings::default()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_created_listed_replaced_and_deleted() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    let definition =
        json!({ "name": "Trigger alert", "event": "alert", "url": endpoint.url("/a") });
    let (status, created) = host
        .api("POST", "/v1/webhooks", &definition.to_string())
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 24);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(created["name"], "Trigger alert");
    assert_eq!(created["event"], "alert");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, list) = host.api("GET", "/v1/webhooks", "").await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([created]));
    let (status, one) = host.api("GET", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!((status, &one), (200, &created));

    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("alert", "1").await;
    assert_eq!(endpoint.next().await.uri.path(), "/a");

    let replacement = json!({ "event": "alarm", "url": endpoint.url("/b") });
    let (status, replaced) = host
        .api(
            "PUT",
            &format!("/v1/webhooks/{id}"),
            &replacement.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(replaced["event"], "alarm");
    assert!(
        replaced.get("name").is_none(),
        "PUT replaces the whole definition"
    );
    device.publish("alert", "2").await;
    device.publish("alarm", "3").await;
    assert_eq!(endpoint.next().await.uri.path(), "/b");

    let (status, _) = host.api("DELETE", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(status, 200);
    let (status, body) = host.api("GET", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains(&id), "{body}");
    let (status, _) = host.api("DELETE", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(status, 404);
    device.publish("alarm", "4").await;
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "a deleted webhook sends nothing: {before:?}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_holds_the_webhooks_of_every_dialect_oldest_first() {
    let host = host().await;
    host.register(&["p1"], &[("t1", Some("p1"))]).await;
    let (status, particle) = host
        .api(
            "POST",
            "/v1/webhooks",
            &json!({"event": "temp", "url": "http://x.test/p"}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{particle}");
    let (status, iottly) = host
        .api(
            "POST",
            "/v1/projects/p1/webhooks",
            &json!({"description": "to my service", "url": "http://x.test/i",
                "type": "user", "headers": {"X-Api-Key": "KEY"}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{iottly}");
    let (status, mainflux) = host
        .api(
            "POST",
            "/things/t1/webhooks",
            &json!([{"name": "Data pipeline", "url": "http://x.test/m",
                "headers": {"X-Api-Key": "KEY"}}])
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{mainflux}");
    let ids = [&particle["id"], &iottly["id"], &mainflux[0]["id"]];

    let (status, list) = host.api("GET", "/v1/webhooks", "").await;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<&Value> = list.as_array().unwrap().iter().map(|w| &w["id"]).collect();
    assert_eq!(listed, ids, "every dialect, oldest first: {list}");
    let dialects: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["dialect"])
        .collect();
    assert_eq!(dialects, ["particle", "iottly", "mainflux"]);
    assert_eq!(
        list[0]["event"], "temp",
        "a Particle webhook as it is viewed"
    );
    assert_eq!(
        (
            &list[1]["project_id"],
            &list[1]["type"],
            &list[1]["headers"]["X-Api-Key"]
        ),
        (&json!("p1"), &json!("user"), &json!("***")),
        "an Iottly webhook as its project lists it, secrets masked: {list}"
    );
    assert_eq!(
        (
            &list[2]["thing_id"],
            &list[2]["group_id"],
            &list[2]["headers"]["X-Api-Key"]
        ),
        (&json!("t1"), &json!("p1"), &json!("***")),
        "a Mainflux webhook as its thing lists it, secrets masked: {list}"
    );
    let cli = edgehook::remote::describe_list(list.as_array().unwrap());
    assert!(cli.starts_with("Found 3 hooks registered"), "{cli}");
    assert!(!cli.contains("KEY"), "{cli}");

    // Viewed and deleted by id too, whatever the dialect.
    for item in list.as_array().unwrap() {
        let path = format!("/v1/webhooks/{}", item["id"].as_str().unwrap());
        assert_eq!(host.api("GET", &path, "").await, (200, item.clone()));
    }
    let mainflux_id = mainflux[0]["id"].as_str().unwrap();
    let (status, body) = host
        .api(
            "PUT",
            &format!("/v1/webhooks/{mainflux_id}"),
            &json!({"event": "temp", "url": "http://x.test/p"}).to_string(),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Mainflux-style"),
        "{body}"
    );
    let path = format!("/v1/webhooks/{mainflux_id}");
    assert_eq!(host.api("DELETE", &path, "").await.0, 200);
    assert_eq!(
        host.api("GET", "/things/t1/webhooks", "").await.1,
        json!([])
    );
    let (_, list) = host.api("GET", "/v1/webhooks", "").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_definition_is_refused_with_the_field_named() {
    let host = host().await;
    let url = "https://example.com/in";
    let cases = [
        (
            json!({ "event": "e", "url": url, "json": {}, "form": {} }),
            "form",
        ),
        (json!({ "event": "e" }), "url"),
        (json!({ "event": "", "url": url }), "event"),
        (
            json!({ "event": "e", "url": url, "requestType": "PATCH" }),
            "requestType",
        ),
        (
            json!({ "event": "e", "url": url, "body": "{{#open}}" }),
            "body",
        ),
        (
            json!({ "event": "e", "url": url, "colour": "red" }),
            "colour",
        ),
        (
            json!({ "event": "e", "url": url, "deviceID": "a/b" }),
            "deviceID",
        ),
        (json!({ "event": "e", "url": "ftp://example.com" }), "url"),
        (json!(["not", "an", "object"]), "object"),
    ];
    for (definition, field) in cases {
        let (status, body) = host
            .api("POST", "/v1/webhooks", &definition.to_string())
            .await;
        assert_eq!(status, 400, "{definition} → {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(field),
            "{definition}: {error:?} should name {field}"
        );
    }
    let (status, body) = host.api("POST", "/v1/webhooks", "{\"event\": ").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    let (_, list) = host.api("GET", "/v1/webhooks", "").await;
    assert_eq!(list, json!([]), "nothing was created");

    for path in ["/v1/webhooks", "/v1/events"] {
        let (status, _) = crate::support::http_get(host.host.api_addr, path, None).await;
        assert_eq!(status, 401, "{path} needs the token");
    }
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_webhooks_survive_a_restart() {
    let mut endpoint = Endpoint::start(200, "").await;
    let first = host().await;
    let id = first
        .create_webhook(json!({ "event": "kept", "url": endpoint.url("/kept") }))
        .await;
    let again = first.restart().await;
    let listed = again.host.webhooks.views();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let device = Device::connect(again.mqtt_addr(), "d1").await;
    device.publish("kept", "x").await;
    assert_eq!(endpoint.next().await.uri.path(), "/kept");
    again.host.stop().await;
}

/// Writes `NAME.json` atomically (a rename), as an editor or a deploy would.
fn write_file(host: &TestHost, name: &str, value: &str) {
    let dir = host.dir.path().join("webhooks");
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, value).unwrap();
    std::fs::rename(tmp, dir.join(format!("{name}.json"))).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_files_are_picked_up_changed_and_removed_without_a_restart() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;

    write_file(
        &host,
        "lamp",
        &json!({ "event": "lamp", "url": endpoint.url("/v1") }).to_string(),
    );
    host.wait_for("/v1/webhooks/lamp", |w| w["url"] == endpoint.url("/v1"))
        .await;
    device.publish("lamp", "on").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v1");

    let (status, body) = host
        .api(
            "PUT",
            "/v1/webhooks/lamp",
            &json!({ "event": "x", "url": endpoint.url("/x") }).to_string(),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("lamp.json"),
        "{body}"
    );

    write_file(
        &host,
        "lamp",
        &json!({ "event": "lamp", "url": endpoint.url("/v2") }).to_string(),
    );
    host.wait_for("/v1/webhooks/lamp", |w| w["url"] == endpoint.url("/v2"))
        .await;
    device.publish("lamp", "on").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v2");

    write_file(&host, "lamp", "{ \"event\": \"lamp\", \"url\": ");
    host.wait_for("/v1/webhooks/lamp", |w| {
        w["file_error"]
            .as_str()
            .is_some_and(|e| e.contains("not valid JSON"))
    })
    .await;
    device.publish("lamp", "on").await;
    assert_eq!(
        endpoint.next().await.uri.path(),
        "/v2",
        "a broken file leaves the previous version running"
    );

    std::fs::remove_file(host.dir.path().join("webhooks/lamp.json")).unwrap();
    host.wait_for("/v1/webhooks/lamp", |w| w.get("error").is_some())
        .await;
    device.publish("lamp", "on").await;
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "a removed file sends nothing: {before:?}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_shows_requests_and_errors_with_secrets_masked() {
    let endpoint = Endpoint::start(200, "fine").await;
    let host = host().await;
    let id = host
        .create_webhook(json!({
            "event": "m",
            "url": endpoint.url("/m"),
            "auth": { "username": "u", "password": "hunter2" },
            "headers": { "Authorization-Extra": "none" }
        }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("m", "first").await;
    device.next().await;
    device.next().await;
    endpoint.answer(500, "broken", Duration::ZERO);
    device.publish("m", "second").await;
    device.next().await;
    assert_eq!(
        device.next_text().await.1,
        "error status 500 from 127.0.0.1"
    );

    let (status, log) = host.api("GET", &format!("/v1/webhooks/{id}/log"), "").await;
    assert_eq!(status, 200);
    let requests = log["requests"].as_array().unwrap();
    let errors = log["errors"].as_array().unwrap();
    assert_eq!((requests.len(), errors.len()), (2, 1), "{log}");
    assert_eq!(requests[0]["event"]["data"], "second", "newest first");
    assert_eq!(requests[1]["response"]["status"], 200);
    assert_eq!(requests[1]["response"]["body"], "fine");
    assert_eq!(errors[0]["response"]["status"], 500);
    let request = &requests[1]["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], endpoint.url("/m"));
    assert!(request["body"].as_str().unwrap().contains("data=first"));
    let text = log.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("dTpodW50ZXIy"),
        "{text}"
    );
    assert!(text.contains("Basic ***"), "{text}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_client_creates_lists_deletes_and_subscribes() {
    let endpoint = Endpoint::start(200, "pong").await;
    let host = host().await;
    let client = ApiClient::new(&ApiArgs {
        api: format!("http://{}", host.host.api_addr),
        token: None,
        data: host.dir.path().join("data"),
    })
    .unwrap();

    let definition = json!({ "event": "ping", "url": endpoint.url("/ping") });
    let created = client
        .call(
            http::Method::POST,
            "/v1/webhooks",
            Some(definition.to_string().into()),
        )
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let list = client
        .call(http::Method::GET, "/v1/webhooks", None)
        .await
        .unwrap();
    let text = edgehook::remote::describe_list(list.as_array().unwrap());
    assert!(text.starts_with("Found 1 hook registered"), "{text}");
    assert!(
        text.contains(&format!("Hook #{id} is watching for \"ping\"")),
        "{text}"
    );

    let err = client
        .call(
            http::Method::POST,
            "/v1/webhooks",
            Some("{\"event\": \"x\"}".into()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("url"), "{err}");

    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let follower = client.clone();
    let subscription = tokio::spawn(async move {
        follower
            .subscribe(None, |json| {
                let _ = tx.send(serde_json::from_str::<Value>(json).unwrap());
            })
            .await
    });
    // The subscription is live once its stream is open: markers, published
    // until it hears one, say when.
    let device = Device::connect(host.mqtt_addr(), "d9").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        device.publish("marker", "").await;
        let heard = tokio::time::timeout(Duration::from_millis(100), lines.recv()).await;
        if heard.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription heard no marker"
        );
    }
    device.publish("ping", "hello").await;
    let mut names = Vec::new();
    while names.len() < 3 {
        let event = tokio::time::timeout(WAIT, lines.recv())
            .await
            .unwrap()
            .unwrap();
        if event["name"] == "marker" {
            continue;
        }
        assert_eq!(event["coreid"], "d9");
        assert_eq!(event["ttl"], 60);
        assert!(event["published_at"].as_str().unwrap().ends_with('Z'));
        names.push((
            event["name"].as_str().unwrap().to_owned(),
            event["data"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        names,
        [
            ("ping".into(), "hello".into()),
            ("hook-sent/ping".into(), String::new()),
            ("hook-response/ping/0".into(), "pong".into()),
        ]
    );
    subscription.abort();

    client
        .call(http::Method::DELETE, &format!("/v1/webhooks/{id}"), None)
        .await
        .unwrap();
    let list = client
        .call(http::Method::GET, "/v1/webhooks", None)
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    host.host.stop().await;
}
