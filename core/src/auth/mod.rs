//! Authorization of client writes against Codios: the decision cache and the circuit breaker.
//!
//! Two plain sub-machines, each owning one concern and tested on its own (DESIGN §5):
//! [`AuthCache`] owns what Codios said and for how long it may be believed, and keeps concurrent
//! questions about one key to a single Codios call; [`CircuitBreaker`] owns whether Codios is
//! asked at all. Neither reads a clock or performs I/O; both take `now`. The invariant they keep
//! together is DESIGN §6.6: a Codios deny is never overridden, and a permit is served after its
//! TTL only as §5 allows (within `max_stale`, or at any age while the opt-in breaker is open;
//! never with `require_codios`).
//!
//! # How the node combines them
//!
//! On `WriteRequested`, whose [`Credential`] is not the root key's, in Codios mode, the node
//! takes the write's [`AuthKey`] and (`node/authz.rs`):
//!
//! 1. [`AuthCache::lookup`]: [`Lookup::Fresh`] decides at once (permit → the write runs; deny →
//!    refuse), no Codios call.
//! 2. [`Lookup::Miss`]: ask [`CircuitBreaker::should_call_codios`].
//!    - [`Admission::Bypass`] (circuit open): answer now from
//!      [`AuthCache::on_codios_failure`] with `breaker_open = true`, and log `auth_degraded`.
//!    - [`Admission::Call`] or [`Admission::Probe`]: [`AuthCache::begin_fetch`] with the request
//!      id as the waiter. [`FetchStart::AskCodios`] → emit `AskCodios`; [`FetchStart::Joined`]
//!      → nothing, the write waits on the call already out.
//! 3. `CodiosAnswered`: [`AuthCache::record`] returns the waiters: on a permit each parked write
//!    runs, on a deny each is refused; then [`CircuitBreaker::on_success`] (a [`Transition::Closed`] is logged).
//! 4. `CodiosFailed` or the call's timeout: [`CircuitBreaker::on_failure`] first (it may open
//!    the circuit: log [`Transition::Opened`]), then [`AuthCache::fail`] returns the waiters and
//!    one [`AuthCache::on_codios_failure`] verdict, with `breaker_open` as it is now, answers
//!    them all: [`FailureVerdict::Permit`] (log `auth_degraded` when `degraded`),
//!    [`FailureVerdict::Deny`], or [`FailureVerdict::Refuse`] (the server answers 503).
//! 5. Timers: [`CircuitBreaker::poll_timeout`] joins the node's timer table. When
//!    [`CircuitBreaker::handle_timeout`] returns `true`, a probe is due: the node asks Codios
//!    about [`AuthCache::most_recently_used`] via [`AuthCache::begin_refresh`] (no waiter), so
//!    the circuit can close even while no writes arrive.
//!
//! Config is checked once at start: [`AuthPolicy`] and [`BreakerConfig::validate`] (the breaker
//! and `SAPIX_REQUIRE_CODIOS` contradict each other).

mod breaker;
mod cache;
mod credential;

pub use breaker::{Admission, BreakerConfig, BreakerState, CircuitBreaker, Transition};
pub use cache::{
    Action, AuthCache, AuthKey, AuthPolicy, Decision, FailureVerdict, FetchStart, Lookup,
    StaleEntry,
};
pub use credential::Credential;

/// Why an auth configuration was refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// The breaker serves cached decisions without Codios; fail-closed forbids exactly that.
    #[error(
        "SAPIX_AUTH_CIRCUIT_BREAKER=true contradicts SAPIX_REQUIRE_CODIOS=true: an open circuit \
         serves cached decisions without asking Codios, which fail-closed mode forbids; \
         enable at most one of them"
    )]
    BreakerWithRequireCodios,
    /// A zero probe interval would make the breaker want to be woken at `now` forever.
    #[error("the circuit breaker's half-open probe interval must be greater than zero")]
    ZeroProbeInterval,
}

#[cfg(test)]
mod tests;
