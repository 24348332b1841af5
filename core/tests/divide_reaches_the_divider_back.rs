//! A divide leaves a two-way mesh or fails saying why (issue 11): the spec's Steps 1–2 start
//! both nodes on `0.0.0.0:7475` with no SAPIX_ENDPOINT. The divider takes its endpoint from the
//! URL the operator's divide call was addressed to; the new node probes the divider back at the
//! endpoint it advertises before it records anything, so a divider advertising an address the
//! new node cannot reach fails the divide, naming the setting to fix, instead of answering 200
//! and leaving a replica that reports a partition for ever. The answer names the members told
//! and those still pending.

mod common;

use common::{endpoint, id, info, World};
use sapix_core::node::Input;
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{AgentId, Consistency, Response, Role};

const WILDCARD: &str = "http://0.0.0.0:7475";

fn peers_of(w: &World, name: &str) -> Vec<AgentId> {
    w.node(name).peers().keys().cloned().collect()
}

fn divide(w: &mut World, at: &str, new: &str, via: Option<&str>) -> Response {
    let req = w.ask(at, |request| Input::DivideRequested {
        request,
        new: info(new, Role::Replica),
        via: via.map(str::to_string),
    });
    w.answer(req).cloned().expect("the divide is answered")
}

/// Two nodes as the page starts them: `a` with data, `b` empty, both bound to 0.0.0.0.
fn page_typed() -> World {
    let mut w = World::new();
    w.add_at("a", WILDCARD, None);
    for i in 0..3 {
        w.write("a", &format!(r#"{{"i":{i}}}"#));
    }
    w.add_at("b", WILDCARD, None);
    w
}

#[test]
fn a_wildcard_divider_learns_its_endpoint_from_the_divide_call_and_the_mesh_is_two_way() {
    let mut w = page_typed();
    let answer = divide(&mut w, "a", "b", Some("http://a:7475"));
    assert_eq!(
        answer,
        Response::Divided {
            replica_agent_id: id("b"),
            blocks_pushed: 3,
            endpoint: endpoint("b"),
            members_informed: vec![id("b")],
            members_pending: vec![],
        }
    );
    assert!(w.trace.contains(
        r#"a> Log EndpointLearned { endpoint: "http://a:7475", from: "the Host of a divide call" }"#
    ));
    let a = w.host("a").persisted_cluster.clone().expect("a persisted");
    assert_eq!(a.me.expect("own entry").endpoint, "http://a:7475");
    // b took its own endpoint from the divide and knows a where a is reached.
    let b = w.status("b");
    assert_eq!(b.nodes[0].endpoint, endpoint("b"));
    assert_eq!(b.nodes[1].endpoint, "http://a:7475");
    w.advance(3_000);
    let b = w.status("b");
    assert!(!b.partitioned, "b reaches a: {b:?}");
    let ok = w.write("b", r#"{"from":"b"}"#);
    assert!(
        matches!(w.answer(ok), Some(Response::Written(_))),
        "a CP write on the replica: {:?}",
        w.answer(ok)
    );
}

#[test]
fn a_divider_the_new_node_cannot_reach_back_fails_the_divide_naming_sapix_endpoint() {
    let mut w = page_typed();
    // No URL for the call (an agent behind something that drops Host): a still advertises
    // 0.0.0.0, which from b reaches b itself.
    let answer = divide(&mut w, "a", "b", None);
    let Response::DivideFailed { reason } = answer else {
        panic!("the divide must fail, got {answer:?}");
    };
    for part in [
        "b cannot reach a back at http://0.0.0.0:7475",
        "answered as b",
        "SAPIX_ENDPOINT",
        "nothing was recorded on b",
    ] {
        assert!(reason.contains(part), "{part:?} missing from {reason:?}");
    }
    assert!(peers_of(&w, "a").is_empty(), "a registered nothing");
    assert!(peers_of(&w, "b").is_empty(), "b recorded nothing");
    assert!(
        w.host("b").persisted_cluster.is_none(),
        "b persisted nothing"
    );
    // Retried once the operator's call names a: the same body completes.
    let again = divide(&mut w, "a", "b", Some("http://a:7475"));
    assert!(matches!(again, Response::Divided { .. }), "{again:?}");
    assert_eq!(peers_of(&w, "b"), [id("a")]);
}

#[test]
fn a_member_down_during_a_divide_is_named_pending_and_learns_the_new_member_later() {
    let mut w = World::cluster(&["a", "b", "c"], Consistency::Ap, BackoffPolicy::default());
    w.advance(3_000);
    w.cut("a", "c");
    w.advance(3_000);
    w.add("d", None);
    let answer = divide(&mut w, "a", "d", None);
    let Response::Divided {
        members_informed,
        members_pending,
        ..
    } = answer
    else {
        panic!("the divide must succeed: {answer:?}");
    };
    assert_eq!(members_informed, [id("d"), id("b")]);
    assert_eq!(members_pending, [id("c")]);
    assert!(!peers_of(&w, "c").contains(&id("d")));
    w.heal("a", "c");
    w.advance(10_000);
    assert_eq!(peers_of(&w, "c"), [id("a"), id("b"), id("d")]);
}

/// Found by the runbook test: right after a divide the new node reported its divider
/// unreachable (and, in CP, refused writes as partitioned) until its first probe, half a
/// second later, though the probe back had just reached the divider. That answer counts as
/// the first probe.
#[test]
fn the_new_node_counts_its_probe_back_as_reaching_the_divider() {
    let mut w = page_typed();
    let answer = divide(&mut w, "a", "b", Some("http://a:7475"));
    assert!(matches!(answer, Response::Divided { .. }), "{answer:?}");
    let b = w.status("b");
    assert!(b.nodes[1].reachable, "a reached by the probe back: {b:?}");
    assert!(!b.partitioned, "{b:?}");
    let ok = w.write("b", r#"{"from":"b"}"#);
    assert!(
        matches!(w.answer(ok), Some(Response::Written(_))),
        "a CP write on the replica at once: {:?}",
        w.answer(ok)
    );
}
