//! Plugins over the API (CONTRACT section 12): `PUT /v1/plugins/{name}`
//! checks the component and the manifest before it installs them, and
//! `DELETE` removes them; `edgehook plugin push|remove` call these routes.

use std::net::SocketAddr;

use edgehook::config::Settings;
use edgehook_tests::{BEHAVE, THINGSPEAK, WRONG_WORLD};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{
    Device, Endpoint, HostUnderTest, TestHost, cli, closed_port, forward_manifest, http_request,
    is_marker, not_wasm,
};

/// `PUT /v1/plugins/{name}` with `wasm` and `manifest` as a multipart form
/// (its body written while the answer is read, so that an early answer is
/// seen); (status, JSON body).
async fn put_plugin(
    addr: SocketAddr,
    token: Option<&str>,
    name: &str,
    wasm: &[u8],
    manifest: &str,
) -> (u16, serde_json::Value) {
    let boundary = "test-boundary-7f3a9c";
    let mut body = Vec::new();
    for (field, bytes) in [("wasm", wasm), ("manifest", manifest.as_bytes())] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{field}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "PUT /v1/plugins/{name} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The host may answer and close before it has read everything.
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
        write
    });
    let mut raw = Vec::new();
    let _ = read.read_to_end(&mut raw).await;
    drop(writer.await);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.len() > 12, "no answer: {text:?}");
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_owned())),
    )
}

fn sha256_of(path: &str) -> String {
    edgehook::runtime::digest(&std::fs::read(path).unwrap())
}

