//! One divide's progress on the divider (the spec's one-call bootstrap of a new replica): verify
//! the new node answers as itself, copy every block to it, tell it the membership, then inform
//! every other member. A plain state machine: the node feeds it how each call ended and does
//! what it answers; it decides the stage, the progress and the operator's words.

use std::collections::BTreeSet;

use crate::id::AgentId;
use crate::ledger::{HeadKeys, HeadPublicKey};
use crate::repl::peer::PeerInfo;
use crate::status::DivideProgress;

use super::{Failure, RequestId, Response};

/// Log bootstrap progress every this many blocks copied.
const PROGRESS_EVERY: u64 = 10_000;

/// Where a divide stands.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What to do after a copy batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AfterBatch {
    /// Send the next batch, after this local offset.
    Copy { after: u64 },
    /// Everything is copied, through this local offset: tell the new node the membership.
    Tell { through: u64 },
}

/// The divide in progress (one at a time).
#[derive(Debug)]
pub(super) struct Bootstrap {
    request: RequestId,
    info: PeerInfo,
    stage: Stage,
    copied: u64,
    logged: u64,
}

impl Bootstrap {
    /// A divide asked by `request` to add `info`: it starts by verifying it.
    pub(super) fn new(request: RequestId, info: PeerInfo) -> Self {
        Bootstrap {
            request,
            info,
            stage: Stage::Verifying,
            copied: 0,
            logged: 0,
        }
    }

    /// The node being added, as the divide was asked.
    pub(super) fn new_node(&self) -> &PeerInfo {
        &self.info
    }

    /// Blocks copied so far.
    #[cfg(test)]
    pub(super) fn copied(&self) -> u64 {
        self.copied
    }

    /// Whether this divide is verifying `id`.
    pub(super) fn verifying(&self, id: &AgentId) -> bool {
        self.info.agent_id == *id && self.stage == Stage::Verifying
    }

    /// Whether this divide is copying to `id`.
    pub(super) fn copying(&self, id: &AgentId) -> bool {
        self.info.agent_id == *id && self.stage == Stage::Copying
    }

    /// Whether this divide is telling `id` the membership.
    pub(super) fn telling(&self, id: &AgentId) -> bool {
        self.info.agent_id == *id && matches!(self.stage, Stage::Telling { .. })
    }

    /// The new node answered the probe as `answered_as`: copying starts (after offset 0), or,
    /// if it is not the node asked for, the divide fails with this reason.
    pub(super) fn verified(
        &mut self,
        answered_as: &AgentId,
        head_key: Option<HeadPublicKey>,
        enrolled: Option<HeadPublicKey>,
    ) -> Result<(), String> {
        if *answered_as != self.info.agent_id {
            return Err(format!(
                "{} answered as {answered_as}, not {}; nothing was copied",
                self.info.endpoint, self.info.agent_id
            ));
        }
        if let (Some(key), Some(enrolled)) = (head_key, enrolled) {
            if key != enrolled {
                return Err(format!(
                    "{} answered with head key {key}, but the key enrolled for {} is \
                     {enrolled}; a member's head key changes only by POST \
                     /v1/cluster/rotate-head-key on that node; nothing was copied",
                    self.info.endpoint, self.info.agent_id
                ));
            }
        }
        // The key it answered with is enrolled with its entry (a member keeps its own).
        if let Some(key) = head_key {
            self.info.head_keys = HeadKeys::first(key);
        }
        self.stage = Stage::Copying;
        Ok(())
    }

    /// Why the divide failed when the probe did.
    pub(super) fn unverified(&self, reason: &Failure) -> String {
        format!(
            "{} did not answer: {reason}; nothing was copied",
            self.info.endpoint
        )
    }

