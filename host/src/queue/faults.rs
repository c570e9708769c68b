//! Storage faults on demand, for tests: the queue's commits fail as they
//! would on a full or broken disk, with their bytes written as far as such
//! a disk lets them be, so that a test sees what the host does about it
//! (nothing acknowledged, `/healthz` says why, intake resumes once writes
//! succeed) without filling a real filesystem (mounting one needs root).
//!
//! Built only for the crate's own tests and with the `fault-injection`
//! feature, which the black-box tests turn on; a release build has no
//! trace of it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// How the queue's commits fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFault {
    /// The disk is full: half of the commit's frame is written, then
    /// `ENOSPC`.
    Full,
    /// The disk fails to write back: the whole frame is written, then the
    /// `fdatasync` fails with `EIO`.
    SyncFails,
}

/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;
/// `EIO` on Linux.
const EIO: i32 = 5;

/// The switch of one queue's faults, cheap to clone: what a test holds.
#[derive(Debug, Clone, Default)]
pub struct DiskFaults(Arc<AtomicU8>);

impl DiskFaults {
    /// From now on the queue's commits fail with `fault`; with `None`
    /// they succeed again.
    pub fn inject(&self, fault: Option<DiskFault>) {
        let code = match fault {
            None => 0,
            Some(DiskFault::Full) => 1,
            Some(DiskFault::SyncFails) => 2,
        };
        self.0.store(code, Ordering::Release);
    }

    fn current(&self) -> Option<DiskFault> {
        match self.0.load(Ordering::Acquire) {
            1 => Some(DiskFault::Full),
            2 => Some(DiskFault::SyncFails),
            _ => None,
        }
    }

    /// Writes `frame` at `at` in `file` as the fault in force lets it be
    /// written, and fails as it makes the disk fail; `None` when there is
    /// no fault (the caller writes as usual).
    pub(super) fn strike(&self, file: &File, frame: &[u8], at: u64) -> Option<io::Result<()>> {
        let (written, errno) = match self.current()? {
            DiskFault::Full => (&frame[..frame.len() / 2], ENOSPC),
            DiskFault::SyncFails => (frame, EIO),
        };
        Some(
            file.write_all_at(written, at)
                .and(Err(io::Error::from_raw_os_error(errno))),
        )
    }
}
