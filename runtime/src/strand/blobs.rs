//! The content-addressed blob store for large payloads.
//!
//! A payload over the blob threshold lives at `blob_dir/ab/cdef…`, named by the hex BLAKE3 of
//! its bytes (first two hex digits as a fan-out directory). Invariant: a blob is complete and
//! durable (temp file, fsync, rename, directory fsync) before any frame that references it is
//! written, so a durable frame never points at a blob a power cut could take away. Reads verify
//! length and BLAKE3, so a damaged blob is a typed error, never a wrong answer.

use std::collections::HashSet;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{IoContext, StrandError};
use super::fsio::{ensure_dir, sync_dir, write_atomic};
use crate::disk::{Disk, OpenHow};

/// Where the blob with BLAKE3 `hash` lives under `dir`.
pub(crate) fn path_of(dir: &Path, hash: &[u8; 32]) -> PathBuf {
    let hex = hex::encode(hash);
    dir.join(&hex[..2]).join(&hex[2..])
}

/// Reads and verifies the blob `hash`, which must be `len` bytes.
pub(crate) fn read(
    disk: &dyn Disk,
    dir: &Path,
    hash: &[u8; 32],
    len: u32,
) -> Result<Vec<u8>, StrandError> {
    let path = path_of(dir, hash);
    let mut file = match disk.open(&path, OpenHow::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(StrandError::BlobMissing {
                hash: hex::encode(hash),
                path,
            })
        }
        Err(e) => return Err(StrandError::io("open blob", &path, e)),
    };
    let corrupt = |why: String| StrandError::BlobCorrupt {
        hash: hex::encode(hash),
        path: path.clone(),
        why,
    };
    // Check the size first so a damaged, huge file is never read into memory.
    let actual = file.size().ctx("stat blob", &path)?;
    if actual != u64::from(len) {
        return Err(corrupt(format!("is {actual} bytes, the frame says {len}")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes).ctx("read blob", &path)?;
    if bytes.len() != len as usize || blake3::hash(&bytes).as_bytes() != hash {
        return Err(corrupt("content does not match its BLAKE3 name".into()));
    }
    Ok(bytes)
}

/// The writer thread's side of the store: remembers which blobs and fan-out directories this
/// process has already made durable, so repeated payloads cost nothing.
pub(crate) struct BlobWriter {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    durable: HashSet<[u8; 32]>,
    fanouts: HashSet<String>,
}

/// What storing one blob cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PutCost {
    /// Whether a new blob file was written.
    pub(crate) written: bool,
    /// fsyncs of blob files and blob directories.
    pub(crate) fsyncs: u64,
}

impl BlobWriter {
    /// A writer for the store in `dir` (which must exist).
    pub(crate) fn new(disk: Arc<dyn Disk>, dir: &Path) -> Self {
        BlobWriter {
            disk,
            dir: dir.to_path_buf(),
            durable: HashSet::new(),
            fanouts: HashSet::new(),
        }
    }

    /// Makes the blob `hash` with content `bytes` durable, writing it only if it is not already
    /// there intact.
    pub(crate) fn put(&mut self, hash: &[u8; 32], bytes: &[u8]) -> Result<PutCost, StrandError> {
        let mut cost = PutCost::default();
        if self.durable.contains(hash) {
            return Ok(cost);
        }
        let disk = &*self.disk;
        let path = path_of(&self.dir, hash);
        let fanout = path.parent().unwrap_or(&self.dir).to_path_buf();
        let fanout_name = hex::encode(&hash[..1]);
        if !self.fanouts.contains(&fanout_name) {
            ensure_dir(disk, &fanout)?;
            // The fan-out directory's own entry must be durable too, or the blob could vanish
            // with it; synced even if it existed, as a crashed process may have made it.
            sync_dir(disk, &self.dir)?;
            cost.fsyncs += 1;
            self.fanouts.insert(fanout_name);
        }
        match read(disk, &self.dir, hash, bytes.len() as u32) {
            Ok(_) => {
                // Present and intact, perhaps from a process that crashed before its directory
                // fsync: sync instead of rewriting, so the name is durable before we rely on it.
                disk.open(&path, OpenHow::Read)
                    .ctx("open blob", &path)?
                    .sync_all()
                    .ctx("fsync blob", &path)?;
                sync_dir(disk, &fanout)?;
                cost.fsyncs += 2;
            }
            Err(StrandError::BlobMissing { .. }) => {
                cost.fsyncs += write_atomic(disk, &path, bytes)?;
                cost.written = true;
            }
            Err(StrandError::BlobCorrupt { why, .. }) => {
                tracing::warn!(blob = %path.display(), %why, "replacing a damaged blob");
                cost.fsyncs += write_atomic(disk, &path, bytes)?;
                cost.written = true;
            }
            Err(e) => return Err(e),
        }
        self.durable.insert(*hash);
        Ok(cost)
    }
}

/// How many files the store holds (tests only).
#[cfg(test)]
pub(crate) fn count(dir: &Path) -> usize {
    use std::fs;
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| fs::read_dir(e.path()).map(|f| f.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::OsDisk;
    use std::fs;

    #[test]
    fn put_then_read_and_damage_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = br#"{"big":"payload"}"#;
        let hash = *blake3::hash(bytes).as_bytes();
        let mut w = BlobWriter::new(OsDisk::shared(), dir.path());
        assert!(w.put(&hash, bytes).unwrap().written);
        assert_eq!(w.put(&hash, bytes).unwrap(), PutCost::default());
        assert_eq!(count(dir.path()), 1);
        assert_eq!(
            read(&OsDisk, dir.path(), &hash, bytes.len() as u32).unwrap(),
            bytes
        );

        // A second process finds it intact and does not rewrite it.
        let mut w2 = BlobWriter::new(OsDisk::shared(), dir.path());
        assert!(!w2.put(&hash, bytes).unwrap().written);

        let path = path_of(dir.path(), &hash);
        fs::write(&path, br#"{"big":"PAYLOAD"}"#).unwrap();
        assert!(matches!(
            read(&OsDisk, dir.path(), &hash, bytes.len() as u32),
            Err(StrandError::BlobCorrupt { .. })
        ));
        assert!(matches!(
            read(&OsDisk, dir.path(), &hash, 3),
            Err(StrandError::BlobCorrupt { .. })
        ));
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            read(&OsDisk, dir.path(), &hash, bytes.len() as u32),
            Err(StrandError::BlobMissing { .. })
        ));
        // A damaged blob found by a fresh writer is replaced.
        fs::write(&path, b"junk").unwrap();
        let mut w3 = BlobWriter::new(OsDisk::shared(), dir.path());
        assert!(w3.put(&hash, bytes).unwrap().written);
        assert_eq!(
            read(&OsDisk, dir.path(), &hash, bytes.len() as u32).unwrap(),
            bytes
        );
    }
}
