//! Segment files: naming, listing, sequential scanning and positioned reads.
//!
//! A segment is `segment-{first_offset:020}.log`, a run of frames whose offsets start at
//! `first_offset` and are contiguous. Invariant: scanning reports every complete, valid frame
//! in order and stops at the first byte that is not one, saying exactly where and why, so the
//! caller (recovery) decides between truncating a torn tail and refusing to start.

use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sapix_core::{AgentId, Collection, Hash};

use super::error::{IoContext, StrandError};
use super::frame::{self, FrameBody, FrameError, HEADER_LEN};
use super::fsio::read_full;
use crate::disk::{read_exact_at, Disk, DiskFile, OpenHow};

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".log";

/// The file name of the segment whose first frame has `first_offset`.
pub(crate) fn file_name(first_offset: u64) -> String {
    format!("{PREFIX}{first_offset:020}{SUFFIX}")
}

/// The first offset named by a segment file name, or `None` for any other file.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n >= 1)
}

/// A segment file on disk.
#[derive(Debug, Clone)]
pub(crate) struct SegmentInfo {
    /// Offset of its first frame.
    pub(crate) first_offset: u64,
    /// Its path.
    pub(crate) path: PathBuf,
}

/// The segments in `dir`, in offset order. Other files (temp files, stray names) are ignored.
pub(crate) fn list(disk: &dyn Disk, dir: &Path) -> Result<Vec<SegmentInfo>, StrandError> {
    let mut out = Vec::new();
    for name in disk.list(dir).ctx("list", dir)? {
        if let Some(first_offset) = name.to_str().and_then(parse_file_name) {
            out.push(SegmentInfo {
                first_offset,
                path: dir.join(&name),
            });
        }
    }
    out.sort_by_key(|s| s.first_offset);
    Ok(out)
}

/// A read-only handle on a segment, shared by concurrent readers (positioned reads need no
/// seek, so no lock).
#[derive(Debug)]
pub(crate) struct SegmentFile {
    /// Its path, for error messages.
    pub(crate) path: PathBuf,
    file: Box<dyn DiskFile>,
}

impl SegmentFile {
    /// Opens `path` for reading.
    pub(crate) fn open(disk: &dyn Disk, path: &Path) -> Result<Self, StrandError> {
        Ok(SegmentFile {
            path: path.to_path_buf(),
            file: disk.open(path, OpenHow::Read).ctx("open", path)?,
        })
    }

    /// The file's size in bytes now.
    pub(crate) fn size(&self) -> Result<u64, StrandError> {
        self.file.size().ctx("stat", &self.path)
    }

    /// Reads and decodes the frame at `pos` whose body is `len` bytes.
    pub(crate) fn read_frame(&self, pos: u64, len: u32) -> Result<FrameBody, StrandError> {
        let mut buf = vec![0u8; HEADER_LEN + len as usize];
        read_exact_at(&*self.file, &mut buf, pos).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                StrandError::corrupt(&self.path, pos, "file ends inside an indexed frame")
            }
            _ => StrandError::io("read", &self.path, e),
        })?;
        let (body, used) = frame::decode(&buf)
            .map_err(|e| StrandError::corrupt(&self.path, pos, e.to_string()))?;
        if used != buf.len() {
            return Err(StrandError::corrupt(
                &self.path,
                pos,
                format!("frame is {used} bytes, the index says {}", buf.len()),
            ));
        }
        Ok(body)
    }
}

/// What a scan learned about one valid frame.
#[derive(Debug, Clone)]
pub(crate) struct ScannedFrame {
    /// Position of its header in the file.
    pub(crate) pos: u64,
    /// Body length.
    pub(crate) len: u32,
    /// The block's hash.
    pub(crate) hash: Hash,
    /// The block's author.
    pub(crate) author: AgentId,
    /// The block's seq.
    pub(crate) seq: u64,
    /// The record's collection.
    pub(crate) collection: Collection,
}

/// One step of a scan.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// A valid frame.
    Frame(ScannedFrame),
    /// Clean end of file.
    End,
    /// The bytes at `pos` are not a valid frame.
    Bad {
        /// Where the bad frame starts.
        pos: u64,
        /// What is wrong with it.
        err: FrameError,
    },
}

/// Reads a segment's frames in order from a starting position.
pub(crate) struct Scanner {
    path: PathBuf,
    reader: BufReader<Box<dyn DiskFile>>,
    pos: u64,
    done: bool,
}

impl Scanner {
    /// Starts scanning `path` at byte `pos` (a frame boundary).
    pub(crate) fn new(disk: &dyn Disk, path: &Path, pos: u64) -> Result<Self, StrandError> {
        let mut file = disk.open(path, OpenHow::Read).ctx("open", path)?;
        file.seek(SeekFrom::Start(pos)).ctx("seek", path)?;
        Ok(Scanner {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            pos,
            done: false,
        })
    }

    /// The next frame, the clean end, or the first bad frame (after which it reports `End`).
    pub(crate) fn next_frame(&mut self) -> Result<Scanned, StrandError> {
        if self.done {
            return Ok(Scanned::End);
        }
        let pos = self.pos;
        let mut header = [0u8; HEADER_LEN];
        let have = read_full(&mut self.reader, &mut header).ctx("read", &self.path)?;
        if have == 0 {
            self.done = true;
            return Ok(Scanned::End);
        }
        match self.read_body(&header[..have]) {
            Ok((len, body)) => {
                let block = body.block();
                self.pos += (HEADER_LEN + len) as u64;
                Ok(Scanned::Frame(ScannedFrame {
                    pos,
                    len: len as u32,
                    hash: block.hash,
                    author: block.body.author.clone(),
                    seq: block.body.seq,
                    collection: block.body.collection.clone(),
                }))
            }
            Err(Ok(err)) => {
                self.done = true;
                Ok(Scanned::Bad { pos, err })
            }
            Err(Err(io)) => Err(io),
        }
    }

    /// Reads and decodes the body after `header`. The nested error separates bad bytes (the
    /// caller's judgement) from I/O failures (always fatal).
    fn read_body(
        &mut self,
        header: &[u8],
    ) -> Result<(usize, FrameBody), Result<FrameError, StrandError>> {
        let (len, crc) = frame::parse_header(header).map_err(Ok)?;
        let mut body = vec![0u8; len];
        let have = read_full(&mut self.reader, &mut body)
            .ctx("read", &self.path)
            .map_err(Err)?;
        if have < len {
            return Err(Ok(FrameError::ShortBody { have, want: len }));
        }
        frame::check_crc(&body, crc).map_err(Ok)?;
        let decoded = frame::decode_body(&body).map_err(Ok)?;
        Ok((len, decoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strays_are_ignored() {
        assert_eq!(file_name(1), "segment-00000000000000000001.log");
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for stray in [
            "segment-00000000000000000000.log",
            "segment-1.log",
            "segment-0000000000000000000a.log",
            "segment-00000000000000000001.log.tmp",
            "strand-index.v2",
            "strand-index.v1",
        ] {
            assert_eq!(parse_file_name(stray), None, "{stray}");
        }
    }
}
