//! Plugins that cannot run at all: another world, imports the host does not
//! give (sockets, files), truncated or random bytes, a core module. Each is
//! listed as failed with an error that names the file and the cause, a
//! broken new version leaves the running one in place, and the host goes on
//! serving the healthy plugins.

use std::path::Path;

use edgehook::config::Settings;
use edgehook_tests::{BEHAVE, FILES, FIXTURES, SOCKETS, WRONG_WORLD};

use crate::support::{Device, Endpoint, TestHost, install};

fn manifest(event: &str, url: &str) -> String {
    format!(
        "event = \"{event}\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nmode = \"forward\"\nurl = \"{url}\"\n"
    )
}

/// Publishes `forward` and checks that the healthy plugin delivers it and
/// the device gets the answer, with nothing else before it.
async fn healthy_still_delivers(device: &mut Device, endpoint: &mut Endpoint, data: &str) {
    device.publish("forward", data).await;
    assert_eq!(endpoint.next().await.body, data.as_bytes());
    assert_eq!(device.next_text().await.0, "devices/d/hook-sent/forward");
    assert_eq!(
        device.next_text().await,
        ("devices/d/hook-response/forward/0".into(), "fine".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_plugins_fail_to_load_with_named_errors_and_the_others_keep_working() {
    let mut endpoint = Endpoint::start(200, "fine").await;
    let url = endpoint.url("/");
    let bytes = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| {
        let path = bytes.path().join(name);
        std::fs::write(&path, data).unwrap();
        path.display().to_string()
    };
    let behave = std::fs::read(BEHAVE).unwrap();
    let truncated = write("truncated.wasm", &behave[..behave.len() / 2]);
    let random = write(
        "random.wasm",
        &(0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    // The smallest core module: the header of version 1 and no sections.
    let core = write("core.wasm", b"\0asm\x01\0\0\0");

    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "wrong-world",
            WRONG_WORLD,
            &[
                "wrong-world.wasm: does not implement edgehook:webhook/webhook@0.1.0",
                "no `on-event` or `on-response` export (it exports `hello`)",
            ],
        ),
        (
            "sockets",
            SOCKETS,
            &[
                "sockets.wasm: the component imports wasi:sockets/",
                "which edgehook does not give plugins (no network or sockets: the host sends the requests)",
            ],
        ),
        (
            "files",
            FILES,
            &[
                "files.wasm: the component imports wasi:filesystem/",
                "which edgehook does not give plugins (no files",
            ],
        ),
        (
            "truncated",
            &truncated,
            &["truncated.wasm: not a valid WebAssembly component: "],
        ),
        (
            "random",
            &random,
            &["random.wasm: not a valid WebAssembly component: "],
        ),
        (
            "core",
            &core,
            &[
                "core.wasm: the file is a core wasm module, not a component; build for wasm32-wasip2",
            ],
        ),
    ];
    let manifests: Vec<String> = cases
        .iter()
        .map(|(name, ..)| manifest(name, &url))
        .collect();
    let mut plugins: Vec<(&str, &str, &str)> = cases
        .iter()
        .zip(&manifests)
        .map(|((name, wasm, _), text)| (*name, *wasm, text.as_str()))
        .collect();
    let healthy = manifest("forward", &url);
    plugins.push(("forward", BEHAVE, &healthy));
    let host = TestHost::start(&plugins, Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d").await;

    for (name, _, expected) in cases {
        let status = host.wait_for_plugin(name, |s| s["state"] == "failed").await;
        let error = status["error"].as_str().unwrap();
        for text in expected {
            assert!(error.contains(text), "{name}: {error}");
        }
        // wasmtime's cause follows the message.
        assert!(
            !error.ends_with("component: "),
            "{name} lost its cause: {error}"
        );
        // Its event is answered with why it does not run; the healthy
        // plugin answers right after.
        device.publish(name, "x").await;
        let (topic, text) = device.next_text().await;
        assert_eq!(topic, format!("devices/d/hook-error/{name}/0"));
        assert!(
            text.starts_with(&format!("plugin {name} is not running: "))
                && text.contains(expected[0]),
            "{name}: {text}"
        );
        healthy_still_delivers(&mut device, &mut endpoint, name).await;
    }
    let forward = host.plugin_status("forward").await.unwrap();
    assert_eq!(forward["state"], "running", "{forward}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_that_does_not_link_leaves_the_running_one() {
    let mut endpoint = Endpoint::start(200, "fine").await;
    let text = manifest("forward", &endpoint.url("/"));
    let host = TestHost::start(&[("forward", BEHAVE, &text)], Settings::default()).await;
    let dir = host.plugins_dir();
    let mut device = Device::connect(host.mqtt_addr(), "d").await;
    let running = host
        .wait_for_plugin("forward", |s| s["state"] == "running")
        .await;
    healthy_still_delivers(&mut device, &mut endpoint, "before").await;

    // `reload.rs` drops garbage over a running plugin; these are valid
    // components that fail only when linked against the world.
    for (wasm, expected) in [
        (SOCKETS, "imports wasi:sockets/"),
        (
            WRONG_WORLD,
            "does not implement edgehook:webhook/webhook@0.1.0",
        ),
        (FILES, "imports wasi:filesystem/"),
    ] {
        install(&dir, "forward", wasm, &text);
        let status = host
            .wait_for_plugin("forward", |s| {
                s["error"].as_str().is_some_and(|e| e.contains(expected))
            })
            .await;
        assert_eq!(status["state"], "running", "{status}");
        assert_eq!(status["digest"], running["digest"], "{status}");
        healthy_still_delivers(&mut device, &mut endpoint, expected).await;
    }
    host.host.stop().await;
}

/// Every fixture guest is used by a test: its constant appears in the test
/// sources outside `use` declarations.
#[test]
fn every_fixture_has_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("all");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push_str(&without_use_declarations(
                &std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    assert!(FIXTURES.contains(&"BEHAVE"), "{FIXTURES:?}");
    for fixture in FIXTURES {
        let used = sources.match_indices(fixture).any(|(at, _)| {
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !word(sources[..at].chars().next_back())
                && !word(sources[at + fixture.len()..].chars().next())
        });
        assert!(
            used,
            "fixture {fixture} is not used by any test in {}",
            dir.display()
        );
    }
}

/// `text` with its `use …;` declarations removed, however they are wrapped.
fn without_use_declarations(text: &str) -> String {
    let mut out = String::new();
    let mut in_use = false;
    for line in text.lines() {
        if line.trim_start().starts_with("use ") || line.trim_start().starts_with("pub use ") {
            in_use = true;
        }
        if !in_use {
            out.push_str(line);
            out.push('\n');
        }
        if in_use && line.trim_end().ends_with(';') {
            in_use = false;
        }
    }
    out
}
