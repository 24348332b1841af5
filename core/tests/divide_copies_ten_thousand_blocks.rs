//! Bootstrap (`POST /v1/cluster/divide`): the new node is checked to answer as itself, every
//! existing block is copied to it in batches, it becomes a member on every node (full mesh,
//! learned through announcements), and its pull starts after what the copy delivered
//! (spec: "Step 3 — Bootstrap the replica"; DESIGN §4).

mod common;

use common::{endpoint, id, info, t, World};
use sapix_core::node::{Event, Input};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{AgentId, Consistency, Response, Role};

fn write_many(w: &mut World, name: &str, n: u64) {
    let was = std::mem::replace(&mut w.tracing, false);
    for i in 1..=n {
        let req = w.write(name, &format!(r#"{{"i":{i}}}"#));
        assert!(matches!(w.answer(req), Some(Response::Written(_))));
    }
    w.tracing = was;
    w.note(&format!("{name} wrote {n} records (not traced)"));
}

fn peers_of(w: &World, name: &str) -> Vec<AgentId> {
    w.node(name).peers().keys().cloned().collect()
}

#[test]
fn divide_copies_every_block_then_makes_the_new_node_a_member() {
    let mut w = World::new();
    w.add("a", None);
    write_many(&mut w, "a", 10_000);
    w.add("b", None);

    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new: info("b", Role::Replica),
        via: None,
    });
    assert_eq!(
        w.answer(req),
        Some(&Response::Divided {
            replica_agent_id: id("b"),
            blocks_pushed: 10_000,
            endpoint: endpoint("b"),
            members_informed: vec![id("b")],
            members_pending: vec![],
        })
    );
    // "The replica is immediately readable after the call returns."
    assert_eq!(w.host("b").store.len(), 10_000);
    assert_eq!(w.assert_strand_intact("b").get(&id("a")), Some(&10_000));
    assert_eq!(w.chain_view("a"), w.chain_view("b"));
    let progress: Vec<&Event> = w
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, Event::DivideProgress { .. }))
        .map(|(_, _, e)| e)
        .collect();
    assert_eq!(
        progress,
        [&Event::DivideProgress {
            to: id("b"),
            copied: 10_000,
            tip: 10_000
        }]
    );
    assert_eq!(peers_of(&w, "a"), [id("b")]);
    let a_state = w.host("a").persisted_cluster.clone().unwrap();
    assert_eq!(
        a_state.peers,
        // A divide creates b's membership entry at version 1.
        [sapix_core::repl::peer::PeerInfo {
            version: 1,
            ..info("b", Role::Replica)
        }],
        "persisted before answered"
    );

    w.note("the next tick announces the membership to b");
    w.advance(1_000);
    assert_eq!(peers_of(&w, "b"), [id("a")]);
    let b_state = w.host("b").persisted_cluster.clone().unwrap();
    assert_eq!(b_state.role, Role::Replica);
    assert_eq!(b_state.peers.len(), 1);
    assert_eq!(w.host("b").persisted_cursors, [(id("a"), 10_000)]);

    w.note("a writes once more: it is pushed to b; b's pull starts after the copy");
    let req = w.write("a", r#"{"i":10001}"#);
    assert!(matches!(w.answer(req), Some(Response::Written(_))));
    w.advance(2_000);
    assert_eq!(w.host("b").store.len(), 10_001);
    let st = w.status("b");
    assert_eq!(st.nodes[0].role, Role::Replica);
    // The pull ran once, from the hinted cursor: the copy is never fetched again. (The
    // cursor counts what was pulled; a's new block came by push.)
    assert_eq!(st.nodes[1].pull_cursor, Some(10_000));
    assert!(w.trace.contains("b> FetchPage a after=10000"));
    assert!(!w.trace.contains("b> FetchPage a after=0"));

    w.note("dividing b again to another endpoint is refused; nothing is probed or copied");
    let outputs_before = w.counts.values().sum::<u64>();
    let mut moved = info("b", Role::Replica);
    moved.endpoint = "http://elsewhere:7475".into();
    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new: moved,
        via: None,
    });
    assert!(matches!(
        w.answer(req),
        Some(Response::DivideRefused { reason }) if reason.contains("already a member")
    ));
    assert_eq!(
        w.counts.values().sum::<u64>(),
        outputs_before + 1,
        "only the answer"
    );
    insta::assert_snapshot!(w.trace);
}

#[test]
fn dividing_a_third_node_makes_a_full_mesh_of_three() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.run_until(t(0));
    for i in 0..3 {
        w.write("a", &format!(r#"{{"a":{i}}}"#));
        w.write("b", &format!(r#"{{"b":{i}}}"#));
    }
    w.advance(1_000);
    w.tracing = true;
    w.note("a and b hold a/1..=3 and b/1..=3; c starts empty");
    w.add("c", None);
    w.hide = vec!["Probe", "ProbeAnswer"];

    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new: info("c", Role::Replica),
        via: None,
    });
    assert!(matches!(
        w.answer(req),
        Some(Response::Divided {
            blocks_pushed: 6,
            ..
        })
    ));
    w.advance(3_000);
    assert_eq!(peers_of(&w, "a"), [id("b"), id("c")]);
    assert_eq!(peers_of(&w, "b"), [id("a"), id("c")]);
    assert_eq!(peers_of(&w, "c"), [id("a"), id("b")]);
    for n in ["a", "b", "c"] {
        let st = w.status(n);
        assert!(!st.partitioned, "{n}");
        assert_eq!(st.nodes.len(), 3, "{n}");
    }

    w.note("a write on b now reaches c directly");
    w.write("b", r#"{"b":3}"#);
    w.advance(1_000);
    let a = w.chain_view("a");
    assert_eq!(a, w.chain_view("b"));
    assert_eq!(a, w.chain_view("c"));
    assert_eq!(w.host("c").store.len(), 7);
    w.assert_strand_intact("c");
    insta::assert_snapshot!(w.trace);
}

#[test]
fn divide_to_a_node_that_answers_as_someone_else_copies_nothing() {
    let mut w = World::new();
    w.add("a", None);
    write_many(&mut w, "a", 3);
    w.add("x", None);
    let mut wrong = info("b", Role::Replica);
    wrong.endpoint = endpoint("x");
    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new: wrong,
        via: None,
    });
    assert!(matches!(
        w.answer(req),
        Some(Response::DivideFailed { reason }) if reason.contains("answered as x")
    ));
    assert!(w.host("x").store.is_empty());
    assert!(w.node("a").peers().is_empty());
    insta::assert_snapshot!(w.trace);
}
