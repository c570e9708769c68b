//! Paths of the wasm plugins built for the tests and benchmarks, and of
//! the host binary for the tests that run it as a process.
//!
//! `build.rs` compiles every crate under `plugins/` (and the fixture guests
//! under `tests/fixtures/`) for `wasm32-wasip2` once per build; the constants
//! in `plugins.rs` name the results, and [`FIXTURES`] lists the fixtures'
//! constants so that a test can check each one is used.
#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The `edgehook` binary in `profile_dir` (e.g. `target/debug`), built
/// first. `cargo test --workspace` builds the host's library but not its
/// binary, so this runs `cargo build -p edgehook` once per test process:
/// quick from the library already built, a no-op when it is up to date,
/// and never an old binary.
pub fn edgehook_binary(profile_dir: &Path) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target_dir = profile_dir
            .parent()
            .expect("profile directories live in a target directory");
        let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("no profile directory in {}", profile_dir.display()),
        };
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--package",
                "edgehook",
                "--profile",
                profile,
            ])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "cargo could not build the edgehook host ({status})"
        );
    });
    profile_dir.join(format!("edgehook{}", std::env::consts::EXE_SUFFIX))
}
