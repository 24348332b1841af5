//! A pull whose fetch fails is retried while the peer stays reachable (DESIGN §4: "AP
//! divergence reconciles with no operator"). Pushes only carry each author's own chain, so a
//! node that missed a third author's blocks gets them only by pulling: a single failed fetch
//! (an export answering 500, a dropped connection) must not leave it behind until the peer
//! happens to flap or an operator runs a manual sync.

mod common;

use common::{id, info, World};
use sapix_core::node::{ClusterState, Event};
use sapix_core::{Consistency, Role};

#[test]
fn a_failed_fetch_is_retried_while_the_peer_stays_reachable() {
    let mut w = World::new();
    w.add("c", None);
    w.tracing = false;
    for i in 1..=10 {
        w.write("c", &format!(r#"{{"i":{i}}}"#));
    }
    w.add(
        "a",
        Some(ClusterState {
            role: Role::Primary,
            consistency: Consistency::Ap,
            peers: vec![info("c", Role::Replica)],
            me: None,
        }),
    );
    w.advance(1_000);
    assert_eq!(w.host("a").store.len(), 10, "a pulled c's blocks");
    w.crash("c");
    w.note("c is gone for good; b joins knowing only a");
    w.add(
        "b",
        Some(ClusterState {
            role: Role::Replica,
            consistency: Consistency::Ap,
            peers: vec![info("a", Role::Primary)],
            me: None,
        }),
    );
    w.host_mut("b").fail_fetches = 1;
    w.advance(100);
    let failed = w
        .events
        .iter()
        .any(|(_, n, e)| n == &id("b") && matches!(e, Event::PullFailed { .. }));
    assert!(failed, "the first fetch failed");
    assert!(w.host("b").store.is_empty());

    // a answers probes all along, so b never sees it heal; and a's pushes carry only a's own
    // (empty) chain. Nothing but a retry of the failed pull can bring c's blocks.
    w.advance(30_000);
    let status = w.status("b");
    let a = status.nodes.iter().find(|n| n.agent_id == id("a"));
    assert!(a.is_some_and(|a| a.reachable), "{status:?}");
    assert_eq!(
        w.host("b").store.len(),
        10,
        "b caught up by retrying the pull"
    );
    assert!(
        w.host("b").persisted_cursors.contains(&(id("a"), 10)),
        "{:?}",
        w.host("b").persisted_cursors
    );
}
