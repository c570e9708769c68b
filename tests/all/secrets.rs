//! Secrets are write-only (CONTRACT section 5): a webhook's password,
//! signing secret, credential headers, credential query fields and
//! credential-like JSON members read as `***` in the API's views, the CLI's
//! list and the delivery log, while the requests carry the real values —
//! also after a client sends back what it read. A broker password never
//! shows in a start-up error.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edgehook::config::Settings;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{Device, Endpoint, Seen, TestHost, WAIT, verify_signature};

/// The Standard Webhooks reference secret.
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every secret of the webhook below, and of its endpoint's answer, as
/// they must never be read back.
const SECRETS: [&str; 7] = [
    "hunter2",
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "header-sekrit",
    "query-sekrit",
    "json-sekrit",
    "answer-sekrit",
    // base64("door-user:hunter2"), the Basic credentials as sent.
    "ZG9vci11c2VyOmh1bnRlcjI",
];

fn assert_masked(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

/// Checks that `seen` carries every real secret of the webhook.
fn assert_real_secrets(seen: &Seen, key: &[u8], value: &str) {
    let basic = STANDARD.encode("door-user:hunter2");
    assert_eq!(seen.headers["authorization"], format!("Basic {basic}"));
    assert_eq!(seen.headers["x-api-key"], "header-sekrit");
    assert_eq!(seen.headers["x-room"], "hall");
    assert_eq!(seen.uri.query(), Some("api_key=query-sekrit&room=hall"));
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({"value": value, "device": {"token": "json-sekrit"}})
    );
    verify_signature(seen, key);
}

/// The delivery log of `id` once it holds `n` requests.
async fn log_with(host: &TestHost, id: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, log) = host.api("GET", &format!("/v1/webhooks/{id}/log"), "").await;
        assert_eq!(status, 200, "{log}");
        if log["requests"].as_array().unwrap().len() >= n {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never held {n} requests: {log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_written_used_and_never_read_back() {
    let mut endpoint = Endpoint::start(200, r#"{"ok":true,"session_token":"answer-sekrit"}"#).await;
    let key = STANDARD
        .decode(SIGNING_SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let host = TestHost::start(&[], Settings::default()).await;
    let (status, created) = host
        .api(
            "POST",
            "/v1/webhooks",
            &json!({
                "event": "door",
                "url": endpoint.url("/door?api_key=query-sekrit&room=hall"),
                "auth": {"username": "door-user", "password": "hunter2"},
                "secret": SIGNING_SECRET,
                "noDefaults": true,
                "headers": {"X-Api-Key": "header-sekrit", "X-Room": "hall"},
                "json": {"value": "{{{PARTICLE_EVENT_VALUE}}}", "device": {"token": "json-sekrit"}},
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_masked("the created view", &created.to_string());
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, list) = host.api("GET", "/v1/webhooks", "").await;
    assert_eq!(status, 200);
    assert_masked("the list", &list.to_string());
    let cli = edgehook::remote::describe_list(list.as_array().unwrap());
    assert_masked("the CLI's list", &cli);
    let (status, view) = host.api("GET", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(status, 200);
    assert_masked("the view", &view.to_string());
    assert_eq!(
        view["auth"],
        json!({"username": "door-user", "password": "***"})
    );
    assert_eq!(view["secret"], "***");
    assert_eq!(
        view["headers"],
        json!({"X-Api-Key": "***", "X-Room": "hall"})
    );
    assert_eq!(view["json"]["device"], json!({"token": "***"}));
    assert_eq!(view["url"], endpoint.url("/door?api_key=***&room=hall"));
    assert_eq!(list[0], view);

    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("door", "open").await;
    assert_real_secrets(&endpoint.next().await, &key, "open");

    let log = log_with(&host, &id, 1).await;
    assert_masked("the delivery log", &log.to_string());
    let entry = &log["requests"][0];
    let sent: Value = serde_json::from_str(entry["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"value": "open", "device": {"token": "***"}}));
    let answer: Value = serde_json::from_str(entry["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer, json!({"ok": true, "session_token": "***"}));
    let headers = entry["request"]["headers"].as_array().unwrap();
    assert!(
        headers.contains(&json!(["X-Api-Key", "***"])),
        "{headers:?}"
    );
    assert!(
        headers.contains(&json!(["authorization", "Basic ***"])),
        "{headers:?}"
    );
    assert!(
        entry["request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/door?api_key=***&room=hall"),
        "{entry}"
    );

    // A client sends back what it read, with one change: the secrets stay.
    let mut edited = view.clone();
    edited["name"] = json!("front door");
    let (status, replaced) = host
        .api("PUT", &format!("/v1/webhooks/{id}"), &edited.to_string())
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_masked("the replaced view", &replaced.to_string());
    assert_eq!(replaced["name"], "front door");
    device.publish("door", "closed").await;
    assert_real_secrets(&endpoint.next().await, &key, "closed");
    host.host.stop().await;
}

/// `edgehook serve` with `args`, expected to stop at start-up: its
/// standard output and error together.
async fn serve_fails(dir: &Path, args: &[&str]) -> String {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let run = Command::new(edgehook_tests::edgehook_binary(profile_dir))
        .args(["serve", "--api-listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("data"))
        .arg("--plugins")
        .arg(dir.join("plugins"))
        .arg("--webhooks")
        .arg(dir.join("webhooks"))
        .args(args)
        .env_remove("EDGEHOOK_LOG_FORMAT")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("start-up stops within a minute")
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_password_is_not_in_start_up_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable_url = format!("mqtt://user:hunter2@127.0.0.1:{port}");
    let unreachable_args = ["--mqtt-url", unreachable_url.as_str()];
    let bad_args = ["--mqtt-url", "http://user:hunter2@127.0.0.1:1"];
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let (unreachable, bad) = tokio::join!(
        serve_fails(&dir_a, &unreachable_args),
        serve_fails(&dir_b, &bad_args),
    );
    for (what, output, reason) in [
        ("an unreachable broker", unreachable, "no connection"),
        ("a bad URL", bad, "is not mqtt://"),
    ] {
        assert!(!output.contains("hunter2"), "{what}: {output}");
        assert!(
            output.contains("user:***@127.0.0.1") && output.contains(reason),
            "{what}: {output}"
        );
    }
}
