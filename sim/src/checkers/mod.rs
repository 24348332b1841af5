//! The invariants of DESIGN §6, one module per property (TigerBeetle's `*_checker.zig`).
//!
//! Safety checkers run at the moment their property could first break — when an append is
//! handed over or lands, when a write is answered, when a cursor file is written — so a
//! failure names the exact step. Liveness ([`convergence`]) is judged once faults stop.

pub mod acked_writes;
pub mod answered;
pub mod auth;
pub mod backoff;
pub mod chain_intact;
pub mod convergence;
pub mod cp_replicated;
pub mod cursors;
pub mod durable_sends;
pub mod no_equivocation;
pub mod peer_acks;
pub mod stored_once;

use crate::config::Micros;

/// A broken invariant: which checker, when, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Simulated time.
    pub at: Micros,
    /// The checker's name.
    pub checker: &'static str,
    /// What it saw.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] at {}.{:06}s: {}",
            self.checker,
            self.at / crate::config::SECOND,
            self.at % crate::config::SECOND,
            self.message
        )
    }
}

/// The checkers that keep state across the run.
#[derive(Debug)]
pub struct Checkers {
    /// §6.1.
    pub acked: acked_writes::AckedWrites,
    /// Honest nodes never equivocate.
    pub equivocation: no_equivocation::NoEquivocation,
    /// §4 / §6.7: cursors.
    pub cursors: cursors::CursorsBehindDurable,
    /// §4 / §6.7: the retry schedule.
    pub backoff: backoff::BackoffSchedule,
    /// §6.6: Codios decisions.
    pub auth: auth::AuthDecisions,
}

impl Checkers {
    /// Checkers for `n` nodes.
    pub fn new(n: usize) -> Self {
        Checkers {
            acked: acked_writes::AckedWrites::new(n),
            equivocation: no_equivocation::NoEquivocation::default(),
            cursors: cursors::CursorsBehindDurable::new(n),
            backoff: backoff::BackoffSchedule::new(n),
            auth: auth::AuthDecisions::new(n),
        }
    }
}
