//! Operator actions: status, the consistency switch, bootstrap of a new node ("divide"), and
//! membership announcements. Changes to the cluster view are persisted before they are
//! answered.

use std::collections::BTreeMap;

use super::{ClusterState, Node, Output, RequestId, Response};
use crate::id::AgentId;
use crate::node::Event;
use crate::repl::membership::Delta;
use crate::repl::peer::{Peer, PeerInfo, Reach};
use crate::repl::pull::Pull;
use crate::status::{ClusterStatus, Consistency, NodeStatus, Role};
use crate::time::{Instant, UnixMillis};

/// Log bootstrap progress every this many blocks copied.
const DIVIDE_PROGRESS_EVERY: u64 = 10_000;

#[derive(Debug, Default)]
pub(super) struct Admin {
    divide: Option<Divide>,
    announcements: BTreeMap<AgentId, Announcement>,
    /// Last cluster-state version asked to be persisted.
    version: u64,
    /// Answers waiting for a cluster-state version to be durable.
    persist_waiters: Vec<(u64, RequestId, Response)>,
}

#[derive(Debug)]
struct Divide {
    request: RequestId,
    info: PeerInfo,
    copying: bool,
    copied: u64,
    logged: u64,
    /// Every block is copied, this node's own chain through this seq; the new node is being
    /// told the membership, and the divide is answered only once it has recorded it.
    telling: Option<u64>,
}

#[derive(Debug)]
struct Announcement {
    endpoint: String,
    members: Vec<PeerInfo>,
    your_role: Option<Role>,
    cursors: Vec<(AgentId, u64)>,
    in_flight: bool,
}

impl Admin {
    /// Whether there is admin work that needs the tick.
    pub(super) fn busy(&self) -> bool {
        self.divide.is_some() || !self.announcements.is_empty()
    }

    pub(super) fn announced(&mut self, to: &AgentId) {
        self.announcements.remove(to);
    }

    pub(super) fn announce_failed(&mut self, to: &AgentId) {
        if let Some(a) = self.announcements.get_mut(to) {
            a.in_flight = false;
        }
    }

