//! The hosts' login to NATS (CONTRACT section 12, "Several hosts"): a real
//! `nats-server` with TLS and JetStream ([`SecureNats`]) that knows the
//! hosts' logins only (devices log in to the hosts' embedded brokers,
//! never to NATS).
//!
//! - A host logging in with the hosts' password, nkey or token, or with
//!   its client certificate where the server demands one (`verify:
//!   true`), verifying the server with the CA, serves webhooks end to end
//!   for a device on its embedded broker.
//! - Credentials in `--nats-url` are never logged; a wrong password, an
//!   unreadable file, a missing CA or a missing client certificate stop
//!   start-up at once with a message that names the problem and shows no
//!   secret.
//! - A client without the hosts' login (none, a wrong password, or the
//!   login of another account) cannot read the key-value buckets, the
//!   object store or the streams, take events from the shared consumer,
//!   or publish into the hosts' subjects (`edgehook.events.…`,
//!   `edgehook.to-devices.…`, `edgehook.command-replies`).

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::time::Instant;

use crate::support::{
    Device, Endpoint, HOSTS_PASSWORD, HOSTS_USER, HostProcess, HostUnderTest, Logins,
    OTHER_PASSWORD, OTHER_USER, SecureNats, WAIT, host_dir, ready_object, serve_in,
};

/// How soon a host that cannot log in must give up.
const AT_ONCE: Duration = Duration::from_secs(10);

/// `flags` with the embedded broker on a free loopback port.
fn with_broker(mut flags: Vec<String>) -> Vec<String> {
    flags.extend(["--mqtt-listen".to_owned(), "127.0.0.1:0".to_owned()]);
    flags
}

/// `flags` with the value of `name` replaced by `value`.
fn with_value(mut flags: Vec<String>, name: &str, value: &str) -> Vec<String> {
    let i = flags
        .iter()
        .position(|f| f == name)
        .unwrap_or_else(|| panic!("{name} in {flags:?}"));
    flags[i + 1] = value.to_owned();
    flags
}

/// `flags` without `name` and its value.
fn without(mut flags: Vec<String>, name: &str) -> Vec<String> {
    let i = flags
        .iter()
        .position(|f| f == name)
        .unwrap_or_else(|| panic!("{name} in {flags:?}"));
    flags.drain(i..i + 2);
    flags
}

/// Starts a host with `flags` and its embedded broker.
async fn start_host(dir: &Path, flags: Vec<String>) -> HostProcess {
    let flags = with_broker(flags);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    HostProcess::start(dir, &args).await
}

/// A webhook for `event` made on `host`; a device on the host's embedded
/// broker publishes it, the event reaches the endpoint (through
/// JetStream) and the endpoint's answer reaches the device (through
/// JetStream and the host's broker).
async fn serves_end_to_end(host: &HostProcess, event: &str) {
    let mut endpoint = Endpoint::start(200, "fine").await;
    host.create_webhook(serde_json::json!({ "event": event, "url": endpoint.url("/hook") }))
        .await;
    let broker = host.mqtt_addr.expect("the host's embedded broker");
    let id = format!("dev-{event}");
    let mut device = Device::connect(broker, &id).await;
    device.publish(event, "21.5").await;
    let seen = endpoint.next().await;
    assert!(
        String::from_utf8_lossy(&seen.body).contains("21.5"),
        "{:?}",
        seen.body
    );
    let response = format!("devices/{id}/hook-response/{event}/0");
    loop {
        let (topic, text) = device.next_text().await;
        if topic == response {
            assert_eq!(text, "fine");
            break;
        }
        assert_eq!(topic, format!("devices/{id}/hook-sent/{event}"));
    }
}

