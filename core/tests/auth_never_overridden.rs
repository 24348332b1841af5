//! DESIGN §6.6: a fresh Codios deny is never overridden, and `SAPIX_REQUIRE_CODIOS` never
//! serves a stale permit — whatever Codios, the breaker or late answers do.

mod auth_support;

use auth_support::*;
use sapix_core::auth::{BreakerConfig, Decision};
use sapix_core::node::AuthSettings;

#[test]
fn a_fresh_deny_is_never_overridden() {
    let mut n = node(codios_with_breaker());
    prime(&mut n, 0, "mallory", Decision::Deny);
    // A permit answer nobody asked for (no call in flight) is dropped, not cached.
    answer(&mut n, 1, "mallory", Decision::Permit);
    let (r, _) = answered_from_cache(&mut n, 2, 1, "mallory");
    assert!(is_denied(&r));

    // Codios starts failing: a fresh deny still answers from the cache, without a call.
    prime(&mut n, 0, "alice", Decision::Permit);
    authorize(&mut n, 1_000, 2, "alice");
    drain(&mut n);
    fail(&mut n, 1_000, "alice");
    drain(&mut n);
    let (r, out) = answered_from_cache(&mut n, 1_999, 3, "mallory");
    assert!(is_denied(&r));
    assert_eq!(degraded_logs(&out), 0);
}

#[test]
fn a_cached_deny_stays_a_deny_through_failures_and_an_open_circuit() {
    let mut n = node(codios_with_breaker());
    prime(&mut n, 0, "mallory", Decision::Deny);
    prime(&mut n, 0, "alice", Decision::Permit);
    // Codios fails from 10 s on; mallory's deny is stale but still a deny.
    authorize(&mut n, 10 * S, 1, "alice");
    drain(&mut n);
    fail(&mut n, 10 * S, "alice");
    drain(&mut n);
    authorize(&mut n, 20 * S, 2, "mallory");
    drain(&mut n);
    fail(&mut n, 20 * S, "mallory");
    let r = responses(&drain(&mut n));
    assert!(is_denied(&r[0].1), "{r:?}");
    authorize(&mut n, 40 * S, 3, "alice");
    drain(&mut n);
    fail(&mut n, 40 * S, "alice");
    drain(&mut n);
    assert_eq!(
        auth_status(&mut n, 40 * S).breaker,
        sapix_core::status::BreakerStatus::Open
    );

    for (req, ms) in [(4, 40 * S), (5, 41 * S), (6, 44_999)] {
        let (r, out) = answered_from_cache(&mut n, ms, req, "mallory");
        assert!(is_denied(&r), "{ms} ms: {r:?}");
        assert_eq!(degraded_logs(&out), 0);
    }
    // Much later the write is admitted as the half-open probe; Codios still fails: a deny.
    authorize(&mut n, 500 * S, 7, "mallory");
    assert_eq!(asks(&drain(&mut n)), vec![key("mallory")]);
    fail(&mut n, 500 * S, "mallory");
    let out = drain(&mut n);
    let r = responses(&out);
    assert!(is_denied(&r[0].1), "{r:?}");
    assert_eq!(degraded_logs(&out), 0);
}

#[test]
fn a_deny_answer_after_a_failure_replaces_a_stale_permit_at_once() {
    let mut n = node(codios());
    prime(&mut n, 0, "alice", Decision::Permit);
    authorize(&mut n, 6 * S, 1, "alice");
    drain(&mut n);
    fail(&mut n, 6 * S, "alice");
    assert_eq!(
        responses(&drain(&mut n)),
        vec![(1, Verdict::Authorized { degraded: true })]
    );
    authorize(&mut n, 7 * S, 2, "alice");
    drain(&mut n);
    answer(&mut n, 7 * S, "alice", Decision::Deny);
    let r = responses(&drain(&mut n));
    assert!(is_denied(&r[0].1));
    // Codios fails again: the deny is what is cached, so the stale permit is gone for good.
    authorize(&mut n, 10 * S, 3, "alice");
    drain(&mut n);
    fail(&mut n, 10 * S, "alice");
    let r = responses(&drain(&mut n));
    assert!(is_denied(&r[0].1), "{r:?}");
}

#[test]
fn require_codios_never_serves_a_stale_permit() {
    let mut n = node(codios_fail_closed());
    prime(&mut n, 0, "alice", Decision::Permit);
    let (r, _) = answered_from_cache(&mut n, 4_999, 1, "alice");
    assert!(
        is_authorized(&r, false),
        "within the TTL a permit is fresh, not stale"
    );
    for (req, ms) in [(2, 5 * S), (3, 6 * S), (4, 60 * S)] {
        authorize(&mut n, ms, req, "alice");
        drain(&mut n);
        fail(&mut n, ms, "alice");
        let out = drain(&mut n);
        let r = responses(&out);
        assert!(is_unavailable(&r[0].1), "{ms} ms: {r:?}");
        assert_eq!(degraded_logs(&out), 0);
    }
    assert_eq!(auth_status(&mut n, 61 * S).degraded_total, 0);
}

#[test]
fn require_codios_wins_even_over_an_open_breaker_given_despite_the_config_check() {
    // Refused at start by BreakerConfig::validate; the core still fails closed.
    let both = AuthSettings {
        breaker: BreakerConfig {
            enabled: true,
            ..BreakerConfig::default()
        },
        ..codios_fail_closed()
    };
    assert!(both.breaker.validate(true).is_err());
    let mut n = node(both);
    prime(&mut n, 0, "alice", Decision::Permit);
    for ms in [10 * S, 40 * S] {
        authorize(&mut n, ms, ms, "alice");
        drain(&mut n);
        fail(&mut n, ms, "alice");
        drain(&mut n);
    }
    let (r, out) = answered_from_cache(&mut n, 41 * S, 1, "alice");
    assert!(is_unavailable(&r), "{r:?}");
    assert_eq!(degraded_logs(&out), 0);
}
