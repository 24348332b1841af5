//! The divider's side of a divide (`POST /v1/cluster/divide`, the spec's Step 3): check the
//! new node answers as itself, copy every block, tell it the whole membership (it probes this
//! node back and persists before it answers), then register it, tell every other member, and
//! answer once persisted — naming the members that recorded the change and those still
//! pending. Nothing is registered before the new node has recorded the membership, so a divider
//! lost at any moment never leaves a member only it knew of.

use std::collections::BTreeSet;

use super::bootstrap::{AfterBatch, Bootstrap};
use super::call::Call;
use super::{Failure, Node, Output, RequestId, Response};
use crate::id::AgentId;
use crate::ledger::HeadPublicKey;
use crate::node::Event;
use crate::repl::membership::Delta;
use crate::repl::peer::{Peer, PeerInfo, Reach};
use crate::repl::pull::Pull;
use crate::time::Instant;
use crate::wire::mesh::PageLimit;

impl Node {
    pub(super) fn divide_requested(
        &mut self,
        request: RequestId,
        new: PeerInfo,
        via: Option<String>,
    ) {
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
            let reason = format!("a divide to {} is in progress", d.new_node().agent_id);
            return self.respond(request, refuse(reason));
        }
        // The spec's Step 1 binds 0.0.0.0 with no SAPIX_ENDPOINT; the operator's own call
        // names the address this node is reached at.
        if let Some(url) = via {
            self.learn_endpoint(&url, "the Host of a divide call");
        }
        let call = self.calls.open(Call::Verify {
            new: new.agent_id.clone(),
        });
        self.outputs.push_back(Output::Probe {
            call,
            peer: new.agent_id.clone(),
            endpoint: new.endpoint.clone(),
        });
        self.admin.divide = Some(Bootstrap::new(request, new));
    }

    /// The divide, if `at` says it is waiting for what just ended.
    fn divide_at(&mut self, at: impl Fn(&Bootstrap) -> bool) -> Option<&mut Bootstrap> {
        self.admin.divide.as_mut().filter(|d| at(d))
    }

    /// Fails the divide with `reason`.
    fn divide_fails(&mut self, reason: String) {
        let d = self.admin.divide.take().expect("a divide");
        self.respond(d.request(), Response::DivideFailed { reason });
    }

    /// Sends the divide's next copy batch, after local offset `after`.
    fn copy_batch(&mut self, after: u64) {
        let d = self.admin.divide.as_ref().expect("copying");
        let info = d.new_node();
        let (to, endpoint) = (info.agent_id.clone(), info.endpoint.clone());
        let call = self.calls.open(Call::Copy { to: to.clone() });
        self.outputs.push_back(Output::Copy {
            call,
            to,
            endpoint,
            after,
            limit: PageLimit::COPY,
        });
    }

    /// The node being added answered the divide's probe as `answered_as`: copy to it if that
    /// is the id it was added as.
    pub(super) fn divide_verified(
        &mut self,
        id: AgentId,
        answered_as: AgentId,
        head_key: Option<HeadPublicKey>,
    ) {
        let enrolled = self.membership.get(&id).and_then(|p| p.head_keys.current());
        let Some(d) = self.divide_at(|d| d.verifying(&id)) else {
            return;
        };
        match d.verified(&answered_as, head_key, enrolled) {
            Ok(()) => self.copy_batch(0),
            Err(reason) => self.divide_fails(reason),
        }
    }

    /// The divide's probe of the node being added failed: the divide fails, nothing copied.
    pub(super) fn divide_verify_failed(&mut self, id: AgentId, reason: Failure) {
        if let Some(d) = self.divide_at(|d| d.verifying(&id)) {
            let reason = d.unverified(&reason);
            self.divide_fails(reason);
        }
    }

    pub(super) fn copied(&mut self, to: AgentId, next: u64, sent: u64) {
        let tip = self.commit.local_tip();
        let Some(d) = self.divide_at(|d| d.copying(&to)) else {
            return;
        };
        let (after, progress) = d.batch_copied(next, sent, tip);
        if let Some(copied) = progress {
            let to = to.clone();
            self.log(Event::DivideProgress { to, copied, tip });
        }
        match after {
            AfterBatch::Copy { after } => self.copy_batch(after),
            AfterBatch::Tell { through } => self.tell_new_node(through),
        }
    }

    /// Every block is copied: tell the new node the whole membership with its own entry in
    /// it. Nothing is registered here until it answers.
    fn tell_new_node(&mut self, through: u64) {
        let own_copied = self.own.durable;
        let d = self.admin.divide.as_mut().expect("copying");
        d.tell(own_copied);
        let info = d.new_node().clone();
        let mut would_be = self.membership.clone();
        would_be.add(info.clone());
        let hint = vec![(self.config.agent_id.clone(), through)];
        let call = self.calls.open(Call::Tell {
            new: info.agent_id.clone(),
        });
        self.outputs.push_back(Output::Announce {
            call,
            to: info.agent_id.clone(),
            endpoint: info.endpoint.clone(),
            members: would_be.all(),
            your_role: Some(info.role),
            cursors: hint,
        });
    }

    pub(super) fn copy_failed(&mut self, to: AgentId, reason: Failure) {
        if let Some(d) = self.divide_at(|d| d.copying(&to)) {
            let reason = d.copy_failed(&reason);
            self.divide_fails(reason);
        }
    }

    /// The new node recorded the membership (`members`, every entry it holds): it is
    /// registered here, and what it knew that this node did not is learned.
    pub(super) fn divide_told(&mut self, now: Instant, new: AgentId, members: Vec<PeerInfo>) {
        if self.divide_at(|d| d.telling(&new)).is_none() {
            return;
        }
        self.register(now);
        self.learn_members(&members);
    }

    /// The new node did not record the membership: the divide fails with its own words.
    pub(super) fn divide_tell_failed(&mut self, new: AgentId, reason: Failure) {
        if let Some(d) = self.divide_at(|d| d.telling(&new)) {
            let reason = d.untold(&reason);
            self.divide_fails(reason);
        }
    }

    /// The new node holds every block and has recorded the membership: make it a member
    /// here and tell the others. The copy carried this node's own chain through
    /// `own_copied`; what it wrote since is the new peer's retry queue.
    fn register(&mut self, now: Instant) {
        let d = self.admin.divide.as_ref().expect("telling");
        let own_copied = d.own_copied().expect("register only while telling");
        let new = d.new_node().clone();
        match self.membership.add(new.clone()) {
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
        let info = self.membership.get(&new.agent_id).cloned().unwrap_or(new);
        let mut waiting = BTreeSet::new();
        let mut pending = Vec::new();
        let others: Vec<(PeerInfo, Reach)> = self
            .peers
            .values()
            .filter(|p| p.info.agent_id != info.agent_id)
            .map(|p| (p.info.clone(), p.reach()))
            .collect();
        for (other, reach) in others {
            self.admin
                .announce(&other, vec![info.clone()], None, Vec::new());
            if reach == Reach::Unreachable {
                pending.push(other.agent_id);
            } else {
                waiting.insert(other.agent_id);
            }
        }
        self.persist();
        // Sent now, not at the next tick: the answer waits on them.
        self.tick_admin(now);
        let d = self.admin.divide.as_mut().expect("telling");
        d.inform(info.agent_id, waiting, pending);
        self.divide_settle();
    }

    /// While informing, the first announcement to `to` that carried the new member ended.
    pub(super) fn divide_heard(&mut self, to: &AgentId, ok: bool) {
        if let Some(d) = self.admin.divide.as_mut() {
            d.heard(to, ok);
            self.divide_settle();
        }
    }

    /// Each tick: members that went down (or were removed) while the divide waits to inform
    /// them are pending; the divide answers once no member is awaited.
    pub(super) fn divide_tick(&mut self) {
        let peers = &self.peers;
        if let Some(d) = self.admin.divide.as_mut() {
            d.tick(|id| peers.get(id).map(|p| p.reach() != Reach::Unreachable));
        }
        self.divide_settle();
    }

    /// Answers the divide once every member it awaits has answered or is pending.
    fn divide_settle(&mut self) {
        let Some(d) = self.admin.divide.take_if(|d| d.settled()) else {
            return;
        };
        let id = &d.new_node().agent_id;
        let endpoint = self
            .membership
            .get(id)
            .map_or(d.new_node().endpoint.clone(), |p| p.endpoint.clone());
        let (request, response) = d.answer(endpoint);
        self.persist_then(request, response);
    }
}
