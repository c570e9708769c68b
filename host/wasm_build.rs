//! Building a plugin crate for `wasm32-wasip2` from a build script: shared by
//! the host's build script (the built-in plugins it embeds) and the tests'
//! (every plugin and fixture guest).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory the wasm builds share: `wasm-plugins` in the target directory.
pub fn target_dir(workspace_root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root.join("target"), PathBuf::from)
        .join("wasm-plugins")
}

/// Builds the crate of `manifest` (package `name`) in release mode into
/// `target_dir` and returns the path of its `.wasm`.
pub fn build(name: &str, manifest: &Path, target_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // What the outer build set for itself must not leak into the wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo to build a wasm plugin");
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed",
        manifest.display()
    );
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        wasm.exists(),
        "building {name} produced no {}",
        wasm.display()
    );
    wasm
}
