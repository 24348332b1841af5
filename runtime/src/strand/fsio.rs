//! Small durable-file helpers shared by segments, blobs and the checkpoint.
//!
//! The invariant kept here: a file published under its final name is complete and on disk.
//! Everything goes through temp file, `fsync`, `rename`, directory `fsync`, in that order,
//! because a rename without the fsync before it can expose an empty file after a power cut,
//! and without the directory fsync after it the name itself can vanish.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use super::error::{IoContext, StrandError};

/// Fsyncs a directory so that entries created or renamed in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StrandError> {
    File::open(dir)
        .ctx("open directory", dir)?
        .sync_all()
        .ctx("fsync directory", dir)
}

/// Creates `dir` (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), StrandError> {
    fs::create_dir_all(dir).ctx("create directory", dir)
}

/// Writes `bytes` to `path` atomically and durably: temp file in the same directory, fsync,
/// rename over `path`, fsync the directory. Returns the number of fsyncs made (always 2).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<u64, StrandError> {
    let dir = path.parent().ok_or_else(|| {
        StrandError::io("resolve parent of", path, io::ErrorKind::NotFound.into())
    })?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .ctx("create", &tmp)?;
    f.write_all(bytes).ctx("write", &tmp)?;
    f.sync_all().ctx("fsync", &tmp)?;
    drop(f);
    fs::rename(&tmp, path).ctx("rename into place", path)?;
    sync_dir(dir)?;
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

/// An exclusive advisory lock on `dir/LOCK`, held for as long as the value lives. Two
/// processes appending to one strand would interleave frames and corrupt it.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the lock on `dir`, or fails with [`StrandError::Locked`] if another open strand
/// (in this process or another) holds it.
pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, StrandError> {
    use std::os::fd::AsRawFd;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ctx("open lock file", &path)?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open across the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Err(StrandError::Locked {
                dir: dir.to_path_buf(),
            });
        }
        return Err(StrandError::io("lock", &path, err));
    }
    Ok(DirLock { _file: file })
}
