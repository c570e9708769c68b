//! The compiled-code cache: `data/cache/`, one file per plugin build, so a
//! restart does not recompile.
//!
//! The host runs what it loads from here as machine code, so an entry is
//! used only when everything it was made for matches: its header names the
//! wasm's digest, the engine's compatibility hash (wasmtime's version and
//! every setting that shapes the code) and the host build, and carries the
//! SHA-256 of the code, checked before wasmtime sees a byte. Anything else
//! — another build, a truncated write, a flipped bit — is a miss: the plugin
//! is compiled again and the entry replaced.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The first line of every entry; a new layout gets a new number.
const MAGIC: &str = "edgehook compiled code 1";

/// Compiled components in a directory, for one engine and one host build.
#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: PathBuf,
    /// The engine's compatibility hash, folded to 64 bits.
    engine: u64,
    /// Which build of the host this is (see [`host_build`]).
    build: String,
}

impl CodeCache {
    /// The cache in `dir` (created `0700`) for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        crate::files::create_private_dir(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine: hasher.finish(),
            build: host_build(),
        })
    }

    /// The entry of the wasm whose SHA-256 is `digest`, when there is one
    /// made for this engine and build and its code is intact.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(path = %path.display(), "cannot read cached code: {err}");
                return None;
            }
        };
        let Some(code) = self.code(digest, &bytes) else {
            tracing::warn!(path = %path.display(), "cached code not made for this plugin and host or damaged: compiling again");
            return None;
        };
        load(engine, code)
            .inspect_err(|err| {
                tracing::warn!(path = %path.display(), "ignoring unusable cached code: {err:#}");
            })
            .ok()
    }

    /// Keeps `code`, just compiled by `engine` from the wasm of `digest`,
    /// in a `0600` file that appears whole or not at all, and loads it. A
    /// failure to write is logged: the plugin runs anyway and is compiled
    /// again next time.
    pub fn store(&self, engine: &Engine, digest: &str, code: &[u8]) -> wasmtime::Result<Component> {
        let path = self.path(digest);
        let mut bytes = self.header(digest, &hex::encode(Sha256::digest(code)));
        bytes.extend_from_slice(code);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written =
            crate::files::write_private(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(err) = written {
            tracing::warn!(path = %path.display(), "cannot cache compiled code: {err}");
        }
        load(engine, code)
    }

    fn path(&self, digest: &str) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        self.build.hash(&mut hasher);
        self.dir.join(format!(
            "{digest}-{:016x}-{:016x}.cwasm",
            self.engine,
            hasher.finish()
        ))
    }

    fn header(&self, digest: &str, checksum: &str) -> Vec<u8> {
        format!(
            "{MAGIC}\nwasm {digest}\nengine {:016x}\nhost {}\nsha256 {checksum}\n\n",
            self.engine, self.build
        )
        .into_bytes()
    }

    /// The code of an entry whose header is this cache's for `digest` and
    /// whose checksum matches.
    fn code<'a>(&self, digest: &str, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let expected = self.header(digest, &"0".repeat(64));
        let (header, code) = bytes.split_at_checked(expected.len())?;
        let checksum_at = expected.len() - 64 - 2;
        let (fields, checksum) = header.split_at(checksum_at);
        let checksum = checksum.strip_suffix(b"\n\n")?;
        (fields == &expected[..checksum_at]
            && checksum == hex::encode(Sha256::digest(code)).as_bytes())
        .then_some(code)
    }
}

/// Which build of the host this is: its version and the size and time of
/// its executable, so that an upgraded or rebuilt binary compiles again
/// rather than trusting code an earlier build made.
fn host_build() -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|meta| {
            let modified = meta.modified()?;
            let since = modified
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ok(format!("{} bytes, {}", meta.len(), since.as_nanos()))
        })
        .unwrap_or_else(|err| format!("executable unknown: {err}"));
    format!("edgehook {} ({exe})", env!("CARGO_PKG_VERSION"))
}

#[expect(
    unsafe_code,
    reason = "the bytes are compiled code this engine made, just now or, as an entry's \
              header and checksum said, earlier and for this engine and build"
)]
fn load(engine: &Engine, code: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see the reason above; wasmtime checks the header and version too.
    unsafe { Component::deserialize(engine, code) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fixtures::PARTICLE_WASM;

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    /// One entry, written and then spoiled in every way it can be: only
    /// the intact entry for this digest, engine and build is loaded.
    #[test]
    fn only_an_intact_entry_made_for_this_plugin_engine_and_build_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CodeCache::open(&dir.path().join("cache"), &engine).unwrap();
        let digest = crate::runtime::digest(PARTICLE_WASM);
        assert!(cache.load(&engine, &digest).is_none(), "empty cache");
        let code = engine.precompile_component(PARTICLE_WASM).unwrap();
        cache.store(&engine, &digest, &code).unwrap();
        assert!(
            cache.load(&engine, &digest).is_some(),
            "the entry just made"
        );

        let path = cache.path(&digest);
        let intact = std::fs::read(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("cache")), 0o700);
            assert_eq!(mode(&path), 0o600);
        }
        let spoil = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            cache.load(&engine, &digest).is_none()
        };
        let mut flipped = intact.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        assert!(spoil(&flipped), "a flipped bit in the code");
        assert!(spoil(&intact[..intact.len() - 1]), "a truncated entry");
        assert!(spoil(&intact[..40]), "a header only");
        let header_len = cache.header(&digest, &"0".repeat(64)).len();
        assert!(
            spoil(&intact[header_len..]),
            "bare code, as older hosts wrote"
        );
        let text = |from: &str, to: &str| {
            let header = String::from_utf8(intact[..header_len].to_vec()).unwrap();
            let mut bytes = header.replacen(from, to, 1).into_bytes();
            bytes.extend_from_slice(&intact[header_len..]);
            bytes
        };
        assert!(spoil(&text(&digest, &"f".repeat(64))), "another wasm");
        let other_engine = format!("engine {:016x}", cache.engine ^ 1);
        assert!(
            spoil(&text(
                &format!("engine {:016x}", cache.engine),
                &other_engine
            )),
            "another engine"
        );
        assert!(
            spoil(&text("host edgehook", "host edgehook-9")),
            "another build"
        );

        std::fs::write(&path, &intact).unwrap();
        assert!(cache.load(&engine, &digest).is_some(), "intact again");
        let rebuilt = CodeCache {
            build: format!("{} rebuilt", cache.build),
            ..cache.clone()
        };
        assert!(
            rebuilt.load(&engine, &digest).is_none(),
            "another build's cache"
        );
    }
}
