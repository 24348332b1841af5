//! The commit pipeline: append tokens issued, the durable watermark, and the answers waiting
//! for it. Appends complete in token order; `durable` is the highest token below which
//! everything is durable, and an answer that depends on an append is released only once
//! `durable` reaches its token (DESIGN §4: persist before acknowledging). Pure bookkeeping:
//! the node decides what each released answer means.
//!
//! A full disk fails an append without storing any of it; the strand then refuses every
//! append queued after it. [`CommitPipeline::roll_back`] drops that append and every later one
//! (their blocks' links, newest first, for the node to take out of its chains) and returns
//! their waiting answers; their tokens are dead, and whatever the strand says of them later
//! is ignored.

use std::collections::{BTreeMap, VecDeque};

use crate::block::{Block, Hash};
use crate::id::AgentId;
use crate::time::UnixMillis;

use super::{AppendToken, RequestId};

/// An answer waiting for the durable watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pending {
    Write {
        request: RequestId,
        hash: Hash,
        seq: u64,
        wall: UnixMillis,
    },
    Ingest {
        request: RequestId,
        accepted: u64,
        duplicates: u64,
        head: Option<Box<crate::ledger::VerifiedHead>>,
    },
    /// Pulled page `page` (the pull's id for it) from this peer is durable.
    Page { peer: AgentId, page: u64 },
    /// A probe answer: the asked author's chain is durable here through `holds`.
    Probe {
        request: RequestId,
        holds: u64,
        tip: Option<crate::block::Hash>,
    },
    /// A read's positions are durable here.
    Positions { request: RequestId },
}

/// One append issued and not yet durable.
#[derive(Debug)]
struct InFlight {
    token: AppendToken,
    links: Vec<(AgentId, Hash)>,
    offsets: Option<Vec<u64>>,
}

/// What a rollback took back: links to remove from the chains (newest first) and the
/// answers that waited on the appends.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RolledBack {
    pub(super) links: Vec<(AgentId, Hash)>,
    pub(super) waiters: Vec<Pending>,
}

/// Appends in flight and the answers that wait on them.
#[derive(Debug, Default)]
pub(super) struct CommitPipeline {
    /// Last token issued; tokens start at 1.
    issued: AppendToken,
    /// Everything up to this token is durable.
    durable: AppendToken,
    /// Appends issued and not yet durable, in token order, with their blocks' links (to roll
    /// back) and their offsets once known.
    in_flight: VecDeque<InFlight>,
    waiters: VecDeque<(AppendToken, Pending)>,
    /// Offsets of durable appends whose waiters have not been released yet.
    offsets: BTreeMap<AppendToken, Vec<u64>>,
    /// The strand's last durable offset.
    local_tip: u64,
    /// The strand failed an append: nothing more is accepted until restart.
    failed: bool,
    /// The last append that ended met a full disk.
    full: bool,
}

impl CommitPipeline {
    /// A pipeline over a strand whose last durable offset is `local_tip`.
    pub(super) fn new(local_tip: u64) -> Self {
        CommitPipeline {
            local_tip,
            ..Self::default()
        }
    }

    /// Issues the token of the append of `blocks`.
    pub(super) fn issue(&mut self, blocks: &[Block]) -> AppendToken {
        self.issued = AppendToken(self.issued.0 + 1);
        self.in_flight.push_back(InFlight {
            token: self.issued,
            links: blocks
                .iter()
                .map(|b| (b.author().clone(), b.hash))
                .collect(),
            offsets: None,
        });
        self.issued
    }

    /// The last token issued: waiting for it waits for everything appended so far.
    pub(super) fn issued(&self) -> AppendToken {
        self.issued
    }

    /// `answer` waits until the append `token` and every one before it is durable.
    pub(super) fn wait(&mut self, token: AppendToken, answer: Pending) {
        self.waiters.push_back((token, answer));
    }

    /// The append `token` is durable at `offsets`; the watermark moves over every append
    /// before it that is durable too.
    pub(super) fn appended(&mut self, token: AppendToken, offsets: Vec<u64>) {
        if let Some(slot) = self.in_flight.iter_mut().find(|f| f.token == token) {
            slot.offsets = Some(offsets);
        }
        while self.in_flight.front().is_some_and(|f| f.offsets.is_some()) {
            let f = self.in_flight.pop_front().expect("front exists");
            let offs = f.offsets.unwrap_or_default();
            self.durable = f.token;
            if let Some(last) = offs.last() {
                self.local_tip = self.local_tip.max(*last);
            }
            self.offsets.insert(f.token, offs);
        }
        self.skip_dead_tokens();
    }

    /// With nothing in flight, every token issued is durable or dead (rolled back): an answer
    /// waiting for the last one issued must not wait for a dead one.
    fn skip_dead_tokens(&mut self) {
        if self.in_flight.is_empty() {
            self.durable = self.issued;
        }
    }

    /// The append `token` failed on a full disk, storing nothing; the strand refuses every
    /// later one. Drops it and every append after it, with the answers waiting on them.
    /// `None` if `token` is not in flight (already rolled back, or unknown).
    pub(super) fn roll_back(&mut self, token: AppendToken) -> Option<RolledBack> {
        let at = self.in_flight.iter().position(|f| f.token == token)?;
        let dropped: Vec<InFlight> = self.in_flight.drain(at..).collect();
        let links = dropped
            .into_iter()
            .rev()
            .flat_map(|f| f.links.into_iter().rev())
            .collect();
        let first_waiter = self.waiters.iter().position(|(t, _)| *t >= token);
        let waiters = match first_waiter {
            Some(i) => self.waiters.drain(i..).map(|(_, p)| p).collect(),
            None => Vec::new(),
        };
        self.skip_dead_tokens();
        self.full = true;
        Some(RolledBack { links, waiters })
    }

