//! Read-your-writes across nodes (issue 16): a read naming `author:seq` is answered once the
//! node durably holds that chain through that seq, waits (pulling from the author) while it
//! does not, and is refused with what the node holds when its wait ends first. The wait is a
//! named timer of the node's own: nothing else has to wake it.

mod common;

use std::time::Duration;

use common::{id, World};
use sapix_core::node::{ChainPosition, Input, RequestId, Timer, MAX_POSITION_WAIT};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

fn at(author: &str, seq: u64) -> ChainPosition {
    ChainPosition {
        author: id(author),
        seq,
    }
}

/// A read on `name` naming `positions`, willing to wait `wait_ms`.
fn read(w: &mut World, name: &str, positions: Vec<ChainPosition>, wait_ms: u64) -> RequestId {
    w.ask(name, |request| Input::PositionsWanted {
        request,
        positions,
        wait: Duration::from_millis(wait_ms),
    })
}

fn written_seq(w: &World, req: RequestId) -> u64 {
    match w.answer(req) {
        Some(Response::Written(r)) => r.seq,
        other => panic!("the write answered {other:?}"),
    }
}

fn ap_pair() -> World {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    w
}

#[test]
fn a_read_with_its_writes_position_waits_across_a_partition_and_is_answered_after_heal() {
    let mut w = ap_pair();
    let first = w.write("a", r#"{"n":1}"#);
    assert_eq!(written_seq(&w, first), 1);
    w.advance(1_000);
    let replicated = read(&mut w, "b", vec![at("a", 1)], 0);
    assert_eq!(w.answer(replicated), Some(&Response::PositionReached));

    w.cut("a", "b");
    let write = w.write("a", r#"{"n":2}"#);
    let seq = written_seq(&w, write);
    assert_eq!(seq, 2, "AP acknowledges on a alone");

    let req = read(&mut w, "b", vec![at("a", seq)], 8_000);
    assert_eq!(w.answer(req), None, "b does not hold a:2: the read waits");
    assert_eq!(
        w.node("b").next_wake().map(|wk| wk.timer),
        Some(Timer::Drain),
        "the drain tick wakes b first; the read's own timer is behind it"
    );
    assert!(w
        .node("b")
        .deadlines()
        .iter()
        .any(|(_, t)| *t == Timer::PositionWait));
    w.advance(3_000);
    assert_eq!(w.answer(req), None, "still cut off, still waiting");

    w.heal("a", "b");
    w.advance(4_000);
    assert_eq!(
        w.answer(req),
        Some(&Response::PositionReached),
        "answered after heal, within its wait"
    );
    assert!(w
        .node("b")
        .chains()
        .tip(&id("a"))
        .is_some_and(|(s, _)| s >= seq));
    assert!(
        !w.node("b")
            .deadlines()
            .iter()
            .any(|(_, t)| *t == Timer::PositionWait),
        "nothing waits any more"
    );
}

#[test]
fn a_wait_that_ends_first_is_refused_with_what_the_node_holds() {
    let mut w = ap_pair();
    w.write("a", r#"{"n":1}"#);
    w.advance(1_000);
    w.cut("a", "b");
    w.write("a", r#"{"n":2}"#);
    let req = read(&mut w, "b", vec![at("a", 2), at("b", 0)], 500);
    w.advance(499);
    assert_eq!(w.answer(req), None);
    w.advance(1);
    assert_eq!(
        w.answer(req),
        Some(&Response::PositionNotReached {
            holds: vec![at("a", 1), at("b", 0)]
        }),
        "refused at its deadline, by the node's own timer"
    );
    // No wait at all: refused at once.
    let now = read(&mut w, "b", vec![at("a", 2)], 0);
    assert!(matches!(
        w.answer(now),
        Some(Response::PositionNotReached { .. })
    ));
}

#[test]
fn a_position_already_held_is_answered_at_once_and_an_unknown_author_only_by_the_wait() {
    let mut w = ap_pair();
    let write = w.write("a", r#"{"n":1}"#);
    let seq = written_seq(&w, write);
    let own = read(&mut w, "a", vec![at("a", seq)], 10_000);
    assert_eq!(
        w.answer(own),
        Some(&Response::PositionReached),
        "on the writer"
    );
    w.advance(1_000);
    let there = read(&mut w, "b", vec![at("a", seq), at("a", 0)], 10_000);
    assert_eq!(
        w.answer(there),
        Some(&Response::PositionReached),
        "replicated"
    );

    // A wait longer than the cap is cut to it.
    let nobody = read(&mut w, "b", vec![at("nobody", 1)], 60_000);
    w.advance(MAX_POSITION_WAIT.as_millis() as u64 - 1);
    assert_eq!(w.answer(nobody), None);
    w.advance(1);
    assert_eq!(
        w.answer(nobody),
        Some(&Response::PositionNotReached {
            holds: vec![at("nobody", 0)]
        })
    );
}

#[test]
fn a_read_is_answered_only_once_its_position_is_durable() {
    let mut w = ap_pair();
    w.host_mut("b").hold_appends = true;
    w.write("a", r#"{"n":1}"#);
    let req = read(&mut w, "b", vec![at("a", 1)], 5_000);
    assert!(
        w.node("b").chains().tip(&id("a")).is_some(),
        "b took the push in"
    );
    assert_eq!(w.answer(req), None, "but its append is not durable yet");
    w.host_mut("b").hold_appends = false;
    let pending = w.pending_appends("b");
    w.complete_appends("b", pending);
    assert_eq!(w.answer(req), Some(&Response::PositionReached));
}
