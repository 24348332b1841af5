//! The mesh: the drain tick, pushes with retry, probes, and pull-sync runs.
//!
//! Every decision about when to send what to a peer is made here, from the peer
//! sub-machines' state and the time passed in.

use super::call::Call;
use super::commit::Batch;
use super::planted::PlantedBug;
use super::{Failure, Node, Output, OwnChainUnsafe, Pending, RequestId, Response, TICK};
use crate::block::{Hash, Verified};
use crate::id::AgentId;
use crate::node::Event;
use crate::repl::peer::{Change, Reach};
use crate::repl::pull::{Fetched, Step};
use crate::time::Instant;

impl Node {
    /// The drain tick: probe idle or unknown peers, send what is ready, start wanted (and
    /// periodic anti-entropy) pulls, resend pending announcements.
    pub(super) fn tick(&mut self, now: Instant) {
        let ids: Vec<AgentId> = self.peers.keys().cloned().collect();
        for id in &ids {
            let peer = self.peers.get_mut(id).expect("listed");
            if peer.wants_probe(now) {
                peer.probe_sent();
                let endpoint = peer.info.endpoint.clone();
                let call = self.calls.open(Call::Probe { peer: id.clone() });
                self.outputs.push_back(Output::Probe {
                    call,
                    peer: id.clone(),
                    endpoint,
                });
            }
            self.push_one(now, id);
            if let Some(pull) = self.pulls.get_mut(id) {
                pull.tick(now);
            }
            self.maybe_pull(id);
        }
        self.tick_admin(now);
        self.divide_tick();
        debug_assert!(TICK > core::time::Duration::ZERO);
    }

    /// Pushes to every peer that can take more of this node's chain now.
    pub(super) fn push_all(&mut self, now: Instant) {
        let ids: Vec<AgentId> = self.peers.keys().cloned().collect();
        for id in &ids {
            self.push_one(now, id);
        }
    }

    fn push_one(&mut self, now: Instant, id: &AgentId) {
        let own = self.own.durable;
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        #[cfg(feature = "sim")]
        if self.bugs.has(PlantedBug::QueueOverflowDrops) {
            peer.planted_drop_overflow(own, super::planted::PLANTED_QUEUE_CAP);
        }
        let acked = peer.acked();
        let head_owed = acked.is_some_and(|a| self.head_owed(id, a).is_some());
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if let Some((from, to)) = peer.next_push(now, own, head_owed) {
            let endpoint = peer.info.endpoint.clone();
            let head = self.head_owed(id, to).cloned();
            let call = self.calls.open(Call::Push {
                peer: id.clone(),
                through: to,
                head: head.as_ref().map(|h| (h.head.seq, h.key)),
            });
            self.outputs.push_back(Output::Push {
                call,
                peer: id.clone(),
                endpoint,
                from,
                to,
                head,
            });
        }
    }

