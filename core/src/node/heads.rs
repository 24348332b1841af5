//! Signed heads and proofs (issue 17). After a commit extends this node's own chain, the node
//! signs a head of it — `(author, seq, Merkle root, ts)` with its own head key — at once, or,
//! if it signed one less than [`HEAD_EVERY`] ago, when that much time has passed; a ledger
//! query signs one on demand when the chain has grown since. Heads are never signed past what
//! is durable. The shell persists each head ([`Output::PersistHead`]) so the node can tell, at
//! its next start, what it had vouched for.
//!
//! Proofs are built here from the chains' Merkle trees: an audit path of a block to a tree
//! size, and a consistency proof between two sizes, never past what the node vouches for (its
//! own chain: durable; another author's: the latest head it holds of it).

use core::time::Duration;
use std::collections::BTreeMap;

use super::{Node, Output, RequestId, Response};
use crate::id::AgentId;
use crate::ledger::wire::{ConsistencyProof, InclusionProof};
use crate::ledger::{Head, HeadKey, SignedHead};
use crate::time::Instant;

/// The least time between two heads signed after commits.
pub const HEAD_EVERY: Duration = Duration::from_millis(100);

/// What a ledger query asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerQuery {
    /// The latest head of every author held.
    Heads,
    /// The audit path of `author`'s block `seq` to tree size `size` (default: its latest head).
    Inclusion {
        /// The block's author.
        author: AgentId,
        /// The block's seq (the shell resolved it from the hash).
        seq: u64,
        /// The tree size; `None`: the author's latest head.
        size: Option<u64>,
    },
    /// A consistency proof of `author`'s chain from size `from` to `to` (default: its latest
    /// head).
    Consistency {
        /// Whose chain.
        author: AgentId,
        /// The older size.
        from: u64,
        /// The newer size; `None`: the author's latest head.
        to: Option<u64>,
    },
}

/// A ledger query's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerAnswer {
    /// The latest head of every author held, author order.
    Heads(Vec<SignedHead>),
    /// An audit path.
    Inclusion(InclusionProof),
    /// A consistency proof.
    Consistency(ConsistencyProof),
}

/// Why a ledger query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerRefusal {
    /// This node holds no head of the author.
    #[error("no head of {0} is held here")]
    NoHead(AgentId),
    /// A size past what this node vouches for of that chain, or sizes in the wrong order.
    #[error("this node vouches for {author}'s chain through seq {vouched}; the sizes asked are out of that range")]
    OutOfRange {
        /// Whose chain.
        author: AgentId,
        /// The largest size it will prove.
        vouched: u64,
    },
}

/// The node's heads: its key, the latest head of each author, and when its own is due.
#[derive(Debug)]
pub(super) struct Heads {
    key: HeadKey,
    latest: BTreeMap<AgentId, SignedHead>,
    signed_at: Option<Instant>,
    due: Option<Instant>,
}

impl Heads {
    /// With the node's head key and the own head persisted by the last run, if any (kept only
    /// if signed by this key: a head of another key is not this node's to serve).
    pub(super) fn new(key: HeadKey, restored: Option<SignedHead>) -> Self {
        let latest = restored
            .filter(|h| h.key == key.public())
            .into_iter()
            .map(|h| (h.head.author.clone(), h))
            .collect();
        Heads {
            key,
            latest,
            signed_at: None,
            due: None,
        }
    }

    /// When an owed head is signed (wakes the node).
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.due
    }

    /// The latest head held of `author`.
    pub(super) fn latest(&self, author: &AgentId) -> Option<&SignedHead> {
        self.latest.get(author)
    }
}

impl Node {
    /// This node's own chain became durable further: sign a head now, or owe one.
    pub(super) fn own_grew(&mut self, now: Instant) {
        match self.heads.signed_at.map(|at| at + HEAD_EVERY) {
            Some(next) if now < next => {
                self.heads.due.get_or_insert(next);
            }
            _ => self.sign_own_head(now),
        }
    }

    /// The owed head's time came.
    pub(super) fn heads_timeout(&mut self, now: Instant) {
        if self.heads.due.is_some_and(|at| now >= at) {
            self.sign_own_head(now);
        }
    }

