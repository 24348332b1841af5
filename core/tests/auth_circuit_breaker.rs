//! The opt-in circuit breaker through the node: it opens at 30 s of continuous Codios failure
//! (not at 29.9 s), serves cached decisions while open with every bypass logged, probes on the
//! node's timer, and closes when Codios answers.

mod auth_support;

use auth_support::*;
use sapix_core::auth::Decision;
use sapix_core::node::{ClusterState, Event, Failure, Input, Output, Restored};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::status::BreakerStatus;
use sapix_core::{AgentId, Consistency, Node, Role};

fn opened_events(out: &[Output]) -> Vec<u64> {
    events(out)
        .iter()
        .filter_map(|e| match e {
            Event::AuthCircuitOpened { failing_for_ms } => Some(*failing_for_ms),
            _ => None,
        })
        .collect()
}

/// One write on `token` at `ms` whose Codios call fails at the same instant.
fn failing_write(n: &mut Node, ms: u64, req: u64, token: &str) -> Vec<Output> {
    authorize(n, ms, req, token);
    let mut out = drain(n);
    assert_eq!(asks(&out), vec![key(token)], "a closed circuit asks Codios");
    fail(n, ms, token);
    out.extend(drain(n));
    out
}

/// alice's permit cached at 0; Codios fails from 10 s on; the circuit opens at 40 s.
fn open_at_forty_seconds(n: &mut Node) {
    prime(n, 0, "alice", Decision::Permit);
    failing_write(n, 10 * S, 1, "alice");
    let out = failing_write(n, 40 * S, 2, "alice");
    assert_eq!(opened_events(&out), vec![30_000]);
}

#[test]
fn opens_at_thirty_seconds_of_continuous_failure_and_not_at_twenty_nine_point_nine() {
    let mut n = node(codios_with_breaker());
    prime(&mut n, 0, "alice", Decision::Permit);
    let out = failing_write(&mut n, 10 * S, 1, "alice");
    assert!(opened_events(&out).is_empty());
    let out = failing_write(&mut n, 39_900, 2, "alice");
    assert!(
        opened_events(&out).is_empty(),
        "29.9 s of failure: still closed"
    );
    assert_eq!(auth_status(&mut n, 39_900).breaker, BreakerStatus::Closed);
    assert_eq!(n.poll_timeout(), None, "a closed circuit sets no timer");

    let out = failing_write(&mut n, 40 * S, 3, "alice");
    assert_eq!(opened_events(&out), vec![30_000], "30 s of failure: open");
    assert_eq!(auth_status(&mut n, 40 * S).breaker, BreakerStatus::Open);
    assert_eq!(
        n.poll_timeout(),
        Some(at(45 * S)),
        "first probe one interval later"
    );
}

#[test]
fn a_success_in_between_restarts_the_thirty_seconds() {
    let mut n = node(codios_with_breaker());
    prime(&mut n, 0, "alice", Decision::Permit);
    failing_write(&mut n, 10 * S, 1, "alice");
    authorize(&mut n, 25 * S, 2, "alice");
    drain(&mut n);
    answer(&mut n, 25 * S, "alice", Decision::Permit);
    drain(&mut n);
    failing_write(&mut n, 31 * S, 3, "alice");
    let out = failing_write(&mut n, 60 * S, 4, "alice");
    assert!(
        opened_events(&out).is_empty(),
        "29 s since the streak began at 31 s"
    );
    let out = failing_write(&mut n, 61 * S, 5, "alice");
    assert_eq!(opened_events(&out), vec![30_000]);
}

#[test]
fn while_open_no_write_waits_on_codios_and_cached_decisions_are_served_and_logged() {
    let mut n = node(codios_with_breaker());
    prime(&mut n, 0, "mallory", Decision::Deny);
    open_at_forty_seconds(&mut n);

    // alice's permit is 41 s old — and would be served at any age, past max_stale too.
    for (req, ms) in [(10, 41 * S), (11, 44_999)] {
        authorize(&mut n, ms, req, "alice");
        let out = drain(&mut n);
        assert!(asks(&out).is_empty(), "open: Codios is bypassed");
        assert_eq!(
            responses(&out),
            vec![(req, Verdict::Authorized { degraded: true })]
        );
        match events(&out).as_slice() {
            [Event::AuthDegraded {
                circuit_open: true, ..
            }, Event::WriteAuthorized { degraded: true, .. }] => {}
            other => panic!("every bypass is logged auth_degraded: {other:?}"),
        }
    }
    let (r, _) = answered_from_cache(&mut n, 42 * S, 12, "mallory");
    assert!(
        is_denied(&r),
        "a cached deny stays a deny with the circuit open"
    );
    let (r, _) = answered_from_cache(&mut n, 42 * S, 13, "nobody");
    assert!(is_unavailable(&r), "nothing cached: refused, not permitted");
}

