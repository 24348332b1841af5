//! A node never takes a block of its own chain that it did not sign (issue 17, forging
//! fault). Anyone with the master seed can sign blocks as any author; pushed to that author
//! one seq past its tip, such a block used to be taken as the next link — and the node's
//! next write extended it and its next head vouched for it. Now a node takes a block of its
//! own authorship only to fetch back what its last head vouched for; past that it refuses the
//! block and alerts (`forged_own_block`). At a held seq, it is equivocation as before.

mod common;

use common::{id, World};
use sapix_core::block::Block;
use sapix_core::chain::Position;
use sapix_core::node::{Event, Input, LedgerAnswer, LedgerQuery};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

/// `author`'s block `seq` over `prev`, signed with the seed's key: what a forger can make.
fn forge(author: &str, seq: u64, prev: sapix_core::block::Hash) -> Block {
    common::forged_chain(author, seq, seq, prev).remove(0)
}

fn ingest(w: &mut World, at: &str, block: Block) -> Response {
    let req = w.ask(at, |request| Input::IngestRequested {
        request,
        blocks: vec![block
            .into_verified(&common::keys())
            .expect("validly signed")],
        head: None,
    });
    w.answer(req).cloned().expect("answered")
}

#[test]
fn a_forged_block_one_past_the_own_tip_is_refused_and_the_chain_goes_on_unharmed() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    for n in 0..3 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    w.advance(1_000);
    let tip = w.host("a").block(&id("a"), 3).unwrap().hash;
    let forged = forge("a", 4, tip);
    let answer = ingest(&mut w, "a", forged.clone());
    assert!(
        matches!(
            answer,
            Response::IngestRefused {
                position: Position::NotSignedHere { vouched: 3 },
                ..
            }
        ),
        "{answer:?}"
    );
    assert!(w.events.iter().any(|(_, at, e)| at.as_str() == "a"
        && *e
            == Event::ForgedOwnBlock {
                seq: 4,
                hash: forged.hash
            }));
    // a's own seq 4 is its own, and its head vouches for its own blocks only.
    w.write("a", r#"{"n":3}"#);
    w.advance(1_000);
    let own4 = w.host("a").block(&id("a"), 4).expect("a/4").clone();
    assert_ne!(own4.hash, forged.hash);
    assert_eq!(own4.body.payload, br#"{"n":3}"#.to_vec());
    let q = w.ask("a", |request| Input::LedgerWanted {
        request,
        query: LedgerQuery::Heads,
    });
    let Some(Response::Ledger(answer)) = w.answer(q) else {
        panic!("no heads")
    };
    let LedgerAnswer::Heads(heads) = answer.as_ref() else {
        panic!("{answer:?}")
    };
    assert_eq!(heads[0].head.seq, 4);
    assert_eq!(w.chain_view("b"), w.chain_view("a"), "b holds a's own a/4");
}

/// Found by the simulator's forging fault (seed 0x781ad46616aa207c): a peer that took a forged
/// block of `a`'s chain before `a` wrote that seq answered `a`'s probe "holds 1", and `a`
/// counted its own later block 1 as held there — a CP write acknowledged that the peer never
/// stored. Now a probe's answer names the hash it holds at that seq; one that is not `a`'s
/// own counts for nothing, and `a` alerts.
#[test]
fn a_peer_holding_a_forged_block_of_the_chain_is_not_counted_as_holding_it() {
    let mut w = World::cluster(&["a", "b"], Consistency::Cp, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    let forged = forge("a", 1, sapix_core::block::Hash::ZERO);
    let answer = ingest(&mut w, "b", forged.clone());
    assert!(
        matches!(answer, Response::Ingested { accepted: 1, .. }),
        "b cannot tell it from a's: {answer:?}"
    );
    // a comes to probe b (a link that went down and back), then writes its own seq 1.
    w.cut("a", "b");
    w.advance(10_000);
    w.heal("a", "b");
    w.advance(10_000);
    let req = w.write("a", r#"{"n":1}"#);
    w.advance(5_000);
    let answer = w.answer(req).cloned();
    assert!(
        !matches!(answer, Some(Response::Written(_))),
        "a CP write acknowledged though b holds another block at a/1: {answer:?}"
    );
    assert!(w.events.iter().any(|(_, at, e)| at.as_str() == "a"
        && matches!(e, Event::PeerHoldsForgedBlock { peer, seq: 1 } if peer.as_str() == "b")));
}

/// Found by the simulator's forging fault (seed 0xf3026c195740a94f): a and b each held a
/// forged first block of the other, so every push between them was refused (equivocation),
/// and a refused push marks the peer unreachable. A probe marked the peer reachable again, the
/// push right after it marked it down before the next tick — and the announcement of c, which
/// waits for the peer to be reachable at a tick, never went either way: b never learned of c.
/// Now an announcement a probe's answer shows owed goes at once, while the peer has just
/// answered.
#[test]
fn membership_reaches_a_peer_that_refuses_every_push_over_forged_blocks() {
    let mut w = World::cluster(&["a", "b"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    w.add("c", None);
    // c never reaches b: only a can tell b of c, and b can only ask a.
    w.cut("c", "b");
    for (author, at) in [("a", "b"), ("b", "a")] {
        let forged = forge(author, 1, sapix_core::block::Hash::ZERO);
        assert!(
            matches!(
                ingest(&mut w, at, forged),
                Response::Ingested { accepted: 1, .. }
            ),
            "{at} cannot tell it from {author}'s own"
        );
    }
    // c is divided in through a while b is cut off from a.
    w.cut("a", "b");
    let req = w.ask("a", |request| Input::DivideRequested {
        request,
        new: common::info("c", sapix_core::Role::Replica),
        via: None,
    });
    assert!(
        matches!(w.answer(req), Some(Response::Divided { .. })),
        "{:?}",
        w.answer(req)
    );
    w.write("a", r#"{"n":1}"#);
    w.write("b", r#"{"n":1}"#);
    w.advance(2_000);
    w.heal("a", "b");
    w.advance(30_000);
    assert!(
        w.node("b").peers().contains_key(&id("c")),
        "b never learned of c"
    );
}
