//! Writes the checked-in seed corpora, `fuzz/corpus/<target>/`, from the real encoders: blocks
//! sealed with the fixture key, ingest bodies and export pages as the server writes them,
//! state files as the runtime writes them, segment files from a real strand. Run from `fuzz/`:
//! `cargo run --example seed_corpus`. Output is deterministic, so a rerun changes nothing
//! unless an encoder did.

use std::fs;
use std::path::{Path, PathBuf};

use sapix_core::block::MAX_JSON_DEPTH;
use sapix_core::node::ClusterState;
use sapix_core::repl::peer::PeerInfo;
use sapix_core::wire::{ExportPage, WireBlock};
use sapix_core::{Block, Consistency, Role};
use sapix_fuzz::{agent, chain, ingest_batch, ingest_single, small_payload, MASTER_SEED};
use sapix_runtime::codios::AuthorizeAnswer;
use sapix_runtime::strand::{Strand, StrandOptions};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn with_kind(kind: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(bytes);
    out
}

/// The segment file a real strand writes for `blocks` (payloads over 64 bytes go to blobs,
/// so both frame kinds appear), and the index checkpoint it leaves on close.
fn strand_files(blocks: &[Block]) -> (Vec<u8>, Vec<u8>) {
    let root = tempfile::tempdir().unwrap();
    let mut opts = StrandOptions::new(
        root.path().join("strand"),
        root.path().join("graph"),
        root.path().join("blobs"),
    );
    opts.blob_threshold = 64;
    let (strand, _) = Strand::open(opts.clone()).unwrap();
    strand.append_blocking(blocks.to_vec()).unwrap();
    strand.close().unwrap();
    let segment = fs::read(opts.strand_dir.join(format!("segment-{:020}.log", 1))).unwrap();
    let checkpoint = fs::read(opts.graph_dir.join("strand-index.v2")).unwrap();
    (segment, checkpoint)
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let alpha = chain("alpha", 3, small_payload);
    let beta = chain("beta", 2, |seq| {
        format!(r#"{{ "n": {seq},  "text": "\u00e9\n" }}"#)
    });
    let long = chain("alpha", 1, |_| {
        format!(r#"{{"blob":"{}"}}"#, "x".repeat(100))
    });

    let deepest = chain("gamma", 1, |_| {
        format!(
            "{}1{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        )
    });

    let dir = root.join("block_decode");
    write(&dir, "deepest-payload", &deepest[0].encode());
    write(&dir, "alpha-1", &alpha[0].encode());
    write(&dir, "alpha-3", &alpha[2].encode());
    write(&dir, "beta-1-escapes", &beta[0].encode());
    write(&dir, "long-payload", &long[0].encode());

    let dir = root.join("ingest_body");
    write(&dir, "single", &ingest_single(&alpha[0]));
    write(&dir, "batch-alpha", &ingest_batch(&alpha));
    let mixed: Vec<Block> = vec![alpha[0].clone(), beta[0].clone(), beta[1].clone()];
    write(&dir, "batch-mixed", &ingest_batch(&mixed));

    let dir = root.join("export_page");
    let page = |blocks: &[Block], first: u64, tip: u64| {
        let wires: Vec<WireBlock> = blocks
            .iter()
            .zip(first..)
            .map(|(b, o)| WireBlock::from_block(b, Some(o)))
            .collect();
        let next = if blocks.is_empty() {
            first - 1
        } else {
            first - 1 + blocks.len() as u64
        };
        serde_json::to_vec(&ExportPage {
            blocks: wires,
            next,
            tip,
        })
        .unwrap()
    };
    write(&dir, "page-3", &page(&alpha, 1, 5));
    write(&dir, "page-mixed", &page(&mixed, 4, 6));
    write(&dir, "page-empty", &page(&[], 8, 7));

    let dir = root.join("state_files");
    let cursors = serde_json::json!({ "alpha": 12, "beta": 0 });
    write(
        &dir,
        "cursors",
        &with_kind(0, &serde_json::to_vec_pretty(&cursors).unwrap()),
    );
    let cluster = ClusterState {
        role: Role::Replica,
        consistency: Consistency::Ap,
        peers: vec![PeerInfo::new(
            agent("alpha"),
            "http://127.0.0.1:7475",
            Role::Primary,
            1_715_000_000_000,
        )],
        me: None,
    };
    write(
        &dir,
        "cluster",
        &with_kind(1, &serde_json::to_vec_pretty(&cluster).unwrap()),
    );
    let (segment, checkpoint) = strand_files(&[alpha.clone(), long.clone()].concat()[..3]);
    // Kind 2 appends the checksum itself, so the seed is the checkpoint without it.
    write(
        &dir,
        "checkpoint",
        &with_kind(2, &checkpoint[..checkpoint.len() - 32]),
    );
    write(&dir, "checkpoint-raw", &with_kind(3, &checkpoint));
    let seed_hex: String = MASTER_SEED.iter().map(|b| format!("{b:02x}")).collect();
    write(
        &dir,
        "master-seed",
        &with_kind(4, format!("{seed_hex}\n").as_bytes()),
    );

    let dir = root.join("codios_answer");
    for (name, decision, reason) in [
        ("permit", "permit", None),
        ("deny", "deny", Some("not in policy")),
        ("unknown", "maybe", None),
    ] {
        let answer = AuthorizeAnswer {
            decision: decision.into(),
            reason: reason.map(str::to_string),
        };
        write(&dir, name, &serde_json::to_vec(&answer).unwrap());
    }

    let dir = root.join("strand_recovery");
    let (with_blob, _) = strand_files(&[alpha[0].clone(), long[0].clone()]);
    write(&dir, "one-segment", &with_kind(0, &segment));
    write(&dir, "blob-frame", &with_kind(0, &with_blob));
    write(
        &dir,
        "torn-tail",
        &with_kind(0, &segment[..segment.len() - 7]),
    );
    // Two segments split after the first frame: offsets 1 and 2.. .
    let first = 8 + 1 + alpha[0].encoded_len();
    let mut split = vec![1u8];
    split.extend_from_slice(&(first as u16).to_le_bytes());
    split.push(1);
    split.extend_from_slice(&segment);
    write(&dir, "two-segments", &split);

    // The structure-aware target reads its case from unstructured bytes; these spread over
    // the choices.
    let dir = root.join("block_structured");
    write(&dir, "zeros", &[0u8; 64]);
    write(&dir, "ramp", &(0u8..=255).collect::<Vec<u8>>());
    write(&dir, "ones", &[0xffu8; 96]);
}
