//! A single node driven through its auth inputs at stated times, for the `auth_*` stories.
//! Codios is whatever the test says it is: each `AskCodios` is answered (or failed) by hand.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::time::Duration;

use sapix_core::auth::{Action, AuthKey, AuthPolicy, BreakerConfig, Decision};
use sapix_core::node::{AuthSettings, Event, Input, Output, RequestId, Response, Restored};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::status::AuthStatus;
use sapix_core::{
    AgentId, Collection, Instant, KeySchedule, MasterSeed, Node, NodeConfig, UnixMillis,
};

pub const S: u64 = 1_000;

pub fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Codios mode with the spec's defaults.
pub fn codios() -> AuthSettings {
    AuthSettings {
        codios: true,
        ..AuthSettings::default()
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
        ..AuthSettings::default()
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
        ..AuthSettings::default()
    }
}

pub fn config(auth: AuthSettings) -> NodeConfig {
    NodeConfig {
        agent_id: AgentId::new("primary").unwrap(),
        endpoint: "http://primary:7475".into(),
        added_at: UnixMillis(1_000),
        backoff: BackoffPolicy::default(),
        rng_seed: 7,
        auth,
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

pub fn authorize(n: &mut Node, ms: u64, req: u64, token: &str) {
    n.handle(
        at(ms),
        Input::AuthorizeRequested {
            request: RequestId(req),
            key: key(token),
            is_root: false,
        },
    );
}

pub fn authorize_root(n: &mut Node, ms: u64, req: u64) {
    n.handle(
        at(ms),
        Input::AuthorizeRequested {
            request: RequestId(req),
            key: key("the-root-key"),
            is_root: true,
        },
    );
}

pub fn answer(n: &mut Node, ms: u64, token: &str, decision: Decision) {
    n.handle(
        at(ms),
        Input::CodiosAnswered {
            key: key(token),
            decision,
        },
    );
}

pub fn fail(n: &mut Node, ms: u64, token: &str) {
    n.handle(
        at(ms),
        Input::CodiosFailed {
            key: key(token),
            reason: "connection failed".into(),
        },
    );
}

/// Every output queued now.
pub fn drain(n: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

/// The keys of the `AskCodios` outputs.
pub fn asks(outputs: &[Output]) -> Vec<AuthKey> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::AskCodios { key } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The answers, by request id.
pub fn responses(outputs: &[Output]) -> Vec<(u64, Response)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Respond { request, response } => Some((request.0, response.clone())),
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
pub fn answered_from_cache(
    n: &mut Node,
    ms: u64,
    req: u64,
    token: &str,
) -> (Response, Vec<Output>) {
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
    match responses(&out).pop() {
        Some((_, Response::Status(s))) => s.auth.expect("status reports auth"),
        other => panic!("expected a status, got {other:?}"),
    }
}

pub fn is_authorized(r: &Response, degraded: bool) -> bool {
    *r == Response::Authorized { degraded }
}

pub fn is_denied(r: &Response) -> bool {
    matches!(r, Response::Denied { .. })
}

pub fn is_unavailable(r: &Response) -> bool {
    matches!(r, Response::AuthUnavailable { .. })
}

/// A compact line per output, for snapshot stories.
pub fn trace_line(trace: &mut String, ms: u64, what: &str, outputs: &[Output]) {
    writeln!(trace, "{:>3}.{:03}s {what}", ms / S, ms % S).unwrap();
    for o in outputs {
        let line = match o {
            Output::AskCodios { key } => format!("AskCodios {key:?}"),
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
