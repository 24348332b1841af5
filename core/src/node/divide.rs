//! The divider's side of a divide (`POST /v1/cluster/divide`, the spec's Step 3): check the
//! new node answers as itself, copy every block, tell it the whole membership (it probes this
//! node back and persists before it answers), then register it, tell every other member, and
//! answer once persisted — naming the members that recorded the change and those still
//! pending. Nothing is registered before the new node has recorded the membership, so a divider
//! lost at any moment never leaves a member only it knew of.

use std::collections::BTreeSet;

use super::call::Call;
use super::{Failure, Node, Output, RequestId, Response};
use crate::id::AgentId;
use crate::node::Event;
use crate::repl::membership::Delta;
use crate::repl::peer::{Peer, PeerInfo, Reach};
use crate::repl::pull::Pull;
use crate::time::Instant;
use crate::wire::mesh::PageLimit;

/// Log bootstrap progress every this many blocks copied.
const DIVIDE_PROGRESS_EVERY: u64 = 10_000;

/// The divide in progress (one at a time).
#[derive(Debug)]
pub(super) struct Divide {
    request: RequestId,
    info: PeerInfo,
    stage: Stage,
    copied: u64,
    logged: u64,
}

#[derive(Debug)]
enum Stage {
    /// Probing the new node: does it answer as itself?
    Verifying,
    /// Copying every block to it.
    Copying,
    /// Every block is copied, this node's own chain through `own_copied`; the new node is
    /// being told the membership.
    Telling { own_copied: u64 },
    /// It is a member here; the other members are being told.
    Informing {
        waiting: BTreeSet<AgentId>,
        informed: Vec<AgentId>,
        pending: Vec<AgentId>,
    },
}

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
            let reason = format!("a divide to {} is in progress", d.info.agent_id);
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
        self.admin.divide = Some(Divide {
            request,
            info: new,
            stage: Stage::Verifying,
            copied: 0,
            logged: 0,
        });
    }

    /// The divide to `id`, if it is at a stage `at` accepts.
    fn divide_at(&self, id: &AgentId, at: fn(&Stage) -> bool) -> bool {
        self.admin
            .divide
            .as_ref()
            .is_some_and(|d| d.info.agent_id == *id && at(&d.stage))
    }

    /// The node being added answered the divide's probe as `answered_as`: copy to it if that
    /// is the id it was added as.
    pub(super) fn divide_verified(&mut self, id: AgentId, answered_as: AgentId) {
        if !self.divide_at(&id, |s| matches!(s, Stage::Verifying)) {
            return;
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
            d.stage = Stage::Copying;
            let (to, endpoint) = (d.info.agent_id.clone(), d.info.endpoint.clone());
            let call = self.calls.open(Call::Copy { to: to.clone() });
            self.outputs.push_back(Output::Copy {
                call,
                to,
                endpoint,
                after: 0,
                limit: PageLimit::COPY,
            });
        }
    }

    /// The divide's probe of the node being added failed: the divide fails, nothing copied.
    pub(super) fn divide_verify_failed(&mut self, id: AgentId, reason: Failure) {
        if !self.divide_at(&id, |s| matches!(s, Stage::Verifying)) {
            return;
        }
        let d = self.admin.divide.take().expect("verifying");
        let reason = format!(
            "{} did not answer: {reason}; nothing was copied",
            d.info.endpoint
        );
        self.respond(d.request, Response::DivideFailed { reason });
    }

    pub(super) fn copied(&mut self, to: AgentId, next: u64, sent: u64) {
        if !self.divide_at(&to, |s| matches!(s, Stage::Copying)) {
            return;
        }
        let tip = self.commit.local_tip();
        let d = self.admin.divide.as_mut().expect("copying");
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
            let call = self.calls.open(Call::Copy { to: to.clone() });
            self.outputs.push_back(Output::Copy {
                call,
                to,
                endpoint,
                after: next,
                limit: PageLimit::COPY,
            });
            return;
        }
        self.tell_new_node(next);
    }

    /// Every block is copied: tell the new node the whole membership with its own entry in
    /// it. Nothing is registered here until it answers.
    fn tell_new_node(&mut self, through: u64) {
        let own_copied = self.own_durable;
        let d = self.admin.divide.as_mut().expect("copying");
        d.stage = Stage::Telling { own_copied };
        let info = d.info.clone();
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
        if !self.divide_at(&to, |s| matches!(s, Stage::Copying)) {
            return;
        }
        let d = self.admin.divide.take().expect("copying");
        let reason = format!(
            "copy to {} failed after {} blocks: {reason}; it is not a member",
            d.info.agent_id, d.copied
        );
        self.respond(d.request, Response::DivideFailed { reason });
    }

    /// The new node recorded the membership (`members`, every entry it holds): it is
    /// registered here, and what it knew that this node did not is learned.
    pub(super) fn divide_told(&mut self, now: Instant, new: AgentId, members: Vec<PeerInfo>) {
        if !self.divide_at(&new, |s| matches!(s, Stage::Telling { .. })) {
            return;
        }
        self.register(now);
        self.learn_members(&members);
    }

    /// The new node did not record the membership: the divide fails with its own words.
    pub(super) fn divide_tell_failed(&mut self, new: AgentId, reason: Failure) {
        if !self.divide_at(&new, |s| matches!(s, Stage::Telling { .. })) {
            return;
        }
        let d = self.admin.divide.take().expect("telling");
        let reason = format!(
            "{} did not record the membership: {reason}; it is not a member; the {} \
             blocks copied stay there and the divide can be retried",
            d.info.agent_id, d.copied
        );
        self.respond(d.request, Response::DivideFailed { reason });
    }

    /// The new node holds every block and has recorded the membership: make it a member
    /// here and tell the others. The copy carried this node's own chain through
    /// `own_copied`; what it wrote since is the new peer's retry queue.
    fn register(&mut self, now: Instant) {
        let d = self.admin.divide.as_ref().expect("telling");
        let Stage::Telling { own_copied } = d.stage else {
            unreachable!("register only while telling")
        };
        let new = d.info.clone();
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
        d.stage = Stage::Informing {
            waiting,
            informed: vec![info.agent_id],
            pending,
        };
        self.divide_settle();
    }

    /// While informing, the first announcement to `to` that carried the new member ended.
    pub(super) fn divide_heard(&mut self, to: &AgentId, ok: bool) {
        let Some(Divide {
            stage:
                Stage::Informing {
                    waiting,
                    informed,
                    pending,
                },
            ..
        }) = self.admin.divide.as_mut()
        else {
            return;
        };
        if waiting.remove(to) {
            if ok { informed } else { pending }.push(to.clone());
            self.divide_settle();
        }
    }

    /// Each tick: members that went down (or were removed) while the divide waits to inform
    /// them are pending; the divide answers once no member is awaited.
    pub(super) fn divide_tick(&mut self) {
        let peers = &self.peers;
        if let Some(Divide {
            stage: Stage::Informing {
                waiting, pending, ..
            },
            ..
        }) = self.admin.divide.as_mut()
        {
            let gone: Vec<AgentId> = waiting
                .iter()
                .filter(|id| {
                    peers
                        .get(*id)
                        .is_none_or(|p| p.reach() == Reach::Unreachable)
                })
                .cloned()
                .collect();
            for id in gone {
                waiting.remove(&id);
                if peers.contains_key(&id) {
                    pending.push(id);
                }
            }
        }
        self.divide_settle();
    }

    /// Answers the divide once every member it awaits has answered or is pending.
    fn divide_settle(&mut self) {
        let done = matches!(
            &self.admin.divide,
            Some(Divide { stage: Stage::Informing { waiting, .. }, .. }) if waiting.is_empty()
        );
        if !done {
            return;
        }
        let d = self.admin.divide.take().expect("informing");
        let Stage::Informing {
            informed, pending, ..
        } = d.stage
        else {
            unreachable!("informing")
        };
        let endpoint = self
            .membership
            .get(&d.info.agent_id)
            .map_or(d.info.endpoint.clone(), |p| p.endpoint.clone());
        let response = Response::Divided {
            replica_agent_id: d.info.agent_id,
            blocks_pushed: d.copied,
            endpoint,
            members_informed: informed,
            members_pending: pending,
        };
        self.persist_then(d.request, response);
    }
}
