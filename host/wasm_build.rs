//! Building a plugin crate for `wasm32-wasip2` from a build script: shared by
//! the host's build script (the built-in plugins it embeds) and the tests'
//! (every plugin and fixture guest).

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "wasm_target.rs"]
mod wasm_target;

/// Checks, before anything is compiled for it, that the toolchain has the
/// `wasm32-wasip2` standard library. When it has not, tells cargo to stop
/// the build with one line naming the command to run, and returns `false`.
pub fn require_target() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let here = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| ".".into(), PathBuf::from);
    match wasm_target::wasm_std(&rustc, &here) {
        Ok((libdir, true)) => {
            // Removing the target later makes the check run again.
            println!("cargo:rerun-if-changed={}", libdir.display());
            true
        }
        Ok((_, false)) => {
            println!("cargo::error={}", wasm_target::MISSING_TARGET);
            false
        }
        Err(err) => {
            println!("cargo::error=cannot run {}: {err}", rustc.to_string_lossy());
            false
        }
    }
}

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
