//! Plugins that cannot run at all: another world, imports the host does not
//! give (sockets, files), truncated or random bytes, a core module. Each is
//! listed as failed with an error that names the file and the cause, a
//! broken new version leaves the running one in place, and the host goes on
//! serving the healthy plugins.

use std::path::Path;

use edgehook::config::Settings;
use edgehook_tests::{BEHAVE, FILES, FIXTURES, SOCKETS, WRONG_WORLD};

use crate::support::{
    Device, Endpoint, HostUnderTest, TestHost, forward_manifest, install, not_wasm,
};

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
    let random = write("random.wasm", &not_wasm());
    // The smallest core module: the header of version 1 and no sections.
    let core = write("core.wasm", b"\0asm\x01\0\0\0");

    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "wrong-world",
            WRONG_WORLD,
            &[
                "wrong-world.wasm: does not implement edgehook:webhook/webhook@0.3.0 (or @0.2.0, @0.1.0)",
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
        .map(|(name, ..)| forward_manifest(name, &url))
        .collect();
    let mut plugins: Vec<(&str, &str, &str)> = cases
        .iter()
        .zip(&manifests)
        .map(|((name, wasm, _), text)| (*name, *wasm, text.as_str()))
        .collect();
    let healthy = forward_manifest("forward", &url);
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
    let text = forward_manifest("forward", &endpoint.url("/"));
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
            "does not implement edgehook:webhook/webhook@0.3.0 (or @0.2.0, @0.1.0)",
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

/// Every fixture guest is used by a test: its constant appears as an
/// identifier in the code of the test sources, outside `use` declarations.
/// The sources are lexed as Rust, so a name in a comment, a doc comment or
/// a string literal does not count.
#[test]
fn every_fixture_has_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("all");
    let mut used = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let tokens: proc_macro2::TokenStream = text
                .parse()
                .unwrap_or_else(|e| panic!("{} does not lex: {e:?}", path.display()));
            identifiers_outside_use(tokens, &mut used);
        }
    }
    assert!(FIXTURES.contains(&"BEHAVE"), "{FIXTURES:?}");
    for fixture in FIXTURES {
        assert!(
            used.contains(*fixture),
            "fixture {fixture} is not used by any test in {}",
            dir.display()
        );
    }
}

/// Adds to `out` every identifier of `tokens`, in groups too (macro
/// arguments included), except those of `use …;` declarations.
fn identifiers_outside_use(
    tokens: proc_macro2::TokenStream,
    out: &mut std::collections::BTreeSet<String>,
) {
    use proc_macro2::TokenTree;
    let mut in_use = false;
    for token in tokens {
        match token {
            TokenTree::Ident(ident) if ident == "use" => in_use = true,
            TokenTree::Punct(p) if in_use && p.as_char() == ';' => in_use = false,
            _ if in_use => {}
            TokenTree::Ident(ident) => {
                out.insert(ident.to_string());
            }
            TokenTree::Group(group) => identifiers_outside_use(group.stream(), out),
            TokenTree::Punct(_) | TokenTree::Literal(_) => {}
        }
    }
}
