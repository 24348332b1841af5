//! The index checkpoint in `graph_dir/strand-index.v2` (v2 added collections; a v1 file is
//! ignored, so the first start after the upgrade rebuilds the index from the segments).
//!
//! The checkpoint is derived data that only saves a full scan at open. Invariant: it is
//! trusted only when its checksum holds, its positions chain exactly through the segments on
//! disk, and the frame at its last offset still carries the hash it recorded; anything less and
//! recovery rebuilds from the segments, so a damaged or stale checkpoint can cost time but never
//! change an answer. Frames it covers are not re-read at open; damage to them surfaces as
//! [`StrandError::Corrupt`] when they are read (every read checks the frame crc).
//!
//! Layout (integers little endian):
//!
//! ```text
//! [8]  magic b"SXSTRIX2"
//! u64  N, the offsets covered: 1..=N
//! u32  A, the number of authors; then A times: u8 length, author id bytes
//! u32  C, the number of collections; then C times: u8 length, collection name bytes
//! N ×  { u64 frame position, u32 body length, u32 author index, u64 seq, [32] block hash,
//!        u32 collection index }
//! [32] BLAKE3 of every byte above
//! ```

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use sapix_core::{AgentId, Collection, Hash};

use super::error::StrandError;
use super::frame::HEADER_LEN;
use super::fsio::write_atomic;
use super::index::{Entry, Index};
use super::segment::{SegmentFile, SegmentInfo};
use crate::disk::Disk;

/// The checkpoint's file name inside the graph directory.
pub(crate) const FILE_NAME: &str = "strand-index.v2";
/// The checkpoint of earlier versions, removed once a v2 is written.
const OLD_FILE_NAME: &str = "strand-index.v1";

const MAGIC: &[u8; 8] = b"SXSTRIX2";
const ENTRY_LEN: usize = 8 + 4 + 4 + 8 + 32 + 4;

/// The checkpoint path for `graph_dir`.
pub(crate) fn path(graph_dir: &Path) -> PathBuf {
    graph_dir.join(FILE_NAME)
}