    fn announce(
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
            });
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
            last_sync_ms: self.last_commit.0,
            reachable: !self.storage_failed,
            blocks: Some(self.chains.total()),
            queue_depth: None,
            backoff_ms: None,
            pull_cursor: None,
        };
        let own = self.own_durable;
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
            });
        }
        let status = ClusterStatus {
            partitioned: self.peers.values().any(|p| !p.is_reachable()),
            nodes,
            consistency: self.consistency,
            auth: Some(self.authz.status()),
        };
        self.respond(request, Response::Status(status));
    }

    pub(super) fn set_consistency(&mut self, request: RequestId, mode: Consistency) {
        let previous = self.consistency;
        self.consistency = mode;
        self.persist_then(
            request,
            Response::ConsistencySet {
                consistency: mode,
                previous,
            },
        );
    }

    /// Persists the cluster view and answers `request` once it is durable.
    fn persist_then(&mut self, request: RequestId, response: Response) {
        let version = self.persist();
        self.admin
            .persist_waiters
            .push((version, request, response));
    }

    pub(super) fn cluster_persisted(&mut self, version: u64) {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.admin.persist_waiters)
            .into_iter()
            .partition(|(v, _, _)| *v <= version);
        self.admin.persist_waiters = waiting;
        for (_, request, response) in ready {
            self.respond(request, response);
        }
    }

    pub(super) fn divide_requested(&mut self, request: RequestId, new: PeerInfo) {
        let refuse = |reason: String| Response::DivideRefused { reason };
        if new.agent_id == self.config.agent_id {
            return self.respond(request, refuse("a node cannot divide to itself".into()));
        }
        if self.membership.is_removed(&new.agent_id) {
            let reason = format!(
                "agent id {} was removed from the cluster and cannot join again (a new node \
                 with that id would restart its chain at seq 1); start the new node with \
                 another SAPIX_AGENT_ID",
                new.agent_id
            );
            return self.respond(request, refuse(reason));
        }
        if let Some(p) = self.peers.get(&new.agent_id) {
            if p.info.endpoint != new.endpoint {
                let reason = format!(
                    "{} is already a member at {}; refusing to move it to {}",
                    new.agent_id, p.info.endpoint, new.endpoint
                );
                return self.respond(request, refuse(reason));
            }
        }
        if let Some(d) = &self.admin.divide {
            let reason = format!("a divide to {} is in progress", d.info.agent_id);
            return self.respond(request, refuse(reason));
        }
        self.outputs.push_back(Output::Probe {
            peer: new.agent_id.clone(),
            endpoint: new.endpoint.clone(),
        });
        self.admin.divide = Some(Divide {
            request,
            info: new,
            copying: false,
            copied: 0,
            logged: 0,
            telling: None,
        });
    }

    fn verifying(&self, id: &AgentId) -> bool {
        self.admin
            .divide
            .as_ref()
            .is_some_and(|d| !d.copying && d.info.agent_id == *id)
    }

    /// Routes a probe answer to a divide that is verifying `id`. Returns whether the answer
    /// was for the divide alone (not also for a peer of that id).
    pub(super) fn divide_probe_answered(
        &mut self,
        _now: Instant,
        id: &AgentId,
        answered_as: &AgentId,
    ) -> bool {
        if !self.verifying(id) {
            return false;
        }
        if answered_as != id {
            let d = self.admin.divide.take().expect("verifying");
            let reason = format!(
                "{} answered as {answered_as}, not {}; nothing was copied",
                d.info.endpoint, d.info.agent_id
            );
            self.respond(d.request, Response::DivideFailed { reason });
        } else {
            let d = self.admin.divide.as_mut().expect("verifying");
            d.copying = true;
            let (to, endpoint) = (d.info.agent_id.clone(), d.info.endpoint.clone());
            self.outputs.push_back(Output::Copy {
                to,
                endpoint,
                after: 0,
            });
        }
        !self.peers.contains_key(id)
    }

    pub(super) fn divide_probe_failed(&mut self, id: &AgentId, reason: &str) -> bool {
        if !self.verifying(id) {
            return false;
        }
        let d = self.admin.divide.take().expect("verifying");
        let reason = format!(
            "{} did not answer: {reason}; nothing was copied",
            d.info.endpoint
        );
        self.respond(d.request, Response::DivideFailed { reason });
        !self.peers.contains_key(id)
    }

    pub(super) fn copied(&mut self, _now: Instant, to: AgentId, next: u64, sent: u64) {
        let tip = self.local_tip;
        let Some(d) = self
            .admin
            .divide
            .as_mut()
            .filter(|d| d.copying && d.info.agent_id == to)
        else {
            return;
        };
        d.copied += sent;
        if d.copied >= d.logged + DIVIDE_PROGRESS_EVERY {
            d.logged = d.copied;
            let event = Event::DivideProgress {
                to: to.clone(),
                copied: d.copied,
                tip,
            };
            self.log(event);
        }
        let d = self.admin.divide.as_ref().expect("copying");
        if next < tip && sent > 0 {
            let endpoint = d.info.endpoint.clone();
            self.outputs.push_back(Output::Copy {
                to,
                endpoint,
                after: next,
            });
            return;
        }
        self.tell_new_node(next);
    }

    /// Every block is copied: tell the new node the whole membership with its own entry in
    /// it. Nothing is registered here until it answers (it persists before answering), so a
    /// divider lost at any moment never leaves a member only it knew of.
    fn tell_new_node(&mut self, through: u64) {
        let own_copied = self.own_durable;
        let d = self.admin.divide.as_mut().expect("copying");
        d.telling = Some(own_copied);
        let info = d.info.clone();
        let mut would_be = self.membership.clone();
        would_be.add(info.clone());
        let hint = vec![(self.config.agent_id.clone(), through)];
        self.outputs.push_back(Output::Announce {
            to: info.agent_id.clone(),
            endpoint: info.endpoint.clone(),
            members: would_be.all(),
            your_role: Some(info.role),
            cursors: hint,
        });
    }

    fn telling(&self, to: &AgentId) -> Option<u64> {
        let d = self.admin.divide.as_ref()?;
        d.telling.filter(|_| d.info.agent_id == *to)
    }

    /// An announcement failed; if it was the divide's to the new node, the divide fails.
    pub(super) fn announce_failed(&mut self, to: AgentId) {
        if self.telling(&to).is_some() {
            let d = self.admin.divide.take().expect("telling");
            let reason = format!(
                "{} did not record the membership (unreachable, or it could not persist); it \
                 is not a member; the {} blocks copied stay there and the divide can be retried",
                d.info.agent_id, d.copied
            );
            return self.respond(d.request, Response::DivideFailed { reason });
        }
        self.admin.announce_failed(&to);
    }

    pub(super) fn copy_failed(&mut self, to: AgentId, reason: String) {
        if !self
            .admin
            .divide
            .as_ref()
            .is_some_and(|d| d.copying && d.info.agent_id == to)
        {
            return;
        }
        let d = self.admin.divide.take().expect("copying");
        let reason = format!(
            "copy to {} failed after {} blocks: {reason}; it is not a member",
            d.info.agent_id, d.copied
        );
        self.respond(d.request, Response::DivideFailed { reason });
    }

    /// The new node holds every block and has recorded the membership: make it a member
    /// here, tell the others, persist, and answer once persisted.
    /// The copy carried this node's own chain through `own_copied`; what it wrote since is
    /// the new peer's retry queue.
    fn register(&mut self, now: Instant, own_copied: u64) {
        let d = self.admin.divide.take().expect("divide in progress");
        match self.membership.add(d.info.clone()) {
            // New: it holds what the copy carried, so its queue starts there (not at 0).
            Some(Delta::Added(added)) => {
                let peer = Peer::caught_up(added.clone(), own_copied, now);
                self.peers.insert(added.agent_id.clone(), peer);
                self.pulls.insert(added.agent_id.clone(), Pull::new(0));
                self.log(Event::PeerAdded { peer: added });
            }
            // A retried divide of a member (same entry: nothing; a move: its new version).
            other => self.apply_members(other.into_iter().collect(), &[]),
        }
        let info = self
            .membership
            .get(&d.info.agent_id)
            .cloned()
            .unwrap_or_else(|| d.info.clone());
        // The new node hears every entry (tombstones too); the others hear of it.
        let others: Vec<PeerInfo> = self
            .peers
            .values()
            .filter(|p| p.info.agent_id != info.agent_id)
            .map(|p| p.info.clone())
            .collect();
        for other in &others {
            self.admin
                .announce(other, vec![info.clone()], None, Vec::new());
        }
        let response = Response::Divided {
            replica_agent_id: info.agent_id.clone(),
            blocks_pushed: d.copied,
            endpoint: info.endpoint.clone(),
        };
        self.persist_then(d.request, response);
    }

    pub(super) fn members_announced(
        &mut self,
        _now: Instant,
        request: RequestId,
        members: Vec<PeerInfo>,
        your_role: Option<Role>,
        cursors: Vec<(AgentId, u64)>,
    ) {
        let mut deltas = self.membership.merge(&members);
        if let Some(d) = your_role.and_then(|role| self.membership.set_me(None, Some(role))) {
            deltas.push(d);
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
            self.outputs.push_back(Output::PersistCursors {
                cursors: all,
                peer,
                cursor,
            });
        }
    }

    /// A member took an announcement and answered with every entry it holds: learn what it
    /// knew that this node did not (the pull half of a push-pull exchange).
    pub(super) fn announced(&mut self, now: Instant, to: AgentId, members: Vec<PeerInfo>) {
        if let Some(own_copied) = self.telling(&to) {
            self.register(now, own_copied);
        } else {
            self.admin.announced(&to);
        }
        let deltas = self.membership.merge(&members);
        if !deltas.is_empty() {
            self.apply_members(deltas, &[]);
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
    fn apply_members(&mut self, deltas: Vec<Delta>, hints: &[(AgentId, u64)]) {
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
                        p.info = info;
                    }
                }
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
    fn persist(&mut self) -> u64 {
        self.admin.version += 1;
        let version = self.admin.version;
        let state: ClusterState = self.cluster_state();
        self.outputs
            .push_back(Output::PersistCluster { version, state });
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
    pub(super) fn tick_admin(&mut self, _now: Instant) {
        for (to, a) in self.admin.announcements.iter_mut() {
            let down = self
                .peers
                .get(to)
                .is_some_and(|p| p.reach() == Reach::Unreachable);
            if a.in_flight || down {
                continue;
            }
            a.in_flight = true;
            self.outputs.push_back(Output::Announce {
                to: to.clone(),
                endpoint: a.endpoint.clone(),
                members: a.members.clone(),
                your_role: a.your_role,
                cursors: a.cursors.clone(),
            });
        }
    }
}
