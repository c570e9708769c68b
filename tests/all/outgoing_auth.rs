//! Outgoing auth done by the host (CONTRACT section 14), end to end: a
//! device publishes over MQTT, a webhook with an `auth` sends the request,
//! and the vendors' stand-in (`tests/standins/vendors.py`) checks the
//! vendor's wire format and verifies the signature or token with code that
//! is not ours: botocore for SigV4, PyJWT for Google's JWT grant,
//! Microsoft's documented algorithm for Azure SAS. Each README recipe runs
//! here as written there, with the stand-in's URL.

use edgehook::config::Settings;
use serde_json::{Value, json};

use crate::support::{
    Device, Endpoint, HostProcess, HostUnderTest, Standin, TestHost, WAIT, host_dir,
};

const DEVICE: &str = "3f002b000000000000000000";

/// A key made for these tests only, and its public half.
const TEST_KEY: &str = include_str!("../../host/src/auth/test_rsa_key.pem");
const TEST_PUBLIC_KEY: &str = include_str!("../../host/src/auth/test_rsa_key.pub.pem");

async fn host() -> TestHost {
    TestHost::start(&[], Settings::default()).await
}

/// Waits until the stand-in has logged `n` requests of `vendor`; they are
/// returned.
async fn logged(standin: &Standin, vendor: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let of_vendor: Vec<Value> = standin
            .log()
            .await
            .into_iter()
            .filter(|e| e["vendor"] == vendor)
            .collect();
        if of_vendor.len() >= n {
            return of_vendor;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{vendor}: {} of {n} requests logged",
            of_vendor.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every logged request of `vendor` verified.
fn all_ok(log: &[Value]) {
    for entry in log {
        assert_eq!(entry["verdict"], "ok", "{entry:#}");
    }
}

/// The device's next message that is not `hook-sent`.
async fn answer(device: &mut Device) -> (String, String) {
    loop {
        let (topic, text) = device.next_text().await;
        if !topic.contains("/hook-sent/") {
            return (topic, text);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_sigv4_verifies_with_botocore_and_the_secret_stays_write_only() {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let standin = Standin::start(&json!({"aws": {
        "access_key_id": "AKIDEXAMPLE", "secret_access_key": secret,
        "region": "eu-west-1", "service": "lambda", "session_token": "FQoGZXIvYXdzEXAMPLE"}}))
    .await;
    let host = host().await;
    let id = host
        .create_webhook(json!({
            "event": "reading", "url": standin.url("/aws/ingest?source=edge%20hook&fn=a+b"),
            "requestType": "POST",
            "json": {"device": "{{{PARTICLE_DEVICE_ID}}}", "value": "{{{PARTICLE_EVENT_VALUE}}}"},
            "headers": {"Authorization": "Bearer from-the-definition"},
            "auth": {"type": "aws-sigv4", "region": "eu-west-1", "service": "lambda",
                     "access_key_id": "AKIDEXAMPLE", "secret_access_key": secret,
                     "session_token": "FQoGZXIvYXdzEXAMPLE"}
        }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), DEVICE).await;
    device.publish("reading", "21.5").await;

    assert_eq!(
        answer(&mut device).await,
        (
            format!("devices/{DEVICE}/hook-response/reading/0"),
            r#"{"ok": true}"#.into()
        )
    );
    let log = logged(&standin, "aws", 1).await;
    all_ok(&log);
    let headers = &log[0]["headers"];
    assert!(
        headers["authorization"]
            .as_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "the host's signature replaced the definition's header: {headers}"
    );
    assert_eq!(headers["x-amz-security-token"], "FQoGZXIvYXdzEXAMPLE");

    let (status, view) = host.api("GET", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(status, 200);
    assert_eq!(view["auth"]["secret_access_key"], "***", "{view}");
    assert_eq!(view["auth"]["session_token"], "***");
    assert_eq!(view["auth"]["access_key_id"], "AKIDEXAMPLE");
    assert!(!view.to_string().contains(secret));
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_iot_hub_accepts_the_sas_token() {
    let key = "bXlzZWNyZXRrZXlteXNlY3JldGtleW15c2VjcmV0a2V5MTI=";
    let standin = Standin::start(&json!({"azure": {
        "hub": "myhub.azure-devices.net", "device": "dev1", "key": key, "key_name": null}}))
    .await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "telemetry",
        "url": standin.url("/devices/dev1/messages/events?api-version=2020-03-13"),
        "requestType": "POST",
        "json": {"temp": "{{{PARTICLE_EVENT_VALUE}}}"},
        "auth": {"type": "azure-sas", "resource_uri": "myhub.azure-devices.net/devices/dev1",
                 "key": key, "lifetime": "1h"}
    }))
    .await;
    let device = Device::connect(host.mqtt_addr(), DEVICE).await;
    device.publish("telemetry", "19").await;

    // IoT Hub answers 204 with no body: nothing to send the device back.
    all_ok(&logged(&standin, "azure", 1).await);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn google_pubsub_gets_one_token_for_many_events() {
    let standin = Standin::start(&json!({"google": {
        "public_key_pem": TEST_PUBLIC_KEY, "client_email": "edge@p.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/pubsub", "project": "p", "topic": "t"}}))
    .await;
    let host = host().await;
    let id = host
        .create_webhook(json!({
            "event": "reading",
            "url": standin.url("/google/v1/projects/p/topics/t:publish"),
            "requestType": "POST", "noDefaults": true,
            "json": {"messages": [{"data": "{{{PARTICLE_EVENT_BASE64}}}",
                                   "attributes": {"device": "{{{PARTICLE_DEVICE_ID}}}"}}]},
            "auth": {"type": "google-service-account",
                     "scope": "https://www.googleapis.com/auth/pubsub",
                     "key": {"type": "service_account", "project_id": "p",
                             "private_key_id": "k1", "private_key": TEST_KEY,
                             "client_email": "edge@p.iam.gserviceaccount.com",
                             "token_uri": standin.url("/google/token")}}
        }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), DEVICE).await;
    for i in 0..5 {
        device.publish("reading", format!("{i}")).await;
    }
    let published = logged(&standin, "google-publish", 5).await;
    all_ok(&published);
    let tokens = logged(&standin, "google-token", 1).await;
    all_ok(&tokens);
    assert_eq!(tokens.len(), 1, "five events, one token");
    let (topic, body) = answer(&mut device).await;
    assert_eq!(topic, format!("devices/{DEVICE}/hook-response/reading/0"));
    assert!(body.contains("messageIds"), "{body}");

    let (_, view) = host.api("GET", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(view["auth"]["key"]["private_key"], "***");
    assert_eq!(view["auth"]["key"]["private_key_id"], "***");
    assert!(!view.to_string().contains("PRIVATE KEY"));
    host.host.stop().await;
}

/// An OAuth 2 client credentials webhook as Iottly's dialect writes one.
async fn oauth2_webhook(host: &TestHost, standin: &Standin) {
    host.register(&["fleet"], &[("d1", Some("fleet"))]).await;
    let (status, body) = host
        .api(
            "POST",
            "/v1/projects/fleet/webhooks",
            &json!({"url": standin.url("/oauth2/api/readings"), "type": "user",
                "auth": {"type": "oauth2-client-credentials",
                         "token_url": standin.url("/oauth2/token"),
                         "client_id": "edge hook", "client_secret": "s3cr+t%", "scope": "write"}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth2_token_is_cached_and_refreshed_once_on_a_401() {
    let standin = Standin::start(&json!({"oauth2": {
        "client_id": "edge hook", "client_secret": "s3cr+t%", "expires_in": 3600}}))
    .await;
    let host = host().await;
    oauth2_webhook(&host, &standin).await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    for i in 0..10 {
        device.publish("temp", format!("{i}")).await;
    }
    all_ok(&logged(&standin, "oauth2-api", 10).await);
    assert_eq!(
        standin.count("oauth2-token").await,
        1,
        "ten events, one token"
    );

    // The server forgets its tokens: the next request gets a 401, and the
    // host asks for a new token and sends it again, once.
    standin.control("/_revoke").await;
    device.publish("temp", "after").await;
    let api = logged(&standin, "oauth2-api", 12).await;
    assert_ne!(api[10]["verdict"], "ok", "the revoked token was refused");
    assert_eq!(api[11]["verdict"], "ok", "the new token was taken");
    assert_eq!(standin.count("oauth2-token").await, 2);
    assert_eq!(host.metric("edgehook_auth_tokens_total").await, 2);
    host.host.stop().await;
}

/// A host retrying after `delays` with a webhook whose token endpoint is
/// the stand-in's OAuth 2 server, and a device that publishes to it.
async fn oauth2_direct(standin: &Standin, delays: &str) -> (TestHost, Device) {
    let host = TestHost::retrying(delays).await;
    host.create_webhook(json!({
        "event": "temp", "url": standin.url("/oauth2/api/t"),
        "auth": {"type": "oauth2-client-credentials", "token_url": standin.url("/oauth2/token"),
                 "client_id": "c", "client_secret": "s"}
    }))
    .await;
    let device = Device::connect(host.mqtt_addr(), DEVICE).await;
    (host, device)
}

fn oauth2_standin() -> Value {
    json!({"oauth2": {"client_id": "c", "client_secret": "s", "expires_in": 3600}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_token_endpoint_is_retried_like_a_delivery() {
    let standin = Standin::start(&oauth2_standin()).await;
    let (host, mut device) = oauth2_direct(&standin, "50ms, 50ms").await;

    // Fails twice, then answers: the third attempt goes through.
    standin.control("/_fail_token?count=2").await;
    device.publish("temp", "1").await;
    let (topic, _) = answer(&mut device).await;
    assert_eq!(topic, format!("devices/{DEVICE}/hook-response/temp/0"));
    assert_eq!(standin.count("oauth2-token").await, 3);
    assert_eq!(standin.count("oauth2-api").await, 1);
    assert_eq!(host.metric("edgehook_auth_token_failures_total").await, 2);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_endpoint_that_keeps_failing_ends_in_a_hook_error_that_says_so() {
    let standin = Standin::start(&oauth2_standin()).await;
    let (host, mut device) = oauth2_direct(&standin, "50ms").await;

    standin.control("/_fail_token?count=100").await;
    device.publish("temp", "2").await;
    let (topic, error) = answer(&mut device).await;
    assert_eq!(topic, format!("devices/{DEVICE}/hook-error/temp/0"));
    assert_eq!(
        error,
        "token request to 127.0.0.1 failed: status 503: {\"error\": \"temporarily_unavailable\"} (gave up after 2 attempts)"
    );
    assert_eq!(
        standin.count("oauth2-api").await,
        0,
        "nothing went out without a token"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn influxdb_and_slack_recipes_are_accepted() {
    let standin = Standin::start(&json!({
        "influx": {"token": "influx-token", "org": "home", "bucket": "sensors"},
        "slack": {"path": "/services/T000/B000/XXXX"}}))
    .await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "temp",
        "url": standin.url("/api/v2/write?org=home&bucket=sensors&precision=s"),
        "requestType": "POST",
        "headers": {"Authorization": "Token influx-token",
                    "Content-Type": "text/plain; charset=utf-8"},
        "body": "temperature,device={{{PARTICLE_DEVICE_ID}}} value={{{PARTICLE_EVENT_VALUE}}}"
    }))
    .await;
    host.create_webhook(json!({
        "event": "alarm", "url": standin.url("/services/T000/B000/XXXX"),
        "requestType": "POST", "noDefaults": true,
        "json": {"text": "{{{PARTICLE_DEVICE_ID}}}: {{{PARTICLE_EVENT_VALUE}}}"}
    }))
    .await;
    let device = Device::connect(host.mqtt_addr(), DEVICE).await;
    device.publish("temp", "21.5").await;
    device.publish("alarm", "door open").await;
    all_ok(&logged(&standin, "influx", 1).await);
    let slack = logged(&standin, "slack", 1).await;
    all_ok(&slack);
    assert_eq!(
        serde_json::from_str::<Value>(slack[0]["body"].as_str().unwrap()).unwrap(),
        json!({"text": format!("{DEVICE}: door open")})
    );
    host.host.stop().await;
}

/// libfaketime, from Debian's `faketime` (scripts/test installs it).
fn libfaketime() -> String {
    format!(
        "/usr/lib/{}-linux-gnu/faketime/libfaketime.so.1",
        std::env::consts::ARCH
    )
}

/// A gateway without a real-time clock boots in the past: its signed
/// deliveries wait, without failing, until the clock is set, and
/// `/healthz` says so meanwhile. The host runs under libfaketime, its wall
/// clock read from a file the test rewrites (the monotonic clock, which
/// timers use, left alone).
#[tokio::test(flavor = "multi_thread")]
async fn signed_deliveries_wait_for_the_clock_to_be_set() {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let standin = Standin::start(&json!({"aws": {
        "access_key_id": "AKIDEXAMPLE", "secret_access_key": secret,
        "region": "eu-west-1", "service": "lambda"}}))
    .await;
    let dir = host_dir();
    let clock = dir.path().join("faketime");
    std::fs::write(&clock, "@2001-01-01 00:00:00\n").unwrap();
    let clock_path = clock.to_str().unwrap();
    let libfaketime = libfaketime();
    let host = HostProcess::start_with_env(
        dir.path(),
        &["--mqtt-listen", "127.0.0.1:0"],
        &[
            ("LD_PRELOAD", &libfaketime),
            ("FAKETIME_TIMESTAMP_FILE", clock_path),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    )
    .await;
    let (status, health) = host.api_get("/healthz", None).await;
    assert_eq!(status, 200);
    assert!(
        health["clock"]
            .as_str()
            .unwrap_or_default()
            .starts_with("clock not set"),
        "{health}"
    );
    host.create_webhook(json!({
        "event": "reading", "url": standin.url("/aws/ingest"), "requestType": "POST",
        "json": {"v": "{{{PARTICLE_EVENT_VALUE}}}"},
        "auth": {"type": "aws-sigv4", "region": "eu-west-1", "service": "lambda",
                 "access_key_id": "AKIDEXAMPLE", "secret_access_key": secret}
    }))
    .await;
    // The marker: an unsigned one-way (Iottly) webhook on the same event,
    // which does not wait for the clock, and which the device does not hear.
    let mut marker = Endpoint::start(200, "").await;
    host.register(&["fleet"], &[(DEVICE, Some("fleet"))]).await;
    let (status, body) = host
        .api(
            "POST",
            "/v1/projects/fleet/webhooks",
            &json!({"url": marker.url("/marker"), "type": "user"}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut device = Device::connect(host.mqtt_addr(), DEVICE).await;
    device.publish("reading", "1").await;
    marker.next().await;
    assert_eq!(
        standin.count("aws").await,
        0,
        "nothing is signed with a clock in 2001"
    );

    std::fs::write(&clock, "+0\n").unwrap();
    // The first thing the device hears is the request going out, then its
    // answer: no hook-error while the clock was not set.
    assert_eq!(
        device.next_text().await,
        (format!("devices/{DEVICE}/hook-sent/reading"), String::new())
    );
    assert_eq!(
        device.next_text().await,
        (
            format!("devices/{DEVICE}/hook-response/reading/0"),
            r#"{"ok": true}"#.into()
        )
    );
    all_ok(&logged(&standin, "aws", 1).await);
    let (_, health) = host.api_get("/healthz", None).await;
    assert_eq!(health, json!({"status": "ok"}));
}
