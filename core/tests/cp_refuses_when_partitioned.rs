//! CP (the default): a write is refused with `Partitioned` before anything is appended while
//! any peer is unreachable — or not yet heard from since start (DESIGN §4).

mod common;

use common::{id, t, World};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

fn appends(w: &World) -> u64 {
    w.counts.get("Append").copied().unwrap_or(0)
}

#[test]
fn cp_write_refused_while_a_peer_is_unknown_or_unreachable() {
    let mut w = World::cluster(&["a", "b", "c"], Consistency::Cp, BackoffPolicy::default());

    w.note("a has just started: b and c have not answered a probe yet");
    let req = w.write("a", r#"{"n":1}"#);
    assert_eq!(
        w.answer(req),
        Some(&Response::Partitioned {
            unreachable: vec![id("b"), id("c")]
        })
    );
    assert_eq!(appends(&w), 0, "refused before any append");

    w.start_quietly();
    w.note("both peers answered: the write goes through");
    let req = w.write("a", r#"{"n":2}"#);
    assert!(matches!(w.answer(req), Some(Response::Written(_))));

    w.run_until(t(1_000));
    w.cut("a", "c");
    w.note("c is cut off; a notices with its next idle probe");
    w.advance(2_000);
    let before = appends(&w);
    let req = w.write("a", r#"{"n":3}"#);
    assert_eq!(
        w.answer(req),
        Some(&Response::Partitioned {
            unreachable: vec![id("c")]
        })
    );
    assert_eq!(appends(&w), before, "refused before any append");
    assert!(w.status("a").partitioned);
    assert_eq!(w.node("a").chains().tip(&id("a")).unwrap().0, 1);

    w.heal("a", "c");
    w.advance(2_000);
    w.note("c answers again: writes go through");
    let req = w.write("a", r#"{"n":4}"#);
    match w.answer(req) {
        Some(Response::Written(r)) => assert_eq!(r.seq, 2, "the refused write took no seq"),
        other => panic!("{other:?}"),
    }
    insta::assert_snapshot!(w.trace);
}