/// Serializes `index`.
pub(crate) fn encode(index: &Index) -> Vec<u8> {
    let entries = index.raw_entries();
    let mut out = Vec::with_capacity(64 + entries.len() * ENTRY_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&index.tip().to_le_bytes());
    out.extend_from_slice(&(index.authors().len() as u32).to_le_bytes());
    for a in index.authors() {
        out.push(a.as_str().len() as u8);
        out.extend_from_slice(a.as_str().as_bytes());
    }
    out.extend_from_slice(&(index.collections().len() as u32).to_le_bytes());
    for c in index.collections() {
        out.push(c.as_str().len() as u8);
        out.extend_from_slice(c.as_str().as_bytes());
    }
    for e in entries {
        out.extend_from_slice(&e.pos.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
        out.extend_from_slice(&e.author.to_le_bytes());
        out.extend_from_slice(&e.seq.to_le_bytes());
        out.extend_from_slice(&e.hash.0);
        out.extend_from_slice(&e.collection.to_le_bytes());
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Parses a checkpoint; the error says why it is unusable.
pub(crate) fn decode(bytes: &[u8]) -> Result<Index, String> {
    let body_len = bytes
        .len()
        .checked_sub(32)
        .ok_or("shorter than its checksum")?;
    let (body, sum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != sum {
        return Err("checksum mismatch".into());
    }
    let mut r = Cursor(body);
    if r.take(8)? != MAGIC {
        return Err("bad magic".into());
    }
    let n = u64::from_le_bytes(r.array()?);
    let authors = u32::from_le_bytes(r.array()?);
    let mut index = Index::default();
    for _ in 0..authors {
        let len = r.take(1)?[0] as usize;
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| "author id is not UTF-8")?;
        let id = AgentId::new(name).map_err(|e| format!("bad author id: {e}"))?;
        let before = index.authors().len();
        index.intern(&id);
        if index.authors().len() == before {
            return Err("author listed twice".into());
        }
    }
    let collections = u32::from_le_bytes(r.array()?);
    for _ in 0..collections {
        let len = r.take(1)?[0] as usize;
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| "collection is not UTF-8")?;
        let c = Collection::new(name).map_err(|e| format!("bad collection: {e}"))?;
        let before = index.collections().len();
        index.intern_collection(&c);
        if index.collections().len() == before {
            return Err("collection listed twice".into());
        }
    }
    // Check the size before looping so a garbage count cannot make us spin.
    if (r.0.len() / ENTRY_LEN) as u64 != n || r.0.len() % ENTRY_LEN != 0 {
        return Err(format!("{} entry bytes do not hold {n} entries", r.0.len()));
    }
    while !r.0.is_empty() {
        let e = Entry {
            pos: u64::from_le_bytes(r.array()?),
            len: u32::from_le_bytes(r.array()?),
            author: u32::from_le_bytes(r.array()?),
            seq: u64::from_le_bytes(r.array()?),
            hash: Hash(r.array()?),
            collection: u32::from_le_bytes(r.array()?),
        };
        if e.author >= authors {
            return Err(format!("author index {} out of range", e.author));
        }
        if e.collection >= collections {
            return Err(format!("collection index {} out of range", e.collection));
        }
        index.push_entry(e);
    }
    Ok(index)
}

/// What was found in the graph directory.
pub(crate) enum Loaded {
    /// No checkpoint file.
    Missing,
    /// A checkpoint that cannot be used, and why.
    Invalid(String),
    /// A well-formed checkpoint, not yet checked against the segments.
    Index(Box<Index>),
}

/// Reads and parses the checkpoint. Read errors make it unusable, never fatal: it is derived.
pub(crate) fn load(disk: &dyn Disk, graph_dir: &Path) -> Loaded {
    match disk.read(&path(graph_dir)) {
        Ok(bytes) => match decode(&bytes) {
            Ok(index) => Loaded::Index(Box::new(index)),
            Err(why) => Loaded::Invalid(why),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Loaded::Missing,
        Err(e) => Loaded::Invalid(format!("cannot read: {e}")),
    }
}

/// Writes `bytes` as the checkpoint, atomically and durably.
pub(crate) fn store(disk: &dyn Disk, graph_dir: &Path, bytes: &[u8]) -> Result<(), StrandError> {
    write_atomic(disk, &path(graph_dir), bytes)?;
    // The v1 checkpoint of an agent before the upgrade is of no use any more.
    let _ = disk.remove(&graph_dir.join(OLD_FILE_NAME));
    Ok(())
}

/// Checks a loaded index against the segments on disk and returns where scanning must resume:
/// `(segment index, byte position)` just after the last covered frame.
pub(crate) fn resume_point(
    disk: &dyn Disk,
    index: &Index,
    segments: &[SegmentInfo],
) -> Result<(usize, u64), String> {
    let n = index.tip();
    if n == 0 {
        return Ok((0, 0));
    }
    let file_len = |s: &SegmentInfo| {
        disk.size(&s.path)
            .map_err(|e| format!("cannot stat {}: {e}", s.path.display()))
    };
    if segments.first().map(|s| s.first_offset) != Some(1) {
        return Err("no segment starts at offset 1".into());
    }
    let (mut seg, mut next_pos) = (0usize, 0u64);
    for (i, e) in index.raw_entries().iter().enumerate() {
        let offset = i as u64 + 1;
        if let Some(next) = segments.get(seg + 1) {
            if next.first_offset == offset {
                if file_len(&segments[seg])? != next_pos {
                    return Err(format!(
                        "segment {} is not complete",
                        segments[seg].path.display()
                    ));
                }
                seg += 1;
                next_pos = 0;
            } else if next.first_offset < offset {
                return Err(format!("segment {} is not covered", next.path.display()));
            }
        }
        if e.pos != next_pos {
            return Err(format!(
                "offset {offset} is at byte {}, expected {next_pos}",
                e.pos
            ));
        }
        next_pos = e.pos + (HEADER_LEN as u64) + u64::from(e.len);
    }
    if file_len(&segments[seg])? < next_pos {
        return Err(format!("offset {n} lies beyond the end of the strand"));
    }
    let last = index.get(n).ok_or("no last entry")?;
    let file = SegmentFile::open(disk, &segments[seg].path).map_err(|e| e.to_string())?;
    let body = file
        .read_frame(last.pos, last.len)
        .map_err(|e| e.to_string())?;
    if body.block().hash != last.hash {
        return Err(format!(
            "the frame at offset {n} no longer has the recorded hash"
        ));
    }
    Ok((seg, next_pos))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let mut idx = Index::default();
        let a = AgentId::new("alpha").unwrap();
        let b = AgentId::new("beta").unwrap();
        let (orders, audit) = (
            Collection::new("orders").unwrap(),
            Collection::new("audit").unwrap(),
        );
        idx.push(0, 100, (&a, 1, Hash([1; 32])), &orders);
        idx.push(108, 90, (&b, 1, Hash([2; 32])), &audit);
        idx.push(206, 95, (&a, 2, Hash([3; 32])), &orders);
        idx
    }

    #[test]
    fn round_trips() {
        let idx = sample();
        assert_eq!(decode(&encode(&idx)), Ok(idx));
        assert_eq!(decode(&encode(&Index::default())), Ok(Index::default()));
    }

    #[test]
    fn any_damage_is_refused() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x20;
            assert!(decode(&b).is_err(), "flip {i}");
        }
    }
}
