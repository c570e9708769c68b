//! Smoke test: the load tool spawns the workspace's edgehook binary and
//! gets every one of a few hundred events answered exactly once, with the
//! devices anonymous, with each logged in with its own key, and with idle
//! devices connected beside them (and coming back after a restart of the
//! host), and with traces exported and no history.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The host binary, next to this package's binary: `cargo test --workspace`
/// builds it (host/tests/binary.rs); located, never built here, so that no
/// nested build runs with another feature set.
fn host_binary() -> PathBuf {
    let bench = Path::new(env!("CARGO_BIN_EXE_edgehook-bench"));
    let host = bench.with_file_name(format!("edgehook{}", std::env::consts::EXE_SUFFIX));
    assert!(
        host.is_file(),
        "{} is missing. `cargo test --workspace` (scripts/test) builds it, and so does \
         `cargo test -p edgehook -p edgehook-bench --test binary --test smoke`; \
         or build it alone with `cargo build -p edgehook`",
        host.display()
    );
    host
}

#[test]
fn a_spawned_host_answers_every_event_once() {
    smoke(&[]);
}

#[test]
fn devices_logged_in_with_their_keys_get_every_answer() {
    smoke(&["--device-logins"]);
}

#[test]
fn idle_devices_are_measured_and_the_active_ones_get_every_answer() {
    let report = smoke(&["--idle", "300"]);
    let idle = &report["idle"];
    assert_eq!(idle["devices"], 300, "{report}");
    let per_device = idle["kib_per_device"]
        .as_f64()
        .expect("the host's RSS was read");
    assert!(per_device > 0.0, "{report}");
}

#[test]
fn idle_devices_all_come_back_after_a_restart_and_no_event_is_lost() {
    let report = smoke(&["--idle", "300", "--restart"]);
    let restart = &report["idle"]["restart"];
    assert!(restart["ready_seconds"].is_number(), "{report}");
    assert!(
        restart["reconnect_seconds"].is_number(),
        "every idle device connected again: {report}"
    );
}

/// A run of 5 devices and 200 events with `extra` options: every event
/// answered once. The report.
fn smoke(extra: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_edgehook-bench"))
        .arg("--spawn")
        .arg(host_binary())
        .args(["--devices", "5", "--events", "200", "--window", "50"])
        .args(extra)
        .args(["--timeout", "10", "--json"])
        .output()
        .expect("edgehook-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "edgehook-bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object on stdout");
    assert_eq!(report["sent"], 200, "{report}");
    assert_eq!(report["responses"], 200, "{report}");
    assert_eq!(report["losses"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["wrong_topics"], 0, "{report}");
    assert_eq!(report["sink_requests"], 200, "{report}");
    report
}

#[test]
fn a_traced_host_without_history_answers_every_event_and_exports_its_traces() {
    let report = smoke(&["--otlp", "--host-arg=--history-max-bytes=0"]);
    let exports = report["trace_exports"].as_u64().unwrap_or_default();
    assert!(exports > 0, "{report}");
}
