//! Who may speak on the embedded broker (CONTRACT section 6): device logins
//! with registry keys, the operator's login, topics a client may not use,
//! and a rotated key closing the session that used it.

use edgehook::config::Settings;
use edgehook::ingress::acl::MqttAuth;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::support::{
    Device, Endpoint, Heard, HostProcess, HostUnderTest, TestHost, WAIT, login_settled,
};

async fn devices_host(endpoint: &Endpoint) -> TestHost {
    let host = TestHost::start(
        &[],
        Settings {
            mqtt_auth: Some(MqttAuth::Devices),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(serde_json::json!({
        "event": "temp", "url": endpoint.url("/in"), "json": {"d": "{{PARTICLE_DEVICE_ID}}", "v": "{{PARTICLE_EVENT_VALUE}}"}
    }))
    .await;
    host
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_log_in_with_their_keys_and_speak_only_for_themselves() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    let host = devices_host(&endpoint).await;
    let addr = host.mqtt_addr();
    let key = host.register_device("d1").await;
    host.register_device("d2").await;

    for (user, password, why) in [
        ("d1", "wrong", "a wrong key"),
        ("ghost", key.as_str(), "an unknown device"),
        ("d2", key.as_str(), "another device's key"),
        ("edgehook", "not-the-token", "a wrong API token"),
    ] {
        let mut c = Device::login(addr, "intruder", Some((user, password))).await;
        let refused = c.login_outcome().await.unwrap_err();
        assert!(refused.contains("BadUserNamePassword"), "{why}: {refused}");
    }
    let mut anonymous = Device::login(addr, "anon", None).await;
    assert!(
        anonymous.login_outcome().await.is_err(),
        "an anonymous login"
    );

    let mut d1 = Device::login(addr, "d1", Some(("d1", &key))).await;
    d1.login_outcome().await.unwrap();
    assert!(!d1.subscribe("devices/#").await, "d1 read every device");
    assert!(!d1.subscribe("devices/d2/#").await, "d1 read d2's answers");
    assert!(d1.subscribe("devices/d1/hook-response/#").await);

    // Another device's event and a forged answer are refused; d1's own
    // event, published after them, is the first thing that arrives.
    d1.publish_raw("devices/d2/events/temp", "forged").await;
    d1.publish_raw("devices/d1/hook-response/temp/0", "forged")
        .await;
    d1.publish_raw("devices/d1/events/temp", "21.5").await;
    let seen = endpoint.next().await;
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!((&body["d"], &body["v"]), (&"d1".into(), &"21.5".into()));
    assert_eq!(
        d1.message().await,
        ("devices/d1/hook-response/temp/0".into(), "noted".into())
    );

    let mut operator = Device::login(
        addr,
        "ops",
        Some(("edgehook", host.host.api_token.as_str())),
    )
    .await;
    operator.login_outcome().await.unwrap();
    assert!(operator.subscribe("devices/#").await);
    operator
        .publish_raw("devices/d1/hook-response/temp/0", "forged")
        .await;
    d1.publish_raw("devices/d1/events/temp", "22").await;
    endpoint.next().await;
    // The operator reads d1's event (its hook-sent may come first: the
    // host answers as soon as the event is stored, while the broker routes
    // the event itself).
    let mut read = Vec::new();
    while !read.iter().any(|t| t == "devices/d1/events/temp") {
        read.push(operator.message().await.0);
        assert!(
            read.len() <= 3,
            "the operator never read d1's event: {read:?}"
        );
    }
    assert_eq!(
        d1.message().await,
        ("devices/d1/hook-response/temp/0".into(), "noted".into()),
        "the operator's forged answer reached the device"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_closes_the_session_and_stops_working() {
    let endpoint = Endpoint::start(200, "ok").await;
    let host = devices_host(&endpoint).await;
    let addr = host.mqtt_addr();
    let old = host.register_device("d3").await;
    let mut d3 = Device::login(addr, "d3", Some(("d3", &old))).await;
    d3.login_outcome().await.unwrap();
    assert!(d3.subscribe("devices/d3/#").await);

    let (status, rotated) = host.api("POST", "/v1/devices/d3/key", "").await;
    assert_eq!(status, 200, "{rotated}");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Heard::Closed(why) = d3.heard().await {
                return why;
            }
        }
    })
    .await
    .expect("the session with the old key is closed");
    assert!(!closed.is_empty());

    let refused = login_settled(addr, "d3", ("d3", &old))
        .await
        .expect_err("the old key still works");
    assert!(!refused.contains("ServiceUnavailable"), "{refused}");
    let new = rotated["key"].as_str().unwrap();
    login_settled(addr, "d3", ("d3", new))
        .await
        .expect("the new key works");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_open_mode_nobody_forges_the_hosts_answers() {
    let endpoint = Endpoint::start(200, "real").await;
    let host = TestHost::start(&[], Settings::default()).await;
    host.create_webhook(serde_json::json!({"event": "temp", "url": endpoint.url("/in")}))
        .await;
    let addr = host.mqtt_addr();
    let mut victim = Device::login(addr, "victim", None).await;
    victim.login_outcome().await.unwrap();
    assert!(victim.subscribe("devices/victim/#").await);
    let mut forger = Device::login(addr, "forger", None).await;
    forger.login_outcome().await.unwrap();
    forger
        .publish_raw("devices/victim/hook-response/temp/0", "forged")
        .await;
    forger
        .publish_raw("devices/victim/commands", "forged")
        .await;
    // The marker: the victim's own event, answered by the host.
    victim.publish_raw("devices/victim/events/temp", "1").await;
    // Its own event (through its subscription) and the host's two answers,
    // the event and hook-sent in either order; no forgery among them.
    let mut answers = Vec::new();
    while answers.len() < 3 {
        answers.push(victim.message().await);
    }
    answers.sort();
    assert_eq!(
        answers,
        [
            ("devices/victim/events/temp".into(), "1".into()),
            ("devices/victim/hook-response/temp/0".into(), "real".into()),
            ("devices/victim/hook-sent/temp".into(), String::new()),
        ]
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mqtt5_device_logs_in_with_its_key() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode as Code5, Packet as Packet5};
    use rumqttc::v5::{AsyncClient as Client5, Event as Event5, MqttOptions as Options5};

    let mut endpoint = Endpoint::start(200, "five").await;
    let host = devices_host(&endpoint).await;
    let key = host.register_device("d5").await;
    let addr = host.mqtt_addr();
    let connect = |password: String| {
        let mut opts = Options5::new("d5", addr.ip().to_string(), addr.port());
        opts.set_credentials("d5", password);
        Client5::new(opts, 16)
    };
    let (_, mut refused) = connect("wrong".into());
    let err = refused.poll().await.unwrap_err();
    assert!(
        format!("{err:?}").contains("BadUserNamePassword"),
        "{err:?}"
    );

    let (client, mut eventloop) = connect(key);
    client
        .subscribe("devices/d5/hook-response/#", QoS5::AtLeastOnce)
        .await
        .unwrap();
    client
        .publish("devices/d5/events/temp", QoS5::AtLeastOnce, false, "5")
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await.unwrap() {
                Event5::Incoming(Packet5::ConnAck(ack)) => assert_eq!(ack.code, Code5::Success),
                Event5::Incoming(Packet5::Publish(p)) => return p,
                _ => {}
            }
        }
    })
    .await
    .expect("the answer reaches the MQTT 5 device");
    assert_eq!(&reply.payload[..], b"five");
    assert!(!endpoint.next().await.body.is_empty());
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_logs_in_over_the_tls_listener() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let mut endpoint = Endpoint::start(200, "over tls").await;
    let host = TestHost::start(
        &[],
        Settings {
            mqtt_auth: Some(MqttAuth::Devices),
            mqtt_tls_listen: Some("127.0.0.1:0".parse().unwrap()),
            mqtt_tls_cert: Some(cert.clone()),
            mqtt_tls_key: Some(key),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(serde_json::json!({"event": "temp", "url": endpoint.url("/in")}))
        .await;
    let device_key = host.register_device("t1").await;
    let tls_addr = host.host.mqtt_tls_addr.expect("a TLS listener");

    // Plain MQTT on the TLS port gets no CONNACK.
    let mut plain = Device::login(tls_addr, "plain", Some(("t1", &device_key))).await;
    assert!(plain.login_outcome().await.is_err());

    let mut opts = MqttOptions::new("t1", "127.0.0.1", tls_addr.port());
    opts.set_credentials("t1", device_key);
    let trusting = edgehook::tls::client_config(Some(&cert)).unwrap();
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(trusting)),
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    client
        .subscribe("devices/t1/hook-response/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .publish("devices/t1/events/temp", QoS::AtLeastOnce, false, "7")
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = eventloop.poll().await.unwrap() {
                return p;
            }
        }
    })
    .await
    .expect("the answer comes back over TLS");
    assert_eq!(&reply.payload[..], b"over tls");
    let seen = endpoint.next().await;
    assert!(!seen.body.is_empty());
    host.host.stop().await;
}

