//! The timer table: every deadline the node keeps is named, the drain tick is what wakes it,
//! and a wake says which due deadlines it serves (a push retry becomes due at its instant and
//! is sent by the next drain, as the spec's schedule says).

mod common;

use common::{id, info, World};
use sapix_core::node::{ClusterState, Timer};
use sapix_core::{Consistency, Role};

#[test]
fn a_failed_push_sets_a_named_retry_that_the_next_drain_serves() {
    let mut w = World::new();
    w.tracing = false;
    w.add("b", None);
    w.add(
        "a",
        Some(ClusterState {
            role: Role::Primary,
            consistency: Consistency::Ap,
            peers: vec![info("b", Role::Replica)],
            me: None,
        }),
    );
    w.advance(100);
    w.crash("b");
    w.write("a", r#"{"x":1}"#);
    let a = w.node("a");
    let deadlines = a.deadlines();
    let retry = deadlines
        .iter()
        .find(|(_, t)| *t == Timer::PushRetry(id("b")))
        .map(|(at, _)| *at)
        .expect("the failed push's retry is a named deadline");
    assert!(deadlines.iter().any(|(_, t)| *t == Timer::Drain));
    assert!(
        deadlines.windows(2).all(|p| p[0].0 <= p[1].0),
        "earliest first: {deadlines:?}"
    );
    let wake = a.next_wake().expect("a peer keeps the drain armed");
    assert_eq!(wake.timer, Timer::Drain, "only the drain wakes for a retry");
    assert_eq!(Some(wake.at), a.poll_timeout());

    // Run until the first drain at or after the retry's instant: that wake served it.
    let mut served = false;
    for _ in 0..40 {
        w.advance(100);
        if let Some(last) = w.node("a").last_wake() {
            if last.at >= retry {
                served = last.serves.contains(&Timer::PushRetry(id("b")));
                break;
            }
        }
    }
    assert!(served, "the drain after {retry:?} served the push retry");
}
