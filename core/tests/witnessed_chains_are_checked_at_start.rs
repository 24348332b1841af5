//! Tampering on disk (issue 17, item 5) for chains a node witnessed: at its first instant a
//! node compares every other author's chain with the last head of it that it witnessed. A
//! missing tail is reported and fetched back from peers; a copy rewritten under the head is
//! reported, no proof of it is served, and no later head of the author is cosigned or blamed
//! on the author from that copy.

mod common;

use common::{id, World};
use sapix_core::ledger::VerifiedHead;
use sapix_core::node::{Event, Input, LedgerQuery, LedgerRefusal, WitnessedChainUnsafe};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

/// a writes five blocks; b (and c) hold them and witnessed a's head at seq 5.
fn witnessed_five() -> World {
    let mut w = World::cluster(&["a", "b", "c"], Consistency::Ap, BackoffPolicy::default());
    w.tracing = false;
    w.start_quietly();
    for n in 0..5 {
        w.write("a", &format!(r#"{{"n":{n}}}"#));
    }
    w.advance(3_000);
    let witnessed = w.host("b").persisted_witnessed.clone();
    assert_eq!(
        witnessed.iter().map(|h| h.head.seq).collect::<Vec<_>>(),
        vec![5],
        "b witnessed a's head at 5"
    );
    w
}

fn unsafe_events(w: &World, at: &str) -> Vec<Event> {
    w.events
        .iter()
        .filter(|(_, node, e)| {
            node.as_str() == at
                && matches!(
                    e,
                    Event::WitnessedChainUnsafe(_) | Event::WitnessedChainRecovered { .. }
                )
        })
        .map(|(_, _, e)| e.clone())
        .collect()
}

fn consistency_at(w: &mut World, at: &str, author: &str) -> Response {
    let q = w.ask(at, |request| Input::LedgerWanted {
        request,
        query: LedgerQuery::Consistency {
            author: id(author),
            from: 1,
            to: None,
        },
    });
    w.answer(q).cloned().expect("answered")
}

#[test]
fn a_lost_tail_of_a_witnessed_chain_is_reported_and_fetched_back() {
    let mut w = witnessed_five();
    // a is gone for good; b's strand lost a/4 and a/5. Only c holds them now, and b's pull
    // cursor on c is past them: a pull from it would never bring them back.
    w.crash("a");
    w.crash("b");
    w.host_mut("b").rewrite_tail(2, Vec::new());
    w.host_mut("b").persisted_cursors = vec![(id("a"), 5), (id("c"), 5)];
    w.restart("b");
    w.advance(3_000);
    assert_eq!(
        unsafe_events(&w, "b"),
        vec![
            Event::WitnessedChainUnsafe(WitnessedChainUnsafe::TailMissing {
                author: id("a"),
                held: 3,
                witnessed: 5,
            }),
            Event::WitnessedChainRecovered {
                author: id("a"),
                seq: 5
            },
        ]
    );
    assert_eq!(
        w.chain_view("b"),
        w.chain_view("c"),
        "b holds a/4 and a/5 again"
    );
    assert!(matches!(
        consistency_at(&mut w, "b", "a"),
        Response::Ledger(_)
    ));
}

#[test]
fn a_witnessed_chain_rewritten_on_disk_is_reported_and_proves_nothing() {
    let mut w = witnessed_five();
    w.crash("b");
    // a/4 and a/5 replaced in b's strand by blocks validly signed with the seed's key for a.
    let prev = w.host("b").block(&id("a"), 3).unwrap().hash;
    let forged = common::forged_chain("a", 4, 5, prev);
    w.host_mut("b").rewrite_tail(2, forged);
    w.restart("b");
    w.advance(1_000);
    let diverged = WitnessedChainUnsafe::Diverged {
        author: id("a"),
        seq: 5,
    };
    assert_eq!(
        unsafe_events(&w, "b"),
        vec![Event::WitnessedChainUnsafe(diverged)]
    );
    assert_eq!(
        consistency_at(&mut w, "b", "a"),
        Response::LedgerRefused(LedgerRefusal::Diverged {
            author: id("a"),
            seq: 5
        })
    );
    // a's genuine head at 5 reaches b again: b neither cosigns it nor blames a for it.
    let head = w.host("a").persisted_head.clone().expect("a's head");
    assert_eq!(head.head.seq, 5);
    let req = w.ask("b", |request| Input::IngestRequested {
        request,
        blocks: Vec::new(),
        head: Some(VerifiedHead::check(head).expect("signed")),
    });
    assert!(
        matches!(
            w.answer(req),
            Some(Response::Ingested {
                witnessed: None,
                ..
            })
        ),
        "{:?}",
        w.answer(req)
    );
    w.advance(3_000);
    assert!(
        !w.events
            .iter()
            .any(|(_, node, e)| node.as_str() == "b" && matches!(e, Event::HeadRefused { .. })),
        "b blamed a for its own rewritten copy"
    );
    // The genuine a/4 and a/5, met again by a pull, are two blocks signed with a's seed key
    // at one seq (kept as such); no head of a's is kept as evidence against it.
    let kept: Vec<&String> = w.host("b").evidence.keys().collect();
    assert!(
        kept.iter().all(|name| name.contains(".blocks.")),
        "{kept:?}"
    );
}
