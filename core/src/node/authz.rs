//! Authorization of client writes and reads (DESIGN §5): the node's side of [`AuthCache`]
//! and [`CircuitBreaker`], composed as the `auth` module guide describes. A read is decided
//! exactly like a write of the same collection, under its own cache key (action `read`): a
//! permit to write never lets a token read, nor the other way round.
//!
//! Every auth decision the node makes is made here; `mod.rs` only routes inputs and folds the
//! breaker's deadline into the timer. The invariant kept is DESIGN §6.6: a Codios deny is never
//! overridden, a permit past its TTL is served only when Codios failed (within `max_stale`, or
//! at any age while the opt-in circuit is open, never with `require_codios`), and every write
//! let through that way is logged `auth_degraded`. The root key is always permitted; without
//! Codios (local mode) nothing else is.

use std::collections::BTreeMap;

use crate::auth::{
    Action, Admission, AuthCache, AuthKey, AuthPolicy, BreakerConfig, BreakerState, CircuitBreaker,
    Credential, Decision, FailureVerdict, FetchStart, Lookup, Transition,
};
use crate::id::Collection;
use crate::status::{AuthMode, AuthStatus, BreakerStatus};
use crate::time::{Instant, UnixMillis};

use super::call::Call;
use super::{Event, Failure, Node, Output, RequestId, Response};

/// How a node authorizes client writes other than the root key's; fixed at start. The
/// default is local mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// A Codios endpoint is configured (`SAPIX_CODIOS_URL`). Without one the node runs in
    /// local mode: only the root key may write.
    pub codios: bool,
    /// Cache TTLs, the stale bound and `SAPIX_REQUIRE_CODIOS`.
    pub policy: AuthPolicy,
    /// The opt-in circuit breaker. Check it with [`BreakerConfig::validate`] before start.
    pub breaker: BreakerConfig,
    /// `SAPIX_READS_OPEN`: reads need no token at all (the agent's behaviour before reads
    /// were authorized). Writes are unaffected.
    pub reads_open: bool,
}

/// A client request waiting for Codios's answer about its key.
#[derive(Debug)]
pub(super) enum Parked {
    /// A write: run it once permitted.
    Write(ParkedWrite),
    /// A read: answered [`Response::ReadAllowed`] once permitted.
    Read,
}

/// A client write waiting for Codios's answer about its key.
#[derive(Debug)]
pub(super) struct ParkedWrite {
    pub(super) collection: Collection,
    pub(super) payload: Vec<u8>,
    pub(super) wall: UnixMillis,
}

/// What a failed (or bypassed) Codios call leaves a waiting write: the cache's verdict,
/// whether the circuit is open, and why Codios was not used.
#[derive(Debug, Clone, Copy)]
struct Failover<'a> {
    verdict: FailureVerdict,
    circuit_open: bool,
    why: &'a str,
}

/// The node's auth state: the decision cache, the breaker, and a counter for status.
#[derive(Debug)]
pub(super) struct Authz {
    root: Credential,
    codios: bool,
    reads_open: bool,
    cache: AuthCache<RequestId>,
    /// The requests waiting on the cache's Codios calls, under the request ids it returns.
    parked: BTreeMap<RequestId, Parked>,
    breaker: CircuitBreaker,
    degraded_total: u64,
    /// The last key Codios was asked about, for a probe when nothing is cached yet.
    last_asked: Option<AuthKey>,
    /// `PlantedBug::StalePermitPastDeny`: keys Codios ever permitted.
    #[cfg(feature = "sim")]
    planted_ever_permitted: std::collections::BTreeSet<AuthKey>,
}

impl Authz {
    pub(super) fn new(settings: &AuthSettings, root: Credential) -> Self {
        Authz {
            root,
            codios: settings.codios,
            reads_open: settings.reads_open,
            cache: AuthCache::new(settings.policy.clone()),
            parked: BTreeMap::new(),
            breaker: CircuitBreaker::new(settings.breaker.clone()),
            degraded_total: 0,
            last_asked: None,
            #[cfg(feature = "sim")]
            planted_ever_permitted: Default::default(),
        }
    }

    /// When the breaker wants to be woken for a half-open probe.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if self.codios {
            self.breaker.poll_timeout()
        } else {
            None
        }
    }

    pub(super) fn status(&self) -> AuthStatus {
        let breaker = if !self.codios || !self.breaker.config().enabled {
            BreakerStatus::Disabled
        } else {
            match self.breaker.state() {
                BreakerState::Closed => BreakerStatus::Closed,
                BreakerState::Open { .. } => BreakerStatus::Open,
                BreakerState::HalfOpen { .. } => BreakerStatus::HalfOpen,
            }
        };
        let (hits, misses) = self.cache.lookups();
        AuthStatus {
            mode: if self.codios {
                AuthMode::Codios
            } else {
                AuthMode::Local
            },
            breaker,
            require_codios: self.cache.policy().require_codios,
            degraded_total: self.degraded_total,
            cache_entries: self.cache.len() as u64,
            codios_in_flight: self.cache.in_flight() as u64,
            cache_hits: hits,
            cache_misses: misses,
        }
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Write => "write",
    }
}