    pub(super) fn push_acked(&mut self, now: Instant, id: AgentId, through: u64) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let change = peer.push_acked(now, through);
        self.reach_changed(&id, change, None);
        self.forget_held_marks();
        self.settle_cp(None);
        // Any success drains the whole queue at full speed.
        self.push_one(now, &id);
    }

    /// Commit marks of own blocks every peer holds are no longer needed for a lag.
    pub(super) fn forget_held_marks(&mut self) {
        let peers = self.peers.values().map(|p| p.acked().unwrap_or(0));
        let held = peers.min().unwrap_or(self.own.durable);
        self.own.forget_through(held);
    }

    pub(super) fn push_gap(&mut self, now: Instant, id: AgentId, expected: u64) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let change = peer.push_gap(now, expected);
        self.reach_changed(&id, change, None);
        self.push_one(now, &id);
    }

    pub(super) fn push_failed(&mut self, now: Instant, id: AgentId, reason: Failure) {
        let own = self.own.durable;
        let policy = self.config.backoff;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        #[cfg(feature = "sim")]
        if self.bugs.has(PlantedBug::FailedPushCountsAsDelivered) {
            peer.planted_forget_in_flight();
        }
        let (change, delay) = peer.push_failed(now, &policy, &mut self.rng);
        let queued = peer.queue_depth(own);
        let failures = peer.backoff_failures();
        self.log(Event::PushRetry {
            peer: id.clone(),
            failures,
            retry_in_ms: delay.wait.as_millis() as u64,
            queued,
            reason: reason.clone(),
        });
        if delay.reached_cap {
            self.log(Event::ExtendedFailure {
                peer: id.clone(),
                queued,
            });
        }
        self.reach_changed(&id, change, Some(reason));
        self.settle_cp(Some(&id));
    }

    pub(super) fn probe_answered(
        &mut self,
        now: Instant,
        id: AgentId,
        answered_as: AgentId,
        (holds, tip): (u64, Option<Hash>),
        digest: Option<u64>,
    ) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if answered_as != id {
            let reason =
                Failure::Unfit(format!("{} answered as {answered_as}", peer.info.endpoint));
            let change = peer.probe_failed(now);
            self.reach_changed(&id, change, Some(reason));
            self.settle_cp(Some(&id));
            return;
        }
        let holds = self.vetted_holds(&id, holds, tip);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let was_down = peer.reach() == Reach::Unreachable;
        let change = peer.probe_answered(now, holds);
        self.reach_changed(&id, change, None);
        if digest.is_some_and(|d| d != self.membership.digest()) {
            self.membership_differs(&id);
        }
        // A peer marked down has just answered: what it is owed of the membership goes before
        // the push, which may mark it down again (a push it refuses) before any tick.
        if was_down {
            self.announce_to(&id);
        }
        self.settle_cp(None);
        self.push_one(now, &id);
    }

    /// What `peer` holds of this node's chain, as it answered a probe, unless the block it
    /// holds at that seq is not this node's own: then it took a forged block of this chain
    /// (signed with the seed by someone else) at or before that seq, and none of it counts —
    /// pushes start from the beginning, and it refuses the first block it holds otherwise.
    fn vetted_holds(&mut self, peer: &AgentId, holds: u64, tip: Option<Hash>) -> u64 {
        let me = &self.config.agent_id;
        let own = self.chains.get(me, holds);
        let Some(tip) = tip.filter(|_| holds > 0) else {
            // An agent from before probes named the hash: as far as this chain goes.
            let len = self.chains.tip(me).map_or(0, |(s, _)| s);
            return holds.min(len);
        };
        if own == Some(tip) {
            return holds;
        }
        // Its tail past a lost own tail, being fetched back, is not evidence of a forgery.
        let refilling = matches!(
            self.own_chain_unsafe(),
            Some(OwnChainUnsafe::TailMissing { .. })
        );
        if own.is_some() || !refilling {
            self.log(Event::PeerHoldsForgedBlock {
                peer: peer.clone(),
                seq: holds,
            });
        }
        0
    }

    pub(super) fn probe_failed(&mut self, now: Instant, id: AgentId, reason: Failure) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let change = peer.probe_failed(now);
        self.reach_changed(&id, change, Some(reason));
        self.settle_cp(Some(&id));
    }

    /// Logs a reachability change; a healed peer is pulled from, so AP divergence
    /// reconciles with no operator.
    fn reach_changed(&mut self, id: &AgentId, change: Change, reason: Option<Failure>) {
        match change {
            Change::None => {}
            Change::Lost => self.log(Event::PeerUnreachable {
                peer: id.clone(),
                // Only a failure loses a peer; the fallback is never expected to show.
                reason: reason.unwrap_or_else(|| Failure::Unfit("no answer".into())),
            }),
            Change::Healed => {
                self.log(Event::PeerReachable { peer: id.clone() });
                if let Some(pull) = self.pulls.get_mut(id) {
                    pull.want();
                }
                self.maybe_pull(id);
            }
        }
    }

    /// Starts a wanted pull run if the peer is reachable (or an operator is waiting on it).
    pub(super) fn maybe_pull(&mut self, id: &AgentId) {
        let reachable = self.peers.get(id).is_some_and(|p| p.is_reachable());
        let asked = self.sync_waiters.get(id).is_some_and(|w| !w.is_empty());
        let Some(pull) = self.pulls.get_mut(id) else {
            return;
        };
        if pull.wants_start(self.last_now) && (reachable || asked) {
            let step = pull.start();
            self.pull_step(id, step);
        }
    }

    pub(super) fn sync_requested(&mut self, _now: Instant, request: RequestId, id: AgentId) {
        let Some(pull) = self.pulls.get_mut(&id) else {
            self.respond(request, Response::UnknownPeer(id));
            return;
        };
        pull.want();
        self.sync_waiters
            .entry(id.clone())
            .or_default()
            .push(request);
        self.maybe_pull(&id);
    }

    pub(super) fn page_fetched(&mut self, id: AgentId, blocks: Vec<Verified>, next: u64, tip: u64) {
        if !self.pulls.get(&id).is_some_and(|p| p.running()) {
            return;
        }
        if self.commit.failed() {
            self.pull_failed(
                id,
                Failure::LocalStorage("the strand refused writes".into()),
            );
            return;
        }
        let count = blocks.len() as u64;
        match self.classify_batch(blocks) {
            Batch::Refuse {
                index,
                author,
                seq,
                position,
            } => {
                let reason = Failure::Unfit(format!(
                    "page block {index} ({author}/{seq}) refused: {position:?}"
                ));
                self.pull_failed(id, reason);
            }
            Batch::Accept { fresh, .. } => {
                let fresh_count = fresh.len() as u64;
                let pull = self.pulls.get_mut(&id).expect("running");
                // Only the pull says whether this answer is a page to store: `running()`
                // after the step cannot, as a run that ends here may start the next at once.
                match pull.fetched(count, fresh_count, next, tip) {
                    Fetched::Store { page } => {
                        // Past every append issued so far: blocks of the page that are held
                        // only in flight (a push's append) are durable by then too.
                        let token = self.store(fresh);
                        if self.bugs.has(PlantedBug::CursorBeforeDurable) {
                            self.page_stored(id.clone(), page);
                        }
                        self.wait(token, Pending::Page { peer: id, page });
                    }
                    Fetched::Skip(step) => self.pull_step(&id, step),
                }
            }
        }
    }

    /// Pulled page `page` is durable: persist the cursor past it, if the run still waits
    /// for that page.
    pub(super) fn page_stored(&mut self, id: AgentId, page: u64) {
        if let Some(pull) = self.pulls.get_mut(&id) {
            let step = pull.stored(page);
            self.pull_step(&id, step);
        }
    }

    pub(super) fn cursor_persisted(&mut self, _now: Instant, id: AgentId, cursor: u64) {
        if let Some(pull) = self.pulls.get_mut(&id) {
            let step = pull.persisted(cursor);
            self.pull_step(&id, step);
        }
    }

    /// Writing `cursor` for `id` failed: the run waiting on it fails (and is retried from
    /// the durable cursor); a write no run waits on any more needs nothing.
    pub(super) fn cursor_persist_failed(&mut self, id: AgentId, cursor: u64, reason: String) {
        if self
            .pulls
            .get(&id)
            .is_some_and(|pull| pull.persisting(cursor))
        {
            let why = format!("writing sync_cursors.json failed: {reason}");
            self.pull_failed(id, Failure::LocalStorage(why));
        }
    }

    pub(super) fn pull_failed(&mut self, id: AgentId, reason: Failure) {
        if let Some(pull) = self.pulls.get_mut(&id) {
            if !pull.running() {
                return;
            }
            pull.failed(self.last_now);
        }
        self.log(Event::PullFailed {
            peer: id.clone(),
            reason: reason.clone(),
        });
        for request in self.sync_waiters.remove(&id).unwrap_or_default() {
            self.respond(
                request,
                Response::SyncFailed {
                    peer: id.clone(),
                    reason: reason.to_string(),
                },
            );
        }
    }

    fn pull_step(&mut self, id: &AgentId, step: Step) {
        match step {
            Step::Wait => {}
            Step::Fetch { after } => {
                let endpoint = self.peers[id].info.endpoint.clone();
                let call = self.calls.open(Call::Fetch { peer: id.clone() });
                self.outputs.push_back(Output::FetchPage {
                    call,
                    peer: id.clone(),
                    endpoint,
                    after,
                    limit: crate::wire::mesh::PULL_PAGE,
                });
            }
            Step::Persist { cursor } => {
                let mut cursors: Vec<(AgentId, u64)> = self
                    .pulls
                    .iter()
                    .map(|(p, pull)| (p.clone(), pull.cursor()))
                    .collect();
                if let Some(c) = cursors.iter_mut().find(|(p, _)| p == id) {
                    c.1 = cursor;
                }
                let call = self.calls.open(Call::Cursors {
                    peer: id.clone(),
                    cursor,
                });
                self.outputs.push_back(Output::PersistCursors {
                    call,
                    cursors,
                    peer: id.clone(),
                    cursor,
                });
            }
            Step::Done(totals) => {
                let cursor = self.pulls[id].cursor();
                self.log(Event::Pulled {
                    peer: id.clone(),
                    totals,
                    cursor,
                });
                for request in self.sync_waiters.remove(id).unwrap_or_default() {
                    self.respond(
                        request,
                        Response::Synced {
                            peer: id.clone(),
                            totals,
                            cursor,
                        },
                    );
                }
                // A request that came in during the run asked for a fresh one.
                self.maybe_pull(id);
            }
        }
    }
}
