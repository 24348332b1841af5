//! Witnesses (issue 17): a push carries the pusher's latest head; a peer that holds the
//! head's blocks cosigns it if it is signed with the author's enrolled key over the chain the
//! peer holds, and the cosignature comes back and joins the head. A head over another chain,
//! or under a key not enrolled, is refused and never cosigned.

mod common;

use common::{head_key, id, World};
use sapix_core::block::Hash;
use sapix_core::ledger::{Head, SignedHead, VerifiedHead, Witnessed};
use sapix_core::node::{Event, HeadRefusal, Input, LedgerAnswer, LedgerQuery, LedgerRefusal};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

fn trio() -> World {
    let mut w = World::cluster(&["a", "b", "c"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    w
}

/// The latest head `at` holds of `author`.
fn head_at(w: &mut World, at: &str, author: &str) -> Option<SignedHead> {
    let q = w.ask(at, |request| Input::LedgerWanted {
        request,
        query: LedgerQuery::Heads,
    });
    match w.answer(q) {
        Some(Response::Ledger(answer)) => match answer.as_ref() {
            LedgerAnswer::Heads(heads) => {
                heads.iter().find(|h| h.head.author == id(author)).cloned()
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

/// The witnesses of `head` whose cosignatures verify with their enrolled (test) keys.
fn witnesses(head: &SignedHead) -> Vec<String> {
    let mut out: Vec<String> = head
        .cosignatures
        .iter()
        .filter(|c| c.verifies(&head.head) && c.key == head_key(c.witness.as_str()).public())
        .map(|c| c.witness.to_string())
        .collect();
    out.sort();
    out
}

fn head_refusals(w: &World) -> Vec<(String, String, u64, HeadRefusal)> {
    w.events
        .iter()
        .filter_map(|(_, at, e)| match e {
            Event::HeadRefused { author, seq, why } => {
                Some((at.to_string(), author.to_string(), *seq, why.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_peer_cosigns_the_head_a_push_carries_and_the_author_keeps_the_cosignatures() {
    let mut w = trio();
    for n in 0..3 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    w.advance(3_000);
    let own = head_at(&mut w, "a", "a").expect("a signed a head");
    assert_eq!(own.head.seq, 3);
    assert!(own.verifies());
    assert_eq!(witnesses(&own), vec!["b", "c"]);
    // The head a persisted carries them too: they survive a restart.
    let persisted = w.host("a").persisted_head.clone().expect("persisted");
    assert_eq!(witnesses(&persisted), vec!["b", "c"]);
    // Each peer holds a's head, its own cosignature on it.
    for at in ["b", "c"] {
        let held = head_at(&mut w, at, "a").unwrap_or_else(|| panic!("{at} holds no head of a"));
        assert_eq!(held.head, own.head);
        assert!(held.verifies());
        assert!(witnesses(&held).contains(&at.to_string()), "{at}");
    }
    // Status counts them, per author, everywhere.
    let status = w.status("a");
    let me = status.nodes.iter().find(|n| n.agent_id == id("a")).unwrap();
    assert_eq!((me.head_seq, me.head_witnesses), (Some(3), Some(2)));
    let status = w.status("b");
    let a = status.nodes.iter().find(|n| n.agent_id == id("a")).unwrap();
    assert_eq!(a.head_seq, Some(3));
    assert!(a.head_witnesses >= Some(1), "{:?}", a.head_witnesses);
    assert_eq!(head_refusals(&w), vec![]);
    // A witness keeps the heads it witnessed across a restart, and proves up to them.
    let before = head_at(&mut w, "b", "a").unwrap();
    w.crash("b");
    w.restart("b");
    assert_eq!(head_at(&mut w, "b", "a"), Some(before));
    let q = w.ask("b", |request| Input::LedgerWanted {
        request,
        query: LedgerQuery::Consistency {
            author: id("a"),
            from: 1,
            to: None,
        },
    });
    assert!(
        matches!(w.answer(q), Some(Response::Ledger(_))),
        "{:?}",
        w.answer(q)
    );
}

#[test]
fn a_head_signed_after_the_last_push_reaches_caught_up_peers_alone() {
    let mut w = trio();
    // Two commits at one instant: the second head is owed for HEAD_EVERY, signed after the
    // blocks were pushed, and no later write carries it.
    w.write("a", r#"{"n":1}"#);
    w.write("a", r#"{"n":2}"#);
    w.advance(3_000);
    let own = head_at(&mut w, "a", "a").unwrap();
    assert_eq!(own.head.seq, 2);
    assert_eq!(witnesses(&own), vec!["b", "c"]);
    let alone = w
        .pushes
        .iter()
        .filter(|(_, pusher, _, f, t)| *pusher == id("a") && f > t);
    assert!(
        alone.count() >= 1,
        "no push of the head alone: {:?}",
        w.pushes
    );
    // Once witnessed, a head is not sent again: quiet peers get no more pushes.
    let before = w.pushes.len();
    w.advance(5_000);
    assert_eq!(w.pushes.len(), before, "{:?}", &w.pushes[before..]);
}

/// Delivers `head` to `at` as a push of no blocks would, and returns its answer.
fn push_head(w: &mut World, at: &str, head: SignedHead) -> Option<Witnessed> {
    let head = VerifiedHead::check(head).expect("signed");
    let req = w.ask(at, |request| Input::IngestRequested {
        request,
        blocks: Vec::new(),
        head: Some(head),
    });
    match w.answer(req) {
        Some(Response::Ingested { witnessed, .. }) => witnessed.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_head_over_another_chain_or_under_another_key_is_refused_and_not_cosigned() {
    let mut w = trio();
    w.write("a", r#"{"n":1}"#);
    w.write("a", r#"{"n":2}"#);
    w.advance(3_000);
    let held = head_at(&mut w, "b", "a").unwrap();
    // a's own key over another root at seq 2: a forked its chain (or someone holding its key
    // file signs for it).
    let forged = head_key("a").sign(Head {
        root: Hash([7; 32]),
        ts_ms: held.head.ts_ms + 1,
        ..held.head.clone()
    });
    assert_eq!(push_head(&mut w, "b", forged), None);
    // The seed's holders can sign blocks as a, not heads: another key is not a's.
    let stranger = head_key("mallory").sign(held.head.clone());
    assert_eq!(push_head(&mut w, "b", stranger.clone()), None);
    let refusals = head_refusals(&w);
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        matches!(&refusals[0], (at, author, 2, HeadRefusal::Diverged { .. }) if at == "b" && author == "a")
    );
    assert_eq!(
        refusals[1],
        (
            "b".into(),
            "a".into(),
            2,
            HeadRefusal::NotEnrolled { key: stranger.key }
        )
    );
    // b still holds a's honest head.
    assert_eq!(head_at(&mut w, "b", "a").unwrap().head, held.head);
    // An older honest head is not cosigned (b holds a later one), and is no refusal.
    let older = head_key("a").sign(Head {
        seq: 1,
        root: w
            .node("b")
            .chains()
            .tree(&id("a"))
            .unwrap()
            .root(1)
            .unwrap(),
        ..held.head.clone()
    });
    assert_eq!(push_head(&mut w, "b", older), None);
    assert_eq!(head_refusals(&w).len(), 2);
}

fn proof_to(w: &mut World, at: &str, author: &str, to: u64) -> Response {
    let q = w.ask(at, |request| Input::LedgerWanted {
        request,
        query: LedgerQuery::Consistency {
            author: id(author),
            from: 1,
            to: Some(to),
        },
    });
    w.answer(q).cloned().expect("answered")
}

fn equivocations(w: &mut World, at: &str, of: &str) -> Option<u64> {
    let status = w.status(at);
    let node = status.nodes.iter().find(|n| n.agent_id == id(of)).unwrap();
    node.equivocations
}

#[test]
fn a_head_over_another_chain_is_kept_as_evidence_once_and_no_proof_crosses_it() {
    let mut w = trio();
    for n in 0..3 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    w.advance(3_000);
    assert!(matches!(proof_to(&mut w, "b", "a", 3), Response::Ledger(_)));
    let held = head_at(&mut w, "b", "a").unwrap();
    let forged = head_key("a").sign(Head {
        seq: 2,
        root: Hash([7; 32]),
        ..held.head.clone()
    });
    // Refused twice (a push retried): one piece of evidence.
    assert_eq!(push_head(&mut w, "b", forged.clone()), None);
    assert_eq!(push_head(&mut w, "b", forged.clone()), None);
    let kept: Vec<String> = w.host("b").evidence.keys().cloned().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("a@2.head."), "{kept:?}");
    assert_eq!(equivocations(&mut w, "b", "a"), Some(1));
    assert_eq!(equivocations(&mut w, "c", "a"), None);
    // No proof reaches seq 2 or past it; below it, proofs are served.
    let refused = proof_to(&mut w, "b", "a", 3);
    assert_eq!(
        refused,
        Response::LedgerRefused(LedgerRefusal::Equivocated {
            author: id("a"),
            seq: 2
        })
    );
    assert!(matches!(proof_to(&mut w, "b", "a", 1), Response::Ledger(_)));
    // The evidence outlives a restart.
    w.crash("b");
    w.restart("b");
    w.advance(1_000);
    assert_eq!(equivocations(&mut w, "b", "a"), Some(1));
    assert!(matches!(
        proof_to(&mut w, "b", "a", 3),
        Response::LedgerRefused(LedgerRefusal::Equivocated { .. })
    ));
}

#[test]
fn a_second_block_at_a_held_seq_is_kept_as_evidence_beside_the_held_one() {
    let mut w = trio();
    w.write("a", r#"{"n":1}"#);
    w.advance(3_000);
    let held = w
        .host("b")
        .block(&id("a"), 1)
        .cloned()
        .expect("b holds a:1");
    // Someone holding the seed signs another block as a at seq 1.
    let mut twin = held.body.clone();
    twin.payload = b"\"forked\"".to_vec();
    let forged = twin.seal(&common::keys().signing_key(&id("a")));
    for _ in 0..2 {
        let blocks = vec![forged.clone().into_verified(&common::keys()).unwrap()];
        let req = w.ask("b", |request| Input::IngestRequested {
            request,
            blocks,
            head: None,
        });
        assert!(matches!(
            w.answer(req),
            Some(Response::IngestRefused { .. })
        ));
    }
    let kept: Vec<_> = w.host("b").evidence.values().cloned().collect();
    assert_eq!(
        kept,
        vec![sapix_core::ledger::Evidence::Blocks {
            held: held.hash,
            refused: forged
        }]
    );
    assert_eq!(equivocations(&mut w, "b", "a"), Some(1));
}
