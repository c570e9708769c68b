//! Why the queue's files cannot be used: [`JournalError`], naming the file
//! and, for a damaged one, where and what.

use std::path::Path;

/// Why the queue's files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing failed.
    #[error("event queue {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A stored event does not decode: the file was changed by something
    /// other than edgehook.
    #[error("event queue {path}: stored event {seq} is corrupt: {reason}")]
    Corrupt {
        /// The segment.
        path: String,
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A whole frame that edgehook did not write.
    #[error(
        "event queue {path}: {reason} at byte {offset}; the file was changed by something other than edgehook"
    )]
    Damaged {
        /// The segment.
        path: String,
        /// Where the frame starts.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The queue cannot hold this, or its directory holds no usable
    /// segment.
    #[error("event queue {path}: {reason}")]
    Unusable {
        /// The directory or segment.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// The queue file of an earlier version does not read.
    #[error("event queue {path} (left by an earlier version): {source}")]
    Legacy {
        /// The old file.
        path: String,
        /// redb's error.
        source: redb::Error,
    },
}

/// The error of an I/O failure on `path`.
pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}
