//! The opt-in Codios circuit breaker: whether a write's auth miss may wait on Codios at all.
//!
//! It owns the failure streak and the circuit state. Invariants: the circuit opens only on a
//! failure at least `open_after` after the first failure of an unbroken streak (any success
//! breaks it); while open, at most one half-open probe is claimed per `probe_interval`, so
//! exactly one probe is in flight; any success closes it; a disabled breaker never opens. It
//! emits nothing: transitions are returned so the node can log them.

use std::time::Duration;

use super::AuthConfigError;
use crate::time::Instant;

/// The breaker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// `SAPIX_AUTH_CIRCUIT_BREAKER` (default `false`).
    pub enabled: bool,
    /// `SAPIX_AUTH_CIRCUIT_OPEN_AFTER_SECS` (default 30 s): continuous failure before opening.
    pub open_after: Duration,
    /// While open, how often one half-open probe may be sent (default 5 s, one permit TTL, so
    /// enforcement resumes about as fast as a cached decision would expire anyway).
    pub probe_interval: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: false,
            open_after: Duration::from_secs(30),
            probe_interval: Duration::from_secs(5),
        }
    }
}

impl BreakerConfig {
    /// Checks the settings against `SAPIX_REQUIRE_CODIOS`; run once at start.
    pub fn validate(&self, require_codios: bool) -> Result<(), AuthConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if require_codios {
            return Err(AuthConfigError::BreakerWithRequireCodios);
        }
        if self.probe_interval.is_zero() {
            return Err(AuthConfigError::ZeroProbeInterval);
        }
        Ok(())
    }
}

/// Where the circuit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Codios is asked on every miss.
    Closed,
    /// Codios is bypassed; cached decisions are served. Open since `since`.
    Open {
        /// When the circuit opened.
        since: Instant,
    },
    /// Open, with one probe in flight to find out whether Codios is back.
    HalfOpen {
        /// When the circuit opened.
        since: Instant,
    },
}

/// The answer of [`CircuitBreaker::should_call_codios`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: ask Codios.
    Call,
    /// Open and a probe is due: ask Codios; this call is the one probe in flight.
    Probe,
    /// Open: do not ask; serve the cached decision and log `auth_degraded`.
    Bypass,
}

/// A change of circuit state, for the node to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The circuit opened: cached decisions are now served without Codios.
    Opened,
    /// The circuit closed: normal enforcement resumes.
    Closed,
}

/// The Codios circuit breaker; a plain struct fed outcomes and time.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    /// First failure of the current streak; `None` after any success.
    failing_since: Option<Instant>,
    /// While not closed: when the next probe may be claimed. In half-open this is also when
    /// the probe in flight is presumed lost, so a dropped probe cannot keep the circuit open.
    next_probe: Instant,
    last_now: Instant,
}

impl CircuitBreaker {
    /// A closed breaker. A zero `probe_interval` (refused by [`BreakerConfig::validate`]) is
    /// raised to 1 ms so that [`CircuitBreaker::poll_timeout`] always moves forward.
    pub fn new(mut config: BreakerConfig) -> Self {
        config.probe_interval = config.probe_interval.max(Duration::from_millis(1));
        CircuitBreaker {
            config,
            state: BreakerState::Closed,
            failing_since: None,
            next_probe: Instant::ZERO,
            last_now: Instant::ZERO,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Where the circuit is.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether cached decisions are being served without Codios (open or half-open): the
    /// `breaker_open` argument of [`super::AuthCache::on_codios_failure`].
    pub fn is_open(&self) -> bool {
        self.state != BreakerState::Closed
    }

    /// The first failure of the current streak, if Codios is failing.
    pub fn failing_since(&self) -> Option<Instant> {
        self.failing_since
    }

    /// Whether a write's miss at `now` may ask Codios. While open, the first caller at or after
    /// the probe time gets [`Admission::Probe`] (and must report its outcome); everyone else
    /// gets [`Admission::Bypass`].
    pub fn should_call_codios(&mut self, now: Instant) -> Admission {
        let now = self.clamp(now);
        if !self.is_open() {
            Admission::Call
        } else if self.try_claim_probe(now) {
            Admission::Probe
        } else {
            Admission::Bypass
        }
    }

    /// When the breaker wants [`CircuitBreaker::handle_timeout`]: the next probe time while
    /// open, `None` while closed. Moves forward every time a probe is claimed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Closed => None,
            _ => Some(self.next_probe),
        }
    }

    /// Wakes the breaker at `now`. Returns `true` when a probe is due and now claimed: the
    /// caller sends one Codios call and reports it with `on_success`/`on_failure`. Early or
    /// repeated calls return `false` and change nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let now = self.clamp(now);
        self.try_claim_probe(now)
    }

    /// A Codios call failed (error or timeout) at `now`. Returns [`Transition::Opened`] when
    /// this failure completes `open_after` of continuous failure.
    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        let now = self.clamp(now);
        if !self.config.enabled {
            return None;
        }
        match self.state {
            BreakerState::Closed => {
                let first = *self.failing_since.get_or_insert(now);
                if now.saturating_since(first) < self.config.open_after {
                    return None;
                }
                self.state = BreakerState::Open { since: now };
                self.next_probe = now + self.config.probe_interval;
                Some(Transition::Opened)
            }
            // The probe failed: stay open; the next probe keeps its slot.
            BreakerState::HalfOpen { since } => {
                self.state = BreakerState::Open { since };
                None
            }
            BreakerState::Open { .. } => None,
        }
    }

    /// Codios answered at `now`. Ends the failure streak and closes an open circuit, returning
    /// [`Transition::Closed`] if it was open.
    pub fn on_success(&mut self, now: Instant) -> Option<Transition> {
        self.clamp(now);
        self.failing_since = None;
        if self.state == BreakerState::Closed {
            return None;
        }
        self.state = BreakerState::Closed;
        Some(Transition::Closed)
    }

    fn try_claim_probe(&mut self, now: Instant) -> bool {
        let since = match self.state {
            BreakerState::Open { since } | BreakerState::HalfOpen { since } => since,
            BreakerState::Closed => return false,
        };
        if now < self.next_probe {
            return false;
        }
        self.state = BreakerState::HalfOpen { since };
        self.next_probe = now + self.config.probe_interval;
        true
    }

    /// Time that goes backwards is clamped, so a streak's length can never shrink.
    fn clamp(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }
}

#[cfg(test)]
mod tests;
