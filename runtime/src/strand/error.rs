//! The one error type of the strand boundary.
//!
//! Every failure a caller can see is a [`StrandError`] variant that names the file and, for
//! corruption, the byte position, so an operator can act on the message alone. Nothing in the
//! strand panics on file content: bad bytes become `Corrupt` or `Blob*`, never a crash.

use std::io;
use std::path::{Path, PathBuf};

use sapix_core::block::DecodeError;

/// Why a strand operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StrandError {
    /// An operating-system call failed on `path`.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"open"`, `"fsync"`, …).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A segment holds bytes that are not a valid frame where acknowledged data must be.
    #[error("corrupt strand file {} at byte {pos}: {why}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte position of the bad frame (or of the problem) in `file`.
        pos: u64,
        /// What is wrong.
        why: String,
    },
    /// A frame references a payload blob that is not in the blob directory.
    #[error("blob {hash} is missing: {}", path.display())]
    BlobMissing {
        /// Hex BLAKE3 of the payload.
        hash: String,
        /// Where it should be.
        path: PathBuf,
    },
    /// A payload blob exists but its length or BLAKE3 does not match the frame.
    #[error("blob {hash} at {} is corrupt: {why}", path.display())]
    BlobCorrupt {
        /// Hex BLAKE3 of the payload, as the frame records it.
        hash: String,
        /// The blob file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Block `index` of an append request would not decode again, so it is never written.
    #[error("block {index} of the append cannot be stored: {source}")]
    InvalidBlock {
        /// Position of the block in the request.
        index: usize,
        /// Why core's decoder would refuse it.
        #[source]
        source: DecodeError,
    },
    /// An earlier write or fsync failed; the strand refuses appends until it is reopened,
    /// because the state of unsynced data after a failed fsync is unknowable.
    #[error("strand is poisoned by an earlier write or fsync failure; reopen it to recover")]
    Poisoned,
    /// Another open strand holds this strand directory.
    #[error("strand directory {} is in use by another open strand", dir.display())]
    Locked {
        /// The strand directory.
        dir: PathBuf,
    },
    /// The disk is full: nothing of this append was stored, the strand is as it was before
    /// it, and it refuses appends until [`Strand::resume`](super::Strand::resume).
    #[error("the disk is full ({reason}); nothing of this append was stored")]
    Full {
        /// What the operating system said.
        reason: String,
    },
    /// The writer thread is gone (it panicked); nothing more can be appended.
    #[error("strand writer thread has stopped")]
    Closed,
}

impl StrandError {
    /// Whether this is [`StrandError::Full`]: retryable once space is freed.
    pub fn is_full(&self) -> bool {
        matches!(self, StrandError::Full { .. })
    }

    /// Whether this error is a full disk met while writing bytes nothing refers to yet (a
    /// segment's unsynced tail, a blob's temporary file, a directory): undoing it loses
    /// nothing. A full disk met by an fsync is not: the kernel may have dropped pages.
    pub(crate) fn is_out_of_space_writing(&self) -> bool {
        let StrandError::Io { op, source, .. } = self else {
            return false;
        };
        let writing = matches!(*op, "write" | "write atomically" | "create directory");
        let full = matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        );
        writing && full
    }

    /// An `Io` error with its context.
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        StrandError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A `Corrupt` error.
    pub(crate) fn corrupt(file: &Path, pos: u64, why: impl Into<String>) -> Self {
        StrandError::Corrupt {
            file: file.to_path_buf(),
            pos,
            why: why.into(),
        }
    }

    /// An equivalent error for another waiter of the same failed batch (`io::Error` is not
    /// `Clone`, so the OS error is carried over by kind and message).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            StrandError::Io { op, path, source } => StrandError::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            StrandError::Corrupt { file, pos, why } => StrandError::Corrupt {
                file: file.clone(),
                pos: *pos,
                why: why.clone(),
            },
            StrandError::BlobMissing { hash, path } => StrandError::BlobMissing {
                hash: hash.clone(),
                path: path.clone(),
            },
            StrandError::BlobCorrupt { hash, path, why } => StrandError::BlobCorrupt {
                hash: hash.clone(),
                path: path.clone(),
                why: why.clone(),
            },
            StrandError::InvalidBlock { index, source } => StrandError::InvalidBlock {
                index: *index,
                source: source.clone(),
            },
            StrandError::Locked { dir } => StrandError::Locked { dir: dir.clone() },
            StrandError::Poisoned => StrandError::Poisoned,
            StrandError::Full { reason } => StrandError::Full {
                reason: reason.clone(),
            },
            StrandError::Closed => StrandError::Closed,
        }
    }
}

/// Attaches an operation and a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`StrandError::Io`].
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StrandError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, StrandError> {
        self.map_err(|e| StrandError::io(op, path, e))
    }
}
