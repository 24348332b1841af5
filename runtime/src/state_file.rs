//! Small state files written atomically: temp file, fsync, rename, directory fsync.
//!
//! Used for everything the node persists besides the strand (node identity, and later the
//! peer registry, `sync_cursors.json`, the consistency mode). A crash at any point leaves
//! either the old file or the new one, never a mix.

use std::io::{self, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::disk::{Disk, OpenHow};

/// Largest state file read back; anything larger is refused as corrupt rather than loaded.
pub const MAX_STATE_FILE: u64 = 16 * 1024 * 1024;

/// Replaces `path` with `bytes` atomically and durably, with the given Unix mode.
pub fn write_atomic(disk: &dyn Disk, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "state file needs a name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    {
        let mut f = disk.open(&tmp, OpenHow::Replace { mode })?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    disk.rename(&tmp, path)?;
    disk.sync_dir(dir)
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(disk: &dyn Disk, path: &Path, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(disk, path, &bytes, 0o644)
}

/// Reads a JSON state file; `Ok(None)` if it does not exist.
pub fn read_json<T: DeserializeOwned>(disk: &dyn Disk, path: &Path) -> io::Result<Option<T>> {
    match read_bounded(disk, path)? {
        Some(bytes) => parse_json(&bytes, path).map(Some),
        None => Ok(None),
    }
}

/// Parses the bytes of the JSON state file at `path` (named in the error only). Separate from
/// the read so the parser of untrusted disk bytes can be fuzzed without a file.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> io::Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Reads a whole file of at most [`MAX_STATE_FILE`] bytes; `Ok(None)` if it does not exist.
pub fn read_bounded(disk: &dyn Disk, path: &Path) -> io::Result<Option<Vec<u8>>> {
    match disk.size(path) {
        Ok(len) if len > MAX_STATE_FILE => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is {} bytes, larger than any state file",
                path.display(),
                len
            ),
        )),
        Ok(_) => disk.read(path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::OsDisk;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_then_read_round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        assert_eq!(read_json::<Vec<u32>>(&OsDisk, &p).unwrap(), None);
        write_json(&OsDisk, &p, &vec![1u32, 2]).unwrap();
        write_json(&OsDisk, &p, &vec![3u32]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&OsDisk, &p).unwrap(), Some(vec![3]));
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn mode_is_applied_for_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        write_atomic(&OsDisk, &p, b"x", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        fs::write(&p, b"{\"not\": ").unwrap();
        assert_eq!(
            read_json::<Vec<u32>>(&OsDisk, &p).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
