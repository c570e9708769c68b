//! Whether a Rust toolchain can build for `wasm32-wasip2`: shared by the
//! build scripts (which stop before compiling anything for it) and
//! `edgehook plugin new` (which says what to install).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target edgehook's plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The one line that says what to do when the target is missing.
pub const MISSING_TARGET: &str = "the wasm32-wasip2 target is not installed: run `rustup target add wasm32-wasip2` \
     (without rustup, install your Rust distribution's standard library for wasm32-wasip2)";

/// Where `rustc` (run in `dir`, so a `rust-toolchain.toml` there applies)
/// keeps the standard library for `wasm32-wasip2`, and whether it is there.
pub fn wasm_std(rustc: &OsStr, dir: &Path) -> std::io::Result<(PathBuf, bool)> {
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        // A rustc that does not know the target, or a toolchain file naming
        // a toolchain that is not installed: rustc says which.
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let has_std = std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    });
    Ok((libdir, has_std))
}
