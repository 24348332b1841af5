//! Crash recovery: a torn or corrupt tail of the last segment is cut at every possible byte,
//! keeping exactly the complete frames; damage anywhere else refuses to open.

mod strand_common;

use std::fs;
use std::path::Path;

use sapix_core::Block;
use sapix_runtime::strand::{CheckpointStatus, Strand, StrandError, StrandOptions};
use strand_common::{open, opts, segments, Chain};

/// A closed strand with `n` blocks, one append each, plus the last segment's length before
/// the last block and a checkpoint taken at that point.
struct Written {
    blocks: Vec<Block>,
    last_segment: Vec<u8>,
    earlier_segments: Vec<(String, Vec<u8>)>,
    last_name: String,
    len_before_last: u64,
    checkpoint_before_last: Vec<u8>,
}

fn write(root: &Path, n: usize, segment_bytes: u64) -> Written {
    let mut o = opts(root);
    o.segment_bytes = segment_bytes;
    let s = open(&o);
    let mut c = Chain::new("torn");
    let blocks: Vec<Block> = (0..n).map(|_| c.next_small()).collect();
    for b in &blocks[..n - 1] {
        s.append_blocking(vec![b.clone()]).unwrap();
    }
    s.checkpoint().unwrap();
    let checkpoint_before_last = fs::read(o.graph_dir.join("strand-index.v2")).unwrap();
    s.append_blocking(vec![blocks[n - 1].clone()]).unwrap();
    s.close().unwrap();
    let segs = segments(&o.strand_dir);
    let last = segs.last().unwrap();
    let last_segment = fs::read(last).unwrap();
    let len_before_last = last_segment.len() as u64 - frame_len(&blocks[n - 1]);
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    Written {
        earlier_segments: segs[..segs.len() - 1]
            .iter()
            .map(|p| (name(p), fs::read(p).unwrap()))
            .collect(),
        last_name: name(last),
        blocks,
        last_segment,
        len_before_last,
        checkpoint_before_last,
    }
}

/// Header, kind byte, block.
fn frame_len(b: &Block) -> u64 {
    8 + 1 + b.encoded_len() as u64
}

fn lay_out(w: &Written, root: &Path, last_bytes: &[u8], with_checkpoint: bool) -> StrandOptions {
    let o = opts(root);
    fs::create_dir_all(&o.strand_dir).unwrap();
    for (name, bytes) in &w.earlier_segments {
        fs::write(o.strand_dir.join(name), bytes).unwrap();
    }
    fs::write(o.strand_dir.join(&w.last_name), last_bytes).unwrap();
    if with_checkpoint {
        fs::create_dir_all(&o.graph_dir).unwrap();
        fs::write(
            o.graph_dir.join("strand-index.v2"),
            &w.checkpoint_before_last,
        )
        .unwrap();
    }
    o
}

fn torn_tail_at_every_byte(segment_bytes: u64) {
    let src = tempfile::tempdir().unwrap();
    let w = write(src.path(), 4, segment_bytes);
    let n = w.blocks.len() as u64;
    let start = w.len_before_last;
    assert_eq!(w.last_segment.len() as u64 - start, frame_len(&w.blocks[3]));
    for cut in start..w.last_segment.len() as u64 {
        let with_checkpoint = cut % 2 == 0;
        let dir = tempfile::tempdir().unwrap();
        let o = lay_out(
            &w,
            dir.path(),
            &w.last_segment[..cut as usize],
            with_checkpoint,
        );
        let (s, report) = Strand::open(o.clone()).unwrap();
        assert_eq!(report.tip, n - 1, "cut {cut}");
        if with_checkpoint {
            assert_eq!(
                report.checkpoint,
                CheckpointStatus::Loaded { covered: n - 1 }
            );
            assert_eq!(report.scanned_frames, 0);
        }
        match &report.truncated {
            None => assert_eq!(cut, start),
            Some(t) => {
                assert_eq!(
                    (t.pos, t.dropped_bytes, t.at_offset),
                    (start, cut - start, n)
                );
                assert!(t.file.ends_with(&w.last_name));
            }
        }
        let last_path = o.strand_dir.join(&w.last_name);
        assert_eq!(fs::metadata(&last_path).unwrap().len(), start, "cut {cut}");
        for (i, b) in w.blocks[..3].iter().enumerate() {
            assert_eq!(s.get(i as u64 + 1).unwrap().as_ref(), Some(b));
        }
        assert_eq!(s.get(n).unwrap(), None);
        assert_eq!(
            s.append_blocking(vec![w.blocks[3].clone()]).unwrap(),
            vec![n]
        );
        drop(s);
        let (s, report) = Strand::open(o).unwrap();
        assert_eq!((report.tip, report.truncated), (n, None));
        assert_eq!(s.get(n).unwrap().as_ref(), Some(&w.blocks[3]));
    }
}

