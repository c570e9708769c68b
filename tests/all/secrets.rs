//! Secrets are write-only (CONTRACT section 5): a webhook's password,
//! signing secret, credential headers, credential query fields and
//! credential-like JSON members read as `***` in the API's views, the CLI's
//! list and the delivery log, while the requests carry the real values —
//! also after a client sends back what it read, as long as the webhook
//! still sends to the same scheme, host and port (section 12). Failed
//! deliveries tell the device, the delivery log, `/v1/plugins` and the log
//! lines where they went without the secrets. A broker password never
//! shows in a start-up error.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edgehook::config::Settings;
use edgehook_tests::BEHAVE;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{
    Device, Endpoint, HostProcess, HostUnderTest, Seen, TOKEN, TestHost, WAIT, closed_port,
    forward_manifest, http_request, install, is_marker, verify_signature,
};

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
    let run = Command::new(crate::support::edgehook_binary())
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

/// The Basic credentials of `door-user` with `password`, as sent.
fn basic(password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("door-user:{password}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_sent_back_masked_stays_with_its_destination() {
    let mut a = Endpoint::start(200, "ok").await;
    let mut b = Endpoint::start(200, "ok").await;
    let host = TestHost::start(&[], Settings::default()).await;
    let id = host
        .create_webhook(json!({
            "event": "door",
            "url": a.url("/door"),
            "auth": {"username": "door-user", "password": "hunter2"},
            "headers": {"X-Api-Key": "header-sekrit"},
            "noDefaults": true,
        }))
        .await;
    let path = format!("/v1/webhooks/{id}");
    let (_, view) = host.api("GET", &path, "").await;

    // Pointed at another server with the secrets as read: refused, naming them.
    let mut moved = view.clone();
    moved["url"] = json!(b.url("/door"));
    let (status, refused) = host.api("PUT", &path, &moved.to_string()).await;
    assert_eq!(status, 400, "{refused}");
    let error = refused["error"].as_str().unwrap();
    for needed in [
        "auth.password",
        "headers.X-Api-Key",
        "send the secret again: the destination changed",
    ] {
        assert!(error.contains(needed), "{needed}: {error}");
    }
    assert_masked("the refusal", error);

    // The same server, another path: the secrets stay and still reach it.
    let mut other_path = view.clone();
    other_path["url"] = json!(a.url("/other"));
    let (status, replaced) = host.api("PUT", &path, &other_path.to_string()).await;
    assert_eq!(status, 200, "{replaced}");
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("door", "open").await;
    let seen = a.next().await;
    assert_eq!(seen.uri.path(), "/other");
    assert_eq!(seen.headers["authorization"], basic("hunter2"));
    assert_eq!(seen.headers["x-api-key"], "header-sekrit");

    // Nothing reached B before a later marker: the refused PUT sent nothing.
    host.send_marker(&device, b.url("/marker")).await;
    let early = b.before_marker(is_marker).await;
    assert!(early.is_empty(), "B got {early:?}");

    // Sent again with the new destination, the secrets go there.
    let mut resent = view.clone();
    resent["url"] = json!(b.url("/door"));
    resent["auth"]["password"] = json!("hunter3");
    resent["headers"]["X-Api-Key"] = json!("other-sekrit");
    let (status, replaced) = host.api("PUT", &path, &resent.to_string()).await;
    assert_eq!(status, 200, "{replaced}");
    device.publish("door", "closed").await;
    let seen = b.next().await;
    assert_eq!(seen.uri.path(), "/door");
    assert_eq!(seen.headers["authorization"], basic("hunter3"));
    assert_eq!(seen.headers["x-api-key"], "other-sekrit");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mainflux_header_secret_stays_with_its_destination() {
    let mut a = Endpoint::start(200, "ok").await;
    let b = Endpoint::start(200, "ok").await;
    let host = TestHost::start(&[], Settings::default()).await;
    host.register(&[], &[("t1", None)]).await;
    let (status, created) = host
        .api(
            "POST",
            "/things/t1/webhooks",
            &json!([{"name": "n", "url": a.url("/in"), "headers": {"X-Api-Key": "header-sekrit"}}])
                .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/webhooks/{id}");
    let put = |url: String| json!({"name": "n", "url": url, "headers": {"X-Api-Key": "***"}});

    let (status, refused) = host.api("PUT", &path, &put(b.url("/in")).to_string()).await;
    assert_eq!(status, 400, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("headers.X-Api-Key") && error.contains("the destination changed"),
        "{error}"
    );

    let (status, replaced) = host
        .api("PUT", &path, &put(a.url("/other")).to_string())
        .await;
    assert_eq!(status, 200, "{replaced}");
    let device = Device::connect(host.mqtt_addr(), "t1").await;
    device.publish("temp", "21").await;
    let seen = a.next().await;
    assert_eq!(seen.uri.path(), "/other");
    assert_eq!(seen.headers["x-api-key"], "header-sekrit");
    host.host.stop().await;
}

/// The next `hook-error` text `device` gets for event `name`.
async fn next_hook_error(device: &mut Device, name: &str) -> String {
    let errors = format!("/hook-error/{name}/");
    loop {
        let (topic, text) = device.next_text().await;
        if topic.contains(&errors) {
            return text;
        }
    }
}

/// The plugins of `GET /v1/plugins` once `name` is among them, as text.
async fn plugins_with(host: &HostProcess, name: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, plugins) =
            http_request(host.api_addr, "GET", "/v1/plugins", Some(TOKEN), "").await;
        assert_eq!(status, 200, "{plugins}");
        if plugins
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == name)
        {
            return plugins.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never listed: {plugins}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_deliveries_name_their_destination_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // A plugin of the plugins directory whose request URL does not parse.
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let leaky_url = "http://u:hunter2@127.0.0.1:x/in?api_key=query-sekrit";
    install(
        &plugins,
        "leaky",
        BEHAVE,
        &forward_manifest("leak", leaky_url),
    );
    let mqtt = ["--mqtt-listen", "127.0.0.1:0"];
    let (host, mut log) = HostProcess::start_logged(dir.path(), &mqtt).await;
    let (status, created) = http_request(
        host.api_addr,
        "POST",
        "/v1/webhooks",
        Some(TOKEN),
        &json!({
            "event": "door",
            "url": "http://door-user:hunter2@127.0.0.1:{{{port}}}/in?api_key=query-sekrit",
            "headers": {"X-Api-Key": "header-sekrit{{{suffix}}}"},
            "noDefaults": true,
        })
        .to_string(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut device = Device::connect(host.mqtt_addr.unwrap(), "d1").await;
    let (_held, closed) = closed_port();

    // A header value with a line break, a destination that refuses the
    // connection, a URL that does not parse once rendered; one at a time,
    // so that the last plugin error is the URL's.
    let mut errors = Vec::new();
    for data in [
        json!({"port": "1", "suffix": "\n"}),
        json!({"port": closed.to_string(), "suffix": ""}),
        json!({"port": "x", "suffix": ""}),
    ] {
        device.publish("door", data.to_string()).await;
        errors.push(next_hook_error(&mut device, "door").await);
    }
    for error in &errors {
        assert_masked("a hook-error", error);
    }
    assert!(
        errors[0].contains("headers.X-Api-Key") && errors[0].contains("line break"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("request to 127.0.0.1 failed"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("door-user:***@127.0.0.1:x/in?api_key=***"),
        "{}",
        errors[2]
    );

    let (status, delivery_log) = http_request(
        host.api_addr,
        "GET",
        &format!("/v1/webhooks/{id}/log"),
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(status, 200, "{delivery_log}");
    assert_eq!(
        delivery_log["errors"].as_array().unwrap().len(),
        3,
        "{delivery_log}"
    );
    assert_masked("the delivery log", &delivery_log.to_string());

    plugins_with(&host, "leaky").await;
    device.publish("leak", "").await;
    let error = next_hook_error(&mut device, "leak").await;
    assert!(
        error.contains("u:***@127.0.0.1:x/in?api_key=***"),
        "{error}"
    );
    assert_masked("the plugin's hook-error", &error);
    let plugins = plugins_with(&host, "leaky").await;
    assert!(
        plugins.contains("u:***@127.0.0.1:x/in?api_key=***"),
        "{plugins}"
    );
    assert_masked("/v1/plugins", &plugins);

    // The log, up to the lines of the three failures (each is logged
    // before the device hears of it).
    let mut lines: Vec<String> = Vec::new();
    let logged = |lines: &[String], what: &str| lines.iter().any(|l| l.contains(what));
    tokio::time::timeout(WAIT, async {
        while !(logged(&lines, "line break")
            && logged(&lines, "request to 127.0.0.1 failed")
            && logged(&lines, "request URL"))
        {
            lines.push(log.recv().await.expect("the host logs on"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the failures were not all logged: {lines:#?}"));
    for line in &lines {
        assert_masked("a log line", line);
    }
    host.kill().await;
}
