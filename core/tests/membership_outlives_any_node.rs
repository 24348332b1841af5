//! Membership belongs to no single node (DESIGN §4, §6.9; issue 11): a divide is answered
//! only once the new node has recorded every member, so losing the divider right after the
//! answer loses no member; a removed member is dropped everywhere, CP stops waiting for it,
//! and its id never joins again. Found by the simulator: seeds 0xd4f71b0476, 0xd4f71b9443 and
//! others in sim/regression-seeds.txt (a divider down for good right after `Divided`).

mod common;

use common::{id, info, World};
use sapix_core::node::Input;
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{AgentId, Consistency, Response, Role};

fn peers_of(w: &World, name: &str) -> Vec<AgentId> {
    w.node(name).peers().keys().cloned().collect()
}

#[test]
fn when_a_divide_is_answered_the_new_node_already_knows_every_member() {
    let mut w = World::cluster(&["a", "b"], Consistency::Cp, BackoffPolicy::default());
    w.advance(3_000);
    w.add("c", None);
    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new: info("c", Role::Replica),
        via: None,
    });
    assert!(
        matches!(w.answer(req), Some(Response::Divided { .. })),
        "{:?}",
        w.answer(req)
    );
    // At the moment of the answer, before any tick: c knows a and b durably.
    assert_eq!(peers_of(&w, "c"), [id("a"), id("b")]);
    let persisted = w.host("c").persisted_cluster.clone().expect("c persisted");
    let names: Vec<AgentId> = persisted.peers.iter().map(|p| p.agent_id.clone()).collect();
    assert_eq!(names, [id("a"), id("b")]);
    w.note("the divider is lost for good right after answering");
    w.crash("a");
    w.advance(10_000);
    assert!(
        peers_of(&w, "b").contains(&id("c")),
        "b learned c without a"
    );
}

#[test]
fn a_removed_member_is_dropped_everywhere_cp_stops_waiting_and_its_id_never_rejoins() {
    let mut w = World::cluster(&["a", "b", "c"], Consistency::Cp, BackoffPolicy::default());
    w.advance(3_000);
    w.crash("c");
    w.advance(3_000);
    let refused = w.write("a", r#"{"n":1}"#);
    assert!(
        matches!(w.answer(refused), Some(Response::Partitioned { .. })),
        "CP waits for c while it is a member"
    );
    let req = w.ask("a", |request| Input::RemoveRequested {
        request,
        agent_id: id("c"),
    });
    assert_eq!(
        w.answer(req),
        Some(&Response::MemberRemoved { agent_id: id("c") })
    );
    w.advance(5_000);
    assert_eq!(peers_of(&w, "a"), [id("b")]);
    assert_eq!(peers_of(&w, "b"), [id("a")], "the tombstone spread to b");
    let ok = w.write("a", r#"{"n":2}"#);
    w.advance(1_000);
    assert!(
        matches!(w.answer(ok), Some(Response::Written(_))),
        "CP no longer waits for c: {:?}",
        w.answer(ok)
    );
    let again = w.ask("b", |request| Input::DivideRequested {
        request,
        new: info("c", Role::Replica),
        via: None,
    });
    assert!(
        matches!(w.answer(again), Some(Response::DivideRefused { reason }) if reason.contains("removed")),
        "{:?}",
        w.answer(again)
    );
    let me = w.ask("a", |request| Input::RemoveRequested {
        request,
        agent_id: id("a"),
    });
    assert!(matches!(w.answer(me), Some(Response::RemoveRefused { .. })));
}
