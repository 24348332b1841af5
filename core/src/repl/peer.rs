//! One peer as this node sees it: reachability, the push "retry queue", and probing.
//!
//! The retry queue holds positions, not copies (DESIGN §4): everything this node still owes
//! a peer is the range of its own chain `(acked, own_tip]`, because the peer's ingest only
//! accepts an author's blocks in chain order. So the queue is two integers whatever the
//! backlog — a million blocks behind costs no more memory than one — and no block can ever be
//! dropped by a cap: the blocks themselves stay in the durable strand until they are sent.
//!
//! Invariants: at most one push per peer is in flight, so blocks arrive in order; a failed
//! push or probe marks the peer unreachable, any success marks it reachable and resets its
//! backoff; while the peer is backing off nothing is pushed before `retry_at`.

use core::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::backoff::{Backoff, BackoffPolicy, Delay};
use crate::ledger::HeadKeys;
use crate::status::Role;
use crate::time::Instant;
use crate::AgentId;

/// The spec's queue cap: the most blocks one push may be asked to carry at once is far below
/// it; the cap itself never drops anything because the queue is a range (see module docs).
pub const QUEUE_CAP: u64 = 50_000;

/// Most blocks sent in one push request.
pub const MAX_PUSH_BATCH: u64 = 256;

/// How long a peer may go without any exchange before it is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// A member of the cluster, as persisted and announced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerInfo {
    /// Its agent id.
    pub agent_id: AgentId,
    /// Its base URL.
    pub endpoint: String,
    /// Its role.
    pub role: Role,
    /// When it joined (wall clock of the node that added it).
    pub added_at_ms: u64,
    /// The entry's version: a change of endpoint or role, or a removal, is one up
    /// ([`crate::repl::membership`]). 0 for an entry no member has changed yet.
    #[serde(default)]
    pub version: u64,
    /// Removed from the cluster: a tombstone, kept so the id is never a member again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub removed: bool,
    /// Its enrolled head keys, oldest first ([`crate::ledger::enrol`]); empty in entries
    /// written before enrolment existed.
    #[serde(default, skip_serializing_if = "HeadKeys::is_empty")]
    pub head_keys: HeadKeys,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl PeerInfo {
    /// A live entry at version 0.
    pub fn new(
        agent_id: AgentId,
        endpoint: impl Into<String>,
        role: Role,
        added_at_ms: u64,
    ) -> Self {
        PeerInfo {
            agent_id,
            endpoint: endpoint.into(),
            role,
            added_at_ms,
            version: 0,
            removed: false,
            head_keys: HeadKeys::default(),
        }
    }
}

/// Whether the last exchange with the peer worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Not contacted since this node started.
    Unknown,
    /// The last exchange succeeded.
    Reachable,
    /// The last exchange failed.
    Unreachable,
}

/// A reachability change worth logging and acting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing changed.
    None,
    /// The peer answered after being unreachable or unknown: pull from it, drain its queue.
    Healed,
    /// The peer stopped answering.
    Lost,
}

