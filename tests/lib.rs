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
use std::time::SystemTime;

/// What builds the binaries the tests run, for the message of a test that
/// finds one missing or older than its sources.
const BUILD_IT: &str = "`cargo test --workspace` (scripts/test) builds it, and so does \
     `cargo test -p edgehook -p edgehook-tests --test binary --test all FILTER`; \
     or build it alone with `cargo build -p edgehook`";

/// The `edgehook` binary in `profile_dir` (e.g. `target/debug`), as the
/// test run built it: `cargo test --workspace` builds it once, with the
/// run's features, because the host has an integration test
/// (host/tests/binary.rs). Only located here, never built: a nested
/// `cargo build` would have another feature set and rebuild much of the
/// graph. Panics, naming the command to run, when it is missing or older
/// than one of its sources.
pub fn edgehook_binary(profile_dir: &Path) -> PathBuf {
    let binary = profile_dir.join(format!("edgehook{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&binary)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|_| panic!("{} is missing. {BUILD_IT}", binary.display()));
    if let Some(source) = newer_source(&binary.with_extension("d"), built) {
        panic!(
            "{} is older than {}. {BUILD_IT}",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// A file that cargo's dep-info `dep_info` (the `.d` beside a binary) lists
/// as a source and that changed after `built`; directories are left out
/// (cargo looks inside them, not at their own times).
fn newer_source(dep_info: &Path, built: SystemTime) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dep_info).ok()?;
    let (_, sources) = text.lines().next()?.split_once(": ")?;
    let unescaped = sources.replace("\\ ", "\0");
    unescaped
        .split_whitespace()
        .map(|path| PathBuf::from(path.replace('\0', " ")))
        .find(|path| {
            std::fs::metadata(path)
                .is_ok_and(|meta| meta.is_file() && meta.modified().is_ok_and(|time| time > built))
        })
}
