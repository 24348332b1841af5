//! The index checkpoint saves the scan but never changes an answer: valid, damaged, stale or
//! foreign, reopening gives identical results.

mod strand_common;

use std::fs;
use std::path::Path;

use sapix_runtime::strand::{parse_checkpoint, CheckpointStatus, Strand, StrandOptions};
use strand_common::{open, opts, segments, snapshot, Chain, Snapshot};

fn checkpoint_path(o: &StrandOptions) -> std::path::PathBuf {
    o.graph_dir.join("strand-index.v2")
}

/// A strand of 3 authors × 10 blocks in small segments, closed; returns its options and
/// snapshot.
fn build(root: &Path) -> (StrandOptions, Snapshot) {
    let mut o = opts(root);
    o.segment_bytes = 2048;
    let s = open(&o);
    let mut chains = [Chain::new("a"), Chain::new("b"), Chain::new("c")];
    for _ in 0..10 {
        for c in &mut chains {
            s.append_blocking(vec![c.next_small()]).unwrap();
        }
    }
    assert!(segments(&o.strand_dir).len() > 2);
    let snap = snapshot(&s);
    s.close().unwrap();
    (o, snap)
}

fn reopen(o: &StrandOptions) -> (Snapshot, CheckpointStatus, u64) {
    let (s, report) = Strand::open(o.clone()).unwrap();
    (snapshot(&s), report.checkpoint, report.scanned_frames)
}

#[test]
fn valid_checkpoint_skips_the_scan() {
    let root = tempfile::tempdir().unwrap();
    let (o, snap) = build(root.path());
    let (again, status, scanned) = reopen(&o);
    assert_eq!(again, snap);
    assert_eq!(
        (status, scanned),
        (CheckpointStatus::Loaded { covered: 30 }, 0)
    );
}

#[test]
fn damaged_checkpoints_are_rebuilt_with_identical_results() {
    let root = tempfile::tempdir().unwrap();
    let (o, snap) = build(root.path());
    let good = fs::read(checkpoint_path(&o)).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x08;
    let damaged: Vec<Vec<u8>> = vec![
        flipped,
        good[..good.len() - 1].to_vec(),
        good[..good.len() / 3].to_vec(),
        Vec::new(),
        b"garbage".repeat(100),
    ];
    for bytes in damaged {
        fs::write(checkpoint_path(&o), &bytes).unwrap();
        let (again, status, scanned) = reopen(&o);
        assert!(
            matches!(status, CheckpointStatus::Rejected { .. }),
            "{status:?}"
        );
        assert_eq!(scanned, 30);
        assert_eq!(again, snap);
    }
}

#[test]
fn checkpoint_bytes_parse_on_their_own_as_at_open() {
    let root = tempfile::tempdir().unwrap();
    let (o, _) = build(root.path());
    let good = fs::read(checkpoint_path(&o)).unwrap();
    assert_eq!(parse_checkpoint(&good), Ok(30));
    assert!(parse_checkpoint(&good[..good.len() - 1]).is_err());
    assert!(parse_checkpoint(b"").is_err());
}

#[test]
fn stale_checkpoint_scans_only_the_tail() {
    let root = tempfile::tempdir().unwrap();
    let (o, _) = build(root.path());
    let s = open(&o);
    let mut late = Chain::new("late");
    for _ in 0..5 {
        s.append_blocking(vec![late.next_small()]).unwrap();
    }
    s.checkpoint().unwrap();
    let stale = fs::read(checkpoint_path(&o)).unwrap();
    for _ in 0..5 {
        s.append_blocking(vec![late.next_small()]).unwrap();
    }
    let snap = snapshot(&s);
    drop(s);
    fs::write(checkpoint_path(&o), &stale).unwrap();
    let (again, status, scanned) = reopen(&o);
    assert_eq!(
        (status, scanned),
        (CheckpointStatus::Loaded { covered: 35 }, 5)
    );
    assert_eq!(again, snap);
}

#[test]
fn foreign_or_too_new_checkpoints_are_rejected() {
    let root = tempfile::tempdir().unwrap();
    let (o, snap) = build(root.path());

    // A well-formed checkpoint of a different strand with the same shape.
    let other_root = tempfile::tempdir().unwrap();
    let mut other = opts(other_root.path());
    other.segment_bytes = o.segment_bytes;
    let s = open(&other);
    let mut chains = [Chain::new("a"), Chain::new("b"), Chain::new("x")];
    for _ in 0..10 {
        for c in &mut chains {
            s.append_blocking(vec![c.next_small()]).unwrap();
        }
    }
    s.close().unwrap();
    fs::copy(checkpoint_path(&other), checkpoint_path(&o)).unwrap();
    let (again, status, _) = reopen(&o);
    assert!(
        matches!(status, CheckpointStatus::Rejected { .. }),
        "{status:?}"
    );
    assert_eq!(again, snap);

    // A checkpoint covering more than the strand holds after a torn tail.
    let covering_all = fs::read(checkpoint_path(&o)).unwrap();
    let last = segments(&o.strand_dir).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    fs::write(checkpoint_path(&o), &covering_all).unwrap();
    let (s, report) = Strand::open(o.clone()).unwrap();
    assert!(matches!(
        report.checkpoint,
        CheckpointStatus::Rejected { .. }
    ));
    assert_eq!(report.tip, 29);
    assert!(report.truncated.is_some());
    assert_eq!(snapshot(&s).blocks, snap.blocks[..29].to_vec());
}
