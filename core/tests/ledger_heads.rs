//! Signed heads and proofs (issue 17): a node signs a head of its own chain after commits
//! extend it — at once, or when [`HEAD_EVERY`] has passed since its last — and on demand for a
//! ledger query; never past what is durable. Proofs come from the chains' Merkle trees and
//! verify against the head.

mod common;

use common::{head_key, id, World};
use sapix_core::ledger::wire::{ConsistencyProof, InclusionProof};
use sapix_core::ledger::{SignedHead, Tree};
use sapix_core::node::{
    Input, LedgerAnswer, LedgerQuery, LedgerRefusal, OwnChainUnsafe, Timer, HEAD_EVERY,
};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

fn one() -> World {
    let mut w = World::cluster(&["a"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    w
}

fn ledger(w: &mut World, name: &str, query: LedgerQuery) -> Result<LedgerAnswer, LedgerRefusal> {
    let req = w.ask(name, |request| Input::LedgerWanted { request, query });
    match w.answer(req) {
        Some(Response::Ledger(a)) => Ok((**a).clone()),
        Some(Response::LedgerRefused(r)) => Err(r.clone()),
        other => panic!("ledger query answered {other:?}"),
    }
}

fn heads(w: &mut World, name: &str) -> Vec<SignedHead> {
    match ledger(w, name, LedgerQuery::Heads) {
        Ok(LedgerAnswer::Heads(h)) => h,
        other => panic!("{other:?}"),
    }
}

/// The tree of `name`'s durable copy of `author`'s chain.
fn tree_of(w: &World, name: &str, author: &str) -> Tree {
    let chain = w.chain_view(name);
    let (_, hashes) = chain.iter().find(|(a, _)| *a == id(author)).unwrap();
    Tree::from_blocks(hashes)
}

#[test]
fn a_commit_is_followed_by_a_signed_head_at_most_every_100_ms() {
    let mut w = one();
    w.write("a", r#"{"n":1}"#);
    let first = w
        .host("a")
        .persisted_head
        .clone()
        .expect("a head after the first commit");
    assert_eq!((first.head.author.as_str(), first.head.seq), ("a", 1));
    assert!(first.verifies());
    assert_eq!(
        first.key,
        head_key("a").public(),
        "signed with a's own head key"
    );
    assert_eq!(first.head.root, tree_of(&w, "a", "a").root(1).unwrap());

    // Within 100 ms of it, commits owe a head rather than sign one each.
    w.write("a", r#"{"n":2}"#);
    w.write("a", r#"{"n":3}"#);
    assert_eq!(w.host("a").persisted_head.as_ref().unwrap().head.seq, 1);
    assert!(w
        .node("a")
        .deadlines()
        .iter()
        .any(|(_, t)| *t == Timer::Head));
    w.advance(HEAD_EVERY.as_millis() as u64);
    let later = w.host("a").persisted_head.clone().unwrap();
    assert_eq!(later.head.seq, 3, "the owed head covers every commit since");
    assert!(later.verifies());
    assert_eq!(later.head.root, tree_of(&w, "a", "a").root(3).unwrap());
    assert!(!w
        .node("a")
        .deadlines()
        .iter()
        .any(|(_, t)| *t == Timer::Head));
}

#[test]
fn proofs_verify_against_the_head_and_refuse_what_is_not_vouched_for() {
    let mut w = one();
    for n in 0..13 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    // A query signs the head on demand: no 100 ms wait.
    let hs = heads(&mut w, "a");
    assert_eq!(hs.len(), 1);
    let head = hs[0].clone();
    assert_eq!(head.head.seq, 13);
    assert!(head.verifies());
    for seq in 1..=13 {
        let query = LedgerQuery::Inclusion {
            author: id("a"),
            seq,
            size: None,
        };
        let Ok(LedgerAnswer::Inclusion(p)) = ledger(&mut w, "a", query) else {
            panic!("no proof of a:{seq}")
        };
        assert_eq!(p.head.as_ref(), Some(&head));
        assert_eq!(p.verify(&head.head.root), Ok(()), "a:{seq}");
        // Through the JSON a client sees.
        let text = serde_json::to_string(&p.to_json()).unwrap();
        assert_eq!(InclusionProof::from_json(&text).unwrap(), p);
    }
    let old_root = tree_of(&w, "a", "a").root(5).unwrap();
    let query = LedgerQuery::Consistency {
        author: id("a"),
        from: 5,
        to: None,
    };
    let Ok(LedgerAnswer::Consistency(p)) = ledger(&mut w, "a", query) else {
        panic!("no consistency proof")
    };
    assert_eq!((p.from, p.to), (5, 13));
    assert_eq!(p.verify(&old_root), Ok(()));
    let text = serde_json::to_string(&p.to_json()).unwrap();
    assert_eq!(ConsistencyProof::from_json(&text).unwrap(), p);

    let past = LedgerQuery::Consistency {
        author: id("a"),
        from: 5,
        to: Some(14),
    };
    assert_eq!(
        ledger(&mut w, "a", past),
        Err(LedgerRefusal::OutOfRange {
            author: id("a"),
            vouched: 13
        })
    );
    let nobody = LedgerQuery::Consistency {
        author: id("nobody"),
        from: 0,
        to: None,
    };
    assert_eq!(
        ledger(&mut w, "a", nobody),
        Err(LedgerRefusal::NoHead(id("nobody")))
    );
}

#[test]
fn no_head_is_signed_past_what_is_durable() {
    let mut w = one();
    w.write("a", r#"{"n":1}"#);
    w.host_mut("a").hold_appends = true;
    w.advance(HEAD_EVERY.as_millis() as u64);
    let req = w.write("a", r#"{"n":2}"#);
    assert_eq!(w.answer(req), None, "the append is not durable yet");
    let hs = heads(&mut w, "a");
    assert_eq!(hs[0].head.seq, 1, "the head stops at the durable seq");
    let past = LedgerQuery::Inclusion {
        author: id("a"),
        seq: 2,
        size: Some(2),
    };
    assert!(matches!(
        ledger(&mut w, "a", past),
        Err(LedgerRefusal::OutOfRange { vouched: 1, .. })
    ));
    w.complete_appends("a", 1);
    assert_eq!(heads(&mut w, "a")[0].head.seq, 2);
}

#[test]
fn a_restarted_node_keeps_its_head_and_extends_it_consistently() {
    let mut w = one();
    for n in 0..4 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    let before = heads(&mut w, "a")[0].clone();
    w.crash("a");
    w.restart("a");
    assert_eq!(
        heads(&mut w, "a"),
        vec![before.clone()],
        "the persisted head"
    );
    w.write("a", r#"{"n":9}"#);
    let after = heads(&mut w, "a")[0].clone();
    assert_eq!(after.head.seq, 5);
    let query = LedgerQuery::Consistency {
        author: id("a"),
        from: before.head.seq,
        to: Some(after.head.seq),
    };
    let Ok(LedgerAnswer::Consistency(p)) = ledger(&mut w, "a", query) else {
        panic!("no proof")
    };
    assert_eq!(p.verify(&before.head.root), Ok(()));
}

fn write_answer(w: &mut World, name: &str, payload: &str) -> Response {
    let req = w.write(name, payload);
    w.answer(req).cloned().expect("answered")
}

#[test]
fn a_lost_own_tail_is_reported_fetched_back_from_a_peer_and_own_writes_wait_for_it() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    for n in 0..5 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    w.write("b", r#"{"from":"b"}"#);
    w.advance(2_000);
    assert_eq!(heads(&mut w, "a")[0].head.seq, 5);
    assert_eq!(w.chain_view("b"), w.chain_view("a"), "b holds a's chain");

    w.crash("a");
    w.host_mut("a").rewrite_tail(3, Vec::new()); // a/4, a/5 and b/1
                                                 // a's pull cursor on b is past a's own blocks there (as after any pull of b's strand
                                                 // since): a pull from it would never bring them back.
    w.host_mut("a").persisted_cursors = vec![(id("b"), 6)];
    w.cut("a", "b");
    w.restart("a");
    w.advance(3_000);
    let refused = write_answer(&mut w, "a", r#"{"n":"too early"}"#);
    assert_eq!(
        refused,
        Response::OwnChainUnsafe(OwnChainUnsafe::TailMissing { held: 3, signed: 5 }),
        "a would fork its own chain at seq 4"
    );
    w.heal("a", "b");
    w.advance(3_000);
    let Response::Written(r) = write_answer(&mut w, "a", r#"{"n":5}"#) else {
        panic!("a still refuses its own writes")
    };
    assert_eq!(
        r.seq, 6,
        "the tail came back from b and the chain goes on from it"
    );
    w.advance(2_000);
    assert_eq!(w.chain_view("b"), w.chain_view("a"));
}

#[test]
fn an_own_chain_rewritten_under_its_head_refuses_own_writes() {
    let mut w = one();
    for n in 0..4 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    let head = heads(&mut w, "a")[0].clone();
    w.crash("a");
    // Blocks 3 and 4 replaced by a longer fork, validly signed with the seed's key for a.
    let prev = w.host("a").block(&id("a"), 2).unwrap().hash;
    let forged = common::forged_chain("a", 3, 6, prev);
    w.host_mut("a").rewrite_tail(2, forged);
    w.restart("a");
    assert_eq!(
        write_answer(&mut w, "a", r#"{"n":9}"#),
        Response::OwnChainUnsafe(OwnChainUnsafe::Diverged { seq: head.head.seq })
    );
    // No head is signed over the fork, and no proof is served from it.
    assert_eq!(heads(&mut w, "a"), vec![head]);
    let query = LedgerQuery::Consistency {
        author: id("a"),
        from: 1,
        to: None,
    };
    assert_eq!(
        ledger(&mut w, "a", query),
        Err(LedgerRefusal::Diverged {
            author: id("a"),
            seq: 4
        })
    );
}