    /// A batch of `sent` blocks through local offset `next` is copied, of a strand whose tip
    /// is `tip`: what to do next, and the progress to log, if a step was crossed.
    pub(super) fn batch_copied(
        &mut self,
        next: u64,
        sent: u64,
        tip: u64,
    ) -> (AfterBatch, Option<u64>) {
        self.copied += sent;
        let progress = (self.copied >= self.logged + PROGRESS_EVERY).then(|| {
            self.logged = self.copied;
            self.copied
        });
        // An empty batch means the strand had nothing after `next`, whatever the tip said.
        let after = match next < tip && sent > 0 {
            true => AfterBatch::Copy { after: next },
            false => AfterBatch::Tell { through: next },
        };
        (after, progress)
    }

    /// Why the divide failed when a copy batch did.
    pub(super) fn copy_failed(&self, reason: &Failure) -> String {
        format!(
            "copy to {} failed after {} blocks: {reason}; it is not a member",
            self.info.agent_id, self.copied
        )
    }

    /// Every block is copied, this node's own chain through `own_copied`: the new node is
    /// being told the membership.
    pub(super) fn tell(&mut self, own_copied: u64) {
        self.stage = Stage::Telling { own_copied };
    }

    /// How much of this node's own chain the copy carried (once telling).
    pub(super) fn own_copied(&self) -> Option<u64> {
        match self.stage {
            Stage::Telling { own_copied } => Some(own_copied),
            _ => None,
        }
    }

    /// Why the divide failed when the new node did not record the membership.
    pub(super) fn untold(&self, reason: &Failure) -> String {
        format!(
            "{} did not record the membership: {reason}; it is not a member; the {} blocks \
             copied stay there and the divide can be retried",
            self.info.agent_id, self.copied
        )
    }

    /// The new node is a member here as `id`; the members in `waiting` are being told, those
    /// in `pending` cannot be now.
    pub(super) fn inform(
        &mut self,
        id: AgentId,
        waiting: BTreeSet<AgentId>,
        pending: Vec<AgentId>,
    ) {
        self.stage = Stage::Informing {
            waiting,
            informed: vec![id],
            pending,
        };
    }

    /// The first announcement to `to` that carried the new member ended, `ok` or not.
    pub(super) fn heard(&mut self, to: &AgentId, ok: bool) {
        if let Stage::Informing {
            waiting,
            informed,
            pending,
        } = &mut self.stage
        {
            if waiting.remove(to) {
                if ok { informed } else { pending }.push(to.clone());
            }
        }
    }

    /// A tick: members awaited that are gone (`up` says `None`) stop being awaited; those that
    /// are unreachable (`Some(false)`) are pending.
    pub(super) fn tick(&mut self, up: impl Fn(&AgentId) -> Option<bool>) {
        if let Stage::Informing {
            waiting, pending, ..
        } = &mut self.stage
        {
            let gone: Vec<AgentId> = waiting
                .iter()
                .filter(|id| up(id) != Some(true))
                .cloned()
                .collect();
            for id in gone {
                waiting.remove(&id);
                if up(&id).is_some() {
                    pending.push(id);
                }
            }
        }
    }

    /// Whether the divide can answer: informing, and no member is awaited.
    pub(super) fn settled(&self) -> bool {
        matches!(&self.stage, Stage::Informing { waiting, .. } if waiting.is_empty())
    }

    /// The divide's answer (once settled), naming the new node at `endpoint`.
    pub(super) fn answer(self, endpoint: String) -> (RequestId, Response) {
        let (informed, pending) = match self.stage {
            Stage::Informing {
                informed, pending, ..
            } => (informed, pending),
            _ => (Vec::new(), Vec::new()),
        };
        let response = Response::Divided {
            replica_agent_id: self.info.agent_id,
            blocks_pushed: self.copied,
            endpoint,
            members_informed: informed,
            members_pending: pending,
        };
        (self.request, response)
    }

    /// The request to answer.
    pub(super) fn request(&self) -> RequestId {
        self.request
    }

