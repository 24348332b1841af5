//! A failed write poisons the strand for good (no retried fsync); reopening recovers. One
//! strand directory cannot be opened twice at once.

mod strand_common;

use std::fs;

use sapix_runtime::strand::{Strand, StrandError};
use strand_common::{open, opts, Chain};

#[test]
fn a_failed_write_refuses_every_later_append_until_reopen() {
    let root = tempfile::tempdir().unwrap();
    let o = opts(root.path());
    let s = open(&o);
    let mut c = Chain::new("unlucky");
    let first = c.next_small();
    s.append_blocking(vec![first.clone()]).unwrap();

    // Make the next blob write fail: the blob directory is now a plain file.
    fs::remove_dir_all(&o.blob_dir).unwrap();
    fs::write(&o.blob_dir, b"in the way").unwrap();
    let big = c.next(&format!(r#""{}""#, "b".repeat(64 << 10)));
    match s.append_blocking(vec![big.clone()]) {
        Err(StrandError::Io { path, .. }) => assert!(path.starts_with(&o.blob_dir)),
        other => panic!("{other:?}"),
    }
    // Poisoned: even an append that needs no blob is refused, and nothing new is visible.
    let small = c.next_small();
    assert!(matches!(
        s.append_blocking(vec![small]),
        Err(StrandError::Poisoned)
    ));
    assert_eq!(s.tip(), 1);
    assert_eq!(s.get(1).unwrap().as_ref(), Some(&first));
    drop(s);

    fs::remove_file(&o.blob_dir).unwrap();
    let (s, report) = Strand::open(o.clone()).unwrap();
    assert_eq!(report.tip, 1);
    assert_eq!(s.append_blocking(vec![big.clone()]).unwrap(), vec![2]);
    assert_eq!(s.get(2).unwrap().as_ref(), Some(&big));
}

#[test]
fn a_strand_directory_is_opened_only_once_at_a_time() {
    let root = tempfile::tempdir().unwrap();
    let o = opts(root.path());
    let s = open(&o);
    match Strand::open(o.clone()) {
        Err(StrandError::Locked { dir }) => assert_eq!(dir, o.strand_dir),
        other => panic!("{other:?}"),
    }
    drop(s);
    open(&o);
}
