//! Writes made while a peer is down queue behind it (the queue depth grows); when the peer
//! answers again its backoff resets and the whole queue drains at once, in seq order, in
//! batches, with nothing lost and nothing twice (spec: "Automatic push retry").

mod common;

use common::{id, t, World};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::repl::peer::MAX_PUSH_BATCH;
use sapix_core::Consistency;

fn write_many(w: &mut World, from: u64, to: u64) {
    let was = std::mem::replace(&mut w.tracing, false);
    for n in from..=to {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    w.tracing = was;
    w.note(&format!("a wrote records {from}..={to} (not traced)"));
}

fn queue_depth(w: &mut World) -> (u64, u64) {
    let st = w.status("a");
    let b = &st.nodes[1];
    assert_eq!(b.agent_id, id("b"));
    (b.queue_depth.unwrap(), b.backoff_ms.unwrap())
}

#[test]
fn queue_grows_while_down_then_drains_in_order_the_moment_a_probe_succeeds() {
    let backoff = BackoffPolicy {
        jitter: 0.0,
        ..Default::default()
    };
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, backoff);
    w.start_quietly();
    w.run_until(t(1_000));
    w.cut("a", "b");
    w.write("a", r#"{"n":1}"#);
    assert_eq!(queue_depth(&mut w), (1, 1_000));

    w.run_until(t(10_000));
    write_many(&mut w, 2, 300);
    assert_eq!(queue_depth(&mut w), (300, 8_000));
    w.run_until(t(20_000));
    write_many(&mut w, 301, 600);
    assert_eq!(queue_depth(&mut w), (600, 16_000));
    let pushes_before = w.pushes.len();

    // The next push retry is not due until t=31 s; b is back at 24 s.
    w.run_until(t(24_000));
    w.heal("a", "b");
    w.run_until(t(27_000));
    assert_eq!(queue_depth(&mut w), (0, 0), "backoff reset, queue drained");

    // The drain: contiguous batches from 1 to 600, all sent at the instant a's probe
    // succeeded, each only after the previous one was acked.
    let drain: Vec<_> = w.pushes[pushes_before..].to_vec();
    let healed_at = drain[0].0;
    assert!(drain.iter().all(|p| p.0 == healed_at), "{drain:?}");
    let ranges: Vec<(u64, u64)> = drain.iter().map(|p| (p.3, p.4)).collect();
    assert_eq!(
        ranges,
        [
            (1, MAX_PUSH_BATCH),
            (MAX_PUSH_BATCH + 1, 2 * MAX_PUSH_BATCH),
            (2 * MAX_PUSH_BATCH + 1, 600)
        ]
    );
    assert!(healed_at < t(31_000), "drained before the retry was due");

    // Nothing lost, nothing twice, in order: b's strand holds a/1..=600 once each, linked.
    let held = w.assert_strand_intact("b");
    assert_eq!(held.get(&id("a")), Some(&600));
    assert_eq!(w.host("b").store.len(), 600);
    let seqs: Vec<u64> = w.host("b").store.iter().map(|b| b.seq()).collect();
    assert!(
        seqs.windows(2).all(|s| s[1] == s[0] + 1),
        "stored in seq order"
    );
    insta::assert_snapshot!(w.trace);
}
