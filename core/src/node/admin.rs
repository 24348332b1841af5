//! Operator actions: status, the consistency switch, member removal, and membership
//! announcements (the divide itself is in `divide` and `join`). Changes to the cluster view
//! are persisted before they are answered.

use std::collections::BTreeMap;

use super::bootstrap::Bootstrap;
use super::call::Call;
use super::cluster_writes::ClusterWrites;
use super::join::Join;
use super::{is_wildcard, ClusterState, Failure, Node, Output, RequestId, Response};
use crate::id::AgentId;
use crate::node::Event;
use crate::repl::membership::Delta;
use crate::repl::peer::{PeerInfo, Reach};
use crate::repl::pull::Pull;
use crate::status::{ClusterStatus, Consistency, NodeStatus, Role};
use crate::time::{Instant, UnixMillis};

#[derive(Debug, Default)]
pub(super) struct Admin {
    pub(super) divide: Option<Bootstrap>,
    pub(super) join: Option<Join>,
    announcements: BTreeMap<AgentId, Announcement>,
    /// The cluster view's writes and the answers waiting on them.
    pub(super) writes: ClusterWrites,
}

#[derive(Debug)]
struct Announcement {
    endpoint: String,
    members: Vec<PeerInfo>,
    your_role: Option<Role>,
    cursors: Vec<(AgentId, u64)>,
    in_flight: bool,
    /// Something was added while a call was in flight: that call did not carry it.
    dirty: bool,
}

impl Admin {
    /// Whether there is admin work that needs the tick.
    pub(super) fn busy(&self) -> bool {
        self.divide.is_some() || !self.announcements.is_empty() || self.writes.retrying()
    }

    /// The call to `to` was answered. Returns whether it carried everything queued for `to`
    /// (otherwise the rest goes with the next tick).
    pub(super) fn announced(&mut self, to: &AgentId) -> bool {
        match self.announcements.get_mut(to) {
            Some(a) if a.dirty => {
                a.in_flight = false;
                a.dirty = false;
                false
            }
            Some(_) => {
                self.announcements.remove(to);
                true
            }
            None => true,
        }
    }

    pub(super) fn announce_failed(&mut self, to: &AgentId) {
        if let Some(a) = self.announcements.get_mut(to) {
            a.in_flight = false;
        }
    }

    pub(super) fn announce(
        &mut self,
        to: &PeerInfo,
        members: Vec<PeerInfo>,
        your_role: Option<Role>,
        cursors: Vec<(AgentId, u64)>,
    ) {
        let entry = self
            .announcements
            .entry(to.agent_id.clone())
            .or_insert_with(|| Announcement {
                endpoint: to.endpoint.clone(),
                members: Vec::new(),
                your_role: None,
                cursors: Vec::new(),
                in_flight: false,
                dirty: false,
            });
        entry.dirty |= entry.in_flight;
        for m in members {
            entry.members.retain(|x| x.agent_id != m.agent_id);
            entry.members.push(m);
        }
        entry.your_role = your_role.or(entry.your_role);
        entry.cursors.extend(cursors);
    }
}

impl Node {
    fn self_info(&self) -> PeerInfo {
        self.membership.me().clone()
    }

