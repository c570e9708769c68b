//! Plugins that misbehave: each gets a hook-error naming the cause, shows
//! it in `GET /v1/plugins`, and the host goes on serving the others.

use edgehook::config::Settings;
use edgehook_tests::BEHAVE;

use crate::support::{
    Device, Endpoint, HostUnderTest, TestHost, behave_manifest, forward_manifest,
};

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_plugins_get_named_errors_and_the_others_keep_working() {
    let mut endpoint = Endpoint::start(200, "fine").await;
    let url = endpoint.url("/");
    let cases: [(&str, &str, &str, &str); 9] = [
        ("panic", "", "trap", "deliberate panic on event panic"),
        (
            "loop",
            "cpu_time = \"50ms\"",
            "deadline",
            "ran past its time limit of 50 ms",
        ),
        (
            "sleep",
            "cpu_time = \"10ms\"",
            "deadline",
            "ran past its time limit of 1500 ms",
        ),
        (
            "hog",
            "memory = \"8 MiB\"",
            "memory",
            "exceeded its memory limit of 8388608 bytes",
        ),
        ("error", "", "plugin", "plugin error: refusing event error"),
        (
            "big-request",
            "",
            "invalid",
            "request body of 2097152 bytes exceeds the limit of 1048576 bytes",
        ),
        (
            "many-replies",
            "",
            "invalid",
            "1000 device messages exceed the limit of 64",
        ),
        ("bad-topic", "", "invalid", "may not start with \"events\""),
        ("skip", "", "", ""),
    ];
    let manifests: Vec<(String, String)> = cases
        .iter()
        .map(|(mode, limits, ..)| (mode.to_string(), behave_manifest(mode, mode, &url, limits)))
        .collect();
    let mut plugins: Vec<(&str, &str, &str)> = manifests
        .iter()
        .map(|(name, text)| (name.as_str(), BEHAVE, text.as_str()))
        .collect();
    let healthy = forward_manifest("forward", &url);
    plugins.push(("forward", BEHAVE, &healthy));
    let host = TestHost::start(&plugins, Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "victim").await;

    for (mode, _, cause, message) in cases {
        device.publish(mode, "x").await;
        if mode == "skip" {
            continue;
        }
        if matches!(mode, "many-replies" | "bad-topic") {
            endpoint.next().await;
            assert_eq!(
                device.next_text().await.0,
                format!("devices/victim/hook-sent/{mode}")
            );
        }
        let (topic, text) = device.next_text().await;
        assert_eq!(
            topic,
            format!("devices/victim/hook-error/{mode}/0"),
            "{text}"
        );
        assert!(
            text.contains(&format!("plugin {mode}")) && text.contains(message),
            "{mode}: {text}"
        );

        let status = host.plugin_status(mode).await.unwrap();
        assert_eq!(status["state"], "running", "{status}");
        assert_eq!(status["errors"][cause], 1, "{mode}: {status}");
        assert!(
            status["last_call_error"]
                .as_str()
                .unwrap()
                .contains(message),
            "{status}"
        );

        // The healthy webhook still answers, right after.
        device.publish("forward", "still here").await;
        assert_eq!(&endpoint.next().await.body[..], b"still here");
        assert_eq!(
            device.next_text().await.0,
            "devices/victim/hook-sent/forward"
        );
        assert_eq!(
            device.next_text().await,
            (
                "devices/victim/hook-response/forward/0".into(),
                "fine".into()
            )
        );
    }
    // `skip` sent nothing at all before the healthy webhook's next request.
    device.publish("forward", "marker").await;
    let before = endpoint.before_marker(|s| s.body == "marker").await;
    assert!(before.is_empty(), "{before:?}");
    let skip = host.plugin_status("skip").await.unwrap();
    assert_eq!(skip["calls"], 1, "{skip}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chatty_plugin_is_cut_at_its_log_budget_and_still_works() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let text = behave_manifest(
        "chatty",
        "chatty",
        &endpoint.url("/"),
        "log_bytes = \"4 KiB\"",
    );
    let host = TestHost::start(&[("chatty", BEHAVE, &text)], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d").await;
    device.publish("chatty", "x").await;
    assert_eq!(&endpoint.next().await.body[..], b"x");
    assert_eq!(device.next_text().await.0, "devices/d/hook-sent/chatty");
    assert_eq!(
        device.next_text().await,
        ("devices/d/hook-response/chatty/0".into(), "ok".into())
    );
    // The fixture writes 1024 lines of 1024 bytes to stdout and 1024 of
    // 1023 through the log import: all but the 4 KiB budget is dropped and
    // counted, so exactly the budget was kept.
    let written = 1024 * 1024 + 1024 * 1023;
    let budget = 4 * 1024;
    let status = host.plugin_status("chatty").await.unwrap();
    assert_eq!(status["log_bytes_dropped"], written - budget, "{status}");
    let metrics = host.metrics().await;
    let line = format!(
        "edgehook_plugin_log_dropped_bytes_total{{plugin=\"chatty\"}} {}",
        written - budget
    );
    assert!(
        metrics.lines().any(|l| l == line),
        "{line} missing in\n{metrics}"
    );
    host.host.stop().await;
}
