//! A single node driven through its auth inputs at stated times, for the `auth_*` stories.
//! Codios is whatever the test says it is: each `AskCodios` is answered (or failed) by hand.
//!
//! A write is one `WriteRequested` carrying its credential; the node decides and, when it lets
//! the write through, appends it. The harness completes every append at once, so a write let
//! through is answered `Written`; [`responses`] reads the node's decision for each request back
//! as a [`Verdict`] (degraded as the node's `WriteAuthorized` event says).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use sapix_core::auth::{Action, AuthKey, AuthPolicy, BreakerConfig, Credential, Decision};
use sapix_core::node::{
    AuthSettings, CallId, Event, Failure, Input, Output, Reply, RequestId, Response, Restored,
};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::status::AuthStatus;
use sapix_core::{
    AgentId, Collection, Instant, KeySchedule, MasterSeed, Node, NodeConfig, UnixMillis,
};

pub const S: u64 = 1_000;

pub fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The root key's token in these stories.
pub const ROOT: &str = "the-root-key";

/// Local mode: only [`ROOT`] may write.
pub fn local() -> AuthSettings {
    AuthSettings::default()
}

/// Codios mode with the spec's defaults.
pub fn codios() -> AuthSettings {
    AuthSettings {
        codios: true,
        ..local()
    }
}

/// Codios mode with the opt-in breaker on (30 s, probes every 5 s).
pub fn codios_with_breaker() -> AuthSettings {
    AuthSettings {
        codios: true,
        breaker: BreakerConfig {
            enabled: true,
            ..BreakerConfig::default()
        },
        ..local()
    }
}

/// Codios mode with `SAPIX_REQUIRE_CODIOS=true`.
pub fn codios_fail_closed() -> AuthSettings {
    AuthSettings {
        codios: true,
        policy: AuthPolicy {
            require_codios: true,
            ..AuthPolicy::default()
        },
        ..local()
    }
}

pub fn config(auth: AuthSettings) -> NodeConfig {
    NodeConfig {
        agent_id: AgentId::new("primary").unwrap(),
        endpoint: "http://primary:7475".into(),
        added_at: UnixMillis(1_000),
        backoff: BackoffPolicy::default(),
        rng_seed: 7,
        root: Credential::of_token(ROOT),
        auth,
        head_key: sapix_core::ledger::HeadKey::from_bytes([7; 32]),
    }
}

pub fn node_with(auth: AuthSettings, restored: Restored) -> Node {
    let keys = KeySchedule::new(MasterSeed::from_bytes([42; 32]));
    let cfg = config(auth);
    let key = keys.signing_key(&cfg.agent_id);
    Node::new(cfg, key, restored)
}

pub fn node(auth: AuthSettings) -> Node {
    node_with(auth, Restored::default())
}

/// The key for `token` writing to `orders`.
pub fn key(token: &str) -> AuthKey {
    AuthKey::new(token, Action::Write, &Collection::new("orders").unwrap())
}

/// `token` writes a record to `orders` at `ms`: one input, authorized and written by the node.
pub fn authorize(n: &mut Node, ms: u64, req: u64, token: &str) {
    n.handle(
        at(ms),
        Input::WriteRequested {
            request: RequestId(req),
            credential: Credential::of_token(token),
            collection: Collection::new("orders").unwrap(),
            payload: format!("{{\"req\":{req}}}").into_bytes(),
            wall: UnixMillis(1_700_000_000_000 + ms),
        },
    );
}

/// The root key writes at `ms`.
pub fn authorize_root(n: &mut Node, ms: u64, req: u64) {
    authorize(n, ms, req, ROOT);
}

std::thread_local! {
    /// The Codios calls the node asked for, by key, as a shell remembers them; each test runs
    /// on its own thread. A key keeps its last call after the answer, so a second answer
    /// reaches a call that already ended.
    static ASKED: std::cell::RefCell<BTreeMap<AuthKey, CallId>> = Default::default();
}

/// The last Codios call the node asked about `token`'s key (a call id never issued if none).
fn asked(token: &str) -> CallId {
    ASKED.with(|a| {
        a.borrow()
            .get(&key(token))
            .copied()
            .unwrap_or(CallId(u64::MAX))
    })
}

/// Codios answers the node's call about `token` with `decision`.
pub fn answer(n: &mut Node, ms: u64, token: &str, decision: Decision) {
    let call = asked(token);
    let outcome = Ok(Reply::Decided(decision));
    n.handle(at(ms), Input::CallEnded { call, outcome });
}

/// The node's call about `token` fails: Codios unreachable.
pub fn fail(n: &mut Node, ms: u64, token: &str) {
    let call = asked(token);
    let outcome = Err(Failure::Unreachable("connection refused".into()));
    n.handle(at(ms), Input::CallEnded { call, outcome });
}

/// Every output queued now, with each append completed at once (fed at time 0, which the
/// node clamps to its own now), so the writes it let through are answered.
pub fn drain(n: &mut Node) -> Vec<Output> {
    let mut all = Vec::new();
    while let Some(o) = n.poll_output() {
        if let Output::Append { token, blocks } = &o {
            let offsets = (0..blocks.len() as u64).collect();
            let token = *token;
            n.handle(at(0), Input::Appended { token, offsets });
        }
        if let Output::AskCodios { call, key } = &o {
            ASKED.with(|a| a.borrow_mut().insert(key.clone(), *call));
        }
        all.push(o);
    }
    all
}

