//! The hosts' login to NATS (CONTRACT section 12, "Several hosts"): a real
//! `nats-server` with TLS, JetStream and users ([`SecureNats`]). A host
//! with the hosts' password (or nkey) and the CA serves webhooks end to
//! end; a wrong password, an unreadable file or a missing CA stop start-up
//! at once with a message that names the problem and shows no secret; a
//! client without the hosts' login can neither read the shared buckets
//! nor take the events.

use std::path::Path;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::support::{
    DEVICE_PASSWORD, DEVICE_USER, Endpoint, HOSTS_PASSWORD, HOSTS_USER, HostProcess, SecureNats,
    TOKEN, WAIT, http_request, serve_in,
};

/// A host's data, plugins and webhooks directories.
fn host_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["data", "plugins", "webhooks"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    dir
}

/// Flags of a host on `nats` logging in with the hosts' password file and
/// verifying the server with its CA.
fn password_flags(nats: &SecureNats) -> Vec<String> {
    vec![
        "--nats-url".into(),
        nats.url(),
        "--mqtt-url".into(),
        nats.mqtt_url(),
        "--nats-user".into(),
        HOSTS_USER.into(),
        "--nats-password-file".into(),
        nats.hosts_password_file.display().to_string(),
        "--nats-ca-file".into(),
        nats.ca_file.display().to_string(),
    ]
}

/// A device on the MQTT listener logged in as the device user,
/// subscribed to its answers; the packets it receives.
async fn device(nats: &SecureNats, id: &str) -> (AsyncClient, mpsc::UnboundedReceiver<Packet>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", nats.mqtt_addr.port());
    options.set_credentials(DEVICE_USER, DEVICE_PASSWORD);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(packet) = event
                && tx.send(packet).is_err()
            {
                return;
            }
        }
    });
    client
        .subscribe(format!("devices/{id}/hook-response/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Packet::SubAck(ack))) => {
                assert_eq!(
                    ack.return_codes,
                    [rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                    "nats-server:\n{}",
                    nats.log()
                );
                return (client, rx);
            }
            Ok(Some(_)) => {}
            other => panic!("no SUBACK for the device: {other:?}"),
        }
    }
}

/// A webhook for `event` made on `host`; a device's event reaches the
/// endpoint and the endpoint's answer reaches the device (published by
/// the host through its own MQTT login).
async fn serves_end_to_end(nats: &SecureNats, host: &HostProcess, event: &str) {
    let mut endpoint = Endpoint::start(200, "fine").await;
    let definition = serde_json::json!({ "event": event, "url": endpoint.url("/hook") });
    let (status, body) = http_request(
        host.api_addr,
        "POST",
        "/v1/webhooks",
        Some(TOKEN),
        &definition.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = format!("dev-{event}");
    let (client, mut packets) = device(nats, &id).await;
    client
        .publish(
            format!("devices/{id}/events/{event}"),
            QoS::AtLeastOnce,
            false,
            "21.5",
        )
        .await
        .unwrap();
    let seen = endpoint.next().await;
    assert!(
        String::from_utf8_lossy(&seen.body).contains("21.5"),
        "{:?}",
        seen.body
    );
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, packets.recv()).await {
            Ok(Some(Packet::Publish(p))) => {
                assert_eq!(p.topic, format!("devices/{id}/hook-response/{event}/0"));
                assert_eq!(&p.payload[..], b"fine");
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("the answer did not reach the device: {other:?}"),
        }
    }
}

