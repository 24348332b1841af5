//! Concurrent misses for one key share a single Codios call (DESIGN §5), answered together.

mod auth_support;

use auth_support::*;
use sapix_core::auth::Decision;
use sapix_core::node::Event;

#[test]
fn a_thousand_concurrent_misses_for_one_new_key_make_exactly_one_codios_call() {
    let mut n = node(codios());
    let mut out = Vec::new();
    for req in 1..=1_000 {
        authorize(&mut n, req / 10, req, "alice");
        out.extend(drain(&mut n));
    }
    assert_eq!(asks(&out), vec![key("alice")], "one call for 1,000 misses");
    assert!(responses(&out).is_empty(), "every write waits on that call");
    assert_eq!(auth_status(&mut n, 100).codios_in_flight, 1);

    answer(&mut n, 150, "alice", Decision::Permit);
    let r = responses(&drain(&mut n));
    let expected: Vec<(u64, Verdict)> = (1..=1_000)
        .map(|req| (req, Verdict::Authorized { degraded: false }))
        .collect();
    assert_eq!(r, expected, "all answered together, in arrival order");

    // And the next 1,000 within the TTL never reach Codios.
    for req in 1_001..=2_000 {
        let (r, _) = answered_from_cache(&mut n, 200 + req, req, "alice");
        assert!(is_authorized(&r, false));
    }
}

#[test]
fn waiters_of_a_failed_call_are_answered_together_with_one_verdict() {
    let mut n = node(codios());
    prime(&mut n, 0, "alice", Decision::Permit);
    let mut out = Vec::new();
    for req in 1..=1_000 {
        authorize(&mut n, 10 * S, req, "alice");
        out.extend(drain(&mut n));
    }
    assert_eq!(asks(&out).len(), 1);
    fail(&mut n, 12 * S, "alice");
    let out = drain(&mut n);
    let r = responses(&out);
    assert_eq!(r.len(), 1_000);
    assert!(r.iter().all(|(_, r)| is_authorized(r, true)));
    assert_eq!(degraded_logs(&out), 1_000, "every degraded write is logged");
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::CodiosFailed { waiting: 1_000, .. })));
}

#[test]
fn different_keys_get_their_own_calls_and_a_failed_key_can_be_asked_again() {
    let mut n = node(codios());
    authorize(&mut n, 0, 1, "alice");
    authorize(&mut n, 0, 2, "bob");
    authorize(&mut n, 0, 3, "alice");
    assert_eq!(asks(&drain(&mut n)), vec![key("alice"), key("bob")]);
    fail(&mut n, 10, "alice");
    drain(&mut n);
    authorize(&mut n, 20, 4, "alice");
    assert_eq!(
        asks(&drain(&mut n)),
        vec![key("alice")],
        "a new call after the failure"
    );
    // A late answer for a call already failed cannot answer or cache anything twice.
    answer(&mut n, 30, "bob", Decision::Permit);
    answer(&mut n, 31, "bob", Decision::Deny);
    let r = responses(&drain(&mut n));
    assert_eq!(r, vec![(2, Verdict::Authorized { degraded: false })]);
    let (r, _) = answered_from_cache(&mut n, 40, 5, "bob");
    assert!(is_authorized(&r, false), "the duplicate answer was dropped");
}