fn deny_reason(key: &AuthKey) -> String {
    format!(
        "Codios does not allow this token to {} collection `{}`",
        action_name(key.action),
        key.resource
    )
}

impl Node {
    /// `WriteRequested`: authorize (the root key, local mode, a fresh cached decision, the
    /// open circuit, or a single-flight Codios call while the write waits), then write.
    pub(super) fn write_requested(
        &mut self,
        now: Instant,
        request: RequestId,
        credential: Credential,
        write: ParkedWrite,
    ) {
        if credential.is(&self.authz.root) {
            return self.run_write(now, request, write);
        }
        if !self.authz.codios {
            let reason = "this agent runs in local mode (SAPIX_CODIOS_URL is not set): only \
                          the root key may write records"
                .to_string();
            self.respond(request, Response::Denied { reason });
            return;
        }
        let key = AuthKey::of(credential, Action::Write, &write.collection);
        self.authorize(now, request, key, Parked::Write(write));
    }

    /// `ReadRequested`: open reads and the root key read at once; local mode reads only with
    /// the root key; in Codios mode a token reads a collection as it writes one: through the
    /// cache, single flight, the breaker and its failover. With no collection (nothing was
    /// found) only the token's presence is checked.
    pub(super) fn read_requested(
        &mut self,
        now: Instant,
        request: RequestId,
        credential: Option<Credential>,
        collection: Option<&Collection>,
    ) {
        if self.authz.reads_open {
            return self.respond(request, Response::ReadAllowed);
        }
        let Some(credential) = credential else {
            let reason = "reads need a bearer token (Authorization: Bearer <token>); \
                          SAPIX_READS_OPEN=true opens them"
                .to_string();
            return self.respond(request, Response::Unauthenticated { reason });
        };
        if credential.is(&self.authz.root) {
            return self.respond(request, Response::ReadAllowed);
        }
        // Nothing was found: any token may learn that (a denied read answers the same, so
        // nothing is revealed); only a missing token was refused.
        let Some(collection) = collection else {
            return self.respond(request, Response::ReadAllowed);
        };
        if !self.authz.codios {
            let reason = "this agent runs in local mode (SAPIX_CODIOS_URL is not set): only \
                          the root key may read records (or set SAPIX_READS_OPEN=true)"
                .to_string();
            return self.respond(request, Response::Denied { reason });
        }
        let key = AuthKey::of(credential, Action::Read, collection);
        self.authorize(now, request, key, Parked::Read);
    }

    /// A request whose token is neither the root key nor open: decide it from the cache, or
    /// park it on a single-flight Codios call, or fail over while the circuit is open.
    fn authorize(&mut self, now: Instant, request: RequestId, key: AuthKey, parked: Parked) {
        match self.authz.cache.lookup(now, &key) {
            Lookup::Fresh(decision) => self.decided(now, request, parked, &key, decision),
            Lookup::Miss { .. } => match self.authz.breaker.should_call_codios(now) {
                Admission::Bypass => {
                    let verdict = self.authz.cache.on_codios_failure(now, &key, true);
                    let why = Failover {
                        verdict,
                        circuit_open: true,
                        why: "circuit open",
                    };
                    self.failed_over(now, (request, parked), &key, why);
                }
                Admission::Call | Admission::Probe => {
                    self.authz.parked.insert(request, parked);
                    if self.authz.cache.begin_fetch(now, key.clone(), request)
                        == FetchStart::AskCodios
                    {
                        self.ask_codios(key);
                    }
                }
            },
        }
    }

    fn run_write(&mut self, now: Instant, request: RequestId, w: ParkedWrite) {
        self.write(now, request, w.collection, w.payload, w.wall);
    }

    /// `CodiosAnswered`: cache the decision, answer everyone waiting on it, close the circuit.
    pub(super) fn codios_answered(&mut self, now: Instant, key: AuthKey, decision: Decision) {
        let open_since = match self.authz.breaker.state() {
            BreakerState::Open { since } | BreakerState::HalfOpen { since } => Some(since),
            BreakerState::Closed => None,
        };
        #[cfg(feature = "sim")]
        if decision == Decision::Permit {
            self.authz.planted_ever_permitted.insert(key.clone());
        }
        let waiters = self.authz.cache.record(now, key.clone(), decision);
        for request in waiters {
            if let Some(parked) = self.authz.parked.remove(&request) {
                self.decided(now, request, parked, &key, decision);
            }
        }
        if self.authz.breaker.on_success(now) == Some(Transition::Closed) {
            let open_for_ms = open_since.map_or(0, |s| now.saturating_since(s).as_millis() as u64);
            self.log(Event::AuthCircuitClosed { open_for_ms });
        }
    }

