//! Head-key enrolment (issue 17): a divide enrols the new node's head key in its membership
//! entry, so it spreads with membership; a member's key changes only by its own rotation,
//! signed by the key it replaces; any other key offered for a member is refused and reported.

mod common;

use common::{endpoint, head_key, id, info, World};
use sapix_core::ledger::{HeadKeys, HeadPublicKey};
use sapix_core::node::{Event, Input, LedgerAnswer, LedgerQuery};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{Consistency, Response, Role};

fn pair() -> World {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    w
}

/// The head key `at` shows for `member` in its status, and how many are enrolled.
fn enrolled(w: &mut World, at: &str, member: &str) -> (Option<String>, Option<usize>) {
    let status = w.status(at);
    let n = status
        .nodes
        .iter()
        .find(|n| n.agent_id == id(member))
        .unwrap_or_else(|| panic!("{at} does not know {member}"));
    (n.head_key.clone(), n.head_keys_enrolled)
}

fn hex(name: &str) -> Option<String> {
    Some(head_key(name).public().to_hex())
}

fn refusals(w: &World) -> Vec<(String, String)> {
    w.events
        .iter()
        .filter_map(|(_, at, e)| match e {
            Event::HeadKeyRefused { member, .. } => Some((at.to_string(), member.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_divide_enrols_the_key_the_new_node_answered_with_on_every_member() {
    let mut w = pair();
    w.write("a", r#"{"n":1}"#);
    w.add("c", None);
    // What an operator's call carries: no key; the divider learns it from the probe answer.
    let new = PeerInfo::new(id("c"), endpoint("c"), Role::Replica, 0);
    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new,
        via: None,
    });
    assert!(matches!(w.answer(req), Some(Response::Divided { .. })));
    w.advance(5_000);
    for at in ["a", "b", "c"] {
        for member in ["a", "b", "c"] {
            assert_eq!(
                enrolled(&mut w, at, member),
                (hex(member), Some(1)),
                "{at}'s view of {member}"
            );
        }
    }
    assert_eq!(refusals(&w), vec![]);
}

#[test]
fn a_divide_of_a_member_answering_with_another_key_copies_nothing() {
    let mut w = pair();
    // b comes back with a new key file: the divide that would re-add it refuses.
    w.host_mut("b").config.head_key = head_key("b-impostor");
    w.crash("b");
    w.restart("b");
    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new: PeerInfo::new(id("b"), endpoint("b"), Role::Replica, 0),
        via: None,
    });
    match w.answer(req) {
        Some(Response::DivideFailed { reason }) => {
            assert!(reason.contains("rotate-head-key"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(enrolled(&mut w, "a", "b"), (hex("b"), Some(1)));
    // b itself says its key file is not what the cluster enrolled.
    assert!(w.events.iter().any(|(_, at, e)| *at == id("b")
        && matches!(e, Event::HeadKeyNotEnrolled { local, enrolled }
            if *local == head_key("b-impostor").public() && *enrolled == head_key("b").public())));
}

#[test]
fn a_rotation_signed_by_the_old_key_spreads_and_the_next_heads_use_the_new_key() {
    let mut w = pair();
    w.write("b", r#"{"n":1}"#);
    let req = w.ask("b", |request| Input::RotateHeadKey {
        request,
        next: head_key("b2"),
    });
    assert_eq!(
        w.answer(req),
        Some(&Response::HeadKeyRotated {
            key: head_key("b2").public(),
            replaced: head_key("b").public(),
            enrolled: 2,
        })
    );
    w.advance(3_000);
    for at in ["a", "b"] {
        assert_eq!(enrolled(&mut w, at, "b"), (hex("b2"), Some(2)), "at {at}");
    }
    // b's own head is signed again with the new key.
    let q = w.ask("b", |request| Input::LedgerWanted {
        request,
        query: LedgerQuery::Heads,
    });
    let Some(Response::Ledger(answer)) = w.answer(q) else {
        panic!("heads")
    };
    let LedgerAnswer::Heads(heads) = &**answer else {
        panic!("heads")
    };
    let own = heads.iter().find(|h| h.head.author == id("b")).unwrap();
    assert_eq!((own.key, own.head.seq), (head_key("b2").public(), 1));
    assert!(own.verifies());
    // The rotation survives a restart of either side.
    w.crash("a");
    w.restart("a");
    w.host_mut("b").config.head_key = head_key("b2");
    w.crash("b");
    w.restart("b");
    w.advance(3_000);
    assert_eq!(enrolled(&mut w, "a", "b"), (hex("b2"), Some(2)));
    assert_eq!(enrolled(&mut w, "b", "b"), (hex("b2"), Some(2)));
    assert!(!w
        .events
        .iter()
        .any(|(_, _, e)| matches!(e, Event::HeadKeyNotEnrolled { .. })));
    // Only the enrolled key may rotate: a node whose key file is not it is refused.
    w.host_mut("a").config.head_key = head_key("a-lost");
    w.crash("a");
    w.restart("a");
    let req = w.ask("a", |request| Input::RotateHeadKey {
        request,
        next: head_key("a3"),
    });
    assert!(matches!(
        w.answer(req),
        Some(Response::RotateRefused { .. })
    ));
    assert_eq!(enrolled(&mut w, "b", "a"), (hex("a"), Some(1)));
}

#[test]
fn another_key_offered_for_a_member_is_refused_and_reported_once() {
    let mut w = pair();
    let mut forged = info("b", Role::Replica);
    forged.version = 99;
    forged.head_keys = HeadKeys::first(head_key("mallory").public());
    // A rotation signed by a key that is not b's.
    let spliced = HeadKeys::first(head_key("mallory").public())
        .rotated(&id("b"), &head_key("mallory"), head_key("m2").public())
        .unwrap();
    let mut forged_rotation = forged.clone();
    forged_rotation.head_keys = spliced;
    for members in [
        vec![forged.clone()],
        vec![forged.clone()],
        vec![forged_rotation],
    ] {
        let req = w.ask("a", |request| Input::MembersAnnounced {
            request,
            from: None,
            members,
            your_role: None,
            cursors: vec![],
        });
        assert!(matches!(
            w.answer(req),
            Some(Response::MembersUpdated { .. })
        ));
    }
    w.advance(5_000);
    assert_eq!(enrolled(&mut w, "a", "b"), (hex("b"), Some(1)));
    // Reported once per offered key, not at every exchange.
    let mallory: Vec<HeadPublicKey> = w
        .events
        .iter()
        .filter_map(|(_, _, e)| match e {
            Event::HeadKeyRefused {
                offered, enrolled, ..
            } => {
                assert_eq!(*enrolled, Some(head_key("b").public()));
                Some(*offered)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        mallory,
        vec![head_key("mallory").public(), head_key("m2").public()]
    );
    assert_eq!(refusals(&w).len(), 2);
}
