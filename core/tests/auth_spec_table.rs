//! The spec's "Codios auth cache" table, one row per test, through the node; plus the root key
//! and local mode (DESIGN §5). Times are stated; Codios is answered by hand.

mod auth_support;

use auth_support::*;
use sapix_core::auth::Decision;
use sapix_core::node::Event;
use sapix_core::status::{AuthMode, BreakerStatus};

#[test]
fn cache_hit_permit_proceeds_with_no_codios_call_for_five_seconds() {
    let mut n = node(codios());
    prime(&mut n, 0, "alice", Decision::Permit);
    for (req, ms) in [(1, 1), (2, 2_500), (3, 4_999)] {
        let (r, _) = answered_from_cache(&mut n, ms, req, "alice");
        assert!(is_authorized(&r, false), "{ms} ms: {r:?}");
    }
    // At 5 s the permit is a miss: Codios is asked again.
    authorize(&mut n, 5 * S, 4, "alice");
    let out = drain(&mut n);
    assert_eq!(asks(&out), vec![key("alice")]);
    assert!(responses(&out).is_empty(), "the write waits on Codios");
}

#[test]
fn cache_hit_deny_blocks_with_no_codios_call_for_two_seconds() {
    let mut n = node(codios());
    prime(&mut n, 0, "mallory", Decision::Deny);
    for (req, ms) in [(1, 1), (2, 1_999)] {
        let (r, _) = answered_from_cache(&mut n, ms, req, "mallory");
        assert!(is_denied(&r), "{ms} ms: {r:?}");
    }
    authorize(&mut n, 2 * S, 3, "mallory");
    assert_eq!(asks(&drain(&mut n)), vec![key("mallory")]);
}

#[test]
fn cache_miss_asks_codios_and_answers_with_its_decision() {
    let mut n = node(codios());
    authorize(&mut n, 0, 1, "alice");
    authorize(&mut n, 0, 2, "mallory");
    let out = drain(&mut n);
    assert_eq!(asks(&out), vec![key("alice"), key("mallory")]);
    assert!(responses(&out).is_empty());

    answer(&mut n, 40, "mallory", Decision::Deny);
    answer(&mut n, 50, "alice", Decision::Permit);
    let r = responses(&drain(&mut n));
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].0, 2);
    assert!(is_denied(&r[0].1));
    assert_eq!(r[1], (1, Verdict::Authorized { degraded: false }));
    if let Verdict::Denied { reason } = &r[0].1 {
        assert!(reason.contains("orders"), "{reason}");
    }
    // The TTL counts from when the call was sent (0), not from the answer (50 ms).
    let (r, _) = answered_from_cache(&mut n, 4_999, 3, "alice");
    assert!(is_authorized(&r, false));
    authorize(&mut n, 5 * S, 4, "alice");
    assert_eq!(asks(&drain(&mut n)).len(), 1);
}

#[test]
fn codios_unreachable_with_a_stale_permit_serves_it_and_logs_auth_degraded() {
    let mut n = node(codios());
    prime(&mut n, 0, "alice", Decision::Permit);
    authorize(&mut n, 60 * S, 1, "alice");
    assert_eq!(asks(&drain(&mut n)).len(), 1);
    fail(&mut n, 60 * S + 20, "alice");
    let out = drain(&mut n);
    assert_eq!(
        responses(&out),
        vec![(1, Verdict::Authorized { degraded: true })]
    );
    let degraded: Vec<Event> = events(&out)
        .into_iter()
        .filter(|e| matches!(e, Event::AuthDegraded { .. }))
        .collect();
    assert_eq!(
        degraded,
        vec![Event::AuthDegraded {
            key: key("alice"),
            age_ms: 60_020,
            circuit_open: false,
            reason: "Codios call failed: connection failed: connection refused".into(),
        }]
    );
    assert_eq!(auth_status(&mut n, 61 * S).degraded_total, 1);
}

#[test]
fn a_stale_permit_is_served_up_to_max_stale_and_refused_after() {
    let mut n = node(codios());
    prime(&mut n, 0, "alice", Decision::Permit);
    authorize(&mut n, 300 * S, 1, "alice");
    drain(&mut n);
    fail(&mut n, 300 * S, "alice");
    assert_eq!(
        responses(&drain(&mut n)),
        vec![(1, Verdict::Authorized { degraded: true })],
        "exactly 300 s old is still within SAPIX_AUTH_MAX_STALE_SECS"
    );
    authorize(&mut n, 300 * S + 1, 2, "alice");
    drain(&mut n);
    fail(&mut n, 300 * S + 1, "alice");
    let out = drain(&mut n);
    let r = responses(&out);
    assert_eq!(r.len(), 1);
    assert!(is_unavailable(&r[0].1), "{r:?}");
    assert_eq!(degraded_logs(&out), 0);
}

