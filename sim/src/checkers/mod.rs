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
pub mod forgery;
pub mod heads_forward;
pub mod no_equivocation;
pub mod peer_acks;
pub mod read_your_writes;
pub mod stored_once;

use sapix_core::block::Block;
use sapix_core::node::Event;
use sapix_core::AgentId;

use crate::config::Micros;
use crate::storage::Store;

/// A check's outcome: the checker's name and what it saw, when it fails.
pub type Verdict = Result<(), (&'static str, String)>;

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
    /// Forged blocks and what the nodes did with them.
    pub forgery: forgery::Forgeries,
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
            forgery: forgery::Forgeries::default(),
        }
    }
}

impl Checkers {
    /// A block is about to become durable on node `node`, agent `me` (`store` is its disk):
    /// stored once there, and no second block at its author and seq anywhere — unless it is
    /// forged, which only its author must never store.
    pub fn landing(&mut self, node: usize, me: &AgentId, store: &Store, block: &Block) -> Verdict {
        let once = stored_once::check_landing(store, block).map_err(|m| ("stored_once", m));
        if self.forgery.is_forged(&block.hash) {
            let own = self.forgery.stored(node, me, block);
            return once.and(own.map_err(|m| ("forgery", m)));
        }
        // Always record the landing, so later blocks are judged against it.
        let honest = self
            .equivocation
            .landed(block)
            .map_err(|m| ("no_equivocation", m));
        once.and(honest)
    }

    /// Node `node` logged `event`: an equivocation, or a retry off the schedule, is a violation.
    pub fn logged(&mut self, node: usize, me: &AgentId, event: &Event) -> Verdict {
        match event {
            // Honest authors never equivocate: one of the two must be forged.
            Event::Equivocation { held, refused, .. } => self
                .forgery
                .equivocation(node, held, refused)
                .map_err(|m| ("no_equivocation", m)),
            Event::PeerHoldsForgedBlock { .. } => self
                .forgery
                .peer_holds_forged(node, me)
                .map_err(|m| ("forgery", m)),
            Event::ForgedOwnBlock { hash, .. } => self
                .forgery
                .forged_own(node, me, hash)
                .map_err(|m| ("forgery", m)),
            // Honest nodes sign heads only over the chains they hold, and every peer that
            // holds a head's blocks holds the same ones — unless it stores a forged one.
            Event::HeadRefused {
                author,
                why: sapix_core::node::HeadRefusal::Diverged { .. },
                ..
            } => self
                .forgery
                .head_refused(node, author)
                .map_err(|m| ("honest_heads", m)),
            // An honest disk never loses what a node signed a head over.
            Event::OwnChainUnsafe(why) => {
                Err(("own_chain_intact", format!("n{node} logged {why}")))
            }
            // Nor what it witnessed a head over.
            Event::WitnessedChainUnsafe(why) => {
                Err(("witnessed_chain_intact", format!("n{node} logged {why}")))
            }
            Event::PushRetry {
                peer,
                failures,
                retry_in_ms,
                ..
            } => self
                .backoff
                .retry(node, peer, *failures, *retry_in_ms)
                .map_err(|m| ("backoff", m)),
            Event::ExtendedFailure { peer, .. } => self
                .backoff
                .extended(node, peer)
                .map_err(|m| ("backoff", m)),
            _ => Ok(()),
        }
    }
}