/// Runs `edgehook serve` with `args`, which must stop start-up; its
/// standard error, and how long it ran.
async fn refused_start(dir: &Path, args: &[String]) -> (String, Duration) {
    let start = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(30), serve_in(dir).args(args).output())
        .await
        .expect("the host stopped instead of hanging")
        .unwrap();
    assert!(!output.status.success(), "the host started");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("edgehook ready"),
        "the host was ready"
    );
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        start.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_the_hosts_password_and_the_ca_serves_webhooks() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    let flags = password_flags(&nats);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let host = HostProcess::start(dir.path(), &args).await;
    serves_end_to_end(&nats, &host, "temp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_the_hosts_nkey_serves_webhooks() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    // NATS's MQTT listener takes no nkey: the host's MQTT login is named
    // in the MQTT URL.
    let mqtt = format!("mqtt://{HOSTS_USER}:{HOSTS_PASSWORD}@{}", nats.mqtt_addr);
    let nkey = nats.hosts_nkey_file.display().to_string();
    let ca = nats.ca_file.display().to_string();
    let args = [
        "--nats-url",
        &nats.url(),
        "--mqtt-url",
        &mqtt,
        "--nats-nkey",
        &nkey,
        "--nats-ca-file",
        &ca,
    ];
    let host = HostProcess::start(dir.path(), &args).await;
    serves_end_to_end(&nats, &host, "nkey").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_the_urls_are_never_logged() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    let with_login =
        |url: String| url.replacen("://", &format!("://{HOSTS_USER}:{HOSTS_PASSWORD}@"), 1);
    let nats_url = with_login(nats.url());
    let mqtt_url = with_login(nats.mqtt_url());
    let ca = nats.ca_file.display().to_string();
    let args = [
        "--nats-url",
        &nats_url,
        "--mqtt-url",
        &mqtt_url,
        "--nats-ca-file",
        &ca,
    ];
    let (host, mut log) = HostProcess::start_logged(dir.path(), &args).await;
    serves_end_to_end(&nats, &host, "logged").await;
    host.kill().await;
    let mut lines = Vec::new();
    while let Some(line) = log.recv().await {
        lines.push(line);
    }
    assert!(lines.iter().any(|l| l.contains("NATS")), "{lines:#?}");
    for line in &lines {
        assert!(
            !line.contains(HOSTS_PASSWORD),
            "a log line shows the password: {line}"
        );
    }

    // A refused login names the URL with its password masked.
    let wrong = nats.url().replacen("://", "://hosts:wrong-secret-42@", 1);
    let mut args: Vec<String> = password_flags(&nats);
    args.drain(4..8);
    args[1] = wrong;
    let (stderr, took) = refused_start(host_dir().path(), &args).await;
    assert!(stderr.contains("authorization violation"), "{stderr}");
    assert!(
        stderr.contains(&format!("nats://hosts:***@127.0.0.1:{}", nats.client_port)),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret-42"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_a_missing_file_or_no_ca_stop_start_up_at_once() {
    let nats = SecureNats::start().await;
    let dir = host_dir();

    let mut wrong = password_flags(&nats);
    wrong[7] = nats
        .file("wrong-password", "not-the-password-9\n")
        .display()
        .to_string();
    let (stderr, took) = refused_start(dir.path(), &wrong).await;
    assert!(stderr.contains("authorization violation"), "{stderr}");
    assert!(stderr.contains("nats_password_file"), "{stderr}");
    assert!(!stderr.contains("not-the-password-9"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    let mut missing = password_flags(&nats);
    missing[7] = "/nonexistent/hosts-password".into();
    let (stderr, _) = refused_start(dir.path(), &missing).await;
    assert!(
        stderr.contains("`nats_password_file`: cannot read /nonexistent/hosts-password"),
        "{stderr}"
    );

    let mut no_ca = password_flags(&nats);
    no_ca.truncate(8);
    let (stderr, took) = refused_start(dir.path(), &no_ca).await;
    assert!(stderr.contains("TLS failed"), "{stderr}");
    assert!(stderr.contains("nats_ca_file"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A NATS client on `nats` (TLS with its CA) logged in as `user`, if
/// given; the errors the server sends it.
async fn nats_client(
    nats: &SecureNats,
    user: Option<(&str, &str)>,
) -> Result<(async_nats::Client, mpsc::UnboundedReceiver<String>), async_nats::ConnectError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut options = async_nats::ConnectOptions::new()
        .add_root_certificates(nats.ca_file.clone())
        .require_tls(true)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(err) = event {
                    let _ = tx.send(err.to_string());
                }
            }
        });
    if let Some((user, password)) = user {
        options = options.user_and_password(user.into(), password.into());
    }
    options.connect(nats.url()).await.map(|client| (client, rx))
}

/// The first server error of `errors` that names `subject`.
async fn violation(errors: &mut mpsc::UnboundedReceiver<String>, subject: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let error = tokio::time::timeout_at(deadline, errors.recv())
            .await
            .unwrap_or_else(|_| panic!("no permissions violation for {subject}"))
            .unwrap();
        if error.to_lowercase().contains("permissions violation") && error.contains(subject) {
            return error;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_hosts_user_reads_the_buckets_and_takes_the_events() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    let flags = password_flags(&nats);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The host creates the stream, its consumer and the buckets.
    let host = HostProcess::start(dir.path(), &args).await;
    serves_end_to_end(&nats, &host, "made").await;

    // The hosts' user reads them.
    let (hosts, _) = nats_client(&nats, Some((HOSTS_USER, HOSTS_PASSWORD)))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(hosts);
    js.get_key_value(edgehook::nats::DEFINITIONS_BUCKET)
        .await
        .expect("the hosts' user reads the definitions");

    // Nobody without a login connects.
    let err = nats_client(&nats, None).await.unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation,
        "{err}"
    );

    // The device user connects, and is refused everything but its own.
    let (device, mut errors) = nats_client(&nats, Some((DEVICE_USER, DEVICE_PASSWORD)))
        .await
        .unwrap();
    let mut js = async_nats::jetstream::new(device.clone());
    js.set_timeout(Duration::from_secs(2));
    assert!(
        js.get_key_value(edgehook::nats::DEFINITIONS_BUCKET)
            .await
            .is_err()
    );
    violation(&mut errors, "$JS.API.STREAM.INFO.KV_EDGEHOOK_DEFINITIONS").await;
    assert!(
        js.get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            edgehook::nats::EVENTS_CONSUMER,
            edgehook::nats::EVENTS_STREAM,
        )
        .await
        .is_err()
    );
    violation(&mut errors, "$JS.API.CONSUMER.INFO.EDGEHOOK_EVENTS").await;
    device
        .publish(
            "$JS.API.CONSUMER.MSG.NEXT.EDGEHOOK_EVENTS.edgehook",
            "1".into(),
        )
        .await
        .unwrap();
    violation(&mut errors, "$JS.API.CONSUMER.MSG.NEXT").await;
    // Nor may it speak for the hosts to a device.
    device
        .publish("devices.d1.hook-response.made.0", "forged".into())
        .await
        .unwrap();
    violation(&mut errors, "devices.d1.hook-response").await;
    // Its own events are allowed: of the violations up to the marker's (a
    // subject it may not publish, sent after them), none is for them.
    device
        .publish("devices.d1.events.ok", "1".into())
        .await
        .unwrap();
    device.publish("marker.denied", "".into()).await.unwrap();
    loop {
        let error = violation(&mut errors, "").await;
        assert!(!error.contains("devices.d1.events"), "{error}");
        if error.contains("marker.denied") {
            break;
        }
    }
}