#[test]
fn half_open_probes_go_out_on_the_timer_and_an_answer_closes_the_circuit() {
    let mut n = node(codios_with_breaker());
    open_at_forty_seconds(&mut n);

    n.handle_timeout(at(44_999));
    assert!(drain(&mut n).is_empty(), "early wake-up: nothing");
    n.handle_timeout(at(45 * S));
    let out = drain(&mut n);
    assert_eq!(
        asks(&out),
        vec![key("alice")],
        "the probe asks about the last key used"
    );
    assert_eq!(auth_status(&mut n, 45 * S).breaker, BreakerStatus::HalfOpen);
    assert_eq!(n.poll_timeout(), Some(at(50 * S)));
    n.handle_timeout(at(45 * S));
    assert!(asks(&drain(&mut n)).is_empty(), "one probe per interval");

    // The probe fails: still open, next probe at 50 s.
    fail(&mut n, 46 * S, "alice");
    drain(&mut n);
    assert_eq!(auth_status(&mut n, 46 * S).breaker, BreakerStatus::Open);
    n.handle_timeout(at(50 * S));
    assert_eq!(asks(&drain(&mut n)), vec![key("alice")]);

    answer(&mut n, 50_010, "alice", Decision::Permit);
    let out = drain(&mut n);
    assert!(events(&out).contains(&Event::AuthCircuitClosed {
        open_for_ms: 10_010
    }));
    assert_eq!(auth_status(&mut n, 51 * S).breaker, BreakerStatus::Closed);
    assert_eq!(n.poll_timeout(), None);
    // Normal enforcement resumes: the fresh permit is a hit, a miss asks Codios again.
    let (r, _) = answered_from_cache(&mut n, 51 * S, 20, "alice");
    assert!(is_authorized(&r, false));
    authorize(&mut n, 51 * S, 21, "carol");
    assert_eq!(asks(&drain(&mut n)), vec![key("carol")]);
}

#[test]
fn a_disabled_breaker_never_opens_and_stale_permits_end_at_max_stale() {
    let mut n = node(codios());
    prime(&mut n, 0, "alice", Decision::Permit);
    for (i, ms) in (10 * S..=600 * S).step_by(10_000).enumerate() {
        let out = failing_write(&mut n, ms, i as u64 + 1, "alice");
        assert!(opened_events(&out).is_empty());
        let r = responses(&out);
        if ms <= 300 * S {
            assert_eq!(
                r,
                vec![(i as u64 + 1, Verdict::Authorized { degraded: true })]
            );
        } else {
            assert!(is_unavailable(&r[0].1), "{ms}: {r:?}");
        }
    }
    assert_eq!(
        auth_status(&mut n, 601 * S).breaker,
        BreakerStatus::Disabled
    );
    assert_eq!(n.poll_timeout(), None);
}

/// A node with one peer, so the 500 ms drain tick runs beside the breaker's timer.
fn node_with_a_peer() -> Node {
    let peer = PeerInfo::new(
        AgentId::new("replica-eu").unwrap(),
        "http://replica-eu:7475",
        Role::Replica,
        1_000,
    );
    let restored = Restored {
        cluster: Some(ClusterState {
            role: Role::Primary,
            consistency: Consistency::Ap,
            peers: vec![peer],
            me: None,
        }),
        ..Restored::default()
    };
    node_with(codios_with_breaker(), restored)
}

#[test]
fn poll_timeout_is_the_earliest_of_the_drain_tick_and_the_probe_and_always_moves_forward() {
    let mut n = node_with_a_peer();
    n.handle_timeout(at(0));
    drain(&mut n);
    assert_eq!(n.poll_timeout(), Some(at(500)), "the drain tick alone");
    open_at_forty_seconds(&mut n);
    // The test skipped the ticks in between: the one overdue tick fires, and then the tick
    // (40.5 s) comes before the probe (45 s).
    n.handle_timeout(at(40 * S));
    drain(&mut n);
    assert_eq!(n.poll_timeout(), Some(at(40_500)));
    // The shell's loop from here: sleep until poll_timeout, handle_timeout, drain. Codios
    // stays down, so every probe fails at once.
    let mut now = at(40 * S);
    let mut probes = Vec::new();
    while now < at(70 * S) {
        let next = n.poll_timeout().expect("a timer is always armed here");
        assert!(next > now, "{next:?} after {now:?}");
        now = next;
        n.handle_timeout(now);
        let out = drain(&mut n);
        for o in &out {
            let Output::AskCodios { call, .. } = o else {
                continue;
            };
            probes.push(now);
            let outcome = Err(Failure::Unreachable("down".into()));
            n.handle(
                now,
                Input::CallEnded {
                    call: *call,
                    outcome,
                },
            );
            drain(&mut n);
        }
        assert!(
            n.poll_timeout().expect("armed") > now,
            "never a past instant twice"
        );
    }
    let every_five_s: Vec<_> = (45..=70).step_by(5).map(|s| at(s * S)).collect();
    assert_eq!(probes, every_five_s);
}
