//! Trust boundaries of issue 23 that are not the broker's, as a user or an
//! attacker meets them over real sockets: the API under half-open and slow
//! connections, over its connection limit and with oversized bodies; the
//! modes of the files the host keeps; a NAT64 address leading to loopback.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use edgehook::config::Settings;
use edgehook_tests::BEHAVE;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{Device, HostProcess, HostUnderTest, TestHost, WAIT, http_get};

/// Reads `stream` to its end; the bytes, or what ended it.
async fn read_to_eof(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map(|_| raw)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_while_a_thousand_half_open_connections_are_held() {
    let host = TestHost::start(&[], Settings::default()).await;
    let addr = host.host.api_addr;
    let mut held = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut stream = TcpStream::connect(addr).await.unwrap_or_else(|err| {
            panic!("connection {i}: {err} (the test needs about 2,100 open files: ulimit -n 4096)")
        });
        // Half of them send part of a request line, the others nothing.
        if i % 2 == 0 {
            stream.write_all(b"GET /healthz HT").await.unwrap();
        }
        held.push(stream);
    }
    let (status, body) = tokio::time::timeout(WAIT, http_get(addr, "/healthz", None))
        .await
        .expect("an answer while 1,000 connections are held");
    assert_eq!(status, 200, "{body}");
    let (status, _) = tokio::time::timeout(
        WAIT,
        http_get(addr, "/v1/plugins", Some(&host.host.api_token)),
    )
    .await
    .expect("an answer while 1,000 connections are held");
    assert_eq!(status, 200);
    drop(held);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_finishes_its_headers_is_closed_after_ten_seconds() {
    let host = TestHost::start(&[], Settings::default()).await;
    let mut slow = TcpStream::connect(host.host.api_addr).await.unwrap();
    let mut silent = TcpStream::connect(host.host.api_addr).await.unwrap();
    let start = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let limit = Duration::from_secs(20);
    for stream in [&mut slow, &mut silent] {
        let ended = tokio::time::timeout(limit, read_to_eof(stream))
            .await
            .expect("the server closes the connection");
        let elapsed = start.elapsed();
        assert!(
            ended.as_ref().is_ok_and(Vec::is_empty) || ended.is_err(),
            "no answer, only the close: {ended:?}"
        );
        assert!(
            (Duration::from_millis(9_500)..Duration::from_secs(15)).contains(&elapsed),
            "closed after {elapsed:?}, not 10 s"
        );
    }
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let host = TestHost::start(
        &[],
        Settings {
            api_max_connections: Some(2),
            ..Settings::default()
        },
    )
    .await;
    let addr = host.host.api_addr;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    // The third is taken by the kernel's backlog, not by the host.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(request).await.unwrap();
    // The marker: the second, asked after the third, is answered.
    second.write_all(request).await.unwrap();
    let mut answer = [0; 12];
    tokio::time::timeout(WAIT, second.read_exact(&mut answer))
        .await
        .expect("the second connection is served")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let mut byte = [0; 1];
    assert_eq!(
        third.try_read(&mut byte).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "the third connection is not served while two are open"
    );
    drop(first);
    tokio::time::timeout(WAIT, third.read_exact(&mut answer))
        .await
        .expect("the third connection is served once the first closes")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    host.host.stop().await;
}

/// `POST /v1/webhooks` with a body of `len` bytes; the status. The body is
/// written on its own task: the host may answer before reading all of it.
async fn post_webhook_of(host: &TestHost, len: usize) -> String {
    let mut stream = TcpStream::connect(host.host.api_addr).await.unwrap();
    let body = format!(
        "{{\"event\": \"e\", \"url\": \"http://x/\", \"pad\": \"{}\"}}",
        "x".repeat(len - 45)
    );
    assert_eq!(body.len(), len);
    let head = format!(
        "POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        host.host.api_token
    );
    let (mut read, mut write) = stream.split();
    let send = async {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(body.as_bytes()).await;
    };
    let mut answer = Vec::new();
    let (_, _) = tokio::join!(send, read.read_to_end(&mut answer));
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_bodies_over_one_mebibyte_get_413() {
    let host = TestHost::start(&[], Settings::default()).await;
    assert_eq!(
        post_webhook_of(&host, (1 << 20) + 1).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    // Exactly 1 MiB is read and judged as a definition.
    let status = post_webhook_of(&host, 1 << 20).await;
    assert!(
        status.starts_with("HTTP/1.1 ") && !status.contains("413"),
        "{status}"
    );
    host.host.stop().await;
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_and_its_files_are_the_host_users_alone() {
    let manifest = "event = \"x\"\nallowed_hosts = []\n";
    let host = TestHost::start(&[("one", BEHAVE, manifest)], Settings::default()).await;
    // Something in every store: a webhook, a device, a queued event.
    let (status, body) = host
        .api(
            "POST",
            "/v1/webhooks",
            r#"{"event": "x", "url": "http://127.0.0.1:9/", "auth": {"username": "u", "password": "p"}}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    host.register(&["g"], &[("d1", Some("g"))]).await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("x", "1").await;

    let data = host.dir.path().join("data");
    let mut seen = Vec::new();
    let mut dirs = vec![data.clone()];
    while let Some(dir) = dirs.pop() {
        assert_eq!(format!("{:o}", mode(&dir)), "700", "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                assert_eq!(format!("{:o}", mode(&path)), "600", "{}", path.display());
                seen.push(path.strip_prefix(&data).unwrap().display().to_string());
            }
        }
    }
    for expected in [
        "api-token",
        "registry.redb",
        "queue/",
        "cache/",
        "webhooks/",
    ] {
        assert!(
            seen.iter().any(|path| path.starts_with(expected)),
            "no {expected} among {seen:?}"
        );
    }
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_open_to_others_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (host, mut log) =
        HostProcess::start_logged(dir.path(), &["--mqtt-listen", "127.0.0.1:0"]).await;
    let warning = tokio::time::timeout(WAIT, async {
        loop {
            let line = log.recv().await.expect("the host's log");
            if line.contains("open to other users") {
                return line;
            }
        }
    })
    .await
    .expect("a warning about the data directory");
    assert!(
        warning.contains("WARN")
            && warning.contains("mode 0755")
            && warning.contains(&data.display().to_string()),
        "{warning}"
    );
    assert_eq!(mode(&data), 0o755, "the operator's choice is left alone");
    host.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nat64_address_of_loopback_is_refused_with_a_hook_error_that_says_so() {
    let manifest = "event = \"nat64\"\nallowed_hosts = [\"*\"]\n[config]\nmode = \"forward\"\nurl = \"http://[64:ff9b::7f00:1]:9/x\"\n";
    let host = TestHost::start(
        &[("nat64", BEHAVE, manifest)],
        Settings {
            allow_private_networks: Some(false),
            ..Settings::default()
        },
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("nat64", "x").await;
    let (topic, text) = device.next_text().await;
    assert_eq!(topic, "devices/d1/hook-error/nat64/0");
    assert!(
        text.contains("64:ff9b::7f00:1")
            && text.contains("NAT64 address of 127.0.0.1, a loopback address")
            && text.contains("--allow-private-networks"),
        "{text}"
    );
    host.host.stop().await;
}
