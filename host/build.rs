//! Builds the built-in plugins (`plugins/particle`, `plugins/iottly`,
//! `plugins/mainflux`) for `wasm32-wasip2`
//! and puts them into `OUT_DIR` compressed (deflate: 0.8 of the binary's
//! 25 MB are these three), where `webhooks/builtin.rs` embeds them, and as
//! they are for the host's own tests: the `edgehook` binary needs no
//! separate install step. Also names the
//! build for `edgehook --version`: the commit, its date and the target.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "wasm_build.rs"]
mod wasm_build;

/// The built-in plugins, each a crate `plugins/{name}` of package `name`.
const BUILTIN: [&str; 3] = ["particle", "iottly", "mainflux"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ is inside the workspace")
        .to_owned();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    for dir in [
        "plugins/particle",
        "plugins/iottly",
        "plugins/mainflux",
        "guest-sdk",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    build_info(&root);
    println!("cargo:rerun-if-changed=wasm_build.rs");
    println!("cargo:rerun-if-changed=wasm_target.rs");
    if !wasm_build::require_target() {
        return;
    }
    for name in BUILTIN {
        let wasm = wasm_build::build(
            name,
            &root.join("plugins").join(name).join("Cargo.toml"),
            &wasm_build::target_dir(&root),
        );
        let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("reading {name}.wasm: {e}"));
        std::fs::write(
            out.join(format!("{name}.wasm.deflate")),
            miniz_oxide::deflate::compress_to_vec(&bytes, 10),
        )
        .unwrap_or_else(|e| panic!("writing {name}.wasm.deflate: {e}"));
        std::fs::write(out.join(format!("{name}.wasm")), bytes)
            .unwrap_or_else(|e| panic!("copying {name}.wasm: {e}"));
    }
}

/// Sets `EDGEHOOK_COMMIT` (short hash, `unknown` outside a git checkout;
/// an `EDGEHOOK_COMMIT` given to the build wins, for builds from a source
/// tarball), `EDGEHOOK_BUILD_DATE` (`SOURCE_DATE_EPOCH` when set, else the
/// commit's date, so that a build is reproducible) and `EDGEHOOK_TARGET`.
fn build_info(root: &Path) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let commit = std::env::var("EDGEHOOK_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=7", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|epoch| git(&["log", "-1", "--format=%cs", &format!("--before=@{epoch}")]))
        .or_else(|| git(&["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let target = std::env::var("TARGET").expect("set by cargo");
    println!("cargo:rustc-env=EDGEHOOK_COMMIT={commit}");
    println!("cargo:rustc-env=EDGEHOOK_BUILD_DATE={date}");
    println!("cargo:rustc-env=EDGEHOOK_TARGET={target}");
    println!("cargo:rerun-if-env-changed=EDGEHOOK_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let git_dir = root.join(".git");
    for watched in [git_dir.join("HEAD"), git_dir.join("refs").join("heads")] {
        if watched.exists() {
            println!("cargo:rerun-if-changed={}", watched.display());
        }
    }
}