/// How the node decided one write, read from its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The write was let through and written; `degraded` as its `WriteAuthorized` says.
    Authorized { degraded: bool },
    /// Refused: a Codios deny, or local mode without the root key.
    Denied { reason: String },
    /// Refused for now: Codios could not be asked and nothing cached may be served.
    AuthUnavailable { reason: String },
}

/// The keys of the `AskCodios` outputs.
pub fn asks(outputs: &[Output]) -> Vec<AuthKey> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::AskCodios { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The node's decisions, by request id, in the order the writes were answered. A write let
/// through must say so in a `WriteAuthorized` unless it bears the root key (or the node is in
/// local mode, where only the root key writes).
pub fn responses(outputs: &[Output]) -> Vec<(u64, Verdict)> {
    let mut let_through = BTreeMap::new();
    let mut verdicts = Vec::new();
    for o in outputs {
        match o {
            Output::Log(Event::WriteAuthorized {
                request, degraded, ..
            }) => {
                let_through.insert(request.0, *degraded);
            }
            Output::Respond { request, response } => {
                let v = match response {
                    Response::Written(_) => Verdict::Authorized {
                        degraded: let_through.get(&request.0).copied().unwrap_or(false),
                    },
                    Response::Denied { reason } => Verdict::Denied {
                        reason: reason.clone(),
                    },
                    Response::AuthUnavailable { reason } => Verdict::AuthUnavailable {
                        reason: reason.clone(),
                    },
                    other => panic!("a write answered {other:?}"),
                };
                verdicts.push((request.0, v));
            }
            _ => {}
        }
    }
    verdicts
}

/// The requests a `WriteAuthorized` event named.
pub fn let_through(outputs: &[Output]) -> Vec<u64> {
    events(outputs)
        .iter()
        .filter_map(|e| match e {
            Event::WriteAuthorized { request, .. } => Some(request.0),
            _ => None,
        })
        .collect()
}

/// The logged events.
pub fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Log(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

pub fn degraded_logs(outputs: &[Output]) -> usize {
    events(outputs)
        .iter()
        .filter(|e| matches!(e, Event::AuthDegraded { .. }))
        .count()
}

/// Authorizes `token` at `ms` and returns the one answer, asserting Codios was not asked.
#[track_caller]
pub fn answered_from_cache(n: &mut Node, ms: u64, req: u64, token: &str) -> (Verdict, Vec<Output>) {
    authorize(n, ms, req, token);
    let out = drain(n);
    assert!(
        asks(&out).is_empty(),
        "Codios was asked at {ms} ms: {out:?}"
    );
    let r = responses(&out);
    assert_eq!(r.len(), 1, "one answer expected at {ms} ms: {out:?}");
    assert_eq!(r[0].0, req);
    (r[0].1.clone(), out)
}

/// Caches `decision` for `token`, fetched at `ms` (asked and answered at the same instant).
#[track_caller]
pub fn prime(n: &mut Node, ms: u64, token: &str, decision: Decision) {
    authorize(n, ms, 9_000_000 + ms, token);
    let out = drain(n);
    assert_eq!(
        asks(&out),
        vec![key(token)],
        "priming {token} must ask Codios"
    );
    answer(n, ms, token, decision);
    drain(n);
}

/// The node's auth status.
pub fn auth_status(n: &mut Node, ms: u64) -> AuthStatus {
    n.handle(
        at(ms),
        Input::StatusRequested {
            request: RequestId(8_888_888),
            wall: UnixMillis(1_700_000_000_000 + ms),
        },
    );
    let out = drain(n);
    match out.into_iter().last() {
        Some(Output::Respond {
            response: Response::Status(s),
            ..
        }) => s.auth.expect("status reports auth"),
        other => panic!("expected a status, got {other:?}"),
    }
}

pub fn is_authorized(r: &Verdict, degraded: bool) -> bool {
    *r == Verdict::Authorized { degraded }
}

pub fn is_denied(r: &Verdict) -> bool {
    matches!(r, Verdict::Denied { .. })
}

pub fn is_unavailable(r: &Verdict) -> bool {
    matches!(r, Verdict::AuthUnavailable { .. })
}

/// A compact line per output, for snapshot stories.
pub fn trace_line(trace: &mut String, ms: u64, what: &str, outputs: &[Output]) {
    writeln!(trace, "{:>3}.{:03}s {what}", ms / S, ms % S).unwrap();
    for o in outputs {
        let line = match o {
            Output::AskCodios { key, .. } => format!("AskCodios {key:?}"),
            Output::Append { token, blocks } => {
                format!("Append token={} blocks={}", token.0, blocks.len())
            }
            Output::Respond {
                request,
                response: Response::Written(r),
            } => format!("Respond req={} Written seq={}", request.0, r.seq),
            Output::Respond { request, response } => {
                format!("Respond req={} {response:?}", request.0)
            }
            Output::Log(e) => format!("Log {e:?}"),
            other => format!("{other:?}"),
        };
        writeln!(trace, "          {line}").unwrap();
    }
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
