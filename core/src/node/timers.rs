//! The node's timer table: every deadline it keeps, by name, read from the sub-machine that
//! owns it (so there is one place each is set), and why the next wake happens.
//!
//! Two deadlines wake the node: the drain tick (every [`TICK`](super::TICK) while there is
//! mesh or admin work) and, while the auth circuit is open, the breaker's half-open probe.
//! The others become due at their instant and are acted on by the next drain, as the spec's
//! schedule says ("retried on the next 500 ms drain"): a push retry, a probe, a pull retry,
//! an anti-entropy run, a cluster-view write. [`Node::poll_timeout`] is the earliest waking
//! deadline; [`Node::next_wake`] also names what that wake will serve, and
//! [`Node::last_wake`] what the last one did, for traces.

use crate::id::AgentId;
use crate::time::Instant;

use super::Node;

/// A named deadline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The drain tick: sends due retries, probes and announcements.
    Drain,
    /// The auth circuit's half-open probe (wakes the node on its own).
    BreakerProbe,
    /// A push to the peer may be retried: its backoff wait ended.
    PushRetry(AgentId),
    /// The peer is due a probe.
    Probe(AgentId),
    /// A pull from the peer may start again after a failed run.
    PullRetry(AgentId),
    /// An idle pull from the peer wants its periodic anti-entropy run.
    AntiEntropy(AgentId),
    /// A failed `cluster.json` write is tried again.
    ClusterWrite,
    /// The first read waiting for chain positions stops waiting (wakes the node on its own).
    PositionWait,
    /// A head of the own chain is owed (wakes the node on its own).
    Head,
}

impl Timer {
    /// Whether this deadline wakes the node itself (the rest wait for the next drain).
    pub fn wakes(&self) -> bool {
        matches!(
            self,
            Timer::Drain | Timer::BreakerProbe | Timer::PositionWait | Timer::Head
        )
    }
}

/// One wake of the node: when, which waking deadline it is, and the other deadlines due by
/// then, which it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wake {
    /// The instant.
    pub at: Instant,
    /// The deadline that wakes the node.
    pub timer: Timer,
    /// The other deadlines due by `at`, earliest first.
    pub serves: Vec<Timer>,
}

impl Node {
    /// Every deadline the node keeps, earliest first.
    #[must_use]
    pub fn deadlines(&self) -> Vec<(Instant, Timer)> {
        let mut all = Vec::new();
        all.extend(self.tick_at.map(|at| (at, Timer::Drain)));
        all.extend(
            self.authz
                .poll_timeout()
                .map(|at| (at, Timer::BreakerProbe)),
        );
        for (id, peer) in &self.peers {
            all.extend(peer.retry_at().map(|at| (at, Timer::PushRetry(id.clone()))));
            all.extend(peer.probe_due().map(|at| (at, Timer::Probe(id.clone()))));
        }
        for (id, pull) in &self.pulls {
            all.extend(pull.retry_at().map(|at| (at, Timer::PullRetry(id.clone()))));
            let anti_entropy = pull.anti_entropy_at();
            all.extend(anti_entropy.map(|at| (at, Timer::AntiEntropy(id.clone()))));
        }
        let writes = self.admin.writes.retry_at();
        all.extend(writes.map(|at| (at, Timer::ClusterWrite)));
        all.extend(self.reads.deadline().map(|at| (at, Timer::PositionWait)));
        all.extend(self.heads.deadline().map(|at| (at, Timer::Head)));
        all.sort();
        all
    }

    /// The next wake ([`Node::poll_timeout`]) and what it serves.
    #[must_use]
    pub fn next_wake(&self) -> Option<Wake> {
        let all = self.deadlines();
        let (at, timer) = all.iter().find(|(_, t)| t.wakes()).cloned()?;
        let serves = all
            .into_iter()
            .filter(|(due, t)| !t.wakes() && *due <= at)
            .map(|(_, t)| t)
            .collect();
        Some(Wake { at, timer, serves })
    }

    /// What the last [`Node::handle_timeout`] that found a deadline due woke for.
    #[must_use]
    pub fn last_wake(&self) -> Option<&Wake> {
        self.last_wake.as_ref()
    }
}