    /// `CodiosFailed`: count it against the breaker first (it may open the circuit), then
    /// answer everyone waiting from what the cache may serve.
    pub(super) fn codios_failed(&mut self, now: Instant, key: AuthKey, reason: Failure) {
        let failing_since = self.authz.breaker.failing_since().unwrap_or(now);
        if self.authz.breaker.on_failure(now) == Some(Transition::Opened) {
            let failing_for_ms = now.saturating_since(failing_since).as_millis() as u64;
            self.log(Event::AuthCircuitOpened { failing_for_ms });
        }
        let waiters = self.authz.cache.fail(&key);
        self.log(Event::CodiosFailed {
            key: key.clone(),
            waiting: waiters.len(),
            reason: reason.clone(),
        });
        let open = self.authz.breaker.is_open();
        let verdict = self.authz.cache.on_codios_failure(now, &key, open);
        let why = format!("Codios call failed: {reason}");
        for request in waiters {
            if let Some(parked) = self.authz.parked.remove(&request) {
                let failover = Failover {
                    verdict,
                    circuit_open: open,
                    why: &why,
                };
                self.failed_over(now, (request, parked), &key, failover);
            }
        }
    }

    /// The breaker's timer: when a half-open probe is due, ask Codios about the key used
    /// last, with nobody waiting, so the circuit can close while no writes arrive.
    pub(super) fn auth_timeout(&mut self, now: Instant) {
        if !self.authz.codios || !self.authz.breaker.handle_timeout(now) {
            return;
        }
        let key = self
            .authz
            .cache
            .most_recently_used()
            .or(self.authz.last_asked.as_ref())
            .cloned();
        // With no key ever asked there is nothing to probe with; the next write's miss at or
        // after the following probe time is admitted as the probe instead.
        if let Some(key) = key {
            if self.authz.cache.begin_refresh(now, key.clone()) == FetchStart::AskCodios {
                self.ask_codios(key);
            }
        }
    }

    fn ask_codios(&mut self, key: AuthKey) {
        self.authz.last_asked = Some(key.clone());
        let call = self.calls.open(Call::Codios { key: key.clone() });
        self.outputs.push_back(Output::AskCodios { call, key });
    }

    /// A Codios decision (fresh, or just answered) for a request: run it or refuse it.
    fn decided(
        &mut self,
        now: Instant,
        request: RequestId,
        parked: Parked,
        key: &AuthKey,
        decision: Decision,
    ) {
        match decision {
            Decision::Permit => self.authorized(now, request, parked, key, false),
            Decision::Deny => {
                let reason = deny_reason(key);
                self.respond(request, Response::Denied { reason });
            }
        }
    }

    /// A request let through by Codios. A write says so (the simulator judges it there) and
    /// runs; a read is answered.
    fn authorized(
        &mut self,
        now: Instant,
        request: RequestId,
        parked: Parked,
        key: &AuthKey,
        degraded: bool,
    ) {
        match parked {
            Parked::Write(write) => {
                self.log(Event::WriteAuthorized {
                    request,
                    key: key.clone(),
                    degraded,
                });
                self.run_write(now, request, write);
            }
            Parked::Read => self.respond(request, Response::ReadAllowed),
        }
    }

    /// Decides one request whose Codios call failed or was bypassed by the open circuit.
    fn failed_over(
        &mut self,
        now: Instant,
        (request, parked): (RequestId, Parked),
        key: &AuthKey,
        Failover {
            verdict,
            circuit_open,
            why,
        }: Failover<'_>,
    ) {
        #[cfg(feature = "sim")]
        let verdict = match verdict {
            FailureVerdict::Deny
                if self
                    .bugs
                    .has(super::planted::PlantedBug::StalePermitPastDeny)
                    && self.authz.planted_ever_permitted.contains(key) =>
            {
                FailureVerdict::Permit {
                    degraded: true,
                    age: core::time::Duration::ZERO,
                }
            }
            v => v,
        };
        let response = match verdict {
            FailureVerdict::Permit { degraded, age } => {
                if degraded {
                    self.authz.degraded_total += 1;
                    self.log(Event::AuthDegraded {
                        key: key.clone(),
                        age_ms: age.as_millis() as u64,
                        circuit_open,
                        reason: why.to_string(),
                    });
                }
                return self.authorized(now, request, parked, key, degraded);
            }
            FailureVerdict::Deny => Response::Denied {
                reason: format!("{} (cached decision; {why})", deny_reason(key)),
            },
            FailureVerdict::Refuse => Response::AuthUnavailable {
                reason: format!(
                    "cannot authorize this {} now: {why}, and no cached decision for this \
                     token and collection may be served",
                    action_name(key.action)
                ),
            },
        };
        self.respond(request, response);
    }
}
