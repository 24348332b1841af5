//! A pull cursor is persisted only once every block of its page is durable here — also when
//! the page's blocks arrived first by push and their append is still in flight, and also when
//! an earlier run left the pull with history (DESIGN §6.7: the durable cursor never passes a
//! block that is not durable here, or a crash would skip it for good).
//!
//! Simulator seed 0x000000d4f71ba938 found the interleaving: a sync run ended on an empty page
//! while an operator's second sync was waiting, so a new run started inside the handling of
//! that empty page, and the empty page's "stored" waiter (on the append then last issued, an
//! unrelated one) was counted for the new run. A later page, naming a block whose push-append
//! was still in flight, was then taken as durable the moment that unrelated append completed.

mod common;

use common::{id, World};
use sapix_core::node::Input;
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::repl::pull::Totals;
use sapix_core::{Consistency, Response};

fn cursor_writes(w: &World) -> u64 {
    w.counts.get("PersistCursors").copied().unwrap_or(0)
}

fn sync(request: sapix_core::node::RequestId) -> Input {
    Input::SyncRequested {
        request,
        peer: id("a"),
    }
}

#[test]
fn cursor_is_not_persisted_until_a_pushed_block_named_by_the_page_is_durable() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.start_quietly();
    w.hide = vec!["Probe", "ProbeAnswer"];
    w.host_mut("b").hold_appends = true;

    w.note("a client write on b: its append (the unrelated one) stays in flight");
    let write = w.write("b", r#"{"b":1}"#);
    assert_eq!(w.pending_appends("b"), 1);

    w.note("two syncs arrive together: the second asks for a new run while the first runs");
    let first = w.send("b", sync);
    let second = w.send("b", sync);
    w.settle();
    for req in [first, second] {
        assert!(
            matches!(w.answer(req), Some(Response::Synced { cursor: 0, .. })),
            "{:?}",
            w.answer(req)
        );
    }
    let writes_before = cursor_writes(&w);

    w.note("a writes; its push reaches b, whose append of a/1 stays in flight");
    let a1 = w.write("a", r#"{"a":1}"#);
    assert!(matches!(w.answer(a1), Some(Response::Written(_))));
    assert_eq!(w.pending_appends("b"), 2, "b's write, then the pushed a/1");

    w.note("a sync fetches a page that names a/1 again: nothing new to append");
    let third = w.ask("b", sync);
    assert_eq!(w.pending_appends("b"), 2, "a/1 is not appended twice");
    assert_eq!(cursor_writes(&w), writes_before);

    w.note("the unrelated append completes; a/1 is still not durable");
    w.complete_appends("b", 1);
    assert!(matches!(w.answer(write), Some(Response::Written(_))));
    assert!(w.host("b").block(&id("a"), 1).is_none());
    assert_eq!(
        cursor_writes(&w),
        writes_before,
        "no cursor may be persisted past a/1 before a/1 is durable: {:?}",
        w.host("b").persisted_cursors
    );
    assert_eq!(w.answer(third), None, "the sync is still storing its page");

    w.note("a/1's append completes: now the cursor may pass it");
    w.complete_appends("b", 1);
    assert!(w.host("b").block(&id("a"), 1).is_some());
    assert_eq!(cursor_writes(&w), writes_before + 1);
    assert_eq!(w.host("b").persisted_cursors, [(id("a"), 1)]);
    assert_eq!(
        w.answer(third),
        Some(&Response::Synced {
            peer: id("a"),
            totals: Totals {
                pages: 1,
                fetched: 1,
                ingested: 0
            },
            cursor: 1
        })
    );
    insta::assert_snapshot!(w.trace);
}
