//! Single-node stories: feed inputs at stated times, snapshot the output trace.

use std::fmt::Write as _;

use super::*;
use crate::auth::Credential;
use crate::block::{Block, Verified};
use crate::id::Collection;
use crate::keys::{KeySchedule, MasterSeed};
use crate::repl::backoff::BackoffPolicy;

fn keys() -> KeySchedule {
    KeySchedule::new(MasterSeed::from_bytes([42; 32]))
}

fn node(id: &str) -> Node {
    let ks = keys();
    let agent_id = AgentId::new(id).unwrap();
    let key = ks.signing_key(&agent_id);
    Node::new(
        NodeConfig {
            agent_id,
            endpoint: format!("http://{id}:7475"),
            added_at: UnixMillis(1_000),
            backoff: BackoffPolicy::default(),
            rng_seed: 1,
            root: Credential::of_token("root"),
            auth: Default::default(),
            head_key: crate::ledger::HeadKey::from_bytes([1; 32]),
        },
        key,
        Restored::default(),
    )
}

fn write(n: &mut Node, t: u64, req: u64, data: &str) {
    n.handle(
        Instant::from_millis(t),
        Input::WriteRequested {
            request: RequestId(req),
            credential: Credential::of_token("root"),
            collection: Collection::new("orders").unwrap(),
            payload: data.as_bytes().to_vec(),
            wall: UnixMillis(1_700_000_000_000 + t),
        },
    );
}

/// Drains outputs into a compact, reviewable trace, returning appended blocks by token.
fn drain(n: &mut Node, trace: &mut String) -> Vec<(AppendToken, Vec<Block>)> {
    let mut appends = Vec::new();
    while let Some(o) = n.poll_output() {
        match o {
            Output::Append { token, blocks } => {
                writeln!(trace, "  Append {} {:?}", token.0, blocks).unwrap();
                appends.push((token, blocks));
            }
            Output::Respond { request, response } => {
                writeln!(trace, "  Respond req={} {:?}", request.0, response).unwrap();
            }
            Output::Log(e) => writeln!(trace, "  Log {e:?}").unwrap(),
            Output::PersistHead { head } => {
                let h = &head.head;
                writeln!(
                    trace,
                    "  PersistHead {}:{} root={:?}",
                    h.author, h.seq, h.root
                )
                .unwrap()
            }
            other => writeln!(trace, "  {other:?}").unwrap(),
        }
    }
    appends
}

