//! The device registry over the API (CONTRACT section 6): groups and
//! devices, keys shown once, refusals that name the field, and all of it
//! kept across a restart.

use edgehook::config::Settings;
use serde_json::json;

use crate::support::{HostUnderTest, TestHost};

#[tokio::test(flavor = "multi_thread")]
async fn groups_and_devices_round_trip_and_survive_a_restart() {
    let host = TestHost::start(&[], Settings::default()).await;

    let (status, group) = host
        .api(
            "POST",
            "/v1/groups",
            r#"{"id": "line-1", "name": "Line 1", "metadata": {"site": "Turin"}}"#,
        )
        .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["id"], "line-1");
    assert_eq!(group["metadata"]["site"], "Turin");
    let (status, generated) = host.api("POST", "/v1/groups", "{}").await;
    assert_eq!(status, 201, "{generated}");
    assert_eq!(generated["id"].as_str().unwrap().len(), 36, "{generated}");

    let (status, device) = host
        .api(
            "POST",
            "/v1/devices",
            r#"{"id": "press-7", "group": "line-1", "metadata": {"model": "P7"}}"#,
        )
        .await;
    assert_eq!(status, 201, "{device}");
    let key = device["key"].as_str().unwrap().to_owned();
    assert!(key.len() >= 43, "{device}");
    assert_eq!(device["group"], "line-1");
    let (status, other) = host.api("POST", "/v1/devices", "{}").await;
    assert_eq!(status, 201, "{other}");
    assert_ne!(other["key"], device["key"]);

    // The key is never shown again: not in a view, not in a list.
    let (status, view) = host.api("GET", "/v1/devices/press-7", "").await;
    assert_eq!(status, 200);
    assert_eq!(view["metadata"]["model"], "P7");
    assert!(view.get("key").is_none(), "{view}");
    let (_, list) = host.api("GET", "/v1/devices", "").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&key));
    let (_, members) = host.api("GET", "/v1/devices?group=line-1", "").await;
    assert_eq!(members, json!([view]));

    // Rotation: a new key, shown once.
    let (status, rotated) = host.api("POST", "/v1/devices/press-7/key", "").await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);

    let (status, replaced) = host
        .api("PUT", "/v1/devices/press-7", r#"{"name": "Press 7"}"#)
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["name"], "Press 7");
    assert_eq!(replaced["group"], serde_json::Value::Null);
    let (status, _) = host
        .api("PUT", "/v1/devices/press-7", r#"{"group": "line-1"}"#)
        .await;
    assert_eq!(status, 200);

    let host = host.restart().await;
    let (status, view) = host.api("GET", "/v1/devices/press-7", "").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["group"], "line-1");
    let (_, groups) = host.api("GET", "/v1/groups", "").await;
    assert_eq!(groups.as_array().unwrap().len(), 2, "{groups}");
    let stored = std::fs::read(host.dir.path().join("data/registry.redb")).unwrap();
    for secret in [&key, &new_key] {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a device key is stored in clear"
        );
    }
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_name_the_field_and_change_nothing() {
    let host = TestHost::start(&[], Settings::default()).await;
    let (status, _) = host.api("POST", "/v1/groups", r#"{"id": "g"}"#).await;
    assert_eq!(status, 201);
    let (_, before) = host.api("GET", "/v1/groups", "").await;

    let cases = [
        ("POST", "/v1/groups", r#"{"id": "g"}"#, 409, "field `id`"),
        ("POST", "/v1/groups", r#"{"id": "a/b"}"#, 400, "field `id`"),
        ("POST", "/v1/groups", r#"{"colour": 1}"#, 400, "colour"),
        ("POST", "/v1/groups", "not json", 400, "not valid"),
        (
            "POST",
            "/v1/devices",
            r#"{"group": "nope"}"#,
            400,
            "field `group`",
        ),
        ("POST", "/v1/devices", r#"{"id": "a/b"}"#, 400, "field `id`"),
        ("POST", "/v1/devices", r#"{"id": "a+b"}"#, 400, "field `id`"),
        ("GET", "/v1/devices/nope", "", 404, "no device"),
        ("GET", "/v1/groups/nope", "", 404, "no group"),
        ("GET", "/v1/devices?group=nope", "", 404, "no group"),
        ("POST", "/v1/devices/nope/key", "", 404, "no device"),
        ("PUT", "/v1/groups/g", r#"{"id": "h"}"#, 400, "field `id`"),
        ("DELETE", "/v1/devices/nope", "", 404, "no device"),
    ];
    for (method, path, body, want, says) in cases {
        let (status, answer) = host.api(method, path, body).await;
        assert_eq!(status, want, "{method} {path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path} {body}: {error}");
    }
    let long = format!(r#"{{"name": "{}"}}"#, "n".repeat(300));
    let (status, answer) = host.api("POST", "/v1/devices", &long).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("field `name`"));
    let (_, devices) = host.api("GET", "/v1/devices", "").await;
    assert_eq!(devices, json!([]));

    let (status, _) = host
        .api("POST", "/v1/devices", r#"{"id": "d", "group": "g"}"#)
        .await;
    assert_eq!(status, 201);
    let (status, answer) = host.api("DELETE", "/v1/groups/g", "").await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("1 device"));
    let (_, after) = host.api("GET", "/v1/groups", "").await;
    assert_eq!(before, after);
    let (status, _) = host.api("POST", "/v1/devices", r#"{"id": "d"}"#).await;
    assert_eq!(status, 409);

    let (status, _) = host.api("DELETE", "/v1/devices/d", "").await;
    assert_eq!(status, 204);
    let (status, _) = host.api("DELETE", "/v1/groups/g", "").await;
    assert_eq!(status, 204);
    let (status, _) = host.api("GET", "/v1/groups/g", "").await;
    assert_eq!(status, 404);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_manages_the_registry() {
    use edgehook::remote::fleet::{DeviceCommand, GroupCommand, device, group};
    use edgehook::remote::{ApiArgs, ApiClient};

    let host = TestHost::start(&[], Settings::default()).await;
    let api = ApiClient::new(&ApiArgs {
        api: format!("http://{}", host.host.api_addr),
        token: Some(host.host.api_token.clone()),
        data: host.dir.path().join("data"),
    })
    .unwrap();
    let add = GroupCommand::Add {
        id: Some("line-2".into()),
        name: Some("Line 2".into()),
        metadata: None,
    };
    assert_eq!(group(add, &api).await.unwrap(), "Created group line-2\n");
    let added = device(
        DeviceCommand::Add {
            id: Some("d9".into()),
            name: None,
            group: Some("line-2".into()),
            metadata: Some(r#"{"floor": 2}"#.into()),
        },
        &api,
    )
    .await
    .unwrap();
    assert!(
        added.starts_with("Registered device d9 in group line-2\nKey: "),
        "{added}"
    );
    let (_, view) = host.api("GET", "/v1/devices/d9", "").await;
    assert_eq!(view["metadata"]["floor"], 2);

    let list = device(DeviceCommand::List { group: None }, &api)
        .await
        .unwrap();
    assert_eq!(list, "d9\tline-2\t\n");
    let key = device(DeviceCommand::Key { id: "d9".into() }, &api)
        .await
        .unwrap();
    assert!(key.starts_with("New key of device d9: "), "{key}");

    let refused = group(
        GroupCommand::Remove {
            id: "line-2".into(),
        },
        &api,
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("still has 1 device"),
        "{refused}"
    );
    let bad = device(
        DeviceCommand::Add {
            id: None,
            name: None,
            group: None,
            metadata: Some("[1]".into()),
        },
        &api,
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().starts_with("--metadata"), "{bad}");

    device(DeviceCommand::Remove { id: "d9".into() }, &api)
        .await
        .unwrap();
    group(
        GroupCommand::Remove {
            id: "line-2".into(),
        },
        &api,
    )
    .await
    .unwrap();
    assert_eq!(
        group(GroupCommand::List, &api).await.unwrap(),
        "No groups\n"
    );
    host.host.stop().await;
}
