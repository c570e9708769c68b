//! The queue's segment files in `data/queue/`: `NNNNNNNNNNNNNNNN.log`, each
//! starting with [`MAGIC`] and a checkpoint frame, and how a new one is
//! written and made durable.

use std::fs::{self, File};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::error::{JournalError, io_error};
use super::frame::{self, FrameKind};
use super::state::State;

/// The first bytes of a segment.
pub(super) const MAGIC: &[u8; 8] = b"EHQLOG01";

/// The path of segment `number` of `dir`.
pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.log"))
}

/// The segment numbers in `dir`, in ascending order.
pub(super) fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Writes segment `number` of `dir` holding a checkpoint of `state`, and
/// makes it durable (the file and its name).
pub(super) fn write_segment(
    dir: &Path,
    number: u64,
    state: &State<'_>,
) -> Result<(File, u64), JournalError> {
    let path = segment_path(dir, number);
    let mut buf = MAGIC.to_vec();
    frame::write(&mut buf, FrameKind::Checkpoint, state.entries()).map_err(|reason| {
        JournalError::Unusable {
            path: path.display().to_string(),
            reason,
        }
    })?;
    let file = crate::files::private_options()
        .truncate(true)
        .open(&path)
        .and_then(|file| {
            file.write_all_at(&buf, 0)?;
            file.sync_all()?;
            Ok(file)
        })
        .map_err(io_error(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok((file, buf.len() as u64))
}