/// The plugin files in the plugins directory, hidden ones too.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_is_checked_installed_replaced_and_removed_over_the_api() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = TestHost::start(&[], Settings::default()).await;
    let (addr, token) = (host.host.api_addr, host.host.api_token.clone());
    let device = Device::connect(host.mqtt_addr(), "d").await;
    let behave = std::fs::read(BEHAVE).unwrap();

    // New: 201 with its status once loaded, and it delivers.
    let v1 = forward_manifest("r", &endpoint.url("/v1"));
    let (status, body) = put_plugin(addr, Some(&token), "pushed", &behave, &v1).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "pushed", "{body}");
    assert_eq!(body["state"], "running", "{body}");
    assert_eq!(body["digest"], sha256_of(BEHAVE), "{body}");
    device.publish("r", "one").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v1");
    assert_eq!(
        files_in(&host.plugins_dir()),
        ["pushed.toml", "pushed.wasm"],
        "both files in place, nothing left beside them"
    );

    // Refused with the reason, and the installed version serves on.
    let refusals: [(&[u8], String, &str); 5] = [
        (&not_wasm(), v1.clone(), "not a valid WebAssembly component"),
        (
            &std::fs::read(WRONG_WORLD).unwrap(),
            v1.clone(),
            "does not implement edgehook:webhook/webhook@0.3.0",
        ),
        (
            &behave,
            format!("colour = \"red\"\n{v1}"),
            "unknown field `colour`",
        ),
        (
            &behave,
            "event = \"r\"\nallowed_hosts = []\n[config]\ntoken = { env = \"EDGEHOOK_API_TOKEN\" }\n"
                .into(),
            "environment variable EDGEHOOK_API_TOKEN may not be read by a plugin",
        ),
        (&behave, "allowed_hosts = []\n".into(), "missing field `event`"),
    ];
    for (wasm, manifest, reason) in refusals {
        let (status, body) = put_plugin(addr, Some(&token), "pushed", wasm, &manifest).await;
        assert_eq!(status, 400, "{reason}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{reason} in {body}");
    }
    let listed = host.plugin_status("pushed").await.unwrap();
    assert_eq!(listed["digest"], sha256_of(BEHAVE), "{listed}");
    assert!(
        listed["error"].is_null(),
        "nothing refused was loaded: {listed}"
    );
    device.publish("r", "two").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v1");

    // Replaced: 200, and the new version delivers at once.
    let v2 = forward_manifest("r", &endpoint.url("/v2"));
    let (status, body) = put_plugin(addr, Some(&token), "pushed", &behave, &v2).await;
    assert_eq!(status, 200, "{body}");
    device.publish("r", "three").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v2");

    // Replaced by another component: its digest, once loaded.
    let thingspeak = std::fs::read(THINGSPEAK).unwrap();
    let manifest = "event = \"t\"\nallowed_hosts = []\n[config]\napi_key = \"k\"\n";
    let (status, body) = put_plugin(addr, Some(&token), "pushed", &thingspeak, manifest).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["digest"], sha256_of(THINGSPEAK), "{body}");
    assert_eq!(body["event"], "t", "{body}");

    // Removed: 204, gone from the list and from the event path; then 404.
    let (status, body) = put_plugin(addr, Some(&token), "pushed", &behave, &v1).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = host.api("DELETE", "/v1/plugins/pushed", "").await;
    assert_eq!(status, 204, "{body}");
    host.wait_for_plugin("pushed", |s| s.is_null()).await;
    device.publish("r", "four").await;
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "a removed plugin runs no more: {before:?}"
    );
    let (status, body) = host.api("DELETE", "/v1/plugins/pushed", "").await;
    assert_eq!(status, 404, "{body}");
    assert!(files_in(&host.plugins_dir()).is_empty());
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_need_the_token_a_plugin_name_a_free_name_and_at_most_32_mib() {
    let host = TestHost::start(&[], Settings::default()).await;
    let (addr, token) = (host.host.api_addr, host.host.api_token.clone());
    let behave = std::fs::read(BEHAVE).unwrap();
    let manifest = "event = \"r\"\nallowed_hosts = []\n";

    let (status, body) = put_plugin(addr, None, "p", &behave, manifest).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http_request(addr, "DELETE", "/v1/plugins/p", None, "").await;
    assert_eq!(status, 401, "{body}");

    for name in ["..%2Fx", "..%2F..%2Fetc%2Fpasswd", "Up", "a.b", "-x"] {
        let (status, body) = put_plugin(addr, Some(&token), name, &behave, manifest).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("is not a plugin name"),
            "{name}: {body}"
        );
        let (status, body) = host.api("DELETE", &format!("/v1/plugins/{name}"), "").await;
        assert_eq!(status, 400, "{name}: {body}");
    }

    for builtin in ["particle", "iottly", "mainflux"] {
        let (status, body) = put_plugin(addr, Some(&token), builtin, &behave, manifest).await;
        assert_eq!(status, 409, "{builtin}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("built-in"),
            "{body}"
        );
        let (status, body) = host
            .api("DELETE", &format!("/v1/plugins/{builtin}"), "")
            .await;
        assert_eq!(status, 409, "{builtin}: {body}");
    }

    let (status, body) = host.api("DELETE", "/v1/plugins/never-installed", "").await;
    assert_eq!(status, 404, "{body}");

    // 33 MiB: refused whole, nothing written.
    let big = vec![0u8; 33 << 20];
    let (status, body) = put_plugin(addr, Some(&token), "big", &big, manifest).await;
    assert_eq!(status, 413, "{body}");
    assert!(files_in(&host.plugins_dir()).is_empty());
    // Just under the limit passes the size check (and fails the compile).
    let (status, body) = put_plugin(addr, Some(&token), "big", &big[..31 << 20], manifest).await;
    assert_eq!(status, 400, "{body}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_pushes_and_removes_plugins_through_the_api() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = TestHost::start(&[], Settings::default()).await;
    let api = format!("http://{}", host.host.api_addr);
    let token = host.host.api_token.clone();
    let device = Device::connect(host.mqtt_addr(), "d").await;
    let files = tempfile::tempdir().unwrap();
    let wasm = files.path().join("from-cli.wasm");
    std::fs::copy(BEHAVE, &wasm).unwrap();
    let manifest = files.path().join("from-cli.toml");
    std::fs::write(&manifest, forward_manifest("c", &endpoint.url("/cli"))).unwrap();
    let (wasm, manifest) = (wasm.to_str().unwrap(), manifest.to_str().unwrap());
    let login = ["--api", api.as_str(), "--token", token.as_str()];
    let push = [&["plugin", "push", wasm, manifest][..], &login].concat();

    let (ok, out, err) = cli(&push).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("from-cli") && out.contains(&sha256_of(BEHAVE)),
        "{out}"
    );
    device.publish("c", "x").await;
    assert_eq!(endpoint.next().await.uri.path(), "/cli");

    // The API's reason, as the CLI's error.
    std::fs::write(manifest, "event = \"c\"\n").unwrap();
    let (ok, _, err) = cli(&push).await;
    assert!(!ok);
    assert!(err.contains("missing field `allowed_hosts`"), "{err}");

    let remove = [&["plugin", "remove", "from-cli"][..], &login].concat();
    let (ok, out, err) = cli(&remove).await;
    assert!(ok, "{err}");
    assert!(out.contains("Removed plugin from-cli"), "{out}");
    let (ok, _, err) = cli(&remove).await;
    assert!(!ok);
    assert!(err.contains("no plugin named from-cli"), "{err}");

    // Nobody listening: the message names the URL.
    let (_held, port) = closed_port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let (ok, _, err) = cli(&[
        "plugin", "push", wasm, manifest, "--api", &nowhere, "--token", "t",
    ])
    .await;
    assert!(!ok);
    assert!(
        err.contains(&format!("{nowhere}/v1/plugins/from-cli")),
        "{err}"
    );
    host.host.stop().await;
}