/// Runs `edgehook serve` with `args` and its embedded broker, which must
/// stop start-up; its standard error, and how long it ran.
async fn refused_start(dir: &Path, args: Vec<String>) -> (String, Duration) {
    let args = with_broker(args);
    // serve_in() finds the host binary and checks it against its sources
    // first: outside the time taken to refuse.
    let mut serve = serve_in(dir);
    serve.args(&args);
    let start = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(60), serve.output())
        .await
        .expect("the host stopped instead of hanging")
        .unwrap();
    let took = start.elapsed();
    assert!(!output.status.success(), "the host started with {args:?}");
    eprintln!(
        "refused in {took:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.lines().any(|line| ready_object(line).is_some()),
        "the host was ready:\n{stdout}"
    );
    (String::from_utf8_lossy(&output.stderr).into_owned(), took)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_the_hosts_password_and_the_ca_serves_webhooks() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    let host = start_host(dir.path(), nats.host_flags()).await;
    serves_end_to_end(&host, "temp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_the_hosts_nkey_serves_webhooks() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    let flags = vec![
        "--nats-url".to_owned(),
        nats.url(),
        "--nats-nkey".to_owned(),
        nats.hosts_nkey_file.display().to_string(),
        "--nats-ca-file".to_owned(),
        nats.ca_file.display().to_string(),
    ];
    let host = start_host(dir.path(), flags).await;
    serves_end_to_end(&host, "nkey").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_the_hosts_token_serves_webhooks() {
    let nats = SecureNats::start_with(Logins::Token).await;
    let dir = host_dir();
    let flags = nats.host_flags();
    assert!(flags.contains(&"--nats-token-file".to_owned()), "{flags:?}");
    let host = start_host(dir.path(), flags).await;
    serves_end_to_end(&host, "token").await;

    // A wrong token stops start-up at once, and is not shown.
    let wrong = nats.file("wrong-token", "not-the-token-77\n");
    let flags = with_value(
        nats.host_flags(),
        "--nats-token-file",
        &wrong.display().to_string(),
    );
    let (stderr, took) = refused_start(host_dir().path(), flags).await;
    assert!(stderr.contains("authorization violation"), "{stderr}");
    assert!(!stderr.contains("not-the-token-77"), "{stderr}");
    assert!(took < AT_ONCE, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_its_client_certificate_serves_webhooks_where_the_server_demands_one() {
    let nats = SecureNats::start_with(Logins::MutualTls).await;
    let dir = host_dir();
    let flags = nats.host_flags();
    assert!(flags.contains(&"--nats-tls-cert".to_owned()), "{flags:?}");
    let host = start_host(dir.path(), flags).await;
    serves_end_to_end(&host, "mtls").await;

    // Without its certificate the server refuses the host: start-up stops
    // at once, saying it is TLS and naming the setting to look at.
    let flags = without(
        without(nats.host_flags(), "--nats-tls-cert"),
        "--nats-tls-key",
    );
    let (stderr, took) = refused_start(host_dir().path(), flags).await;
    assert!(stderr.contains("TLS failed"), "{stderr}");
    assert!(stderr.contains("nats_tls_cert"), "{stderr}");
    assert!(!stderr.contains(HOSTS_PASSWORD), "{stderr}");
    assert!(took < AT_ONCE, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_the_urls_are_never_logged() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    let nats_url = nats
        .url()
        .replacen("://", &format!("://{HOSTS_USER}:{HOSTS_PASSWORD}@"), 1);
    let flags = with_broker(vec![
        "--nats-url".to_owned(),
        nats_url,
        "--nats-ca-file".to_owned(),
        nats.ca_file.display().to_string(),
    ]);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (host, mut log) = HostProcess::start_logged(dir.path(), &args).await;
    serves_end_to_end(&host, "logged").await;
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
    let flags = vec![
        "--nats-url".to_owned(),
        wrong,
        "--nats-ca-file".to_owned(),
        nats.ca_file.display().to_string(),
    ];
    let (stderr, took) = refused_start(host_dir().path(), flags).await;
    assert!(stderr.contains("authorization violation"), "{stderr}");
    assert!(
        stderr.contains(&format!("nats://hosts:***@127.0.0.1:{}", nats.client_port)),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret-42"), "{stderr}");
    assert!(took < AT_ONCE, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_a_missing_file_or_no_ca_stop_start_up_at_once() {
    let nats = SecureNats::start().await;
    let dir = host_dir();

    let wrong_file = nats.file("wrong-password", "not-the-password-9\n");
    let wrong = with_value(
        nats.host_flags(),
        "--nats-password-file",
        &wrong_file.display().to_string(),
    );
    let (stderr, took) = refused_start(dir.path(), wrong).await;
    assert!(stderr.contains("authorization violation"), "{stderr}");
    assert!(stderr.contains("nats_password_file"), "{stderr}");
    assert!(!stderr.contains("not-the-password-9"), "{stderr}");
    assert!(took < AT_ONCE, "a wrong password: took {took:?}");

    let missing = with_value(
        nats.host_flags(),
        "--nats-password-file",
        "/nonexistent/hosts-password",
    );
    let (stderr, took) = refused_start(dir.path(), missing).await;
    assert!(
        stderr.contains("`nats_password_file`: cannot read /nonexistent/hosts-password"),
        "{stderr}"
    );
    assert!(took < AT_ONCE, "a missing file: took {took:?}");

    let no_ca = without(nats.host_flags(), "--nats-ca-file");
    let (stderr, took) = refused_start(dir.path(), no_ca).await;
    assert!(stderr.contains("TLS failed"), "{stderr}");
    assert!(stderr.contains("nats_ca_file"), "{stderr}");
    assert!(took < AT_ONCE, "no CA: took {took:?}");
}

/// A NATS client on `nats` (TLS with its CA) logged in as `user`, if
/// given.
async fn nats_client(
    nats: &SecureNats,
    user: Option<(&str, &str)>,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let mut options = async_nats::ConnectOptions::new()
        .add_root_certificates(nats.ca_file.clone())
        .require_tls(true);
    if let Some((user, password)) = user {
        options = options.user_and_password(user.into(), password.into());
    }
    options.connect(nats.url()).await
}

/// The subjects the hosts publish on and listen to: devices' events, what
/// hosts send devices, devices' answers to commands.
const HOSTS_SUBJECTS: [&str; 3] = [
    "edgehook.events.d1",
    "edgehook.to-devices.d1",
    "edgehook.command-replies",
];

#[tokio::test(flavor = "multi_thread")]
async fn only_the_hosts_login_reaches_the_stores_the_streams_and_the_subjects() {
    let nats = SecureNats::start().await;
    let dir = host_dir();
    // The host creates the streams, the consumer and the buckets.
    let host = start_host(dir.path(), nats.host_flags()).await;
    serves_end_to_end(&host, "made").await;

    // The hosts' login reaches them all: the refusals below are of
    // things that are there.
    let hosts = nats_client(&nats, Some((HOSTS_USER, HOSTS_PASSWORD)))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(hosts.clone());
    for bucket in ["EDGEHOOK_DEFINITIONS", "EDGEHOOK_REGISTRY"] {
        js.get_key_value(bucket)
            .await
            .unwrap_or_else(|e| panic!("the hosts' login reads {bucket}: {e}"));
    }
    js.get_object_store("EDGEHOOK_PLUGINS")
        .await
        .expect("the hosts' login reads the plugins");
    for stream in ["EDGEHOOK_EVENTS", "EDGEHOOK_TO_DEVICES"] {
        js.get_stream(stream)
            .await
            .unwrap_or_else(|e| panic!("the hosts' login reads {stream}: {e}"));
    }
    js.get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
        "edgehook",
        "EDGEHOOK_EVENTS",
    )
    .await
    .expect("the hosts' login reads the shared consumer");

    // Nobody connects without a login, or with a wrong password.
    for login in [None, Some((HOSTS_USER, "wrong-password"))] {
        let err = nats_client(&nats, login).await.unwrap_err();
        assert_eq!(
            err.kind(),
            async_nats::ConnectErrorKind::AuthorizationViolation,
            "{login:?}: {err}"
        );
    }

    // The login of another application (another account) connects, and
    // reaches nothing of the hosts'.
    let other = nats_client(&nats, Some((OTHER_USER, OTHER_PASSWORD)))
        .await
        .unwrap();
    let mut theirs = async_nats::jetstream::new(other.clone());
    theirs.set_timeout(Duration::from_secs(2));
    for bucket in ["EDGEHOOK_DEFINITIONS", "EDGEHOOK_REGISTRY"] {
        assert!(
            theirs.get_key_value(bucket).await.is_err(),
            "another login read {bucket}"
        );
    }
    assert!(
        theirs.get_object_store("EDGEHOOK_PLUGINS").await.is_err(),
        "another login read the plugins"
    );
    for stream in ["EDGEHOOK_EVENTS", "EDGEHOOK_TO_DEVICES"] {
        assert!(
            theirs.get_stream(stream).await.is_err(),
            "another login read {stream}"
        );
    }
    assert!(
        theirs
            .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                "edgehook",
                "EDGEHOOK_EVENTS",
            )
            .await
            .is_err(),
        "another login opened the shared consumer"
    );
    // Asking the consumer for an event by hand gets none (an event comes
    // with the `$JS.ACK.…` subject to acknowledge it on).
    let next = tokio::time::timeout(
        WAIT,
        other.request(
            "$JS.API.CONSUMER.MSG.NEXT.EDGEHOOK_EVENTS.edgehook",
            "1".into(),
        ),
    )
    .await;
    if let Ok(Ok(reply)) = next {
        assert!(
            reply
                .reply
                .as_ref()
                .is_none_or(|ack| !ack.as_str().starts_with("$JS.ACK")),
            "another login took an event: {reply:?}"
        );
    }

    // Its publishes on the hosts' subjects never reach the hosts: a hosts'
    // subscriber gets the marker published after them, and nothing before.
    let mut heard = hosts.subscribe("edgehook.>").await.unwrap();
    hosts.flush().await.unwrap();
    for subject in HOSTS_SUBJECTS {
        other
            .publish(subject, "forged-by-another-login".into())
            .await
            .unwrap();
    }
    other.flush().await.unwrap();
    hosts
        .publish("edgehook.test-marker", "".into())
        .await
        .unwrap();
    hosts.flush().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, heard.next())
            .await
            .expect("the marker reached the hosts' subscriber")
            .unwrap();
        if message.subject.as_str() == "edgehook.test-marker" {
            break;
        }
        assert!(
            &message.payload[..] != b"forged-by-another-login",
            "another login published on {} to the hosts",
            message.subject
        );
    }
}
