//! The HTTP API over a real socket: health, authentication, plugin status.

use edgehook::config::Settings;
use edgehook_tests::{BEHAVE, THINGSPEAK};

use crate::support::{HostUnderTest, TestHost};

#[tokio::test(flavor = "multi_thread")]
async fn health_is_open_and_everything_else_needs_the_token() {
    let manifest = "event = \"x\"\nallowed_hosts = []\n";
    let host = TestHost::start(
        &[("one", BEHAVE, manifest), ("two", THINGSPEAK, manifest)],
        Settings::default(),
    )
    .await;
    let (status, body) = host.api_get("/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    let (status, body) = host.api_get("/v1/plugins", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = host
        .api_get("/v1/plugins", Some("wrong-token-wrong-token"))
        .await;
    assert_eq!(status, 401);

    let token = host.host.api_token.clone();
    // Same length, one byte off (the last, so a comparison that stops
    // early or looks at lengths only lets it through).
    let mut near = token.clone().into_bytes();
    let last = near.last_mut().expect("a non-empty token");
    *last = if *last == b'0' { b'1' } else { b'0' };
    let near = String::from_utf8(near).unwrap();
    assert_eq!(near.len(), token.len());
    let (status, body) = host.api_get("/v1/plugins", Some(&near)).await;
    assert_eq!(status, 401, "a token one byte off was taken: {body}");
    assert_eq!(
        std::fs::read_to_string(host.dir.path().join("data/api-token")).unwrap(),
        token
    );
    let (status, body) = host.api_get("/v1/plugins", Some(&token)).await;
    assert_eq!(status, 200);
    let one = &body[0];
    assert_eq!(one["name"], "one");
    assert_eq!(one["state"], "running");
    assert_eq!(one["event"], "x");
    assert_eq!(one["digest"].as_str().unwrap().len(), 64);
    // The fixture is built against the first release of the world, the
    // example against the SDK's.
    assert_eq!(one["world"], "edgehook:webhook@0.1.0");
    let two = &body[1];
    assert_eq!(
        (&two["name"], &two["state"]),
        (&"two".into(), &"running".into())
    );
    assert_eq!(two["world"], "edgehook:webhook@0.2.0");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_survives_a_restart_and_compiled_code_is_cached() {
    let manifest = "event = \"x\"\nallowed_hosts = []\n";
    let first = TestHost::start(&[("one", BEHAVE, manifest)], Settings::default()).await;
    let token = first.host.api_token.clone();
    let cached: Vec<_> = std::fs::read_dir(first.dir.path().join("data/cache"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1, "one compiled plugin in the cache");

    let again = first.restart().await;
    assert_eq!(again.host.api_token, token);
    assert_eq!(again.host.registry.running(), 1);
    again.host.stop().await;
}