#[test]
fn torn_tail_is_cut_at_every_byte_of_the_last_frame() {
    torn_tail_at_every_byte(1 << 20);
}

#[test]
fn torn_tail_is_cut_at_every_byte_of_a_freshly_rolled_segment() {
    // One frame per segment: the last frame is the whole last segment.
    torn_tail_at_every_byte(1);
}

#[test]
fn bad_crc_in_the_last_frame_is_cut() {
    let src = tempfile::tempdir().unwrap();
    let w = write(src.path(), 4, 1 << 20);
    let mut bytes = w.last_segment.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    let o = lay_out(&w, dir.path(), &bytes, false);
    let (s, report) = Strand::open(o).unwrap();
    let t = report.truncated.unwrap();
    assert!(t.why.contains("crc"), "{}", t.why);
    assert_eq!((report.tip, t.pos, t.at_offset), (3, w.len_before_last, 4));
    assert_eq!(s.tip(), 3);
}

#[test]
fn damage_in_an_earlier_segment_refuses_to_open() {
    let src = tempfile::tempdir().unwrap();
    let w = write(src.path(), 4, 1);
    assert_eq!(w.earlier_segments.len(), 3);
    let (victim, pristine) = &w.earlier_segments[1];

    let mut flipped = pristine.clone();
    flipped[pristine.len() / 2] ^= 0x40;
    let mut short = pristine.clone();
    short.truncate(pristine.len() - 1);
    for damaged in [flipped, short] {
        let dir = tempfile::tempdir().unwrap();
        let o = lay_out(&w, dir.path(), &w.last_segment, false);
        fs::write(o.strand_dir.join(victim), &damaged).unwrap();
        match Strand::open(o.clone()) {
            Err(StrandError::Corrupt { file, pos, .. }) => {
                assert!(file.ends_with(victim), "{}", file.display());
                assert_eq!(pos, 0);
            }
            other => panic!("{other:?}"),
        }
        // Nothing was cut to make it fit.
        assert_eq!(fs::read(o.strand_dir.join(victim)).unwrap(), damaged);
    }

    // A missing middle segment is a gap in the offsets.
    let dir = tempfile::tempdir().unwrap();
    let o = lay_out(&w, dir.path(), &w.last_segment, false);
    fs::remove_file(o.strand_dir.join(victim)).unwrap();
    let err = Strand::open(o).unwrap_err();
    assert!(matches!(err, StrandError::Corrupt { .. }), "{err}");
}

#[test]
fn damage_under_a_checkpoint_is_a_typed_read_error() {
    let src = tempfile::tempdir().unwrap();
    let w = write(src.path(), 4, 1);
    let (victim, pristine) = &w.earlier_segments[1];
    let mut flipped = pristine.clone();
    flipped[pristine.len() / 2] ^= 0x40;
    let dir = tempfile::tempdir().unwrap();
    let o = lay_out(&w, dir.path(), &w.last_segment, true);
    fs::write(o.strand_dir.join(victim), &flipped).unwrap();
    // The checkpoint spares the scan, so the damage surfaces when the block is read.
    let (s, _) = Strand::open(o).unwrap();
    assert!(matches!(s.get(2), Err(StrandError::Corrupt { .. })));
    assert!(matches!(
        s.export(0, 10, 1 << 20),
        Err(StrandError::Corrupt { .. })
    ));
    assert_eq!(s.get(1).unwrap().as_ref(), Some(&w.blocks[0]));
}

#[test]
fn stray_files_in_the_strand_dir_are_ignored() {
    let src = tempfile::tempdir().unwrap();
    let w = write(src.path(), 2, 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let o = lay_out(&w, dir.path(), &w.last_segment, false);
    fs::write(o.strand_dir.join("segment-1.log"), b"junk").unwrap();
    fs::write(o.strand_dir.join("notes.txt"), b"junk").unwrap();
    let (s, report) = Strand::open(o).unwrap();
    assert_eq!((report.tip, report.truncated), (2, None));
    assert_eq!(s.tip(), 2);
}
