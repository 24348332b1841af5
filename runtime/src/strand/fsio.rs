//! Small durable-file helpers shared by segments, blobs and the checkpoint.
//!
//! The invariant kept here: a file published under its final name is complete and on disk.
//! Everything goes through temp file, `fsync`, `rename`, directory `fsync`, in that order,
//! because a rename without the fsync before it can expose an empty file after a power cut,
//! and without the directory fsync after it the name itself can vanish.

use std::io::{self, Read};
use std::path::Path;

use super::error::{IoContext, StrandError};
use crate::disk::{self, Disk, DiskLock};
use crate::state_file;

/// Fsyncs a directory so that entries created or renamed in it survive a power cut.
pub(crate) fn sync_dir(disk: &dyn Disk, dir: &Path) -> Result<(), StrandError> {
    disk.sync_dir(dir).ctx("fsync directory", dir)
}

/// Creates `dir` (and parents) if missing, durably.
pub(crate) fn ensure_dir(disk: &dyn Disk, dir: &Path) -> Result<(), StrandError> {
    disk::ensure_dir(disk, dir).ctx("create directory", dir)
}

/// Writes `bytes` to `path` atomically and durably, as every state file is written
/// ([`state_file::write_atomic`]: temp file, fsync, rename, directory fsync). Returns the
/// number of fsyncs made (always 2).
pub(crate) fn write_atomic(disk: &dyn Disk, path: &Path, bytes: &[u8]) -> Result<u64, StrandError> {
    state_file::write_atomic(disk, path, bytes, 0o644).ctx("write atomically", path)?;
    Ok(2)
}

/// Reads until `buf` is full or the reader is exhausted; returns how many bytes were read.
/// Unlike `read_exact`, a short read at end of file is an answer, not an error: recovery needs
/// to know how much of a torn frame is there.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// An exclusive lock on `dir/LOCK`, held for as long as the value lives. Two processes
/// appending to one strand would interleave frames and corrupt it.
#[derive(Debug)]
pub(crate) struct DirLock {
    _held: DiskLock,
}

/// Takes the lock on `dir`, or fails with [`StrandError::Locked`] if another open strand
/// (in this process or another) holds it.
pub(crate) fn lock_dir(disk: &dyn Disk, dir: &Path) -> Result<DirLock, StrandError> {
    let path = dir.join("LOCK");
    match disk.lock(&path) {
        Ok(held) => Ok(DirLock { _held: held }),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(StrandError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(StrandError::io("lock", &path, e)),
    }
}
