//! A [`Disk`] on turmoil's simulated file system (`unstable-fs`): each host has its own, and
//! `Sim::crash` keeps only what was made durable — file data by `sync_data`/`sync_all`,
//! directory entries (new files, renames, new directories) by a sync of their parent. A
//! `Sim::bounce` restarts the software and keeps everything, like a process crash with the
//! kernel still up.
//!
//! Every operation enters the owning host's file system explicitly ([`FsHandle`]), so the
//! harness can read a node's strand from the driver host, and a file dropped while another host
//! is current closes on the right one.
//!
//! Two switches serve the harness: [`TurmoilDisk::kill`], called just before `Sim::crash` or
//! `Sim::bounce`, fails every later operation, so nothing the dying software does while it is
//! torn down (such as the strand's checkpoint at drop) reaches the disk, as after a power cut
//! or a `kill -9`; and a [`Lie`] makes
//! the disk skip one kind of sync, a planted bug the simulation must catch.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sapix_runtime::disk::{missing_dirs, Disk, DiskFile, DiskLock, OpenHow};
use turmoil::fs::shim::std::fs as simfs;
use turmoil::fs::FsHandle;

/// A sync the disk pretends to do: a planted durability bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// `sync_data` does nothing (a strand that forgets to fsync its segments).
    SyncData,
    /// Directory syncs do nothing (new files and renames are not made durable).
    SyncDir,
}

/// What the disk and its open files share.
struct State {
    fs: FsHandle,
    powered: AtomicBool,
    lie: Option<Lie>,
}

impl State {
    /// Runs `f` on this host's file system, or fails if the power is off.
    fn with<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        if !self.powered.load(Ordering::Acquire) {
            return Err(io::Error::other("the software using this disk was killed"));
        }
        let _on_this_host = self.fs.enter();
        f()
    }

    fn lies_about(&self, sync: Lie) -> bool {
        self.lie == Some(sync)
    }
}

/// The current host's simulated file system. Create it on the host (inside its software).
#[derive(Clone)]
pub struct TurmoilDisk {
    state: Arc<State>,
    locks: Arc<Mutex<Vec<PathBuf>>>,
}

impl fmt::Debug for TurmoilDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurmoilDisk")
    }
}

impl TurmoilDisk {
    /// The file system of the host whose software is running now.
    pub fn current(lie: Option<Lie>) -> Self {
        TurmoilDisk {
            state: Arc::new(State {
                fs: FsHandle::current(),
                powered: AtomicBool::new(true),
                lie,
            }),
            locks: Arc::default(),
        }
    }

    /// Fails every later operation of this disk and its open files: the software using it is
    /// about to die (crash or bounce), and nothing it does while it is torn down may reach the
    /// disk.
    pub fn kill(&self) {
        self.state.powered.store(false, Ordering::Release);
    }

    fn with<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.state.with(f)
    }
}

struct SimFile {
    state: Arc<State>,
    // Always `Some` until dropped: taken in `drop` to close it on its own host.
    file: Option<simfs::File>,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimFile")
    }
}

impl SimFile {
    fn with<R>(&self, f: impl FnOnce(&simfs::File) -> io::Result<R>) -> io::Result<R> {
        let file = self.file.as_ref().expect("open until dropped");
        self.state.with(|| f(file))
    }

    fn with_mut<R>(&mut self, f: impl FnOnce(&mut simfs::File) -> io::Result<R>) -> io::Result<R> {
        let file = self.file.as_mut().expect("open until dropped");
        self.state.with(|| f(file))
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        // Closed even after a power cut: the descriptor table is the simulator's, not the disk.
        let _on_this_host = self.state.fs.enter();
        drop(self.file.take());
    }
}

impl Read for SimFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with_mut(|f| f.read(buf))
    }
}

impl Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with_mut(|f| f.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.with_mut(|f| f.flush())
    }
}

impl Seek for SimFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.with_mut(|f| f.seek(pos))
    }
}

impl DiskFile for SimFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.with(|f| FileExt::read_at(f, buf, pos))
    }
    fn size(&self) -> io::Result<u64> {
        self.with(|f| Ok(f.metadata()?.len()))
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|f| f.set_len(len))
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.state.lies_about(Lie::SyncData) {
            return self.with(|_| Ok(()));
        }
        self.with(|f| f.sync_data())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.with(|f| f.sync_all())
    }
}

/// Held lock: removes its path from the disk's lock table when dropped.
struct SimLock {
    locks: Arc<Mutex<Vec<PathBuf>>>,
    path: PathBuf,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimLock({})", self.path.display())
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.retain(|p| p != &self.path);
    }
}

impl Disk for TurmoilDisk {
    fn open(&self, path: &Path, how: OpenHow) -> io::Result<Box<dyn DiskFile>> {
        let f = how.flags();
        let file = self.with(|| {
            simfs::OpenOptions::new()
                .read(f.read)
                .write(f.write)
                .append(f.append)
                .create(f.create)
                .create_new(f.create_new)
                .truncate(f.truncate)
                .mode(f.mode)
                .open(path)
        })?;
        Ok(Box::new(SimFile {
            state: self.state.clone(),
            file: Some(file),
        }))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.with(|| {
            let missing = missing_dirs(dir, |p| {
                simfs::metadata(p).map(|m| m.is_dir()).unwrap_or(false)
            });
            simfs::create_dir_all(dir)?;
            Ok(missing)
        })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.with(|| {
            let mut names = Vec::new();
            for entry in simfs::read_dir(dir)? {
                names.push(entry?.file_name());
            }
            names.sort();
            Ok(names)
        })
    }

    fn size(&self, path: &Path) -> io::Result<u64> {
        self.with(|| Ok(simfs::metadata(path)?.len()))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.with(|| simfs::read(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.with(|| simfs::rename(from, to))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.state.lies_about(Lie::SyncDir) {
            return self.with(|| Ok(()));
        }
        self.with(|| simfs::sync_dir(dir))
    }

    fn lock(&self, path: &Path) -> io::Result<DiskLock> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if locks.iter().any(|p| p == path) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Like the real lock, the file is created: the strand directory then looks the same.
        drop(self.open(
            path,
            OpenHow::Replace { mode: 0o644 }, // truncating an empty lock file changes nothing
        )?);
        locks.push(path.to_path_buf());
        Ok(Box::new(SimLock {
            locks: self.locks.clone(),
            path: path.to_path_buf(),
        }))
    }
}
