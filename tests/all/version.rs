//! `edgehook --version` (CONTRACT section 2): the version, then the commit,
//! its date and the target the binary was built for, so that a report
//! from a gateway names exactly what runs there.

use crate::support::edgehook_binary;

/// What `git` says about this checkout, if it is one.
fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn the_version_names_the_commit_its_date_and_the_target() {
    let out = std::process::Command::new(edgehook_binary())
        .arg("--version")
        .output()
        .expect("edgehook runs");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let rest = line
        .trim_end()
        .strip_prefix("edgehook ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let (version, build) = rest.split_once(" (").unwrap_or_else(|| panic!("{line:?}"));
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let parts: Vec<&str> = build
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("{line:?}"))
        .split(' ')
        .collect();
    let [commit, date, target] = parts[..] else {
        panic!("commit, date and target in {line:?}");
    };
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.contains("-linux-"),
        "{target}"
    );
    match (
        git(&["rev-parse", "--short=7", "HEAD"]),
        git(&["log", "-1", "--format=%cs"]),
    ) {
        (Some(head), Some(day)) => assert_eq!((commit, date), (head.as_str(), day.as_str())),
        // Built outside a checkout.
        _ => assert_eq!((commit, date), ("unknown", "unknown")),
    }
}
