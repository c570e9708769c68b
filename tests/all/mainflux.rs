//! Mainflux-style webhooks (CONTRACT section 8): the routes (also under
//! `/svcwebhooks`) with their refusals, the exact request for JSON and for
//! other data at a loopback endpoint, the per-thing filter, one-way
//! delivery, and the webhooks kept across a restart.

use edgehook::config::Settings;
use serde_json::{Value, json};

use crate::support::{Device, Endpoint, HostUnderTest, TestHost, ids};

/// The ids of a list of webhooks, sorted.
fn sorted_ids(list: &Value) -> Vec<&str> {
    let mut ids = ids(list);
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_refuse_bad_input_and_survive_a_restart() {
    let host = TestHost::start(&[], Settings::default()).await;
    host.register(
        &["g1", "g2"],
        &[("t1", Some("g1")), ("t2", Some("g1")), ("t3", Some("g2"))],
    )
    .await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let url = endpoint.url("/a");

    let one = json!([{"name": "A", "url": url}]).to_string();
    assert_eq!(host.api("POST", "/things/nope/webhooks", &one).await.0, 404);
    let (status, body) = host
        .api(
            "POST",
            "/things/t1/webhooks",
            r#"{"name": "A", "url": "http://x.test/"}"#,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = host
        .api(
            "POST",
            "/things/t1/webhooks",
            r#"[{"name": "A", "url": "file:///etc/passwd"}]"#,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("`url`"),
        "{body}"
    );

    let batch = json!([
        {"name": "A", "url": url, "headers": {"X-Api-Key": "k"}},
        {"name": "B", "url": endpoint.url("/b"), "metadata": {"a": 1}},
    ]);
    let (status, created) = host
        .api(
            "POST",
            "/svcwebhooks/things/t1/webhooks",
            &batch.to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created[0]["name"], "A");
    assert_eq!(created[0]["group_id"], "g1");
    assert_eq!(
        created[0]["headers"]["X-Api-Key"], "***",
        "secrets are write-only"
    );
    assert_eq!(created[1]["metadata"]["a"], 1);
    let (a, b) = (
        created[0]["id"].as_str().unwrap().to_owned(),
        created[1]["id"].as_str().unwrap().to_owned(),
    );
    let (status, other) = host
        .api(
            "POST",
            "/things/t3/webhooks",
            &json!([{"name": "C", "url": url}]).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    assert_eq!(other[0]["group_id"], "g2");
    let c = other[0]["id"].as_str().unwrap().to_owned();

    let mut ab = vec![a.as_str(), b.as_str()];
    ab.sort_unstable();
    for path in ["/things/t1/webhooks", "/svcwebhooks/groups/g1/webhooks"] {
        let (status, list) = host.api("GET", path, "").await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(sorted_ids(&list), ab, "{path}");
    }
    let (_, list) = host.api("GET", "/groups/g2/webhooks", "").await;
    assert_eq!(sorted_ids(&list), [c.as_str()]);
    assert_eq!(
        host.api("GET", "/things/t2/webhooks", "").await.1,
        json!([])
    );
    assert_eq!(host.api("GET", "/groups/nope/webhooks", "").await.0, 404);

    let (status, view) = host.api("GET", &format!("/webhooks/{a}"), "").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((&view["name"], &view["url"]), (&json!("A"), &json!(url)));
    let replaced =
        json!({"name": "A2", "url": endpoint.url("/a2"), "headers": {"X-Api-Key": "k2"}});
    let (status, view) = host
        .api(
            "PUT",
            &format!("/svcwebhooks/webhooks/{a}"),
            &replaced.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (&view["name"], &view["group_id"]),
        (&json!("A2"), &json!("g1"))
    );

    let removal = json!({"webhook_ids": [b]}).to_string();
    assert_eq!(host.api("DELETE", "/webhooks", &removal).await.0, 204);
    assert_eq!(host.api("GET", &format!("/webhooks/{b}"), "").await.0, 404);
    assert_eq!(host.api("DELETE", "/webhooks", &removal).await.0, 404);
    let (status, _) = host.api("GET", &format!("/v1/webhooks/{a}/log"), "").await;
    assert_eq!(status, 200, "the log of any dialect's webhook");

    let host = host.restart().await;
    let (_, list) = host.api("GET", "/things/t1/webhooks", "").await;
    assert_eq!(sorted_ids(&list), [a.as_str()]);
    assert_eq!(list[0]["name"], "A2");
    let device = Device::connect(host.mqtt_addr(), "t1").await;
    device.publish("temp", "21").await;
    let seen = endpoint.next().await;
    assert_eq!(seen.uri.path(), "/a2", "in force again after the restart");
    assert_eq!(seen.header("x-api-key"), Some("k2"));
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_goes_unchanged_to_its_things_webhooks_only_and_nothing_comes_back() {
    let host = TestHost::start(&[], Settings::default()).await;
    host.register(&["g1"], &[("t1", Some("g1")), ("t2", Some("g1"))])
        .await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let (status, created) = host
        .api(
            "POST",
            "/things/t1/webhooks",
            &json!([{"name": "A", "url": endpoint.url("/a"),
                "headers": {"X-Api-Key": "k", "X-Other": "two"}}])
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created[0]["id"].as_str().unwrap().to_owned();
    host.create_webhook(json!({"event": "marker", "url": endpoint.url("/marker")}))
        .await;
    let mut t1 = Device::connect(host.mqtt_addr(), "t1").await;
    let t2 = Device::connect(host.mqtt_addr(), "t2").await;

    let json_data = br#"{"temp": 21.5, "ok": true}"#;
    t1.publish("temp", &json_data[..]).await;
    let seen = endpoint.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri.path(), "/a");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-api-key"), Some("k"));
    assert_eq!(seen.header("x-other"), Some("two"));
    assert_eq!(&seen.body[..], json_data);

    let raw = b"\x00\xffraw bytes";
    t1.publish("blob", &raw[..]).await;
    let seen = endpoint.next().await;
    assert_eq!(
        seen.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(&seen.body[..], raw);

    // Another thing of the same group: only the marker arrives.
    t2.publish("temp", "21").await;
    t2.publish("marker", "m").await;
    assert_eq!(endpoint.next().await.uri.path(), "/marker");

    host.wait_for_log(&id, |l| l["requests"].as_array().unwrap().len() == 2)
        .await;
    t1.publish("marker", "m").await;
    assert_eq!(t1.next().await.0, "devices/t1/hook-sent/marker");
    // t1's marker went to its webhook too.
    let mut paths = [endpoint.next().await, endpoint.next().await].map(|s| s.uri.path().to_owned());
    paths.sort();
    assert_eq!(paths, ["/a", "/marker"]);

    // What a read shows, sent back with another name, keeps the secret.
    let (_, mut view) = host.api("GET", &format!("/webhooks/{id}"), "").await;
    assert_eq!(view["headers"]["X-Api-Key"], "***");
    assert_eq!(view["headers"]["X-Other"], "two");
    view["name"] = "A, renamed".into();
    let put = json!({"name": view["name"], "url": view["url"], "headers": view["headers"]});
    let (status, _) = host
        .api("PUT", &format!("/webhooks/{id}"), &put.to_string())
        .await;
    assert_eq!(status, 200);
    t1.publish("temp", &json_data[..]).await;
    let seen = endpoint.next().await;
    assert_eq!(
        seen.header("x-api-key"),
        Some("k"),
        "the stored secret is kept"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_that_leaves_out_the_headers_keeps_them_while_the_destination_stays() {
    let host = TestHost::start(&[], Settings::default()).await;
    host.register(&["g1"], &[("t1", Some("g1"))]).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let elsewhere = Endpoint::start(200, "ok").await;
    let (status, created) = host
        .api(
            "POST",
            "/svcwebhooks/things/t1/webhooks",
            &json!([{"name": "Data pipeline", "url": endpoint.url("/mainflux"),
                "headers": {"X-Api-Key": "KEY", "X-Other": "two"}, "metadata": {"a": 1}}])
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created[0]["id"].as_str().unwrap().to_owned();

    // The README's example: a new name and path, no `headers`.
    let (status, refused) = host
        .api(
            "PUT",
            &format!("/webhooks/{id}"),
            &json!({"name": "Data pipeline", "url": elsewhere.url("/mainflux-v2")}).to_string(),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("`headers.X-Api-Key`: send the secret again: the destination changed"),
        "headers left out do not follow the webhook to another destination: {refused}"
    );
    let (status, view) = host
        .api(
            "PUT",
            &format!("/webhooks/{id}"),
            &json!({"name": "Data pipeline", "url": endpoint.url("/mainflux-v2")}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["headers"],
        json!({"X-Api-Key": "***", "X-Other": "two"}),
        "headers left out are kept"
    );
    assert_eq!(
        view["metadata"],
        json!({"a": 1}),
        "metadata left out is kept"
    );

    let t1 = Device::connect(host.mqtt_addr(), "t1").await;
    t1.publish("temp", "21").await;
    let seen = endpoint.next().await;
    assert_eq!(seen.uri.path(), "/mainflux-v2");
    assert_eq!(
        seen.header("x-api-key"),
        Some("KEY"),
        "the key still goes out"
    );
    assert_eq!(seen.header("x-other"), Some("two"));

    // Headers sent are the headers: `{}` removes them all.
    let (status, view) = host
        .api(
            "PUT",
            &format!("/webhooks/{id}"),
            &json!({"name": "Data pipeline", "url": endpoint.url("/v3"), "headers": {}})
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["headers"], json!({}));
    t1.publish("temp", "22").await;
    let seen = endpoint.next().await;
    assert_eq!(seen.uri.path(), "/v3");
    assert_eq!(seen.header("x-api-key"), None, "no headers left");
    host.host.stop().await;
}
