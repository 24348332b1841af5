//! One test per row of the spec's auth-cache table, plus the bounds DESIGN §5 adds.

use super::*;

const MS: u64 = 1;
const S: u64 = 1_000 * MS;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// One microsecond before `ms`.
fn just_before(ms: u64) -> Instant {
    at(ms) - Duration::from_micros(1)
}

fn key(token: &str) -> AuthKey {
    AuthKey::new(token, Action::Write, &Collection::new("orders").unwrap())
}

fn cache() -> AuthCache<u64> {
    AuthCache::new(AuthPolicy::default())
}

/// Asks Codios for `k` at `t` and records `d` at the same instant.
fn fetch(c: &mut AuthCache<u64>, t: u64, k: &AuthKey, d: Decision) {
    assert_eq!(c.begin_fetch(at(t), k.clone(), 0), FetchStart::AskCodios);
    assert_eq!(c.record(at(t), k.clone(), d), vec![0]);
}

fn stale(decision: Decision, fetched: u64, now: u64) -> Lookup {
    Lookup::Miss {
        stale: Some(StaleEntry {
            decision,
            fetched_at: at(fetched),
            age: Duration::from_millis(now - fetched),
        }),
    }
}

#[test]
fn key_hashes_the_token_and_separates_action_and_resource() {
    let orders = Collection::new("orders").unwrap();
    let k = AuthKey::new("secret-token", Action::Write, &orders);
    assert_eq!(
        k.subject.as_bytes(),
        blake3::hash(b"secret-token").as_bytes()
    );
    assert_ne!(k, AuthKey::new("secret-token", Action::Read, &orders));
    assert_ne!(
        k,
        AuthKey::new(
            "secret-token",
            Action::Write,
            &Collection::new("x").unwrap()
        )
    );
    assert!(!format!("{k:?}").contains("secret"));
}

#[test]
fn miss_then_hit_permit_is_served_without_a_call_for_exactly_the_ttl() {
    let mut c = cache();
    let k = key("alice");
    assert_eq!(c.lookup(at(0), &k), Lookup::Miss { stale: None });
    fetch(&mut c, 0, &k, Decision::Permit);
    assert_eq!(c.lookup(at(1), &k), Lookup::Fresh(Decision::Permit));
    assert_eq!(
        c.lookup(just_before(5 * S), &k),
        Lookup::Fresh(Decision::Permit)
    );
    assert_eq!(c.lookup(at(5 * S), &k), stale(Decision::Permit, 0, 5 * S));
}

#[test]
fn miss_then_hit_deny_is_served_without_a_call_for_exactly_two_seconds() {
    let mut c = cache();
    let k = key("mallory");
    fetch(&mut c, 10 * S, &k, Decision::Deny);
    assert_eq!(c.lookup(at(10 * S), &k), Lookup::Fresh(Decision::Deny));
    assert_eq!(
        c.lookup(just_before(12 * S), &k),
        Lookup::Fresh(Decision::Deny)
    );
    assert_eq!(
        c.lookup(at(12 * S), &k),
        stale(Decision::Deny, 10 * S, 12 * S)
    );
}

#[test]
fn ttl_counts_from_when_the_call_was_sent() {
    let mut c = cache();
    let k = key("alice");
    c.begin_fetch(at(0), k.clone(), 1);
    c.record(at(800), k.clone(), Decision::Permit);
    assert_eq!(c.lookup(at(4_999), &k), Lookup::Fresh(Decision::Permit));
    assert!(matches!(c.lookup(at(5 * S), &k), Lookup::Miss { .. }));
}

#[test]
fn a_new_answer_replaces_the_old_one() {
    let mut c = cache();
    let k = key("alice");
    fetch(&mut c, 0, &k, Decision::Permit);
    fetch(&mut c, 6 * S, &k, Decision::Deny);
    assert_eq!(c.lookup(at(6 * S), &k), Lookup::Fresh(Decision::Deny));
    assert_eq!(c.len(), 1);
}

#[test]
fn codios_unreachable_serves_a_stale_permit_degraded_up_to_max_stale() {
    let mut c = cache();
    let k = key("alice");
    fetch(&mut c, 0, &k, Decision::Permit);
    assert_eq!(
        c.on_codios_failure(at(300 * S), &k, false),
        FailureVerdict::Permit {
            degraded: true,
            age: Duration::from_secs(300)
        }
    );
    assert_eq!(
        c.on_codios_failure(at(300 * S) + Duration::from_micros(1), &k, false),
        FailureVerdict::Refuse
    );
}

#[test]
fn a_permit_within_its_ttl_is_served_undegraded_even_if_a_call_fails() {
    let mut c = cache();
    let k = key("alice");
    fetch(&mut c, 0, &k, Decision::Permit);
    assert_eq!(
        c.on_codios_failure(at(4 * S), &k, false),
        FailureVerdict::Permit {
            degraded: false,
            age: Duration::from_secs(4)
        }
    );
}

#[test]
fn nothing_cached_is_refused_whether_or_not_the_breaker_is_open() {
    let c = cache();
    assert_eq!(
        c.on_codios_failure(at(0), &key("new"), false),
        FailureVerdict::Refuse
    );
    assert_eq!(
        c.on_codios_failure(at(0), &key("new"), true),
        FailureVerdict::Refuse
    );
}

#[test]
fn require_codios_never_serves_stale_even_with_the_breaker_open() {
    let mut c = AuthCache::<u64>::new(AuthPolicy {
        require_codios: true,
        ..AuthPolicy::default()
    });
    let k = key("alice");
    fetch(&mut c, 0, &k, Decision::Permit);
    assert_eq!(
        c.on_codios_failure(at(5 * S), &k, false),
        FailureVerdict::Refuse
    );
    assert_eq!(
        c.on_codios_failure(at(5 * S), &k, true),
        FailureVerdict::Refuse
    );
    // A fresh hit is not stale: fail-closed still caches.
    assert_eq!(c.lookup(at(4 * S), &k), Lookup::Fresh(Decision::Permit));
}

