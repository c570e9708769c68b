//! The host's own files: the data directory and everything in it belong to
//! the user the host runs as, and to no one else. They hold the API token,
//! device keys, webhook secrets, queued events and compiled code the host
//! will run, so directories the host creates there are `0700` and files
//! `0600`; an existing data directory open to other users is reported, not
//! changed (the operator may share it on purpose).

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::Path;

/// The mode of every directory the host creates in its data directory.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file the host creates in its data directory.
pub const FILE_MODE: u32 = 0o600;

/// Creates the data directory `0700`, or, when it exists, warns if other
/// users may read or enter it.
pub fn open_data_dir(dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) => {
            warn_if_shared(dir, &meta);
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => create_private_dir(dir),
        Err(err) => Err(err),
    }
}

/// Creates `dir` and any missing parents, each `0700`; one that exists is
/// left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Options that open a file for reading and writing, creating it `0600`
/// when it does not exist; nothing is truncated.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Writes `bytes` as the whole of `path`, which ends up `0600` whether it
/// existed or not.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = private_options().truncate(true).open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(FILE_MODE))?;
    file.write_all(bytes)
}

#[cfg(unix)]
fn warn_if_shared(dir: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            "the data directory {} is open to other users (mode {mode:04o}): it holds the API \
             token, device keys and webhook secrets; `chmod 700 {}` keeps them to this user",
            dir.display(),
            dir.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_dir: &Path, _meta: &std::fs::Metadata) {}
