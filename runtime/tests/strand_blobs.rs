//! Large payloads go to the content-addressed blob store and come back whole; a missing or
//! damaged blob is a typed error.

mod strand_common;

use std::fs;

use sapix_core::Block;
use sapix_runtime::strand::{Strand, StrandError, DEFAULT_BLOB_THRESHOLD};
use strand_common::{open, opts, segments, snapshot, Chain};

fn big_payload(fill: char) -> String {
    let body: String = std::iter::repeat_n(fill, DEFAULT_BLOB_THRESHOLD * 2).collect();
    format!(r#"{{"big":"{body}"}}"#)
}

fn blob_path(root: &std::path::Path, b: &Block) -> std::path::PathBuf {
    let hex = blake3::hash(&b.body.payload).to_hex().to_string();
    opts(root).blob_dir.join(&hex[..2]).join(&hex[2..])
}

#[test]
fn large_payloads_live_in_blobs_and_read_back_whole() {
    let root = tempfile::tempdir().unwrap();
    let o = opts(root.path());
    let s = open(&o);
    let mut c = Chain::new("blobber");
    let big = c.next(&big_payload('x'));
    let small = c.next_small();
    let same_payload = c.next(&big_payload('x'));
    s.append_blocking(vec![big.clone(), small.clone(), same_payload.clone()])
        .unwrap();

    let path = blob_path(root.path(), &big);
    assert_eq!(fs::read(&path).unwrap(), big.body.payload);
    // The two big frames together are far smaller than one payload.
    let seg_len = fs::metadata(&segments(&o.strand_dir)[0]).unwrap().len();
    assert!(seg_len < 1024, "segment is {seg_len} bytes");
    // One payload, one blob: the second reference does not rewrite it.
    assert_eq!(s.stats().blobs_written, 1);

    assert_eq!(s.get(1).unwrap().as_ref(), Some(&big));
    assert_eq!(s.get(2).unwrap().as_ref(), Some(&small));
    assert_eq!(s.get(3).unwrap().as_ref(), Some(&same_payload));
    assert_eq!(s.get_by_hash(&big.hash).unwrap(), Some((1, big.clone())));
    let before = snapshot(&s);
    drop(s);
    let s = open(&o);
    assert_eq!(snapshot(&s), before);
    s.append_blocking(vec![c.next(&big_payload('x'))]).unwrap();
    assert_eq!(s.stats().blobs_written, 0);
}

#[test]
fn missing_or_damaged_blob_is_a_typed_error() {
    let root = tempfile::tempdir().unwrap();
    let o = opts(root.path());
    let s = open(&o);
    let mut c = Chain::new("blobber");
    let big = c.next(&big_payload('y'));
    let small = c.next_small();
    s.append_blocking(vec![big.clone(), small.clone()]).unwrap();
    drop(s);
    let path = blob_path(root.path(), &big);

    let mut damaged = fs::read(&path).unwrap();
    damaged[10] = b'z';
    fs::write(&path, &damaged).unwrap();
    let s = open(&o);
    assert!(matches!(s.get(1), Err(StrandError::BlobCorrupt { .. })));
    drop(s);

    fs::remove_file(&path).unwrap();
    // Opening does not need the blob; reading it does.
    let (s, report) = Strand::open(o.clone()).unwrap();
    assert_eq!(report.tip, 2);
    match s.get(1) {
        Err(StrandError::BlobMissing { hash, path: p }) => {
            assert_eq!(p, path);
            assert_eq!(hash, blake3::hash(&big.body.payload).to_hex().to_string());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.get_by_hash(&big.hash),
        Err(StrandError::BlobMissing { .. })
    ));
    assert!(matches!(
        s.export(0, 10, 1 << 20),
        Err(StrandError::BlobMissing { .. })
    ));
    assert_eq!(s.get(2).unwrap().as_ref(), Some(&small));

    // Appending the payload again restores the blob for the old frame too.
    s.append_blocking(vec![c.next(&big_payload('y'))]).unwrap();
    assert_eq!(s.get(1).unwrap().as_ref(), Some(&big));
}
