//! Builds the built-in plugins (`plugins/particle`, `plugins/iottly`,
//! `plugins/mainflux`) for `wasm32-wasip2`
//! and copies them into `OUT_DIR`, where `webhooks/builtin.rs` embeds them:
//! the `edgehook` binary needs no separate install step.

use std::path::PathBuf;

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
        std::fs::copy(&wasm, out.join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("copying {name}.wasm: {e}"));
    }
}
