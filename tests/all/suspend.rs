//! Hostile and broken plugins, seen from outside: a loop yields its worker
//! thread to the other webhooks, a plugin (or webhook) that keeps failing
//! is suspended until a new version arrives, and `GET /metrics` counts it
//! all.

use edgehook::config::{Config, Settings};
use edgehook_tests::BEHAVE;
use serde_json::json;

use crate::support::{Device, Endpoint, HostUnderTest, TestHost, behave_manifest, http_get};

/// The next device message, its 512-byte chunks put back together:
/// (topic of the first chunk, text).
async fn next_message(device: &mut Device) -> (String, String) {
    let (topic, mut payload) = device.next().await;
    let mut last = payload.len();
    while last == 512 {
        let (_, more) = device.next().await;
        last = more.len();
        payload.extend(more);
    }
    (topic, String::from_utf8(payload).expect("UTF-8 payload"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_plugin_yields_and_the_others_are_answered_first() {
    let endpoint = Endpoint::start(200, "fine").await;
    let url = endpoint.url("/");
    // A time limit the forward call and its request finish well within,
    // even on a loaded machine.
    let looping = behave_manifest("loop", "loop", &url, "cpu_time = \"2s\"");
    let forward = behave_manifest("forward", "forward", &url, "");
    // Tokio's defaults: as many workers as cores (2 here), so two looping
    // calls that held their threads would stall everything else.
    let host = TestHost::start(
        &[("loop", BEHAVE, &looping), ("forward", BEHAVE, &forward)],
        Settings::default(),
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d").await;
    for _ in 0..4 {
        device.publish("loop", "spin").await;
    }
    device.publish("forward", "hello").await;

    let mut order = Vec::new();
    let mut loops_done = 0;
    let mut forwarded = false;
    while loops_done < 4 || !forwarded {
        let (topic, text) = device.next_text().await;
        match topic.as_str() {
            "devices/d/hook-error/loop/0" => {
                assert!(
                    text.contains("plugin loop ran past its time limit of 2000 ms"),
                    "{text}"
                );
                loops_done += 1;
            }
            "devices/d/hook-response/forward/0" => {
                assert_eq!(text, "fine");
                forwarded = true;
            }
            "devices/d/hook-sent/forward" => {}
            other => panic!("unexpected message on {other}: {text}"),
        }
        order.push(topic);
    }
    assert_eq!(
        order.iter().position(|t| t.contains("hook-error/loop")),
        Some(2),
        "the forward answer comes before any loop ends: {order:?}"
    );
    let status = host.plugin_status("loop").await.unwrap();
    assert_eq!(status["errors"]["deadline"], 4, "{status}");
    assert_eq!(status["state"], "running", "4 failures are under 10");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_keeps_failing_is_suspended_until_a_new_version_arrives() {
    let mut endpoint = Endpoint::start(200, "fine").await;
    let url = endpoint.url("/");
    let crashing = behave_manifest("c", "panic", &url, "suspend_after = 3");
    let host = TestHost::start(&[("crashy", BEHAVE, &crashing)], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d").await;

    let mut last_trap = String::new();
    for _ in 0..3 {
        device.publish("c", "x").await;
        let (topic, text) = next_message(&mut device).await;
        assert_eq!(topic, "devices/d/hook-error/c/0");
        assert!(text.starts_with("plugin crashy trapped: "), "{text}");
        assert!(text.contains("deliberate panic on event c"), "{text}");
        last_trap = text;
    }
    let reason = format!(
        "plugin crashy is suspended after 3 consecutive failures (last: {last_trap}); \
         drop in a new version to resume"
    );
    let status = host.plugin_status("crashy").await.unwrap();
    assert_eq!(status["state"], "suspended", "{status}");
    assert_eq!(status["suspended_reason"], reason.as_str());

    // Not called again: the device is told why, and the count stays.
    device.publish("c", "x").await;
    assert_eq!(
        next_message(&mut device).await,
        ("devices/d/hook-error/c/0".into(), reason.clone())
    );
    let status = host.plugin_status("crashy").await.unwrap();
    assert_eq!(status["calls"], 3, "{status}");
    assert_eq!(status["errors"]["trap"], 3, "{status}");
    let text = host.metrics().await;
    for line in [
        "edgehook_plugin_suspended{plugin=\"crashy\"} 1",
        "edgehook_plugin_calls_total{plugin=\"crashy\"} 3",
        "edgehook_plugin_errors_total{plugin=\"crashy\",cause=\"trap\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }

    // A new version (the same wasm, another manifest) runs again.
    std::fs::write(
        host.plugins_dir().join("crashy.toml"),
        behave_manifest("c", "forward", &url, "suspend_after = 3"),
    )
    .unwrap();
    let status = host
        .wait_for_plugin("crashy", |s| s["state"] == "running")
        .await;
    assert!(status.get("suspended_reason").is_none(), "{status}");
    device.publish("c", "back").await;
    assert_eq!(&endpoint.next().await.body[..], b"back");
    assert_eq!(device.next_text().await.0, "devices/d/hook-sent/c");
    assert_eq!(
        device.next_text().await,
        ("devices/d/hook-response/c/0".into(), "fine".into())
    );
    let status = host.plugin_status("crashy").await.unwrap();
    assert_eq!(status["calls"], 2, "fresh counters: {status}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_that_keeps_failing_is_suspended_until_it_is_replaced() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    // Bodies over 1 KiB are invalid results of the particle plugin here.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgehook.toml");
    std::fs::write(
        &file,
        "suspend_after = 2\n[limits]\nrequest_body = \"1 KiB\"\n",
    )
    .unwrap();
    let settings = Config::read_file(&file).unwrap();
    let host = TestHost::start(&[], settings).await;
    let id = host
        .create_webhook(json!({
            "event": "big",
            "url": endpoint.url("/w"),
            "body": "{{{PARTICLE_EVENT_VALUE}}}",
        }))
        .await;
    let name = format!("webhook/{id}");
    let mut device = Device::connect(host.mqtt_addr(), "d").await;
    let data = "x".repeat(2048);
    for _ in 0..2 {
        device.publish("big", data.as_str()).await;
        let (topic, text) = next_message(&mut device).await;
        assert_eq!(topic, "devices/d/hook-error/big/0");
        assert!(
            text.starts_with(&format!("plugin {name} returned an invalid result: ")),
            "{text}"
        );
    }
    device.publish("big", data.as_str()).await;
    let (_, text) = next_message(&mut device).await;
    assert!(
        text.starts_with(&format!(
            "plugin {name} is suspended after 2 consecutive failures (last: plugin {name} returned an invalid result"
        )),
        "{text}"
    );
    let text = host.metrics().await;
    for line in [
        format!("edgehook_plugin_suspended{{plugin=\"{name}\"}} 1"),
        format!("edgehook_plugin_calls_total{{plugin=\"{name}\"}} 2"),
        format!("edgehook_plugin_errors_total{{plugin=\"{name}\",cause=\"invalid\"}} 2"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }

    // Replaced: a new webhook with fresh counters, called again.
    let (status, body) = host
        .api(
            "PUT",
            &format!("/v1/webhooks/{id}"),
            &json!({ "event": "big", "url": endpoint.url("/w"), "body": "small" }).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    device.publish("big", data.as_str()).await;
    assert_eq!(&endpoint.next().await.body[..], b"small");
    assert!(
        host.metrics()
            .await
            .lines()
            .any(|l| l == format!("edgehook_plugin_suspended{{plugin=\"{name}\"}} 0"))
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_the_calls_of_every_plugin_behind_the_token() {
    let mut endpoint = Endpoint::start(200, "fine").await;
    let url = endpoint.url("/");
    let forward = behave_manifest("forward", "forward", &url, "");
    let host = TestHost::start(&[("forward", BEHAVE, &forward)], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d").await;
    // Both calls (on the event and on the response) run between the
    // publish and the answer.
    let published = tokio::time::Instant::now();
    device.publish("forward", "one").await;
    endpoint.next().await;
    assert_eq!(device.next_text().await.0, "devices/d/hook-sent/forward");
    assert_eq!(device.next_text().await.1, "fine");
    let answered = published.elapsed();

    let (status, _) = http_get(host.host.api_addr, "/metrics", None).await;
    assert_eq!(status, 401);
    let text = host.metrics().await;
    for line in [
        "# TYPE edgehook_plugin_calls_total counter",
        "edgehook_plugin_calls_total{plugin=\"forward\"} 2",
        "edgehook_plugin_errors_total{plugin=\"forward\",cause=\"trap\"} 0",
        "edgehook_plugin_suspended{plugin=\"forward\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    let seconds = text
        .lines()
        .find_map(|l| l.strip_prefix("edgehook_plugin_call_seconds_total{plugin=\"forward\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("call seconds of forward");
    assert!(
        seconds > 0.0 && seconds < answered.as_secs_f64(),
        "{seconds} s of calls in the {answered:?} from the publish to the answer"
    );
    let memory = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("edgehook_plugin_memory_high_water_bytes{plugin=\"forward\"} ")
        })
        .and_then(|v| v.parse::<u64>().ok())
        .expect("memory of forward");
    assert!(memory >= 1 << 20, "{memory}");
    host.host.stop().await;
}
