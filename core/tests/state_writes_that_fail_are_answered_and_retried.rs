//! A state file that cannot be written (a full disk) is a fact the node hears and decides on,
//! not a log line: nothing waits for ever, nothing is reported durable that is not, and the
//! write is tried again until it succeeds.

mod common;

use common::{id, info, World, DISK_FULL};
use sapix_core::node::{ClusterState, Event, Failure, Input, Response};
use sapix_core::{Consistency, Role};

fn ap_member_of(peer: &str) -> Option<ClusterState> {
    Some(ClusterState {
        role: Role::Primary,
        consistency: Consistency::Ap,
        peers: vec![info(peer, Role::Replica)],
        me: None,
    })
}

/// The pull run waiting for its cursor fails, the cursor on disk stays where it was, and the
/// next run (after its backoff) stores and persists the cursor past every block.
#[test]
fn a_cursor_that_cannot_be_written_fails_the_pull_and_the_next_run_writes_it() {
    let mut w = World::new();
    w.tracing = false;
    w.add("c", None);
    for i in 1..=10 {
        w.write("c", &format!(r#"{{"i":{i}}}"#));
    }
    w.add("a", ap_member_of("c"));
    w.host_mut("a").fail_cursor_writes = 1;
    w.advance(100);
    let failed: Vec<&Failure> = w
        .events
        .iter()
        .filter_map(|(_, n, e)| match e {
            Event::PullFailed { reason, .. } if n == &id("a") => Some(reason),
            _ => None,
        })
        .collect();
    match failed.as_slice() {
        [Failure::LocalStorage(why)] => assert!(why.contains(DISK_FULL), "{why}"),
        other => panic!("want one pull failed on local storage, got {other:?}"),
    }
    assert!(
        w.host("a").persisted_cursors.is_empty(),
        "nothing was written"
    );
    assert_eq!(
        w.host("a").store.len(),
        10,
        "the blocks are durable all the same"
    );

    w.advance(30_000);
    assert_eq!(w.host("a").persisted_cursors, vec![(id("c"), 10)]);
}

/// An operator's switch whose cluster.json cannot be written is answered `NotPersisted`
/// (in effect, not durable; the server's 503) instead of never; the write is retried on the
/// node's own timer, with a doubling wait, until it lands, and a later switch is answered as
/// usual. A lone node: nothing but the retry arms its timer.
#[test]
fn a_cluster_view_that_cannot_be_written_is_answered_and_retried_until_it_lands() {
    let mut w = World::new();
    w.tracing = false;
    w.add("a", None);
    w.host_mut("a").fail_cluster_writes = 3;
    let req = w.ask("a", |request| Input::ConsistencyRequested {
        request,
        mode: Consistency::Cp,
    });
    match w.answer(req) {
        Some(Response::NotPersisted { reason }) => {
            assert!(reason.contains(DISK_FULL), "{reason}")
        }
        other => panic!("want NotPersisted, got {other:?}"),
    }
    assert_eq!(w.status("a").consistency, Consistency::Cp, "in effect");
    let durable = |w: &World| {
        w.host("a")
            .persisted_cluster
            .as_ref()
            .map(|c| c.consistency)
    };
    assert_eq!(durable(&w), None, "but not durable");
    // Tries at 0, 1 s and 3 s fail; each waits twice as long for the next.
    w.advance(3_500);
    let failures: Vec<(u64, u64)> = w
        .events
        .iter()
        .filter_map(|(t, n, e)| match e {
            Event::ClusterPersistFailed { retry_in_ms, .. } if n == &id("a") => {
                Some((t.as_micros() / 1_000, *retry_in_ms))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures, vec![(0, 1_000), (1_000, 2_000), (3_000, 4_000)]);
    assert_eq!(durable(&w), None);
    // The fourth try, at 7 s, lands: the view in effect is on disk.
    w.advance(4_000);
    assert_eq!(durable(&w), Some(Consistency::Cp));
    let before = w.events.len();
    w.advance(60_000);
    assert!(
        !w.events[before..]
            .iter()
            .any(|(_, _, e)| matches!(e, Event::ClusterPersistFailed { .. })),
        "no more tries once it landed"
    );
    let req = w.ask("a", |request| Input::ConsistencyRequested {
        request,
        mode: Consistency::Ap,
    });
    assert!(
        matches!(w.answer(req), Some(Response::ConsistencySet { .. })),
        "{:?}",
        w.answer(req)
    );
}