#[test]
fn a_deny_is_never_overridden_fresh_or_stale_breaker_open_or_not() {
    let mut c = cache();
    let k = key("mallory");
    fetch(&mut c, 0, &k, Decision::Deny);
    for (t, open) in [(1, false), (1, true), (10 * S, false), (3_600 * S, true)] {
        assert_eq!(c.on_codios_failure(at(t), &k, open), FailureVerdict::Deny);
    }
}

#[test]
fn an_open_breaker_serves_cached_permits_of_any_age() {
    let mut c = cache();
    let k = key("alice");
    fetch(&mut c, 0, &k, Decision::Permit);
    assert_eq!(
        c.on_codios_failure(at(3_600 * S), &k, true),
        FailureVerdict::Permit {
            degraded: true,
            age: Duration::from_secs(3_600)
        }
    );
}

#[test]
fn a_thousand_concurrent_misses_share_one_codios_call() {
    let mut c = cache();
    let k = key("burst");
    let mut asks = 0;
    for req in 0..1_000u64 {
        assert_eq!(c.lookup(at(0), &k), Lookup::Miss { stale: None });
        if c.begin_fetch(at(0), k.clone(), req) == FetchStart::AskCodios {
            asks += 1;
        }
    }
    assert_eq!(asks, 1);
    assert_eq!(c.in_flight(), 1);
    let waiters = c.record(at(50), k.clone(), Decision::Permit);
    assert_eq!(waiters, (0..1_000).collect::<Vec<_>>());
    assert_eq!(c.in_flight(), 0);
    assert_eq!(c.lookup(at(60), &k), Lookup::Fresh(Decision::Permit));
    // The next miss after expiry asks again.
    assert_eq!(
        c.begin_fetch(at(6 * S), k.clone(), 7),
        FetchStart::AskCodios
    );
}

#[test]
fn a_failed_call_returns_its_waiters_and_a_late_answer_is_dropped() {
    let mut c = cache();
    let k = key("alice");
    c.begin_fetch(at(0), k.clone(), 1);
    c.begin_fetch(at(1), k.clone(), 2);
    assert_eq!(c.fail(&k), vec![1, 2]);
    assert_eq!(c.fail(&k), Vec::<u64>::new());
    assert_eq!(
        c.record(at(2), k.clone(), Decision::Permit),
        Vec::<u64>::new()
    );
    assert!(c.is_empty());
    assert_eq!(c.begin_fetch(at(3), k, 3), FetchStart::AskCodios);
}

#[test]
fn a_refresh_has_no_waiter_and_does_not_duplicate_a_call() {
    let mut c = cache();
    let k = key("alice");
    assert_eq!(c.begin_refresh(at(0), k.clone()), FetchStart::AskCodios);
    assert_eq!(c.begin_refresh(at(0), k.clone()), FetchStart::Joined);
    assert_eq!(c.begin_fetch(at(1), k.clone(), 9), FetchStart::Joined);
    assert_eq!(c.record(at(2), k.clone(), Decision::Permit), vec![9]);
    assert_eq!(c.most_recently_used(), Some(&k));
}

#[test]
fn a_flood_of_distinct_tokens_stays_within_capacity_and_keeps_hot_keys() {
    let mut c = AuthCache::<u64>::new(AuthPolicy {
        capacity: 100,
        ..AuthPolicy::default()
    });
    let hot = key("hot");
    fetch(&mut c, 0, &hot, Decision::Permit);
    for i in 0..10_000u64 {
        let k = key(&format!("flood-{i}"));
        fetch(&mut c, 1, &k, Decision::Deny);
        if i % 50 == 0 {
            assert_eq!(c.lookup(at(2), &hot), Lookup::Fresh(Decision::Permit));
        }
        assert!(c.len() <= 100);
    }
    assert_eq!(c.len(), 100);
    assert_eq!(c.lookup(at(2), &hot), Lookup::Fresh(Decision::Permit));
    // The oldest flood keys went first.
    assert_eq!(
        c.lookup(at(2), &key("flood-0")),
        Lookup::Miss { stale: None }
    );
    assert!(matches!(
        c.lookup(at(2), &key("flood-9999")),
        Lookup::Fresh(_)
    ));
}

#[test]
fn zero_capacity_caches_nothing_but_still_answers_waiters() {
    let mut c = AuthCache::<u64>::new(AuthPolicy {
        capacity: 0,
        ..AuthPolicy::default()
    });
    let k = key("alice");
    fetch(&mut c, 0, &k, Decision::Permit);
    assert!(c.is_empty());
    assert_eq!(c.lookup(at(1), &k), Lookup::Miss { stale: None });
}

#[test]
fn lookups_are_counted_as_hits_and_misses() {
    let mut c = cache();
    let k = key("alice");
    assert!(matches!(c.lookup(at(0), &k), Lookup::Miss { stale: None }));
    fetch(&mut c, 0, &k, Decision::Permit);
    assert_eq!(c.lookup(at(S), &k), Lookup::Fresh(Decision::Permit));
    assert_eq!(c.lookup(at(2 * S), &k), Lookup::Fresh(Decision::Permit));
    // Past its TTL: a miss, though a stale decision is there.
    assert!(matches!(
        c.lookup(at(3_600 * S), &k),
        Lookup::Miss { stale: Some(_) }
    ));
    assert_eq!(c.lookups(), (2, 2));
}