    /// Signs the own chain's head at its durable seq, unless the latest one is there.
    fn sign_own_head(&mut self, now: Instant) {
        self.heads.due = None;
        let me = self.config.agent_id.clone();
        let seq = self.own.durable;
        if seq == 0 || self.heads.latest(&me).is_some_and(|h| h.head.seq >= seq) {
            return;
        }
        let Some(root) = self.chains.tree(&me).and_then(|t| t.root(seq)) else {
            return;
        };
        let head = self.heads.key.sign(Head {
            author: me.clone(),
            seq,
            root,
            ts_ms: self.own.last_commit.0,
        });
        self.heads.signed_at = Some(now);
        self.heads.latest.insert(me, head.clone());
        self.outputs.push_back(Output::PersistHead { head });
    }

    /// Answers a ledger query, signing the own head first if the chain grew since.
    pub(super) fn ledger_wanted(&mut self, now: Instant, request: RequestId, query: LedgerQuery) {
        self.sign_own_head(now);
        let answer = match query {
            LedgerQuery::Heads => Ok(LedgerAnswer::Heads(
                self.heads.latest.values().cloned().collect(),
            )),
            LedgerQuery::Inclusion { author, seq, size } => self.inclusion_proof(author, seq, size),
            LedgerQuery::Consistency { author, from, to } => {
                self.consistency_proof(author, from, to)
            }
        };
        let response = match answer {
            Ok(a) => Response::Ledger(Box::new(a)),
            Err(r) => Response::LedgerRefused(r),
        };
        self.respond(request, response);
    }

    /// The largest tree size of `author`'s chain this node proves: its own durable chain, or
    /// the latest head it holds of another's.
    fn vouched(&self, author: &AgentId) -> u64 {
        let head = self.heads.latest(author).map_or(0, |h| h.head.seq);
        if *author == self.config.agent_id {
            return self.own.durable;
        }
        head.min(self.chains.tree(author).map_or(0, |t| t.len()))
    }

    /// The size asked, or the latest head's; and that head when it is at that size.
    fn size_and_head(
        &self,
        author: &AgentId,
        size: Option<u64>,
    ) -> Result<(u64, Option<SignedHead>), LedgerRefusal> {
        let latest = self.heads.latest(author);
        let size = match (size, latest) {
            (Some(s), _) => s,
            (None, Some(h)) => h.head.seq,
            (None, None) => return Err(LedgerRefusal::NoHead(author.clone())),
        };
        let head = latest.filter(|h| h.head.seq == size).cloned();
        Ok((size, head))
    }

    fn out_of_range(&self, author: AgentId) -> LedgerRefusal {
        let vouched = self.vouched(&author);
        LedgerRefusal::OutOfRange { author, vouched }
    }

    fn inclusion_proof(
        &self,
        author: AgentId,
        seq: u64,
        size: Option<u64>,
    ) -> Result<LedgerAnswer, LedgerRefusal> {
        let (size, head) = self.size_and_head(&author, size)?;
        let tree = self.chains.tree(&author);
        let proof = (seq >= 1 && size <= self.vouched(&author))
            .then(|| tree?.inclusion(seq - 1, size).zip(tree?.root(size)))
            .flatten()
            .zip(self.chains.get(&author, seq));
        let Some(((path, root), hash)) = proof else {
            return Err(self.out_of_range(author));
        };
        Ok(LedgerAnswer::Inclusion(InclusionProof {
            hash,
            author,
            seq,
            tree_size: size,
            root,
            path,
            head,
        }))
    }

    fn consistency_proof(
        &self,
        author: AgentId,
        from: u64,
        to: Option<u64>,
    ) -> Result<LedgerAnswer, LedgerRefusal> {
        let (to, head) = self.size_and_head(&author, to)?;
        let tree = self.chains.tree(&author);
        let proof = (to <= self.vouched(&author))
            .then(|| {
                let t = tree?;
                Some((t.consistency(from, to)?, t.root(from)?, t.root(to)?))
            })
            .flatten();
        let Some((path, from_root, to_root)) = proof else {
            return Err(self.out_of_range(author));
        };
        Ok(LedgerAnswer::Consistency(ConsistencyProof {
            author,
            from,
            to,
            from_root,
            to_root,
            path,
            head,
        }))
    }
}
