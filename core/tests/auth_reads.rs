//! Reads are authorized like writes (issue 16; DESIGN §5): the root key or open reads at once,
//! local mode only the root key, Codios mode the action `read` on the collection through the
//! same cache and single flight, under a key of its own. A read of nothing found only needs a
//! token, so a token that may not read cannot tell an absent hash from a denied one.

mod auth_support;

use auth_support::*;
use sapix_core::auth::{Action, AuthKey, Credential, Decision};
use sapix_core::node::{AuthSettings, CallId, Failure, Input, Output, Reply, RequestId, Response};
use sapix_core::{Collection, Node};

fn orders() -> Collection {
    Collection::new("orders").unwrap()
}

fn read_key(token: &str) -> AuthKey {
    AuthKey::new(token, Action::Read, &orders())
}

/// `token` (or nobody) reads a record of `orders` (or of nothing found) at `ms`.
fn read(n: &mut Node, ms: u64, req: u64, token: Option<&str>, found: bool) {
    n.handle(
        at(ms),
        Input::ReadRequested {
            request: RequestId(req),
            credential: token.map(Credential::of_token),
            collection: found.then(orders),
        },
    );
}

/// The answers, by request id.
type Answers = Vec<(u64, Response)>;
/// The Codios calls asked for, by key.
type Calls = Vec<(AuthKey, CallId)>;

/// The answers and the Codios calls among `outputs`.
fn split(outputs: &[Output]) -> (Answers, Calls) {
    let mut answers = Vec::new();
    let mut calls = Vec::new();
    for o in outputs {
        match o {
            Output::Respond { request, response } => answers.push((request.0, response.clone())),
            Output::AskCodios { call, key } => calls.push((key.clone(), *call)),
            _ => {}
        }
    }
    (answers, calls)
}

/// One read at `ms`, answered without asking Codios: its answer.
#[track_caller]
fn answer_now(n: &mut Node, ms: u64, token: Option<&str>, found: bool) -> Response {
    read(n, ms, ms + 1, token, found);
    let (mut answers, calls) = split(&drain(n));
    assert!(calls.is_empty(), "Codios asked: {calls:?}");
    assert_eq!(answers.len(), 1, "one answer: {answers:?}");
    answers.remove(0).1
}

fn unauthenticated(r: &Response) -> bool {
    matches!(r, Response::Unauthenticated { .. })
}

fn denied(r: &Response) -> bool {
    matches!(r, Response::Denied { .. })
}

#[test]
fn local_mode_reads_with_the_root_key_only_and_never_without_a_token() {
    let mut n = node(local());
    assert_eq!(
        answer_now(&mut n, 1, Some(ROOT), true),
        Response::ReadAllowed
    );
    assert!(unauthenticated(&answer_now(&mut n, 2, None, true)));
    assert!(unauthenticated(&answer_now(&mut n, 3, None, false)));
    let r = answer_now(&mut n, 4, Some("stranger"), true);
    assert!(denied(&r), "{r:?}");
    // Nothing found: the stranger learns only that (its denied read answers 404 the same).
    assert_eq!(
        answer_now(&mut n, 5, Some("stranger"), false),
        Response::ReadAllowed
    );
}

#[test]
fn open_reads_need_no_token_and_leave_writes_closed() {
    let open = AuthSettings {
        reads_open: true,
        ..local()
    };
    let mut n = node(open);
    assert_eq!(answer_now(&mut n, 1, None, true), Response::ReadAllowed);
    assert_eq!(
        answer_now(&mut n, 2, Some("stranger"), true),
        Response::ReadAllowed
    );
    authorize(&mut n, 3, 3, "stranger");
    let r = responses(&drain(&mut n));
    assert!(is_denied(&r[0].1), "writes still need the root key: {r:?}");
}

#[test]
fn codios_reads_ask_for_read_once_for_many_readers_and_cache_the_answer() {
    let mut n = node(codios());
    for req in 1..=100 {
        read(&mut n, 10, req, Some("alice"), true);
    }
    let (answers, calls) = split(&drain(&mut n));
    assert!(
        answers.is_empty(),
        "every read waits on Codios: {answers:?}"
    );
    assert_eq!(calls.len(), 1, "single flight: {calls:?}");
    assert_eq!(calls[0].0, read_key("alice"), "the action asked is read");
    let outcome = Ok(Reply::Decided(Decision::Permit));
    n.handle(
        at(20),
        Input::CallEnded {
            call: calls[0].1,
            outcome,
        },
    );
    let (answers, _) = split(&drain(&mut n));
    assert_eq!(answers.len(), 100);
    assert!(answers.iter().all(|(_, r)| *r == Response::ReadAllowed));
    // Within the TTL the permit is served from the cache.
    assert_eq!(
        answer_now(&mut n, 30, Some("alice"), true),
        Response::ReadAllowed
    );
}

#[test]
fn a_permit_to_write_never_lets_a_token_read_nor_the_other_way_round() {
    let mut n = node(codios());
    prime(&mut n, 0, "alice", Decision::Permit);
    read(&mut n, 10, 1, Some("alice"), true);
    let (answers, calls) = split(&drain(&mut n));
    assert!(answers.is_empty());
    assert_eq!(
        calls.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        vec![read_key("alice")]
    );
    let outcome = Ok(Reply::Decided(Decision::Deny));
    n.handle(
        at(20),
        Input::CallEnded {
            call: calls[0].1,
            outcome,
        },
    );
    let (answers, _) = split(&drain(&mut n));
    match &answers[..] {
        [(1, Response::Denied { reason })] => assert!(reason.contains("to read"), "{reason}"),
        other => panic!("expected one denial: {other:?}"),
    }
    // The cached read deny leaves the cached write permit alone.
    let (r, _) = answered_from_cache(&mut n, 30, 2, "alice");
    assert!(is_authorized(&r, false), "{r:?}");
}

#[test]
fn a_read_codios_cannot_decide_with_nothing_cached_is_unavailable_and_says_read() {
    let mut n = node(codios_fail_closed());
    read(&mut n, 10, 1, Some("bob"), true);
    let (_, calls) = split(&drain(&mut n));
    let outcome = Err(Failure::Unreachable("connection refused".into()));
    n.handle(
        at(20),
        Input::CallEnded {
            call: calls[0].1,
            outcome,
        },
    );
    let (answers, _) = split(&drain(&mut n));
    match &answers[..] {
        [(1, Response::AuthUnavailable { reason })] => {
            assert!(reason.contains("authorize this read"), "{reason}")
        }
        other => panic!("expected one unavailable: {other:?}"),
    }
}
