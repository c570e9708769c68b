//! `edgehook plugin new`: a plugin crate that builds for `wasm32-wasip2`
//! against the guest SDK, with a unit test and a manifest.
//!
//! The templates live beside this file and are filled by plain replacement
//! of `{{name}}`, `{{file}}` (the name as cargo writes the `.wasm` file) and
//! `{{sdk}}` (the SDK dependency).

use std::path::{Path, PathBuf};

#[path = "../wasm_target.rs"]
mod wasm_target;

/// Where the scaffolded crate gets the guest SDK from.
#[derive(Debug, Clone)]
pub enum SdkSource {
    /// A local checkout of `guest-sdk/`.
    Path(PathBuf),
    /// A git repository holding the workspace.
    Git(String),
}

/// Why a crate could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a crate and plugin name.
    #[error(
        "plugin name {0:?} is invalid: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter"
    )]
    BadName(String),
    /// The target directory exists already.
    #[error("{0} exists already")]
    Exists(PathBuf),
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

const FILES: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("scaffold/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("scaffold/lib.rs.tmpl")),
    ("README.md", include_str!("scaffold/README.md.tmpl")),
    (
        "rust-toolchain.toml",
        include_str!("scaffold/rust-toolchain.toml.tmpl"),
    ),
    ("{{file}}.toml", include_str!("scaffold/manifest.toml.tmpl")),
];

/// Creates `parent/NAME/` and returns its path.
pub fn new_plugin(parent: &Path, name: &str, sdk: SdkSource) -> Result<PathBuf, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    let root = parent.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let sdk = match sdk {
        SdkSource::Path(path) => format!("{{ path = {:?} }}", path.display().to_string()),
        SdkSource::Git(url) => format!("{{ git = {url:?} }}"),
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{file}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &sdk)
    };
    for (file, template) in FILES {
        let path = root.join(fill(file));
        let write = || {
            std::fs::create_dir_all(path.parent().unwrap_or(&root))?;
            std::fs::write(&path, fill(template))
        };
        write().map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(root)
}

/// What to do before the crate at `root` can be built, when its toolchain
/// (as its `rust-toolchain.toml` picks it) has no `wasm32-wasip2` standard
/// library: one line naming the command to run.
pub fn missing_wasm_target(root: &Path) -> Option<String> {
    match wasm_target::wasm_std("rustc".as_ref(), root) {
        Ok((_, true)) => None,
        Ok((_, false)) => Some(wasm_target::MISSING_TARGET.to_owned()),
        Err(err) => Some(format!("cannot check for the wasm32-wasip2 target: {err}")),
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_file_names() {
        for good in ["a", "my-hook", "hook_2"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "My", "2hook", "a/b", "a.b", "-x", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn writes_a_crate_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = SdkSource::Path("/opt/edgehook/guest-sdk".into());
        let root = new_plugin(dir.path(), "my-hook", sdk.clone()).unwrap();
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-hook\""));
        assert!(cargo.contains("edgehook-guest = { path = \"/opt/edgehook/guest-sdk\" }"));
        let manifest = std::fs::read_to_string(root.join("my_hook.toml")).unwrap();
        assert!(manifest.contains("beside my_hook.wasm"));
        assert!(root.join("src/lib.rs").exists());
        let again = new_plugin(dir.path(), "my-hook", sdk).unwrap_err();
        assert!(matches!(again, ScaffoldError::Exists(_)), "{again}");
        assert!(matches!(
            new_plugin(dir.path(), "Bad", SdkSource::Git("x".into())),
            Err(ScaffoldError::BadName(_))
        ));
    }
}
