//! Plugins for the tests: manifests of the `behave` fixture, installing a
//! plugin's files, and bytes that are not WebAssembly.

use std::path::Path;

/// The manifest of a `behave` plugin on `event` that acts in `mode` and
/// may post to `url` on 127.0.0.1, with `limits` (TOML lines) if any.
pub fn behave_manifest(event: &str, mode: &str, url: &str, limits: &str) -> String {
    format!(
        "event = \"{event}\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nmode = \"{mode}\"\nurl = \"{url}\"\n[limits]\n{limits}\n"
    )
}

/// The manifest of a `behave` plugin that forwards `event` to `url`.
pub fn forward_manifest(event: &str, url: &str) -> String {
    behave_manifest(event, "forward", url, "")
}

/// 4 KiB that are not WebAssembly, the same on every run.
pub fn not_wasm() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect()
}

/// Copies `wasm` and writes `manifest` as `NAME.wasm` / `NAME.toml`.
pub fn install(dir: &Path, name: &str, wasm: &str, manifest: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), manifest).unwrap();
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
}
