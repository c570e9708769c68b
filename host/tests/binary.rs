//! The `edgehook` binary runs. Being an integration test of the host, this
//! also makes `cargo test --workspace` build the binary once, with the test
//! run's features, for the black-box tests in `tests/` that run it as a
//! process (CONTRIBUTING.md, "Running one group of tests"): they locate it, never build it.

use std::process::Command;

#[test]
fn the_binary_names_its_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_edgehook"))
        .arg("--version")
        .output()
        .expect("edgehook runs");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        line.starts_with(concat!("edgehook ", env!("CARGO_PKG_VERSION"), " (")),
        "{line:?}"
    );
}