    pub(super) fn status(&mut self, now: Instant, request: RequestId, wall: UnixMillis) {
        let info = self.membership.me();
        let me = NodeStatus {
            agent_id: info.agent_id.clone(),
            endpoint: info.endpoint.clone(),
            role: info.role,
            added_at_ms: info.added_at_ms,
            // A node is in sync with itself: an idle node's own entry is never stale.
            last_sync_ms: wall.0,
            reachable: !self.commit.failed(),
            blocks: Some(self.chains.total()),
            queue_depth: None,
            backoff_ms: None,
            pull_cursor: None,
            last_commit_ms: Some(self.own.last_commit.0),
            lag_ms: None,
            pull_lag_blocks: None,
            head_key: info.head_keys.current().map(|k| k.to_hex()),
            head_keys_enrolled: enrolled(&info.head_keys),
            head_keys: chain(&info.head_keys),
            head_seq: self.heads.latest(&info.agent_id).map(|h| h.head.seq),
            head_witnesses: self.heads.witnesses(&info.agent_id),
            equivocations: self.heads.equivocations(&info.agent_id),
        };
        let own = self.own.durable;
        let policy = self.config.backoff;
        let mut nodes = vec![me];
        for (id, p) in &self.peers {
            let last_sync_ms = p.last_ok().map_or(0, |at| {
                wall.0
                    .saturating_sub(now.saturating_since(at).as_millis() as u64)
            });
            nodes.push(NodeStatus {
                agent_id: id.clone(),
                endpoint: p.info.endpoint.clone(),
                role: p.info.role,
                added_at_ms: p.info.added_at_ms,
                last_sync_ms,
                reachable: p.is_reachable(),
                blocks: None,
                queue_depth: Some(p.queue_depth(own)),
                backoff_ms: Some(p.backoff_base(&policy).as_millis() as u64),
                pull_cursor: self.pulls.get(id).map(Pull::cursor),
                last_commit_ms: None,
                lag_ms: p.acked().map(|held| {
                    let age = self.own.age(held + 1, now).unwrap_or_default();
                    age.as_millis() as u64
                }),
                pull_lag_blocks: self.pulls.get(id).map(Pull::lag),
                head_key: p.info.head_keys.current().map(|k| k.to_hex()),
                head_keys_enrolled: enrolled(&p.info.head_keys),
                head_keys: chain(&p.info.head_keys),
                head_seq: self.heads.latest(id).map(|h| h.head.seq),
                head_witnesses: self.heads.witnesses(id),
                equivocations: self.heads.equivocations(id),
            });
        }
        let status = ClusterStatus {
            partitioned: self.peers.values().any(|p| !p.is_reachable()),
            nodes,
            consistency: self.gate.mode(),
            auth: Some(self.authz.status()),
        };
        self.respond(request, Response::Status(status));
    }

    pub(super) fn set_consistency(&mut self, request: RequestId, mode: Consistency) {
        let previous = self.gate.set(mode);
        self.persist_then(
            request,
            Response::ConsistencySet {
                consistency: mode,
                previous,
            },
        );
    }

    /// Persists the cluster view and answers `request` once it is durable.
    pub(super) fn persist_then(&mut self, request: RequestId, response: Response) {
        let version = self.persist();
        self.admin.writes.wait(version, request, response);
    }

    pub(super) fn cluster_persisted(&mut self, version: u64) {
        for (request, response) in self.admin.writes.written(version) {
            self.respond(request, response);
        }
    }

    /// Writing cluster-state `version` failed: answer what waited on it and try again later
    /// (unless a newer write, which holds the same state, is already on its way).
    pub(super) fn cluster_persist_failed(&mut self, now: Instant, version: u64, reason: String) {
        let Some((answers, retry_in)) = self.admin.writes.failed(version, now, &reason) else {
            return;
        };
        self.log(Event::ClusterPersistFailed {
            version,
            answered: answers.len(),
            retry_in_ms: retry_in.as_millis() as u64,
            reason,
        });
        for (request, response) in answers {
            self.respond(request, response);
        }
    }

    /// Records a membership announcement, persists, and answers with every entry held.
    pub(super) fn record_announcement(
        &mut self,
        _now: Instant,
        request: RequestId,
        members: Vec<PeerInfo>,
        your_role: Option<Role>,
        cursors: Vec<(AgentId, u64)>,
    ) {
        // A node with no endpoint of its own takes the one its divider reached it at.
        let told = (is_wildcard(&self.config.endpoint))
            .then(|| members.iter().find(|m| m.agent_id == self.config.agent_id))
            .flatten()
            .map(|m| m.endpoint.clone());
        let mut deltas = self.membership.merge(&members);
        if let Some(d) = your_role.and_then(|role| self.membership.set_me(None, Some(role))) {
            deltas.push(d);
        }
        if let Some(url) = told {
            self.learn_endpoint(&url, "the divide that added this node");
        }
        self.apply_members(deltas, &cursors);
        let peers = self.peers.len();
        let members = self.membership.all();
        self.persist_then(request, Response::MembersUpdated { peers, members });
        // Hinted cursors are persisted too, so a restart does not fetch the copy again.
        if let Some((peer, cursor)) = cursors
            .into_iter()
            .find(|(id, _)| self.pulls.contains_key(id))
        {
            let all = self
                .pulls
                .iter()
                .map(|(p, pull)| (p.clone(), pull.cursor()))
                .collect();
            let call = self.calls.open(Call::Cursors {
                peer: peer.clone(),
                cursor,
            });
            self.outputs.push_back(Output::PersistCursors {
                call,
                cursors: all,
                peer,
                cursor,
            });
        }
    }

