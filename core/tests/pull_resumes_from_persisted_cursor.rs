//! Pull-sync pages through a peer's export from the persisted cursor; the cursor is
//! persisted only after the page is durable, so a restart part way fetches only what is
//! missing and never skips a page (spec: "The cursor is persisted in sync_cursors.json so
//! catch-up only fetches what's missing"; DESIGN §3, §4).

mod common;

use common::{id, info, t, World};
use sapix_core::node::{ClusterState, Event, Input};
use sapix_core::repl::pull::Totals;
use sapix_core::{Consistency, Response, Role};

fn persisted_cursor_writes(w: &World) -> u64 {
    w.counts.get("PersistCursors").copied().unwrap_or(0)
}

#[test]
fn restart_part_way_resumes_from_the_last_durable_page() {
    let mut w = World::new();
    w.add("a", None);
    w.tracing = false;
    for i in 1..=2_500 {
        w.write("a", &format!(r#"{{"i":{i}}}"#));
    }
    w.tracing = true;
    w.note("a holds 2500 blocks; b starts knowing a, with slow fsyncs");
    w.add(
        "b",
        Some(ClusterState {
            role: Role::Replica,
            consistency: Consistency::Ap,
            peers: vec![info("a", Role::Primary)],
            me: None,
        }),
    );
    w.host_mut("b").hold_appends = true;
    w.run_until(t(0));
    assert_eq!(w.pending_appends("b"), 1, "page 1 is being stored");
    assert_eq!(
        persisted_cursor_writes(&w),
        0,
        "no cursor before the page is durable"
    );

    w.advance(100);
    w.note("page 1 becomes durable");
    w.complete_appends("b", 1);
    assert_eq!(w.host("b").persisted_cursors, [(id("a"), 1_000)]);
    assert_eq!(w.pending_appends("b"), 1, "page 2 is being stored");
    assert_eq!(
        persisted_cursor_writes(&w),
        1,
        "still no cursor past page 2"
    );

    w.advance(100);
    w.crash("b");
    assert_eq!(w.host("b").store.len(), 1_000, "page 2 was never durable");
    w.host_mut("b").hold_appends = false;
    w.advance(100);
    w.restart("b");
    w.advance(1_000);

    assert_eq!(w.host("b").store.len(), 2_500);
    assert_eq!(w.assert_strand_intact("b").get(&id("a")), Some(&2_500));
    assert_eq!(w.host("b").persisted_cursors, [(id("a"), 2_500)]);
    let pulled: Vec<&Event> = w
        .events
        .iter()
        .filter(|(_, n, e)| n == &id("b") && matches!(e, Event::Pulled { .. }))
        .map(|(_, _, e)| e)
        .collect();
    assert_eq!(
        pulled,
        [&Event::Pulled {
            peer: id("a"),
            totals: Totals {
                pages: 2,
                fetched: 1_500,
                ingested: 1_500
            },
            cursor: 2_500
        }],
        "after the restart only what was missing is fetched"
    );

    w.note("a writes 10 more; an operator asks b to sync (the runbook's catch-up)");
    w.tracing = false;
    for i in 1..=10 {
        w.write("a", &format!(r#"{{"more":{i}}}"#));
    }
    w.tracing = true;
    let req = w.ask("b", |request| Input::SyncRequested {
        request,
        peer: id("a"),
    });
    // Only the 10 new blocks are fetched. (b's start announced b to a, so a also pushed
    // them: the pull finds them already held.)
    match w.answer(req) {
        Some(Response::Synced {
            totals: Totals { pages, fetched, .. },
            cursor,
            ..
        }) => assert_eq!((*pages, *fetched, *cursor), (1, 10, 2_510)),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.host("b").store.len(), 2_510);
    let req = w.ask("b", |request| Input::SyncRequested {
        request,
        peer: id("nobody"),
    });
    assert_eq!(w.answer(req), Some(&Response::UnknownPeer(id("nobody"))));
    insta::assert_snapshot!(w.trace);
}

#[test]
fn a_failed_fetch_keeps_the_cursor_and_the_pull_after_heal_resumes_there() {
    let mut w = World::new();
    w.add("a", None);
    w.tracing = false;
    for i in 1..=1_500 {
        w.write("a", &format!(r#"{{"i":{i}}}"#));
    }
    w.tracing = true;
    w.add(
        "b",
        Some(ClusterState {
            role: Role::Replica,
            consistency: Consistency::Ap,
            peers: vec![info("a", Role::Primary)],
            me: None,
        }),
    );
    w.host_mut("b").hold_appends = true;
    w.run_until(t(0));
    w.cut("a", "b");
    w.note("page 1 becomes durable while a is unreachable: the fetch of page 2 fails");
    w.complete_appends("b", 1);
    assert_eq!(w.host("b").persisted_cursors, [(id("a"), 1_000)]);
    w.host_mut("b").hold_appends = false;

    let req = w.ask("b", |request| Input::SyncRequested {
        request,
        peer: id("a"),
    });
    assert!(matches!(w.answer(req), Some(Response::SyncFailed { .. })));
    assert_eq!(w.host("b").persisted_cursors, [(id("a"), 1_000)]);

    w.advance(3_000);
    w.heal("a", "b");
    w.advance(3_000);
    assert_eq!(w.host("b").store.len(), 1_500);
    assert_eq!(w.host("b").persisted_cursors, [(id("a"), 1_500)]);
    assert!(w.trace.contains("b> Log Pulled { peer: a, totals: Totals { pages: 1, fetched: 500, ingested: 500 }, cursor: 1500 }"));
    insta::assert_snapshot!(w.trace);
}
