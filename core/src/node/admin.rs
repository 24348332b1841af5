//! Operator actions: status, the consistency switch, bootstrap of a new node ("divide"), and
//! membership announcements. Changes to the cluster view are persisted before they are
//! answered.

use std::collections::BTreeMap;

use super::{ClusterState, Node, Output, RequestId, Response};
use crate::id::AgentId;
use crate::node::Event;
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
        PeerInfo {
            agent_id: self.config.agent_id.clone(),
            endpoint: self.config.endpoint.clone(),
            role: self.role,
            added_at_ms: self.config.added_at.0,
        }
    }

    pub(super) fn status(&mut self, now: Instant, request: RequestId, wall: UnixMillis) {
        let me = NodeStatus {
            agent_id: self.config.agent_id.clone(),
            endpoint: self.config.endpoint.clone(),
            role: self.role,
            added_at_ms: self.config.added_at.0,
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
        self.admin.version += 1;
        let version = self.admin.version;
        self.admin
            .persist_waiters
            .push((version, request, response));
        let state: ClusterState = self.cluster_state();
        self.outputs
            .push_back(Output::PersistCluster { version, state });
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

    pub(super) fn copied(&mut self, now: Instant, to: AgentId, next: u64, sent: u64) {
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
        self.register(now, next);
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

    /// The new node holds every block through local offset `through`: make it a member of
    /// the full mesh, persist, and answer once persisted.
    fn register(&mut self, now: Instant, through: u64) {
        let d = self.admin.divide.take().expect("divide in progress");
        let info = d.info.clone();
        if !self.peers.contains_key(&info.agent_id) {
            let peer = Peer::caught_up(info.clone(), self.own_durable, now);
            self.peers.insert(info.agent_id.clone(), peer);
            self.pulls.insert(info.agent_id.clone(), Pull::new(0));
            self.log(Event::PeerAdded { peer: info.clone() });
        }
        let others: Vec<PeerInfo> = self
            .peers
            .values()
            .filter(|p| p.info.agent_id != info.agent_id)
            .map(|p| p.info.clone())
            .collect();
        let mut members = vec![self.self_info()];
        members.extend(others.iter().cloned());
        let hint = vec![(self.config.agent_id.clone(), through)];
        self.admin.announce(&info, members, Some(info.role), hint);
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
        if let Some(role) = your_role {
            self.role = role;
        }
        let mut added = Vec::new();
        for m in members {
            if m.agent_id == self.config.agent_id {
                continue;
            }
            match self.peers.get_mut(&m.agent_id) {
                Some(p) => p.info.endpoint = m.endpoint,
                None => {
                    let hint = cursors
                        .iter()
                        .find(|(id, _)| *id == m.agent_id)
                        .map_or(0, |(_, c)| *c);
                    self.log(Event::PeerAdded { peer: m.clone() });
                    added.push(m.clone());
                    self.add_peer(m, hint);
                }
            }
        }
        if !added.is_empty() {
            self.spread_members(&added);
        }
        let peers = self.peers.len();
        self.persist_then(request, Response::MembersUpdated { peers });
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
