//! Log lines as a log file, journald or a log shipper gets them: the host's
//! standard error is a pipe here, never a terminal.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Runs `edgehook serve` with a plugin that cannot load (the host logs an
/// error naming it) and returns its standard error up to that line.
async fn log_of_a_broken_plugin(extra: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("broken.wasm"), b"not wasm").unwrap();
    std::fs::write(plugins.join("broken.toml"), "event = \"x\"\n").unwrap();
    let mut child = Command::new(crate::support::edgehook_binary())
        .args(["serve", "--mqtt-listen", "127.0.0.1:0", "--api-listen"])
        .args([
            "127.0.0.1:0",
            "--api-token",
            "logging-test-token-0123456789",
        ])
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--plugins")
        .arg(&plugins)
        .arg("--webhooks")
        .arg(dir.path().join("webhooks"))
        .args(extra)
        .env_remove("EDGEHOOK_LOG_LEVEL")
        .env_remove("EDGEHOOK_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("edgehook starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("broken") && line.contains("not loaded");
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("edgehook exited without logging the broken plugin: {seen:#?}");
    })
    .await
    .expect("the broken plugin is logged in time");
    child.kill().await.unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_carry_no_colour_codes_off_a_terminal() {
    let lines = log_of_a_broken_plugin(&[]).await;
    let last = lines.last().unwrap();
    assert!(last.contains("ERROR"), "{last}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "a terminal escape in {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line() {
    let lines = log_of_a_broken_plugin(&["--log-format", "json"]).await;
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(v["level"].is_string(), "{line}");
    }
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["fields"]["plugin"], "broken");
    assert!(
        last["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("plugin not loaded"),
        "{last}"
    );
}
