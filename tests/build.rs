//! Builds the plugins under `plugins/` and the fixture guests under
//! `tests/fixtures/` for `wasm32-wasip2`, once, into `target/wasm-plugins`,
//! and writes their paths as constants for the tests.

use std::path::{Path, PathBuf};

#[path = "../host/wasm_build.rs"]
mod wasm_build;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned();
    let target_dir = wasm_build::target_dir(&root);
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));

    for dir in ["plugins", "guest-sdk", "wit", "tests/fixtures"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=../host/wasm_build.rs");
    println!("cargo:rerun-if-changed=../host/wasm_target.rs");
    if !wasm_build::require_target() {
        return;
    }

    let fixtures = crates_in(&manifest_dir.join("fixtures"));
    let mut crates = crates_in(&root.join("plugins"));
    crates.extend(fixtures.iter().cloned());
    let mut consts = String::new();
    for (name, manifest) in crates {
        let wasm = wasm_build::build(&name, &manifest, &target_dir);
        consts.push_str(&format!(
            "/// The `{name}` plugin, built for wasm32-wasip2.\npub const {}: &str = {:?};\n",
            const_name(&name),
            wasm.display().to_string()
        ));
    }
    let names: Vec<String> = fixtures.iter().map(|(name, _)| const_name(name)).collect();
    consts.push_str(&format!(
        "/// The constants of the fixture guests under `tests/fixtures/`: each must\n\
         /// be used by a test.\npub const FIXTURES: &[&str] = &{names:?};\n"
    ));
    std::fs::write(out.join("plugins.rs"), consts).expect("writing plugins.rs");
}

/// The constant naming the wasm of the crate `name`.
fn const_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// `(package name, Cargo.toml)` of every crate directly under `dir`.
fn crates_in(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("Cargo.toml"))
        .filter(|p| p.exists())
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("reading a plugin's Cargo.toml");
            let manifest: toml::Table =
                toml::from_str(&text).expect("a plugin's Cargo.toml is TOML");
            let name = manifest["package"]["name"]
                .as_str()
                .expect("a plugin names its package");
            (name.to_owned(), p)
        })
        .collect();
    found.sort();
    found
}
