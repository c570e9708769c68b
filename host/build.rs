//! Builds the built-in plugins (`plugins/particle`) for `wasm32-wasip2`
//! and copies them into `OUT_DIR`, where `webhooks/builtin.rs` embeds them:
//! the `edgehook` binary needs no separate install step.

use std::path::PathBuf;

#[path = "wasm_build.rs"]
mod wasm_build;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ is inside the workspace")
        .to_owned();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    for dir in ["plugins/particle", "guest-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=wasm_build.rs");
    println!("cargo:rerun-if-changed=wasm_target.rs");
    if !wasm_build::require_target() {
        return;
    }
    let wasm = wasm_build::build(
        "particle",
        &root.join("plugins/particle/Cargo.toml"),
        &wasm_build::target_dir(&root),
    );
    std::fs::copy(&wasm, out.join("particle.wasm")).expect("copying particle.wasm");
}