/// One peer's replication state.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Who it is.
    pub info: PeerInfo,
    reach: Reach,
    /// When the last exchange succeeded (shown as wall-clock `last_sync_ms` in status).
    last_ok: Option<Instant>,
    /// Monotonic time of the last exchange of any outcome, for idle probing.
    last_contact: Option<Instant>,
    /// Highest seq of this node's own chain the peer is known to hold; unknown until a probe
    /// tells, because the queue is in memory only and a restart forgets it.
    acked: Option<u64>,
    /// The last seq of the push in flight, if any.
    in_flight: Option<u64>,
    probing: bool,
    /// When the last probe ended.
    last_probed: Option<Instant>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl Peer {
    /// A peer this node has not contacted yet.
    pub fn new(info: PeerInfo) -> Self {
        Peer {
            info,
            reach: Reach::Unknown,
            last_ok: None,
            last_contact: None,
            acked: None,
            in_flight: None,
            probing: false,
            last_probed: None,
            backoff: Backoff::default(),
            retry_at: None,
        }
    }

    /// A peer known to hold this node's chain up to `acked`, as after a bootstrap copy.
    pub fn caught_up(info: PeerInfo, acked: u64, now: Instant) -> Self {
        let mut p = Peer::new(info);
        p.acked = Some(acked);
        p.reach = Reach::Reachable;
        p.last_ok = Some(now);
        p.last_contact = Some(now);
        p
    }

    /// Current reachability.
    pub fn reach(&self) -> Reach {
        self.reach
    }

    /// Whether the last exchange succeeded.
    pub fn is_reachable(&self) -> bool {
        self.reach == Reach::Reachable
    }

    /// When the last success was, if any.
    pub fn last_ok(&self) -> Option<Instant> {
        self.last_ok
    }

    /// Highest own seq the peer holds, if known.
    pub fn acked(&self) -> Option<u64> {
        self.acked
    }

    /// Blocks owed to the peer given this node's own chain tip (unknown counts as all).
    pub fn queue_depth(&self, own_tip: u64) -> u64 {
        own_tip.saturating_sub(self.acked.unwrap_or(0))
    }

    /// The un-jittered current backoff.
    pub fn backoff_base(&self, policy: &BackoffPolicy) -> Duration {
        self.backoff.base(policy)
    }

    /// Consecutive push failures in the current episode.
    pub fn backoff_failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// When the next retry is allowed, while backing off.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// The own-chain seqs to push now, if any: the next batch after `acked`, unless a push is
    /// in flight, the peer's position is unknown, or it is backing off. A caught-up peer owed
    /// a head gets an empty range, `acked + 1..=acked`: the head alone.
    pub fn next_push(&mut self, now: Instant, own_tip: u64, head_owed: bool) -> Option<(u64, u64)> {
        if self.in_flight.is_some() || self.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        let acked = self.acked?;
        if acked >= own_tip {
            if !head_owed {
                return None;
            }
            self.in_flight = Some(acked);
            return Some((acked + 1, acked));
        }
        let last = own_tip.min(acked + MAX_PUSH_BATCH);
        self.in_flight = Some(last);
        Some((acked + 1, last))
    }

    /// A planted bug (`PlantedBug::FailedPushCountsAsDelivered`): count the push in flight
    /// as delivered. Simulator only.
    #[cfg(feature = "sim")]
    pub fn planted_forget_in_flight(&mut self) {
        if let Some(last) = self.in_flight {
            self.acked = Some(self.acked.unwrap_or(0).max(last));
        }
    }

    /// A planted bug (`PlantedBug::QueueOverflowDrops`): past `cap` queued blocks, count the
    /// oldest as delivered. Simulator only.
    #[cfg(feature = "sim")]
    pub fn planted_drop_overflow(&mut self, own_tip: u64, cap: u64) {
        if self.in_flight.is_none() && self.queue_depth(own_tip) > cap {
            self.acked = Some(own_tip - cap);
        }
    }

    /// Whether a push is in flight.
    pub fn pushing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The peer durably holds own blocks through `through`.
    pub fn push_acked(&mut self, now: Instant, through: u64) -> Change {
        self.in_flight = None;
        self.acked = Some(self.acked.unwrap_or(0).max(through));
        self.succeeded(now)
    }

    /// The peer is missing own blocks before `expected`: resend from there. It answered, so it
    /// is reachable.
    pub fn push_gap(&mut self, now: Instant, expected: u64) -> Change {
        self.in_flight = None;
        self.acked = Some(expected.saturating_sub(1));
        self.succeeded(now)
    }

    /// The push failed (network error, timeout, non-2xx). Returns the backoff delay chosen.
    pub fn push_failed(
        &mut self,
        now: Instant,
        policy: &BackoffPolicy,
        rng: &mut ChaCha8Rng,
    ) -> (Change, Delay) {
        self.in_flight = None;
        let delay = self.backoff.fail(policy, rng);
        self.retry_at = Some(now + delay.wait);
        (self.failed(now), delay)
    }

    /// Whether the peer should be probed now: no probe is out, and either nothing has been
    /// heard from it for [`PROBE_INTERVAL`] with no push asking, or no probe has ended for
    /// that long.
    pub fn wants_probe(&self, now: Instant) -> bool {
        if self.probing {
            return false;
        }
        let stale =
            |t: Option<Instant>| t.is_none_or(|t| now.saturating_since(t) >= PROBE_INTERVAL);
        // Idle peers are probed to see a partition; every peer is probed at least this often,
        // busy ones too, because probe answers carry the membership digest.
        (self.in_flight.is_none() && stale(self.last_contact)) || stale(self.last_probed)
    }

    /// When [`Peer::wants_probe`] next turns true (`Instant::ZERO`: as soon as it can), or
    /// `None` while a probe is out.
    pub fn probe_due(&self) -> Option<Instant> {
        if self.probing {
            return None;
        }
        let after = |t: Option<Instant>| t.map_or(Instant::ZERO, |t| t + PROBE_INTERVAL);
        let regular = after(self.last_probed);
        Some(if self.in_flight.is_none() {
            regular.min(after(self.last_contact))
        } else {
            regular
        })
    }

    /// A probe is being sent.
    pub fn probe_sent(&mut self) {
        self.probing = true;
    }

    /// The peer answered a probe, holding own blocks through `holds`.
    pub fn probe_answered(&mut self, now: Instant, holds: u64) -> Change {
        self.probing = false;
        self.last_probed = Some(now);
        // With a push in flight the answer may predate it; the push's own answer will tell.
        if self.in_flight.is_none() {
            self.acked = Some(holds);
        }
        self.succeeded(now)
    }

    /// The probe failed.
    pub fn probe_failed(&mut self, now: Instant) -> Change {
        self.probing = false;
        self.last_probed = Some(now);
        self.failed(now)
    }

    fn succeeded(&mut self, now: Instant) -> Change {
        let was = self.reach;
        self.reach = Reach::Reachable;
        self.last_ok = Some(now);
        self.last_contact = Some(now);
        // A peer back online drains its whole queue without waiting (spec).
        self.backoff.reset();
        self.retry_at = None;
        if was == Reach::Reachable {
            Change::None
        } else {
            Change::Healed
        }
    }

    fn failed(&mut self, now: Instant) -> Change {
        let was = self.reach;
        self.reach = Reach::Unreachable;
        self.last_contact = Some(now);
        if was == Reach::Unreachable {
            Change::None
        } else {
            Change::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn peer() -> Peer {
        Peer::new(PeerInfo::new(
            AgentId::new("replica-eu").unwrap(),
            "http://b:7475",
            Role::Replica,
            0,
        ))
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn nothing_is_pushed_until_a_probe_says_where_the_peer_is() {
        let mut p = peer();
        assert_eq!(p.next_push(t(0), 10, false), None);
        assert!(p.wants_probe(t(0)));
        p.probe_sent();
        assert!(!p.wants_probe(t(0)));
        assert_eq!(p.probe_answered(t(1), 4), Change::Healed);
        assert_eq!(p.next_push(t(1), 10, false), Some((5, 10)));
        assert_eq!(
            p.next_push(t(1), 11, false),
            None,
            "one push in flight at a time"
        );
        assert_eq!(p.push_acked(t(2), 10), Change::None);
        assert_eq!(p.next_push(t(2), 11, false), Some((11, 11)));
    }

    #[test]
    fn a_caught_up_peer_owed_a_head_gets_an_empty_push_once_in_flight() {
        let mut p = peer();
        p.probe_answered(t(0), 4);
        assert_eq!(p.next_push(t(1), 4, false), None);
        assert_eq!(p.next_push(t(1), 4, true), Some((5, 4)), "the head alone");
        assert_eq!(
            p.next_push(t(1), 4, true),
            None,
            "one push in flight at a time"
        );
        p.push_acked(t(2), 4);
        assert_eq!(p.acked(), Some(4));
        assert_eq!(p.next_push(t(2), 6, true), Some((5, 6)), "blocks first");
    }

    #[test]
    fn a_large_backlog_goes_in_batches_in_order() {
        let mut p = peer();
        p.probe_answered(t(0), 0);
        let mut sent = Vec::new();
        while let Some((a, b)) = p.next_push(t(0), 1000, false) {
            sent.push((a, b));
            p.push_acked(t(0), b);
        }
        assert_eq!(sent.first(), Some(&(1, MAX_PUSH_BATCH)));
        assert_eq!(sent.last().unwrap().1, 1000);
        assert!(sent.windows(2).all(|w| w[1].0 == w[0].1 + 1));
    }

    #[test]
    fn failure_backs_off_and_any_success_drains_at_once() {
        let policy = BackoffPolicy {
            jitter: 0.0,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut p = peer();
        p.probe_answered(t(0), 0);
        p.next_push(t(0), 3, false).unwrap();
        let (change, d) = p.push_failed(t(10), &policy, &mut rng);
        assert_eq!((change, d.wait), (Change::Lost, Duration::from_secs(1)));
        assert_eq!(p.next_push(t(500), 3, false), None, "backing off");
        assert_eq!(p.next_push(t(1010), 3, false), Some((1, 3)));
        p.push_failed(t(1020), &policy, &mut rng);
        assert_eq!(p.retry_at(), Some(t(3020)));
        // The peer comes back (a probe answers): backoff resets, the queue drains now.
        assert_eq!(p.probe_answered(t(1500), 0), Change::Healed);
        assert_eq!(p.next_push(t(1500), 3, false), Some((1, 3)));
    }

    #[test]
    fn a_gap_answer_rewinds_to_what_the_peer_lacks() {
        let mut p = peer();
        p.probe_answered(t(0), 8);
        p.next_push(t(0), 10, false).unwrap();
        p.push_gap(t(1), 3);
        assert_eq!(p.next_push(t(1), 10, false), Some((3, 10)));
    }

    #[test]
    fn idle_peers_are_probed_every_interval() {
        let mut p = peer();
        p.probe_sent();
        p.probe_answered(t(0), 0);
        assert!(!p.wants_probe(t(1999)));
        assert!(p.wants_probe(t(2000)));
        p.probe_sent();
        assert_eq!(p.probe_failed(t(2100)), Change::Lost);
        assert!(!p.is_reachable());
        assert_eq!(p.probe_failed(t(4100)), Change::None);
    }

    #[test]
    fn queue_depth_counts_the_whole_backlog_without_storing_it() {
        let mut p = peer();
        p.probe_answered(t(0), 0);
        assert_eq!(p.queue_depth(1_000_000), 1_000_000);
        // The whole queue is a range: its size does not grow with the backlog.
        assert!(std::mem::size_of::<Peer>() < 1024);
    }
}
