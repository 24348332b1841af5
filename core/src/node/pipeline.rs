//! The commit pipeline: append tokens issued, the durable watermark, and the answers waiting
//! for it. Appends complete in token order; `durable` is the highest token below which
//! everything is durable, and an answer that depends on an append is released only once
//! `durable` reaches its token (DESIGN §4: persist before acknowledging). Pure bookkeeping:
//! the node decides what each released answer means.

use std::collections::{BTreeMap, VecDeque};

use crate::block::Hash;
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
    },
    /// Pulled page `page` (the pull's id for it) from this peer is durable.
    Page { peer: AgentId, page: u64 },
    /// A probe answer: the asked author's chain is durable here through `holds`.
    Probe { request: RequestId, holds: u64 },
}

/// Appends in flight and the answers that wait on them.
#[derive(Debug, Default)]
pub(super) struct CommitPipeline {
    /// Last token issued; tokens start at 1.
    issued: AppendToken,
    /// Everything up to this token is durable.
    durable: AppendToken,
    /// Appends issued and not yet durable, in token order, with their offsets once known.
    in_flight: VecDeque<(AppendToken, Option<Vec<u64>>)>,
    waiters: VecDeque<(AppendToken, Pending)>,
    /// Offsets of durable appends whose waiters have not been released yet.
    offsets: BTreeMap<AppendToken, Vec<u64>>,
    /// The strand's last durable offset.
    local_tip: u64,
    /// The strand failed an append: nothing more is accepted until restart.
    failed: bool,
}

impl CommitPipeline {
    /// A pipeline over a strand whose last durable offset is `local_tip`.
    pub(super) fn new(local_tip: u64) -> Self {
        CommitPipeline {
            local_tip,
            ..Self::default()
        }
    }

    /// Issues the next append's token.
    pub(super) fn issue(&mut self) -> AppendToken {
        self.issued = AppendToken(self.issued.0 + 1);
        self.in_flight.push_back((self.issued, None));
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
        if let Some(slot) = self.in_flight.iter_mut().find(|(t, _)| *t == token) {
            slot.1 = Some(offsets);
        }
        while let Some((_, Some(_))) = self.in_flight.front() {
            let (t, offs) = self.in_flight.pop_front().expect("front exists");
            let offs = offs.unwrap_or_default();
            self.durable = t;
            if let Some(last) = offs.last() {
                self.local_tip = self.local_tip.max(*last);
            }
            self.offsets.insert(t, offs);
        }
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
        }
    }

    fn released(p: &mut CommitPipeline) -> Vec<(Pending, u64)> {
        std::iter::from_fn(|| p.next_ready()).collect()
    }

    #[test]
    fn an_answer_waits_for_every_append_up_to_its_own() {
        let mut p = CommitPipeline::new(10);
        let (a, b) = (p.issue(), p.issue());
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
        let a = p.issue();
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
            let t = p.issue();
            p.wait(t, probe(i));
            p.appended(t, vec![i + 1]);
            assert_eq!(released(&mut p).len(), 1);
        }
        assert!(p.offsets.is_empty());
    }

    #[test]
    fn a_failed_strand_returns_every_waiting_answer_and_stays_failed() {
        let mut p = CommitPipeline::new(0);
        let t = p.issue();
        p.wait(t, probe(1));
        p.wait(t, probe(2));
        assert_eq!(p.fail(), vec![probe(1), probe(2)]);
        assert!(p.failed());
        assert!(released(&mut p).is_empty());
    }
}