    /// Whether the last append that ended met a full disk; an append that lands since
    /// clears it ([`CommitPipeline::space_back`]).
    pub(super) fn is_full(&self) -> bool {
        self.full
    }

    /// An append landed: if the disk was full, it has space again (true once).
    pub(super) fn space_back(&mut self) -> bool {
        std::mem::take(&mut self.full)
    }

    /// The oldest waiting answer, if its append is durable, with that append's first local
    /// offset (0 if it stored nothing). Call until `None`.
    pub(super) fn next_ready(&mut self) -> Option<(Pending, u64)> {
        if self.waiters.front().is_none_or(|(t, _)| *t > self.durable) {
            // Offsets are only needed until the waiters of their append are released.
            match self.waiters.front().map(|(t, _)| *t) {
                Some(oldest) => self.offsets.retain(|t, _| *t >= oldest),
                None => self.offsets.clear(),
            }
            return None;
        }
        let (token, answer) = self.waiters.pop_front().expect("front exists");
        let offset = self
            .offsets
            .get(&token)
            .and_then(|o| o.first().copied())
            .unwrap_or(0);
        Some((answer, offset))
    }

    /// The strand failed an append: from now on nothing is accepted; every waiting answer is
    /// returned, to be refused.
    pub(super) fn fail(&mut self) -> Vec<Pending> {
        self.failed = true;
        self.waiters.drain(..).map(|(_, p)| p).collect()
    }

    /// Whether the strand failed.
    pub(super) fn failed(&self) -> bool {
        self.failed
    }

    /// The strand's last durable offset.
    pub(super) fn local_tip(&self) -> u64 {
        self.local_tip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(request: u64) -> Pending {
        Pending::Probe {
            request: RequestId(request),
            holds: 0,
            tip: None,
        }
    }

    fn released(p: &mut CommitPipeline) -> Vec<(Pending, u64)> {
        std::iter::from_fn(|| p.next_ready()).collect()
    }

    #[test]
    fn an_answer_waits_for_every_append_up_to_its_own() {
        let mut p = CommitPipeline::new(10);
        let (a, b) = (p.issue(&[]), p.issue(&[]));
        p.wait(a, probe(1));
        p.wait(b, probe(2));
        // The second append lands first: nothing is durable until the first does.
        p.appended(b, vec![13, 14]);
        assert!(released(&mut p).is_empty());
        assert_eq!(p.local_tip(), 10);
        p.appended(a, vec![11, 12]);
        assert_eq!(released(&mut p), vec![(probe(1), 11), (probe(2), 13)]);
        assert_eq!(p.local_tip(), 14);
    }

    #[test]
    fn waiting_for_the_last_token_waits_for_everything_issued() {
        let mut p = CommitPipeline::new(0);
        let a = p.issue(&[]);
        p.wait(p.issued(), probe(1));
        assert!(released(&mut p).is_empty());
        p.appended(a, vec![1]);
        assert_eq!(released(&mut p), vec![(probe(1), 1)]);
        // With nothing in flight, an answer is released at once.
        p.wait(p.issued(), probe(2));
        assert_eq!(released(&mut p).len(), 1);
    }

    #[test]
    fn offsets_are_kept_only_while_answers_wait_on_them() {
        let mut p = CommitPipeline::new(0);
        for i in 0..100 {
            let t = p.issue(&[]);
            p.wait(t, probe(i));
            p.appended(t, vec![i + 1]);
            assert_eq!(released(&mut p).len(), 1);
        }
        assert!(p.offsets.is_empty());
    }

    #[test]
    fn a_rollback_drops_the_failed_append_and_every_later_one_with_their_answers() {
        let mut p = CommitPipeline::new(0);
        let (a, b, c) = (p.issue(&[]), p.issue(&[]), p.issue(&[]));
        p.wait(a, probe(1));
        p.wait(b, probe(2));
        p.wait(c, probe(3));
        p.appended(a, vec![1]);
        let back = p.roll_back(b).expect("b is in flight");
        assert_eq!(back.waiters, vec![probe(2), probe(3)]);
        assert_eq!(released(&mut p), vec![(probe(1), 1)]);
        // Dead tokens: ignored when the strand reports them, and never waited for.
        assert_eq!(p.roll_back(c), None);
        p.appended(c, vec![2]);
        assert_eq!(p.local_tip(), 1);
        p.wait(p.issued(), probe(4));
        assert_eq!(released(&mut p), vec![(probe(4), 0)]);
        let d = p.issue(&[]);
        p.wait(d, probe(5));
        assert!(released(&mut p).is_empty());
        p.appended(d, vec![2]);
        assert_eq!(released(&mut p), vec![(probe(5), 2)]);
        assert!(!p.failed(), "a full disk is not a failed strand");
    }

    #[test]
    fn a_failed_strand_returns_every_waiting_answer_and_stays_failed() {
        let mut p = CommitPipeline::new(0);
        let t = p.issue(&[]);
        p.wait(t, probe(1));
        p.wait(t, probe(2));
        assert_eq!(p.fail(), vec![probe(1), probe(2)]);
        assert!(p.failed());
        assert!(released(&mut p).is_empty());
    }
}