#[test]
fn write_is_acknowledged_only_after_its_append_is_durable() {
    let mut n = node("primary");
    let mut trace = String::new();
    trace.push_str("t=0 write req=1\n");
    write(&mut n, 0, 1, r#"{"a":1}"#);
    let a1 = drain(&mut n, &mut trace);
    trace.push_str("t=1 write req=2\n");
    write(&mut n, 1, 2, r#"{"a":2}"#);
    let a2 = drain(&mut n, &mut trace);
    trace.push_str("t=5 appended 1\n");
    n.handle(
        Instant::from_millis(5),
        Input::Appended {
            token: a1[0].0,
            offsets: vec![1],
        },
    );
    drain(&mut n, &mut trace);
    trace.push_str("t=6 appended 2\n");
    n.handle(
        Instant::from_millis(6),
        Input::Appended {
            token: a2[0].0,
            offsets: vec![2],
        },
    );
    drain(&mut n, &mut trace);
    insta::assert_snapshot!(trace);
    // The second block links to the first.
    assert_eq!(a2[0].1[0].body.prev, a1[0].1[0].hash);
}

#[test]
fn completions_out_of_order_are_released_in_token_order() {
    let mut n = node("primary");
    let mut trace = String::new();
    write(&mut n, 0, 1, "1");
    write(&mut n, 0, 2, "2");
    let a = drain(&mut n, &mut String::new());
    n.handle(
        Instant::from_millis(1),
        Input::Appended {
            token: a[1].0,
            offsets: vec![2],
        },
    );
    drain(&mut n, &mut trace);
    assert_eq!(trace, "", "req 2 must wait for append 1");
    n.handle(
        Instant::from_millis(2),
        Input::Appended {
            token: a[0].0,
            offsets: vec![1],
        },
    );
    drain(&mut n, &mut trace);
    let reqs: Vec<&str> = (trace.lines())
        .filter(|l| !l.starts_with("  PersistHead"))
        .map(|l| &l[..13])
        .collect();
    assert_eq!(reqs, ["  Respond req", "  Respond req"]);
    assert!(trace.lines().next().unwrap().contains("req=1"));
    assert!(trace.contains("offset: 2"));
}

fn authored(count: u64) -> Vec<Block> {
    let mut a = node("replica-eu");
    let mut blocks = Vec::new();
    for i in 0..count {
        write(&mut a, i, i, &i.to_string());
        for (token, bs) in drain(&mut a, &mut String::new()) {
            a.handle(
                Instant::from_millis(i),
                Input::Appended {
                    token,
                    offsets: vec![i + 1],
                },
            );
            blocks.extend(bs);
        }
    }
    blocks
}

fn verified(blocks: &[Block]) -> Vec<Verified> {
    let ks = keys();
    blocks
        .iter()
        .map(|b| b.clone().into_verified(&ks).unwrap())
        .collect()
}

fn ingest(n: &mut Node, t: u64, req: u64, blocks: &[Block]) {
    n.handle(
        Instant::from_millis(t),
        Input::IngestRequested {
            request: RequestId(req),
            blocks: verified(blocks),
            head: None,
        },
    );
}

#[test]
fn ingest_is_idempotent_and_duplicates_wait_for_the_inflight_copy() {
    let blocks = authored(3);
    let mut n = node("primary");
    let mut trace = String::new();
    trace.push_str("t=0 ingest req=1 [1,2]\n");
    ingest(&mut n, 0, 1, &blocks[..2]);
    let a = drain(&mut n, &mut trace);
    trace.push_str("t=1 ingest req=2 [1,2,3] while [1,2] in flight\n");
    ingest(&mut n, 1, 2, &blocks);
    let b = drain(&mut n, &mut trace);
    trace.push_str("t=2 ingest req=3 [2] again\n");
    ingest(&mut n, 2, 3, &blocks[1..2]);
    drain(&mut n, &mut trace);
    trace.push_str("t=3 appended 1 and 2\n");
    for (token, offsets) in [(a[0].0, vec![1, 2]), (b[0].0, vec![3])] {
        n.handle(Instant::from_millis(3), Input::Appended { token, offsets });
    }
    drain(&mut n, &mut trace);
    insta::assert_snapshot!(trace);
    assert_eq!(n.chains().total(), 3);
}

#[test]
fn a_batch_with_a_gap_or_broken_link_is_refused_whole() {
    let blocks = authored(3);
    let mut n = node("primary");
    let mut trace = String::new();
    trace.push_str("ingest [1,3]: gap at index 1\n");
    ingest(&mut n, 0, 1, &[blocks[0].clone(), blocks[2].clone()]);
    drain(&mut n, &mut trace);
    assert_eq!(n.chains().total(), 0, "nothing of a refused batch is kept");
    insta::assert_snapshot!(trace);
}

#[test]
fn equivocation_is_refused_and_alerted() {
    let blocks = authored(1);
    let mut twin = blocks[0].body.clone();
    twin.payload = b"\"forked\"".to_vec();
    let forged = twin.seal(&keys().signing_key(&AgentId::new("replica-eu").unwrap()));
    let mut n = node("primary");
    ingest(&mut n, 0, 1, &blocks);
    drain(&mut n, &mut String::new());
    let mut trace = String::new();
    ingest(&mut n, 1, 2, &[forged]);
    drain(&mut n, &mut trace);
    insta::assert_snapshot!(trace);
}

#[test]
fn storage_failure_refuses_pending_and_later_writes() {
    let mut n = node("primary");
    let mut trace = String::new();
    write(&mut n, 0, 1, "1");
    let a = drain(&mut n, &mut String::new());
    n.handle(
        Instant::from_millis(1),
        Input::AppendFailed {
            token: a[0].0,
            reason: "EIO".into(),
            full: false,
        },
    );
    write(&mut n, 2, 2, "2");
    drain(&mut n, &mut trace);
    insta::assert_snapshot!(trace);
}

#[test]
fn status_reports_self_with_the_last_commit_time() {
    let mut n = node("primary");
    write(&mut n, 7, 1, "1");
    let a = drain(&mut n, &mut String::new());
    n.handle(
        Instant::from_millis(8),
        Input::Appended {
            token: a[0].0,
            offsets: vec![1],
        },
    );
    drain(&mut n, &mut String::new());
    n.handle(
        Instant::from_millis(9),
        Input::StatusRequested {
            request: RequestId(2),
            wall: UnixMillis(1_700_000_000_100),
        },
    );
    let mut trace = String::new();
    drain(&mut n, &mut trace);
    insta::assert_snapshot!(trace);
}

/// What a node asked for: appends, answers (by request), and whether it resumed appends.
type Asked = (Vec<(AppendToken, Vec<Block>)>, Vec<(u64, Response)>, bool);

fn responses(n: &mut Node) -> Asked {
    let (mut appends, mut answers, mut resumed) = (Vec::new(), Vec::new(), false);
    while let Some(o) = n.poll_output() {
        match o {
            Output::Append { token, blocks } => appends.push((token, blocks)),
            Output::Respond { request, response } => answers.push((request.0, response)),
            Output::ResumeAppends => resumed = true,
            _ => {}
        }
    }
    (appends, answers, resumed)
}

fn full(n: &mut Node, t: u64, token: AppendToken) {
    n.handle(
        Instant::from_millis(t),
        Input::AppendFailed {
            token,
            reason: "ENOSPC".into(),
            full: true,
        },
    );
}

#[test]
fn a_full_disk_refuses_the_appends_in_flight_and_the_next_write_takes_their_seq_again() {
    let mut n = node("primary");
    write(&mut n, 0, 1, "1");
    let (a1, ..) = responses(&mut n);
    n.handle(
        Instant::from_millis(1),
        Input::Appended {
            token: a1[0].0,
            offsets: vec![1],
        },
    );
    let (_, answers, _) = responses(&mut n);
    assert!(matches!(answers[..], [(1, Response::Written(_))]));
    // Two writes in flight; the disk fills at the first: both are refused, nothing is written.
    write(&mut n, 2, 2, "2");
    write(&mut n, 3, 3, "3");
    let (in_flight, ..) = responses(&mut n);
    assert_eq!(in_flight.len(), 2);
    assert_eq!(in_flight[0].1[0].seq(), 2);
    full(&mut n, 4, in_flight[0].0);
    let (appends, answers, resumed) = responses(&mut n);
    assert!(appends.is_empty());
    assert_eq!(
        answers,
        vec![(2, Response::StorageFull), (3, Response::StorageFull)]
    );
    assert!(resumed, "the strand is told to take appends again");
    // The strand's refusal of the second append, queued behind, changes nothing.
    full(&mut n, 5, in_flight[1].0);
    let (appends, answers, resumed) = responses(&mut n);
    assert!(appends.is_empty() && answers.is_empty() && !resumed);
    // Space is back: the next write is tried, takes seq 2 again and links to seq 1.
    write(&mut n, 6, 4, "4");
    let (retry, ..) = responses(&mut n);
    let block = &retry[0].1[0];
    assert_eq!(block.seq(), 2);
    assert_eq!(block.body.prev, a1[0].1[0].hash);
    n.handle(
        Instant::from_millis(7),
        Input::Appended {
            token: retry[0].0,
            offsets: vec![2],
        },
    );
    let (_, answers, _) = responses(&mut n);
    let [(4, Response::Written(r))] = &answers[..] else {
        panic!("the write after the full disk is written: {answers:?}");
    };
    assert_eq!((r.seq, r.offset), (2, 2));
}

#[test]
fn a_full_disk_leaves_the_node_serving_unlike_a_broken_one() {
    let mut n = node("primary");
    write(&mut n, 0, 1, "1");
    let (a, ..) = responses(&mut n);
    full(&mut n, 1, a[0].0);
    let (_, answers, _) = responses(&mut n);
    assert_eq!(answers, vec![(1, Response::StorageFull)]);
    // Still full: the next write is tried (not refused up front) and refused as full again.
    write(&mut n, 2, 2, "2");
    let (b, ..) = responses(&mut n);
    assert_eq!(b.len(), 1, "tried again");
    full(&mut n, 3, b[0].0);
    let (_, answers, _) = responses(&mut n);
    assert_eq!(answers, vec![(2, Response::StorageFull)]);
}
