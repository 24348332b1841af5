//! Status tells how far a peer is behind in blocks and in time, by this node's clock only:
//! `queue_depth` and `lag_ms` for what it lacks of our chain, `pull_lag_blocks` for what its
//! export showed beyond our cursor; a node's own entry is never stale (issue 14).

mod common;

use common::World;
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::status::NodeStatus;
use sapix_core::Consistency;

fn entry(w: &mut World, on: &str, of: &str) -> NodeStatus {
    let s = w.status(on);
    s.nodes
        .into_iter()
        .find(|n| n.agent_id.as_str() == of)
        .expect("listed")
}

#[test]
fn a_peer_cut_off_falls_behind_in_blocks_and_seconds_and_catches_up() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.start_quietly();
    w.write("a", r#"{"n":0}"#);
    w.settle();
    let b = entry(&mut w, "a", "b");
    assert_eq!((b.queue_depth, b.lag_ms), (Some(0), Some(0)), "{b:?}");

    w.cut("a", "b");
    w.advance(1_000);
    for i in 1..=3 {
        w.write("a", &format!(r#"{{"n":{i}}}"#));
    }
    w.advance(10_000);
    let b = entry(&mut w, "a", "b");
    assert_eq!(b.queue_depth, Some(3));
    let lag = b.lag_ms.expect("b's holdings are known");
    assert!(
        (10_000..11_000).contains(&lag),
        "the oldest block b lacks was committed 10 s ago: {lag} ms"
    );
    let me = entry(&mut w, "a", "a");
    assert!(me.last_commit_ms.is_some() && me.lag_ms.is_none(), "{me:?}");

    // b writes too while cut off; after the heal a's pull sees b's export beyond its cursor
    // only until the run stores it.
    w.write("b", r#"{"on":"b"}"#);
    w.heal("a", "b");
    w.advance(5_000);
    w.settle();
    let b = entry(&mut w, "a", "b");
    assert_eq!((b.queue_depth, b.lag_ms), (Some(0), Some(0)), "{b:?}");
    assert_eq!(b.pull_lag_blocks, Some(0), "{b:?}");
    assert!(b.pull_cursor.is_some_and(|c| c >= 1), "{b:?}");
}