    /// A member took an announcement and answered with every entry it holds: learn what it
    /// knew that this node did not (the pull half of a push-pull exchange).
    pub(super) fn announced(&mut self, to: AgentId, members: Vec<PeerInfo>) {
        if self.admin.announced(&to) {
            self.divide_heard(&to, true);
        }
        self.learn_members(&members);
    }

    /// Learns what a member's entries (`members`) hold that this node's do not.
    pub(super) fn learn_members(&mut self, members: &[PeerInfo]) {
        let deltas = self.membership.merge(members);
        let changed = deltas
            .iter()
            .any(|d| !matches!(d, Delta::KeyRefused { .. }));
        self.apply_members(deltas, &[]);
        if changed {
            self.persist();
        }
    }

    /// An announcement to a member failed: it is retried (the shell logged why).
    pub(super) fn announce_failed(&mut self, to: AgentId, _reason: Failure) {
        self.admin.announce_failed(&to);
        self.divide_heard(&to, false);
    }

    /// Learns this node's own endpoint from `url` if it has none it can be reached at (a
    /// wildcard bind and no SAPIX_ENDPOINT); persisted and spread like any entry change.
    pub(super) fn learn_endpoint(&mut self, url: &str, from: &'static str) {
        if !is_wildcard(&self.config.endpoint) || is_wildcard(url) {
            return;
        }
        if self.membership.set_me(Some(url), None).is_some() {
            let endpoint = url.to_string();
            self.log(Event::EndpointLearned { endpoint, from });
            self.persist();
        }
    }

    /// A probe answer's digest differs from this node's: exchange whole sets with the peer.
    pub(super) fn membership_differs(&mut self, peer: &AgentId) {
        if let Some(info) = self.peers.get(peer).map(|p| p.info.clone()) {
            let all = self.membership.all();
            self.admin.announce(&info, all, None, Vec::new());
        }
    }

    /// `DELETE /v1/cluster/members/{id}`: tombstone the member, persist, spread.
    pub(super) fn remove_requested(&mut self, request: RequestId, id: AgentId) {
        if id == self.config.agent_id {
            let reason = "a node cannot remove itself; remove it from another member".into();
            return self.respond(request, Response::RemoveRefused { reason });
        }
        if self.membership.is_removed(&id) {
            return self.respond(request, Response::MemberRemoved { agent_id: id });
        }
        let Some(delta) = self.membership.remove(&id) else {
            return self.respond(request, Response::UnknownPeer(id));
        };
        self.apply_members(vec![delta], &[]);
        let all = self.membership.all();
        let live: Vec<PeerInfo> = self.peers.values().map(|p| p.info.clone()).collect();
        for p in &live {
            self.admin.announce(p, all.clone(), None, Vec::new());
        }
        self.persist_then(request, Response::MemberRemoved { agent_id: id });
    }

