//! Tampering with a node's strand on disk (issue 17, item 6): a flipped byte in the last
//! frame, a block dropped at the tail, a forked chain and a block forged with the master seed.
//! For each, against a real agent killed and started again on the tampered disk, both the
//! node's own start-up (its strand against the last head it signed: 503 `own_chain_unsafe`,
//! an alert in its log) and the auditor (`sapixctl verify` with the state it kept from before,
//! and a receipt's hash: exit 1) catch it. And over the mesh: a block of the node's own chain
//! forged with the seed is refused.

use sapix_core::block::{Block, BlockBody};
use sapix_core::{AgentId, Collection, KeySchedule, UnixMillis};
use sapix_tests::audit::{rewrite_strand, segments, strand_blocks, text, verify};
use sapix_tests::{wait_until, Agent, Api, Auth, Written};
use serde_json::json;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(30);

/// Blocks `from..=to` of `author` chained on `prev`, validly signed with the seed's key.
fn forged(agent: &Agent, prev: &Block, to: u64) -> Vec<Block> {
    let author = AgentId::new("primary").expect("id");
    let key = KeySchedule::new(agent.master_seed()).signing_key(&author);
    let mut prev_hash = prev.hash;
    (prev.seq() + 1..=to)
        .map(|seq| {
            let b = BlockBody {
                author: author.clone(),
                seq,
                prev: prev_hash,
                ts: UnixMillis(1_700_000_000_000 + seq),
                collection: Collection::new("orders").expect("collection"),
                payload: json!({ "forged": seq }).to_string().into_bytes(),
            }
            .seal(&key);
            prev_hash = b.hash;
            b
        })
        .collect()
}

/// A node that wrote five records, audited once (the auditor's state pins its head at seq 5),
/// then killed; `tamper` changes its disk; it starts again. Returns it and the receipts; the
/// auditor's state file is `scratch/audit.json`.
fn tampered(scratch: &std::path::Path, tamper: impl FnOnce(&Agent)) -> (Agent, Vec<Written>) {
    let mut a = Agent::builder().env("SAPIX_AGENT_ID", "primary").start();
    let written: Vec<Written> = (0..5)
        .map(|n| a.api().write("orders", &json!({ "n": n })))
        .collect();
    let state = scratch.join("audit.json");
    let out = verify(&a, &state, &[&written[4].hash], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("pinned on first use"), "{}", text(&out));
    let head_file = a.data_dir().join("strand").join("head.json");
    wait_until(WITHIN, "head.json at seq 5", || {
        std::fs::read_to_string(&head_file).is_ok_and(|t| t.contains("\"seq\": 5"))
    });
    a.kill9();
    tamper(&a);
    a.restart();
    (a, written)
}

/// The node's start-up caught it: its own writes are refused and its log says why.
fn start_up_catches(a: &Agent, why: &str) {
    a.api()
        .post_with(
            "/v1/records",
            Auth::Root,
            Api::record_body("orders", &json!("after")),
        )
        .assert_error(503, "own_chain_unsafe");
    wait_until(WITHIN, "the alert in the log", || {
        a.stderr().contains("own_chain_unsafe")
    });
    assert!(a.stderr().contains(why), "{}", a.stderr_tail());
}

/// The auditor caught it: exit 1, and the state it kept is unchanged.
fn auditor_catches(a: &Agent, scratch: &std::path::Path, receipt: &Written, says: &str) {
    let state = scratch.join("audit.json");
    let before = std::fs::read_to_string(&state).expect("state");
    let out = verify(a, &state, &[&receipt.hash], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(says), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        before,
        "state kept"
    );
}

#[test]
fn a_flipped_byte_in_the_last_frame() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let (a, written) = tampered(scratch.path(), |a| {
        let seg = segments(a.data_dir()).pop().expect("a segment");
        let mut bytes = std::fs::read(&seg).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x40;
        std::fs::write(&seg, bytes).unwrap();
        let _ = std::fs::remove_dir_all(a.data_dir().join("graph"));
    });
    start_up_catches(&a, "holds seq 4 but it signed a head at seq 5");
    auditor_catches(&a, scratch.path(), &written[4], "no such record");
}

#[test]
fn a_block_dropped_at_the_tail() {
    let scratch = tempfile::tempdir().expect("tempdir");
    // Cut at a frame boundary: no checksum sees anything.
    let (a, written) = tampered(scratch.path(), |a| rewrite_strand(a.data_dir(), 4, vec![]));
    start_up_catches(&a, "holds seq 4 but it signed a head at seq 5");
    // A receipt still held cannot be proved in the head at 5 either.
    auditor_catches(&a, scratch.path(), &written[0], "beyond_head");
}

#[test]
fn a_forked_chain() {
    let scratch = tempfile::tempdir().expect("tempdir");
    // From seq 4 on, another and longer chain.
    let (a, written) = tampered(scratch.path(), |a| {
        let third = strand_blocks(a.data_dir()).swap_remove(2);
        rewrite_strand(a.data_dir(), 3, forged(a, &third, 7));
    });
    start_up_catches(&a, "at seq 5 is not the chain it signed a head over");
    auditor_catches(&a, scratch.path(), &written[0], "chain_diverged");
}

#[test]
fn a_block_forged_with_the_seed() {
    let scratch = tempfile::tempdir().expect("tempdir");
    // Block 3 replaced, and 4 and 5 signed again over it: five valid blocks, valid links.
    let (a, written) = tampered(scratch.path(), |a| {
        let second = strand_blocks(a.data_dir()).swap_remove(1);
        rewrite_strand(a.data_dir(), 2, forged(a, &second, 5));
    });
    start_up_catches(&a, "at seq 5 is not the chain it signed a head over");
    auditor_catches(&a, scratch.path(), &written[2], "no such record");
    auditor_catches(&a, scratch.path(), &written[0], "chain_diverged");
}

/// Not on disk but over the mesh: a block of the node's own chain, one past its tip and
/// validly signed with the master seed's key for it, pushed by someone else. The node refuses
/// it (409), alerts `forged_own_block`, and its own next write takes that seq.
#[test]
fn a_block_of_its_own_chain_forged_with_the_seed_is_refused_over_the_mesh() {
    let a = Agent::builder().env("SAPIX_AGENT_ID", "primary").start();
    let written: Vec<Written> = (0..2)
        .map(|n| a.api().write("orders", &json!({ "n": n })))
        .collect();
    let held = a.api().export_all().pop().expect("a block").block;
    assert_eq!(held.hash.to_string(), written[1].hash);
    let forged = forged(&a, &held, 3).pop().expect("a/3");
    let body = String::from_utf8(sapix_core::wire::ingest_json(&[forged], None)).unwrap();
    let reply = a.api().post_with("/v1/mesh/ingest", Auth::Root, body);
    reply.assert_error(409, "conflict");
    wait_until(WITHIN, "the alert in the log", || {
        a.stderr().contains("forged_own_block")
    });
    let own = a.api().write("orders", &json!({ "n": 2 }));
    assert_eq!(own.seq, 3);
    assert_eq!(a.api().read(&own.hash)["data"], json!({ "n": 2 }));
}
