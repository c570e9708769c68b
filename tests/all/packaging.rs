//! What the packages install (CONTRACT section 13): the systemd unit is one
//! `systemd-analyze verify` accepts, of `Type=notify` with a watchdog and a
//! reload by SIGHUP, run by an unprivileged user; the example configuration
//! is one the host takes.

use std::path::Path;

use crate::support::edgehook_binary;

fn packaging(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging")
        .join(file)
}

#[test]
fn the_unit_is_verified_by_systemd_and_asks_for_notify_and_a_watchdog() {
    let unit = std::fs::read_to_string(packaging("edgehook.service")).unwrap();
    for line in [
        "Type=notify",
        "User=edgehook",
        "StateDirectory=edgehook",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in the unit");
    }
    assert!(unit.lines().any(|l| l.starts_with("WatchdogSec=")));
    // systemd checks that ExecStart's binary exists: this build's stands in
    // for /usr/bin/edgehook.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("edgehook.service");
    let binary = edgehook_binary();
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/edgehook", &binary.display().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/test --install installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines about the machine's own units (not ours) are not our concern.
    let ours: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("edgehook.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{said}");
}

#[test]
fn the_example_configuration_is_one_the_host_takes() {
    let settings =
        edgehook::config::Config::read_file(&packaging("edgehook.toml")).expect("it parses");
    let config = edgehook::config::Config::build(settings).expect("it is valid");
    assert_eq!(config.data_dir, Path::new("/var/lib/edgehook/data"));
    assert!(
        matches!(
            config.broker,
            edgehook::config::Broker::Embedded {
                auth: edgehook::ingress::acl::MqttAuth::Devices,
                ..
            }
        ),
        "devices log in with their keys"
    );
}
