//! Any bytes as strand segment files, opened by the real `Strand::open` from a scratch
//! directory: recovery either keeps a prefix of whole valid frames (cutting only a torn tail of
//! the last segment) or refuses with `Corrupt` and changes nothing; it never panics and never
//! holds more than its documented bound (one read buffer, one maximal frame, and an index
//! linear in the file). A recovered strand answers for every offset it reports and opens again
//! to the same state with nothing more cut.
//!
//! Input: a flags byte; with bit 0 set, two more bytes give where to split the rest into two
//! segments and one byte the second segment's first offset. Everything after is file bytes.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use sapix_core::block::MAX_BLOCK_LEN;
use sapix_core::Block;
use sapix_fuzz::{assert_within, peak_during};
use sapix_runtime::strand::{Strand, StrandError, StrandOptions};

/// recovery.rs and segment.rs: a 1 MiB read buffer, one frame body of at most
/// `1 + MAX_BLOCK_LEN` bytes (its length is checked before the allocation) and the payload
/// copied out of it, plus index entries linear in the file.
fn recovery_bound(len: usize) -> usize {
    (1 << 20) + 2 * (1 + MAX_BLOCK_LEN) + 16 * len + 256 * 1024
}

fn segment_name(first_offset: u64) -> String {
    format!("segment-{first_offset:020}.log")
}

/// Whether `bytes` start with a whole kind-1 frame whose block decodes: read here without the
/// strand's code (u32 length, u32 crc32 of the body, body = kind byte then the block).
fn starts_with_valid_full_frame(bytes: &[u8]) -> bool {
    if bytes.len() < 8 {
        return false;
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    let Some(body) = bytes.get(8..8 + len) else {
        return false;
    };
    len >= 1 && crc32fast::hash(body) == crc && body[0] == 1 && Block::decode(&body[1..]).is_ok()
}

fn scratch() -> tempfile::TempDir {
    // tmpfs when there is one: recovery fsyncs, and the fuzzer opens thousands of strands.
    tempfile::Builder::new()
        .prefix("sapix-fuzz-strand")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a scratch directory")
}

fn options(root: &Path) -> StrandOptions {
    StrandOptions::new(root.join("strand"), root.join("graph"), root.join("blobs"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut files: Vec<(u64, &[u8])> = Vec::new();
    if flags & 1 == 1 && rest.len() >= 3 {
        let at = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let second = u64::from(rest[2]) + 1;
        let bytes = &rest[3..];
        let at = at.min(bytes.len());
        files.push((1, &bytes[..at]));
        files.push((second.max(2), &bytes[at..]));
    } else {
        files.push((1, rest));
    }

    let dir = scratch();
    let opts = options(dir.path());
    fs::create_dir_all(&opts.strand_dir).unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(first, bytes)| {
            let p = opts.strand_dir.join(segment_name(*first));
            fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();

    let (opened, peak) = peak_during(|| Strand::open(opts.clone()));
    assert_within("Strand::open", total, peak, recovery_bound(total));
    let (strand, report) = match opened {
        Ok(ok) => ok,
        Err(e) => {
            assert!(
                matches!(e, StrandError::Corrupt { .. }),
                "refused with {e:?}"
            );
            for (p, (_, bytes)) in paths.iter().zip(&files) {
                assert_eq!(&fs::read(p).unwrap(), bytes, "a refused open changed {p:?}");
            }
            return;
        }
    };

    // Only the last segment may lose bytes, only from its end, and the cut must be at a byte
    // where no valid frame starts.
    let last = paths.len() - 1;
    for (i, (p, (_, bytes))) in paths.iter().zip(&files).enumerate() {
        let now = fs::read(p).unwrap();
        if i < last {
            assert_eq!(&now, bytes, "an earlier segment changed");
            continue;
        }
        assert!(bytes.starts_with(&now), "recovery changed kept bytes");
        match &report.truncated {
            Some(t) => {
                assert_eq!(t.pos as usize, now.len());
                assert_eq!(t.dropped_bytes as usize, bytes.len() - now.len());
                assert!(
                    !starts_with_valid_full_frame(&bytes[now.len()..]),
                    "recovery cut a valid frame at byte {}",
                    now.len()
                );
            }
            None => assert_eq!(now.len(), bytes.len(), "bytes lost without a report"),
        }
    }

    // Every reported offset answers: a block whose encoding is in the files, or a missing
    // blob for a payload stored apart (the fuzzer writes no blob files).
    let tip = strand.tip();
    assert_eq!(report.tip, tip);
    let mut held = Vec::new();
    for offset in 1..=tip {
        match strand.get(offset) {
            Ok(Some(b)) => {
                let enc = b.encode();
                assert!(
                    files
                        .iter()
                        .any(|(_, f)| f.windows(enc.len()).any(|w| w == enc)),
                    "offset {offset} answers a block that is not in the files"
                );
                held.push(Some(b));
            }
            Err(StrandError::BlobMissing { .. }) => held.push(None),
            other => panic!("offset {offset} of {tip}: {other:?}"),
        }
    }
    assert!(matches!(strand.get(tip + 1), Ok(None)));
    strand.close().expect("a recovered strand closes");

    // Recovery is idempotent: the second open finds the same strand and cuts nothing.
    let (again, report2) = Strand::open(opts).expect("a recovered strand opens again");
    assert_eq!(report2.tip, tip);
    assert_eq!(report2.truncated, None);
    for (i, b) in held.iter().enumerate() {
        if let Some(b) = b {
            assert_eq!(again.get(i as u64 + 1).unwrap().as_ref(), Some(b));
        }
    }
    again.close().expect("closes again");
});