/// A TLS 1.2 ClientHello that names the server `sni` in its server_name
/// extension as written, as some device TLS stacks do with an IP address
/// (RFC 6066 allows only host names there).
fn client_hello(sni: &str) -> Vec<u8> {
    fn with_len16(body: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }
    fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        out.extend(with_len16(data));
        out
    }
    let mut name = vec![0]; // host_name
    name.extend(with_len16(sni.as_bytes()));
    let mut extensions = extension(0x0000, &with_len16(&name));
    // x25519, secp256r1
    extensions.extend(extension(0x000a, &with_len16(&[0x00, 0x1d, 0x00, 0x17])));
    extensions.extend(extension(0x000b, &[0x01, 0x00]));
    // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    extensions.extend(extension(
        0x000d,
        &with_len16(&[0x04, 0x03, 0x08, 0x04, 0x04, 0x01]),
    ));
    extensions.extend(extension(0x0017, &[]));
    extensions.extend(extension(0xff01, &[0x00]));
    let mut hello = vec![0x03, 0x03];
    hello.extend([0x5a; 32]); // random
    hello.push(0); // no session id
    // ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256
    hello.extend(with_len16(&[0xc0, 0x2b, 0xc0, 0x2f]));
    hello.extend([0x01, 0x00]); // no compression
    hello.extend(with_len16(&extensions));
    let mut handshake = vec![0x01, 0];
    handshake.extend(with_len16(&hello));
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(with_len16(&handshake));
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_naming_the_tls_listener_by_ip_address_is_served_without_a_warning() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (host, mut log) = HostProcess::start_logged(
        dir.path(),
        &[
            "--mqtt-listen",
            "127.0.0.1:0",
            "--mqtt-tls-listen",
            "127.0.0.1:0",
            "--mqtt-tls-cert",
            cert.to_str().unwrap(),
            "--mqtt-tls-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    let tls_addr = host.mqtt_tls_addr.expect("a TLS listener");

    let mut device = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    device.write_all(&client_hello("127.0.0.1")).await.unwrap();
    let mut first = [0; 1];
    tokio::time::timeout(WAIT, device.read_exact(&mut first))
        .await
        .expect("the server answers the ClientHello")
        .unwrap();
    assert_eq!(
        first[0], 0x16,
        "a handshake record (a ServerHello), no alert"
    );
    // Leaving mid-handshake makes the host log a line: the marker.
    drop(device);
    let mut before = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = log.recv().await {
            if line.contains("MQTT TLS handshake failed") {
                return;
            }
            before.push(line);
        }
        panic!("the host's log ended");
    })
    .await
    .unwrap_or_else(|_| panic!("no handshake line in the log; it had: {before:#?}"));
    let warned: Vec<&String> = before.iter().filter(|l| l.contains("SNI")).collect();
    assert!(
        warned.is_empty(),
        "an IP address in SNI is the client's mistake, not the host's warning: {warned:#?}"
    );
    host.kill().await;
}