    /// Where it stands, with `total` the blocks this node holds.
    pub(super) fn progress(&self, total: u64) -> DivideProgress {
        let stage = match self.stage {
            Stage::Verifying => "verifying",
            Stage::Copying => "copying",
            Stage::Telling { .. } => "telling",
            Stage::Informing { .. } => "informing",
        };
        DivideProgress {
            in_progress: true,
            new_agent_id: Some(self.info.agent_id.clone()),
            stage: Some(stage.to_string()),
            blocks_copied: Some(self.copied),
            blocks_total: Some(total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Role;

    fn id(s: &str) -> AgentId {
        AgentId::new(s).expect("valid id")
    }

    fn divide() -> Bootstrap {
        let info = PeerInfo::new(id("new"), "http://new:7475", Role::Replica, 0);
        Bootstrap::new(RequestId(1), info)
    }

    #[test]
    fn a_node_answering_as_another_fails_the_divide_before_any_copy() {
        let mut d = divide();
        let err = d
            .verified(&id("impostor"), None, None)
            .expect_err("refused");
        assert!(err.contains("answered as impostor, not new"), "{err}");
        assert!(d.verifying(&id("new")), "still not copying");
        assert!(d.verified(&id("new"), None, None).is_ok());
        assert!(d.copying(&id("new")));
        assert!(!d.copying(&id("other")));
    }

    #[test]
    fn batches_are_copied_until_the_tip_and_progress_is_logged_every_10000_blocks() {
        let mut d = divide();
        d.verified(&id("new"), None, None).unwrap();
        let mut logged = Vec::new();
        let mut after = 0;
        loop {
            let sent = 500.min(25_000 - after);
            let (next, progress) = d.batch_copied(after + sent, sent, 25_000);
            logged.extend(progress);
            match next {
                AfterBatch::Copy { after: a } => after = a,
                AfterBatch::Tell { through } => {
                    assert_eq!(through, 25_000);
                    break;
                }
            }
        }
        assert_eq!(d.copied(), 25_000);
        assert_eq!(logged, vec![10_000, 20_000]);
        let p = d.progress(25_000);
        assert_eq!(p.stage.as_deref(), Some("copying"));
        assert_eq!(
            (p.blocks_copied, p.blocks_total),
            (Some(25_000), Some(25_000))
        );
    }

    #[test]
    fn an_empty_batch_ends_the_copy_even_below_the_tip() {
        let mut d = divide();
        d.verified(&id("new"), None, None).unwrap();
        assert_eq!(d.batch_copied(7, 0, 9).0, AfterBatch::Tell { through: 7 });
    }

    #[test]
    fn the_answer_waits_for_every_member_awaited_and_names_who_is_pending() {
        let mut d = divide();
        d.verified(&id("new"), None, None).unwrap();
        d.tell(4);
        assert_eq!(d.own_copied(), Some(4));
        let waiting = [id("b"), id("c"), id("d")].into_iter().collect();
        d.inform(id("new"), waiting, vec![id("e")]);
        assert!(!d.settled());
        d.heard(&id("b"), true);
        d.heard(&id("c"), false);
        assert!(!d.settled());
        // d went down meanwhile.
        d.tick(|m| Some(m != &id("d")));
        assert!(d.settled());
        let (request, response) = d.answer("http://new:7475".into());
        assert_eq!(request, RequestId(1));
        let Response::Divided {
            members_informed,
            members_pending,
            ..
        } = response
        else {
            panic!("a settled divide answers Divided");
        };
        assert_eq!(members_informed, vec![id("new"), id("b")]);
        assert_eq!(members_pending, vec![id("e"), id("c"), id("d")]);
    }

    #[test]
    fn a_member_removed_while_awaited_is_neither_informed_nor_pending() {
        let mut d = divide();
        d.tell(0);
        d.inform(id("new"), [id("b")].into_iter().collect(), Vec::new());
        d.tick(|_| None);
        assert!(d.settled());
        let Response::Divided {
            members_pending, ..
        } = d.answer(String::new()).1
        else {
            panic!("Divided");
        };
        assert!(members_pending.is_empty());
    }
}