    /// Acts on membership changes: peers to add (pulled from at once, from a hinted cursor),
    /// endpoints and roles to update, members to drop (CP stops waiting for them).
    pub(super) fn apply_members(&mut self, deltas: Vec<Delta>, hints: &[(AgentId, u64)]) {
        let mut added = Vec::new();
        for delta in deltas {
            match delta {
                Delta::Added(info) => {
                    let hint = hints
                        .iter()
                        .find(|(id, _)| *id == info.agent_id)
                        .map_or(0, |(_, c)| *c);
                    self.log(Event::PeerAdded { peer: info.clone() });
                    added.push(info.clone());
                    self.add_peer(info, hint);
                }
                Delta::Changed(info) => {
                    if let Some(p) = self.peers.get_mut(&info.agent_id) {
                        let before = p.info.head_keys.current();
                        let now = info.head_keys.current();
                        p.info = info;
                        if let Some(key) = now.filter(|k| before != Some(*k)) {
                            let member = p.info.agent_id.clone();
                            let replaced = before;
                            self.log(Event::HeadKeyEnrolled {
                                member,
                                key,
                                replaced,
                            });
                        }
                    }
                }
                Delta::KeyRefused {
                    id,
                    enrolled,
                    offered,
                } => self.log(Event::HeadKeyRefused {
                    member: id,
                    enrolled,
                    offered,
                }),
                Delta::Removed(id) => {
                    self.peers.remove(&id);
                    self.pulls.remove(&id);
                    self.admin.announcements.remove(&id);
                    for request in self.sync_waiters.remove(&id).unwrap_or_default() {
                        self.respond(request, Response::UnknownPeer(id.clone()));
                    }
                    self.log(Event::PeerRemoved { peer: id });
                    self.settle_cp(None);
                }
                Delta::Me(info) => {
                    if info.removed {
                        self.log(Event::RemovedFromCluster);
                    }
                }
            }
        }
        if !added.is_empty() {
            self.spread_members(&added);
        }
    }

    /// Persists the cluster view with no answer waiting on it.
    pub(super) fn persist(&mut self) -> u64 {
        let version = self.admin.writes.next();
        let state: ClusterState = self.cluster_state();
        let call = self.calls.open(Call::Cluster { version });
        self.outputs.push_back(Output::PersistCluster {
            call,
            version,
            state,
        });
        version
    }

    /// Spreads membership so the full mesh closes without a coordinator: every peer hears of
    /// the members in `added`, and each of those hears of every member known here. Without
    /// it, concurrent divides at two members, or a divider that restarts before its
    /// in-memory announcements are delivered, leave members that never learn of each other.
    pub(super) fn spread_members(&mut self, added: &[PeerInfo]) {
        let mut everyone = vec![self.self_info()];
        everyone.extend(self.peers.values().map(|p| p.info.clone()));
        for p in &everyone[1..] {
            let news: Vec<PeerInfo> = if added.iter().any(|a| a.agent_id == p.agent_id) {
                let others = everyone.iter().filter(|m| m.agent_id != p.agent_id);
                others.cloned().collect()
            } else {
                added.to_vec()
            };
            self.admin.announce(p, news, None, Vec::new());
        }
    }

    /// Sends pending announcements to members that are not known to be down.
    pub(super) fn tick_admin(&mut self, now: Instant) {
        if self.admin.writes.retry_due(now) {
            self.persist();
        }
        let up: Vec<AgentId> = (self.admin.announcements.keys())
            .filter(|to| {
                let down = self.peers.get(*to);
                !down.is_some_and(|p| p.reach() == Reach::Unreachable)
            })
            .cloned()
            .collect();
        for to in up {
            self.announce_to(&to);
        }
    }

    /// Sends the announcement pending for `to`, unless one is in flight. Called at the tick
    /// for every member not known to be down, and at once when a peer answers a probe: a
    /// peer that refuses every push (it holds a forged block of this chain) is marked down by
    /// the push that follows each probe, so no tick would ever find it up.
    pub(super) fn announce_to(&mut self, to: &AgentId) {
        let Some(a) = self.admin.announcements.get_mut(to) else {
            return;
        };
        if a.in_flight {
            return;
        }
        a.in_flight = true;
        let call = self.calls.open(Call::Announce { to: to.clone() });
        self.outputs.push_back(Output::Announce {
            call,
            to: to.clone(),
            endpoint: a.endpoint.clone(),
            members: a.members.clone(),
            your_role: a.your_role,
            cursors: a.cursors.clone(),
        });
    }
}

/// How many head keys are enrolled, if any.
fn enrolled(keys: &crate::ledger::HeadKeys) -> Option<usize> {
    (!keys.is_empty()).then(|| keys.len())
}

fn chain(keys: &crate::ledger::HeadKeys) -> Option<crate::ledger::HeadKeys> {
    (!keys.is_empty()).then(|| keys.clone())
}
