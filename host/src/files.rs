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

/// Writes `bytes` to `staged` (`0600`) and flushes it to disk: half of a
/// durable replacement, for callers that rename several files together.
pub fn write_synced(staged: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = private_options().truncate(true).open(staged)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the
/// new one, never a part: written beside it (`.NAME.tmp`), flushed,
/// renamed over it, and the directory flushed so that the rename lasts.
pub fn replace_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file in a directory", path.display()),
        ));
    };
    let staged = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    if let Err(err) = write_synced(&staged, bytes) {
        let _ = std::fs::remove_file(&staged);
        return Err(err);
    }
    std::fs::rename(&staged, path)?;
    sync_dir(dir)
}

/// Flushes `dir`'s entries (a rename into it) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_holds_the_new_bytes_alone_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.json");
        std::fs::write(&path, "an older and longer content").unwrap();
        replace_durably(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing staged is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, FILE_MODE);
        }
    }

    #[test]
    fn a_replacement_that_cannot_be_written_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.json");
        std::fs::write(&path, "old").unwrap();
        // The staged file's place is taken by a directory: nothing can be
        // written there.
        std::fs::create_dir(dir.path().join(".hook.json.tmp")).unwrap();
        assert!(replace_durably(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
