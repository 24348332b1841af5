//! CP: a write is acknowledged only when it is durable here and every peer has durably
//! ingested it; a peer that fails while the write is in flight turns the answer into
//! `Indeterminate` (durable here, will replicate) (DESIGN §4, §6.3).

mod common;

use common::{id, t, World};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

fn three_nodes() -> World {
    let mut w = World::cluster(&["a", "b", "c"], Consistency::Cp, BackoffPolicy::default());
    w.start_quietly();
    w.run_until(t(1_000));
    w
}

fn holds(w: &World, node: &str, seq: u64) -> bool {
    w.host(node).block(&id("a"), seq).is_some()
}

#[test]
fn cp_write_answered_only_after_every_peer_durably_holds_it() {
    let mut w = three_nodes();
    w.host_mut("a").hold_appends = true;
    w.host_mut("c").hold_appends = true;

    let req = w.write("a", r#"{"n":1}"#);
    w.note("a's own append is not durable yet: nothing is pushed");
    assert_eq!(w.pushes.len(), 0);
    w.complete_appends("a", 1);
    w.note("durable at a; b acked; c's ingest is not durable yet");
    assert_eq!(w.answer(req), None, "c does not hold it yet");
    assert!(holds(&w, "b", 1) && !holds(&w, "c", 1));

    w.advance(300);
    w.complete_appends("c", 1);
    match w.answer(req) {
        Some(Response::Written(r)) => assert_eq!((r.seq, r.offset), (1, 1)),
        other => panic!("{other:?}"),
    }
    // §6.3: at the moment of the answer, every peer holds the block durably.
    assert!(holds(&w, "b", 1) && holds(&w, "c", 1));
    insta::assert_snapshot!(w.trace);
}

#[test]
fn peer_failing_mid_write_makes_the_answer_indeterminate() {
    let mut w = three_nodes();
    w.host_mut("c").hold_appends = true;

    let req = w.write("a", r#"{"n":1}"#);
    assert_eq!(w.answer(req), None);
    w.advance(100);
    w.cut("a", "c");
    match w.answer(req) {
        Some(Response::Indeterminate { receipt, peer }) => {
            assert_eq!((receipt.seq, peer), (1, &id("c")));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        holds(&w, "a", 1) && holds(&w, "b", 1),
        "durable here and on b"
    );

    w.note("c's fsync finishes after all; c is back and a learns it holds a/1");
    w.host_mut("c").hold_appends = false;
    w.complete_appends("c", 1);
    w.heal("a", "c");
    w.advance(2_000);
    assert!(holds(&w, "c", 1));
    let st = w.status("a");
    assert!(!st.partitioned);
    assert!(st.nodes[1..].iter().all(|n| n.queue_depth == Some(0)));
    let req = w.write("a", r#"{"n":2}"#);
    assert!(matches!(w.answer(req), Some(Response::Written(_))));
    insta::assert_snapshot!(w.trace);
}

/// A probe answer must not count a block the peer holds only in an append that is not yet
/// durable: here b pulled a/2 from a's export but its fsync has not finished when a's probe
/// asks how much of a's chain b holds. Were that answer to count a/2, a would acknowledge
/// the CP write of a/2 while b could still lose it in a crash (DESIGN §4, §6.3).
#[test]
fn a_probe_answer_counts_only_what_the_peer_holds_durably() {
    let backoff = BackoffPolicy {
        jitter: 0.0,
        ..Default::default()
    };
    let mut w = World::cluster(&["a", "b"], Consistency::Cp, backoff);
    w.start_quietly();
    w.run_until(t(1_000));
    w.note("b's fsyncs stall; a writes a/1 (pushed, unanswered) and a/2 (a's fsync stalls)");
    w.host_mut("b").hold_appends = true;
    w.write("a", r#"{"n":1}"#);
    w.host_mut("a").hold_appends = true;
    let req2 = w.write("a", r#"{"n":2}"#);
    w.cut("a", "b");
    w.complete_appends("b", 1);
    w.run_until(t(4_000));
    w.heal("a", "b");
    w.note("a/2 becomes durable at a while a backs off from b (next retry at 8 s)");
    w.complete_appends("a", 1);
    assert_eq!(w.answer(req2), None);
    w.note("an operator makes b catch up from a: b stores a/2, slowly");
    w.ask("b", |request| sapix_core::node::Input::SyncRequested {
        request,
        peer: id("a"),
    });
    assert_eq!(w.pending_appends("b"), 1);
    w.run_until(t(6_500));
    // §6.3: a CP write is acknowledged only when every peer holds it durably.
    if let Some(Response::Written(_)) = w.answer(req2) {
        assert!(
            holds(&w, "b", 2),
            "a acknowledged a/2 as on every peer, but b has not made it durable:\n{}",
            w.trace
        );
    }
    w.complete_appends("b", 1);
    w.run_until(t(7_000));
    assert!(matches!(w.answer(req2), Some(Response::Written(_))));
    assert!(holds(&w, "b", 2));
    insta::assert_snapshot!(w.trace);
}
