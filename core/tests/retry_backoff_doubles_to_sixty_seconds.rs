//! A peer that stops answering is retried after 1, 2, 4, 8, 16, 32, 60, 60 … seconds
//! (DESIGN §4), the extended-failure alert is logged once per episode, and jitter keeps every
//! wait within ±20 %.

mod common;

use common::{ms, t, World};
use sapix_core::node::Event;
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Instant};

fn no_jitter() -> BackoffPolicy {
    BackoffPolicy {
        jitter: 0.0,
        ..Default::default()
    }
}

/// Gaps in ms between consecutive pushes from a, from the `first`-th push on.
fn push_gaps_ms(w: &World, first: usize) -> Vec<u64> {
    let times: Vec<u64> = w.pushes[first..]
        .iter()
        .filter(|(_, from, ..)| from.as_str() == "a")
        .map(|(at, ..)| ms(*at))
        .collect();
    times.windows(2).map(|p| p[1] - p[0]).collect()
}

fn extended_failures(w: &World, since: Instant, until: Instant) -> usize {
    w.events
        .iter()
        .filter(|(at, _, e)| {
            *at >= since && *at <= until && matches!(e, Event::ExtendedFailure { .. })
        })
        .count()
}

#[test]
fn retries_wait_1_2_4_8_16_32_60_60_s_and_alert_once_per_episode() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, no_jitter());
    // Probes every 2 s clutter the story; they neither change nor are changed by the backoff.
    w.hide = vec!["Probe", "ProbeAnswer", "FetchPage"];
    w.note("(probes, their answers and FetchPage are not traced)");
    w.start_quietly();
    w.run_until(t(1_000));
    w.note("episode 1: b goes away, a writes once");
    w.cut("a", "b");
    let (ep1, first) = (w.now, w.pushes.len());
    w.write("a", r#"{"n":1}"#);
    w.run_until(t(200_000));
    let gaps = push_gaps_ms(&w, first);
    // Every failure lands on a 500 ms drain tick, so the waits are exact.
    assert_eq!(
        gaps,
        [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
    );
    assert_eq!(
        extended_failures(&w, ep1, w.now),
        1,
        "alert once per episode"
    );
    let st = w.status("a");
    assert_eq!(st.nodes[1].backoff_ms, Some(60_000));
    assert_eq!(st.nodes[1].queue_depth, Some(1));
    assert!(st.partitioned);

    w.note("b comes back: the next probe succeeds, the backoff resets, the block drains");
    w.heal("a", "b");
    w.advance(2_000);
    let st = w.status("a");
    assert_eq!(st.nodes[1].backoff_ms, Some(0));
    assert_eq!(st.nodes[1].queue_depth, Some(0));
    assert!(!st.partitioned);

    w.note("episode 2: b goes away again; the schedule starts over and alerts once more");
    w.cut("a", "b");
    let (ep2, first) = (w.now, w.pushes.len());
    w.write("a", r#"{"n":2}"#);
    w.run_until(t(400_000));
    let gaps = push_gaps_ms(&w, first);
    assert_eq!(
        &gaps[..7],
        [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000]
    );
    assert!(gaps[7..].iter().all(|g| *g == 60_000), "{gaps:?}");
    assert_eq!(
        extended_failures(&w, ep2, w.now),
        1,
        "alert once per episode"
    );
    insta::assert_snapshot!(w.trace);
}

#[test]
fn jittered_waits_stay_within_twenty_percent() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.run_until(t(1_000));
    w.cut("a", "b");
    let first = w.pushes.len();
    w.write("a", r#"{"n":1}"#);
    w.run_until(t(1_200_000));

    let waits: Vec<(u32, u64)> = w
        .events
        .iter()
        .filter_map(|(_, _, e)| match e {
            Event::PushRetry {
                failures,
                retry_in_ms,
                ..
            } => Some((*failures, *retry_in_ms)),
            _ => None,
        })
        .collect();
    assert!(waits.len() >= 20, "{} retries", waits.len());
    let mut distinct = std::collections::BTreeSet::new();
    for (failures, wait) in &waits {
        let base = (1_000u64 << (failures - 1).min(6)).min(60_000);
        assert!(
            *wait >= base * 8 / 10 && *wait <= base * 12 / 10,
            "failure {failures}: waited {wait} ms for a base of {base} ms"
        );
        distinct.insert(*wait);
    }
    assert!(distinct.len() > waits.len() / 2, "jitter varies the waits");

    // The retry really happens after the jittered wait, at the first 500 ms tick after it.
    let gaps = push_gaps_ms(&w, first);
    assert_eq!(gaps.len(), waits.len() - 1);
    for (gap, (_, wait)) in gaps.iter().zip(&waits) {
        assert!(
            *gap >= *wait && *gap < *wait + 500,
            "gap {gap} ms after a {wait} ms wait"
        );
    }
    assert_eq!(
        w.events
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::ExtendedFailure { .. }))
            .count(),
        1
    );
}
