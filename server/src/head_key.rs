//! This node's head key on disk: `<SAPIX_DATA_DIR>/head_key` (64 hex digits, mode 0600), drawn
//! from the OS's randomness at first start and never derived from the master seed.
//!
//! A rotation (`POST /v1/cluster/rotate-head-key`) writes the new key to `head_key.next`
//! first, then has the node sign it in and persist the membership that enrols it, then renames
//! it over `head_key`. A restart between those steps settles it from what is persisted: the
//! next key is taken if this node's persisted entry enrols it, and ignored otherwise (the
//! rotation never happened; the next one overwrites the file). So the key the cluster enrolled
//! is never lost to a crash.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use sapix_core::ledger::{HeadKey, HeadPublicKey};
use sapix_runtime::disk::Disk;
use sapix_runtime::state_file;

/// The key file's name in the data dir.
pub const FILE: &str = "head_key";
/// A rotation's new key, until the membership enrolling it is persisted.
pub const NEXT: &str = "head_key.next";

/// Where new head keys come from.
#[derive(Debug, Clone, Default)]
pub enum KeySource {
    /// The OS's randomness: every real process.
    #[default]
    Os,
    /// A seeded stream, so a simulated cluster replays identically (turmoil's hosts).
    Seeded(Arc<std::sync::Mutex<rand_chacha::ChaCha8Rng>>),
}

impl KeySource {
    /// A seeded source (simulation only).
    pub fn seeded(seed: u64) -> Self {
        use rand::SeedableRng;
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6865_6164_5f6b_6579);
        KeySource::Seeded(Arc::new(std::sync::Mutex::new(rng)))
    }

    /// A fresh key.
    pub fn draw(&self) -> HeadKey {
        let mut secret = [0u8; 32];
        match self {
            KeySource::Os => rand::rngs::OsRng.fill_bytes(&mut secret),
            KeySource::Seeded(rng) => rng
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .fill_bytes(&mut secret),
        }
        HeadKey::from_bytes(secret)
    }
}

/// Reads the key file at `path`, if there is one.
fn read(disk: &dyn Disk, path: &Path) -> io::Result<Option<HeadKey>> {
    let Some(bytes) = state_file::read_bounded(disk, path)? else {
        return Ok(None);
    };
    let mut secret = [0u8; 32];
    let text = String::from_utf8_lossy(&bytes);
    hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the head key must be 64 hex characters",
        )
    })?;
    Ok(Some(HeadKey::from_bytes(secret)))
}

fn write(disk: &dyn Disk, path: &Path, key: &HeadKey) -> io::Result<()> {
    let text = format!("{}\n", hex::encode(key.secret_bytes()));
    state_file::write_atomic(disk, path, text.as_bytes(), 0o600)
}

/// The node's head key files in `dir`.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    source: KeySource,
}

impl KeyFiles {
    /// The files in the data dir `dir`.
    pub fn new(disk: Arc<dyn Disk>, dir: &Path, source: KeySource) -> Self {
        KeyFiles {
            disk,
            dir: dir.to_path_buf(),
            source,
        }
    }

    /// A fresh key from this node's source.
    pub fn draw(&self) -> HeadKey {
        self.source.draw()
    }

    /// The key to start with: a rotation left half done is settled by `enrolled` (this
    /// node's key as its persisted membership entry has it); with no file, a new key.
    pub fn load(&self, enrolled: Option<HeadPublicKey>) -> io::Result<HeadKey> {
        let (file, next) = (self.dir.join(FILE), self.dir.join(NEXT));
        if let Some(key) = read(&*self.disk, &next)? {
            if enrolled == Some(key.public()) {
                self.commit()?;
                tracing::warn!(
                    head_key = %key.public(),
                    "head key: a rotation interrupted by a restart was completed (the cluster \
                     enrolled the new key)"
                );
                return Ok(key);
            }
            tracing::warn!(
                unused = %key.public(),
                "head key: a rotation that was never enrolled is ignored; the current key stays"
            );
        }
        if let Some(key) = read(&*self.disk, &file)? {
            return Ok(key);
        }
        let key = self.draw();
        write(&*self.disk, &file, &key)?;
        Ok(key)
    }

    /// Writes a rotation's new key beside the current one (durable before it is signed in).
    pub fn stage(&self, next: &HeadKey) -> io::Result<()> {
        write(&*self.disk, &self.dir.join(NEXT), next)
    }

    /// The rotation is enrolled: the new key replaces the current file.
    pub fn commit(&self) -> io::Result<()> {
        self.disk
            .rename(&self.dir.join(NEXT), &self.dir.join(FILE))?;
        self.disk.sync_dir(&self.dir)
    }
}

/// Rotations, one at a time: the key files, and whether a rotation's membership write failed
/// (its key is then in memory and in `head_key.next` only; a restart settles it, and no new
/// rotation may overwrite that file before).
#[derive(Debug)]
pub struct Rotation {
    /// The files.
    pub files: KeyFiles,
    /// Held for the whole of a rotation; `true` once one is left unsettled.
    pub unsettled: tokio::sync::Mutex<bool>,
}

impl Rotation {
    /// Rotations of the key in `files`.
    pub fn new(files: KeyFiles) -> Self {
        Rotation {
            files,
            unsettled: tokio::sync::Mutex::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapix_runtime::disk::OsDisk;

    fn files() -> (tempfile::TempDir, KeyFiles) {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(OsDisk::shared(), dir.path(), KeySource::Os);
        (dir, files)
    }

    #[test]
    fn the_first_start_draws_a_key_kept_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, files) = files();
        let key = files.load(None).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(files.load(None).unwrap().public(), key.public());
    }

    #[test]
    fn a_staged_key_is_taken_at_start_only_if_enrolled() {
        let (dir, files) = files();
        let old = files.load(None).unwrap();
        let next = files.draw();
        files.stage(&next).unwrap();
        // Not enrolled: the rotation never happened.
        assert_eq!(
            files.load(Some(old.public())).unwrap().public(),
            old.public()
        );
        assert!(dir.path().join(NEXT).exists());
        // Enrolled: the restart completes it.
        assert_eq!(
            files.load(Some(next.public())).unwrap().public(),
            next.public()
        );
        assert!(!dir.path().join(NEXT).exists());
        assert_eq!(files.load(None).unwrap().public(), next.public());
    }
}