#[test]
fn codios_unreachable_with_nothing_cached_refuses() {
    let mut n = node(codios());
    authorize(&mut n, 0, 1, "alice");
    drain(&mut n);
    fail(&mut n, 2 * S, "alice");
    let out = drain(&mut n);
    let r = responses(&out);
    assert!(r.len() == 1 && is_unavailable(&r[0].1), "{r:?}");
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::CodiosFailed { waiting: 1, .. })));
}

#[test]
fn the_root_key_is_always_permitted_without_asking_codios() {
    for settings in [
        codios(),
        codios_with_breaker(),
        codios_fail_closed(),
        local(),
    ] {
        let mut n = node(settings);
        authorize_root(&mut n, 0, 1);
        let out = drain(&mut n);
        assert!(asks(&out).is_empty());
        assert_eq!(
            responses(&out),
            vec![(1, Verdict::Authorized { degraded: false })]
        );
        assert!(
            let_through(&out).is_empty(),
            "the root key needs no decision"
        );
    }
}

/// The write is one input: nothing is appended while Codios is asked, the write is appended
/// when the permit arrives, and a denied or unanswerable write is never appended.
#[test]
fn a_write_waits_for_its_decision_and_only_a_permit_appends_it() {
    let appends = |out: &[sapix_core::node::Output]| {
        out.iter()
            .filter(|o| matches!(o, sapix_core::node::Output::Append { .. }))
            .count()
    };
    let mut n = node(codios());
    authorize(&mut n, 0, 1, "alice");
    authorize(&mut n, 0, 2, "mallory");
    authorize(&mut n, 0, 3, "eve");
    let out = drain(&mut n);
    assert_eq!(appends(&out), 0, "nothing is written before Codios answers");
    assert_eq!(asks(&out), vec![key("alice"), key("mallory"), key("eve")]);
    answer(&mut n, 5, "mallory", Decision::Deny);
    fail(&mut n, 6, "eve");
    let out = drain(&mut n);
    assert_eq!(appends(&out), 0, "a deny and a failed call write nothing");
    assert!(is_denied(&responses(&out)[0].1));
    assert!(is_unavailable(&responses(&out)[1].1));
    answer(&mut n, 7, "alice", Decision::Permit);
    let out = drain(&mut n);
    assert_eq!(appends(&out), 1);
    assert_eq!(let_through(&out), vec![1]);
    assert_eq!(
        responses(&out),
        vec![(1, Verdict::Authorized { degraded: false })]
    );
}

#[test]
fn local_mode_denies_every_token_but_the_root_key_and_says_why() {
    let mut n = node(local());
    authorize(&mut n, 0, 1, "alice");
    let out = drain(&mut n);
    assert!(asks(&out).is_empty(), "local mode never asks Codios");
    match responses(&out).as_slice() {
        [(1, Verdict::Denied { reason })] => assert!(reason.contains("local mode"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let s = auth_status(&mut n, 1);
    assert_eq!(
        (s.mode, s.breaker),
        (AuthMode::Local, BreakerStatus::Disabled)
    );
}

/// The whole table as one reviewable trace.
#[test]
fn the_spec_table_told_as_one_story() {
    let mut n = node(codios());
    let mut trace = String::new();
    let mut step =
        |n: &mut sapix_core::Node, ms: u64, what: &str, f: &dyn Fn(&mut sapix_core::Node)| {
            f(n);
            let out = drain(n);
            trace_line(&mut trace, ms, what, &out);
        };
    step(&mut n, 0, "alice writes (miss)", &|n| {
        authorize(n, 0, 1, "alice")
    });
    step(&mut n, 3, "Codios permits alice", &|n| {
        answer(n, 3, "alice", Decision::Permit)
    });
    step(&mut n, 4_000, "alice writes (hit)", &|n| {
        authorize(n, 4_000, 2, "alice")
    });
    step(&mut n, 4_100, "mallory writes (miss)", &|n| {
        authorize(n, 4_100, 3, "mallory")
    });
    step(&mut n, 4_104, "Codios denies mallory", &|n| {
        answer(n, 4_104, "mallory", Decision::Deny)
    });
    step(&mut n, 6_000, "mallory writes (deny hit)", &|n| {
        authorize(n, 6_000, 4, "mallory")
    });
    step(&mut n, 7_000, "alice writes (stale: miss)", &|n| {
        authorize(n, 7_000, 5, "alice")
    });
    step(&mut n, 9_000, "Codios call fails", &|n| {
        fail(n, 9_000, "alice")
    });
    step(&mut n, 9_500, "mallory writes (stale deny: miss)", &|n| {
        authorize(n, 9_500, 6, "mallory")
    });
    step(&mut n, 9_510, "Codios unreachable", &|n| {
        fail(n, 9_510, "mallory")
    });
    insta::assert_snapshot!(trace);
}
