//! Building a plugin crate for `wasm32-wasip2` from a build script: shared by
//! the host's build script (the built-in plugins it embeds) and the tests'
//! (every plugin and fixture guest).

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "wasm_target.rs"]
mod wasm_target;

/// Checks, before anything is compiled for it, that the toolchain has the
/// `wasm32-wasip2` standard library. When rustup manages the compiler, a
/// missing target is installed with rustup, as `rust-toolchain.toml` asks
/// (rustup does so by itself unless its automatic installs are off), and
/// cargo shows a warning saying so. Otherwise cargo stops the build with one
/// line naming what to install, and this returns `false`.
pub fn require_target() -> bool {
    // A different compiler may lack the target: check again.
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = PathBuf::from(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    let here = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| ".".into(), PathBuf::from);
    let check = || wasm_target::wasm_std(rustc.as_os_str(), &here);
    let found = match check() {
        Ok((_, false)) if rustup_install(&rustc) => check(),
        other => other,
    };
    match found {
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
            println!("cargo::error=cannot run {}: {err}", rustc.display());
            false
        }
    }
}

/// Installs the target with rustup when `rustc` is the compiler of the
/// rustup toolchain this build runs under; whether it did.
fn rustup_install(rustc: &Path) -> bool {
    let (Some(toolchain), Some(home)) = (
        std::env::var_os("RUSTUP_TOOLCHAIN"),
        std::env::var_os("RUSTUP_HOME"),
    ) else {
        return false;
    };
    if !rustc.starts_with(Path::new(&home).join("toolchains")) {
        return false;
    }
    // The host's and the tests' build scripts may both get here at once.
    let lock = Path::new(&home).join("edgehook-wasm-target.lock");
    let Ok(lock) = std::fs::File::create(lock) else {
        return false;
    };
    if lock.lock().is_err() {
        return false;
    }
    let out = Command::new("rustup")
        .args(["target", "add", wasm_target::WASM_TARGET, "--toolchain"])
        .arg(&toolchain)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            println!(
                "cargo::warning=installed the wasm32-wasip2 target with `rustup target add wasm32-wasip2`: \
                 rust-toolchain.toml names it and rustup's automatic installs are off"
            );
            true
        }
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why.lines().find(|l| l.starts_with("error")).unwrap_or("");
            println!("cargo::warning=`rustup target add wasm32-wasip2` failed: {why}");
            false
        }
        Err(err) => {
            println!("cargo::warning=cannot run rustup: {err}");
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
