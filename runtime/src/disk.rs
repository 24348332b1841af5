//! The file system the node's durable state lives on, behind a small trait.
//!
//! Production uses [`OsDisk`] (std::fs, fsync, flock). The turmoil tests plug in turmoil's
//! simulated file system, where a host crash loses everything that was not fsynced — including
//! directory entries whose parent directory was not fsynced — so the same strand and state-file
//! code is tested against the durability model it claims to follow. Every file the node
//! persists goes through a [`Disk`]; it is chosen at start-up, not by a cargo feature, so no
//! test build can change what the agent binary does.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How [`Disk::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenHow {
    /// Read only; the file must exist.
    Read,
    /// Read and write at any position; the file must exist (recovery cuts torn tails).
    ReadWrite,
    /// Appends; the file must exist.
    Append,
    /// Appends to a new file; fails if it exists.
    CreateNewAppend,
    /// Write only, created with `mode` if missing, truncated if present.
    Replace {
        /// Unix permission bits for a new file.
        mode: u32,
    },
}

/// What [`OpenHow`] asks of `open(2)`, for any `OpenOptions`-like builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFlags {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Every write goes to the end.
    pub append: bool,
    /// Create the file if missing.
    pub create: bool,
    /// Create the file; fail if it exists.
    pub create_new: bool,
    /// Cut the file to 0 bytes.
    pub truncate: bool,
    /// Permission bits of a created file.
    pub mode: u32,
}

impl OpenHow {
    /// The flags that open a file this way.
    pub fn flags(self) -> OpenFlags {
        let none = OpenFlags {
            read: false,
            write: false,
            append: false,
            create: false,
            create_new: false,
            truncate: false,
            mode: 0o644,
        };
        match self {
            OpenHow::Read => OpenFlags { read: true, ..none },
            OpenHow::ReadWrite => OpenFlags {
                read: true,
                write: true,
                ..none
            },
            OpenHow::Append => OpenFlags {
                append: true,
                ..none
            },
            OpenHow::CreateNewAppend => OpenFlags {
                append: true,
                create_new: true,
                ..none
            },
            OpenHow::Replace { mode } => OpenFlags {
                write: true,
                create: true,
                truncate: true,
                mode,
                ..none
            },
        }
    }
}

/// An open file on a [`Disk`].
pub trait DiskFile: Read + Write + Seek + Send + Sync + fmt::Debug {
    /// Reads at `pos` without moving the cursor; may return fewer bytes than asked.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data (and size) durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
}

/// Reads exactly `buf.len()` bytes at `pos`; `UnexpectedEof` if the file ends first.
pub fn read_exact_at(file: &dyn DiskFile, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, pos) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Held while a directory is locked; dropping it releases the lock.
pub type DiskLock = Box<dyn fmt::Debug + Send + Sync>;

/// Where the node's files live. Paths are absolute or relative to the process's directory, as
/// configured; the trait adds no root of its own.
pub trait Disk: Send + Sync + fmt::Debug {
    /// Opens `path` as `how` says.
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Box<dyn DiskFile>>;
    /// Creates `dir` and any missing parents; returns the directories it created, outermost
    /// first, so the caller can make their entries durable.
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// The names in `dir`, sorted (so nothing depends on the file system's listing order).
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// The length of the file at `path`.
    fn size(&self, path: &Path) -> io::Result<u64>;
    /// The whole content of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of directory `dir` (creations, renames) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on the file `path` (created if missing), or fails with
    /// `WouldBlock` if someone (in this process or another) holds it.
    fn lock(&self, path: &Path) -> io::Result<DiskLock>;
    /// Removes the file `path` (only derived files are ever removed: an old index format).
    fn remove(&self, path: &Path) -> io::Result<()> {
        let _ = path;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsDisk;

impl OsDisk {
    /// The real file system, as a shared [`Disk`].
    pub fn shared() -> Arc<dyn Disk> {
        Arc::new(OsDisk)
    }
}

impl DiskFile for File {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, pos)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }
}

impl Disk for OsDisk {
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Box<dyn DiskFile>> {
        let f = how.flags();
        let file = OpenOptions::new()
            .read(f.read)
            .write(f.write)
            .append(f.append)
            .create(f.create)
            .create_new(f.create_new)
            .truncate(f.truncate)
            .mode(f.mode)
            .open(path)?;
        Ok(Box::new(file))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let missing = missing_dirs(dir, |p| p.is_dir());
        fs::create_dir_all(dir)?;
        Ok(missing)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(entry?.file_name());
        }
        names.sort();
        Ok(names)
    }

    fn size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<DiskLock> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock only reads the descriptor, which `file` keeps open across the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Box::new(file))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// The directories `create_dir_all(dir)` would create, outermost first, judged by `exists`.
pub fn missing_dirs(dir: &Path, exists: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut missing: Vec<_> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !exists(p))
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// Creates `dir` (and parents) if missing and makes every directory it created durable: each
/// new directory's entry is fsynced in its parent, or a power cut could take the directory,
/// and everything later written under it, away.
pub fn ensure_dir(disk: &dyn Disk, dir: &Path) -> io::Result<()> {
    for created in disk.create_dir_all(dir)? {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        disk.sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dirs_lists_only_what_is_absent_outermost_first() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        let missing = missing_dirs(&deep, |p| p.is_dir());
        assert_eq!(
            missing,
            vec![root.path().join("a"), root.path().join("a/b"), deep.clone()]
        );
        ensure_dir(&OsDisk, &deep).unwrap();
        assert!(deep.is_dir());
        assert!(missing_dirs(&deep, |p| p.is_dir()).is_empty());
        assert_eq!(OsDisk.create_dir_all(&deep).unwrap(), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_locked_file_cannot_be_locked_again_until_released() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("LOCK");
        let held = OsDisk.lock(&path).unwrap();
        assert_eq!(
            OsDisk.lock(&path).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(held);
        OsDisk.lock(&path).unwrap();
    }

    #[test]
    fn read_exact_at_reads_across_short_reads_and_reports_eof() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("f");
        fs::write(&path, b"0123456789").unwrap();
        let f = OsDisk.open(&path, OpenHow::Read).unwrap();
        let mut buf = [0u8; 4];
        read_exact_at(&*f, &mut buf, 3).unwrap();
        assert_eq!(&buf, b"3456");
        assert_eq!(
            read_exact_at(&*f, &mut buf, 8).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(OsDisk.list(root.path()).unwrap(), vec![OsString::from("f")]);
    }
}
