//! Signed heads and proofs (issue 17). After a commit extends this node's own chain, the node
//! signs a head of it — `(author, seq, Merkle root, ts)` with its own head key — at once, or,
//! if it signed one less than [`HEAD_EVERY`] ago, when that much time has passed; a ledger
//! query signs one on demand when the chain has grown since. Heads are never signed past what
//! is durable. The shell persists each head ([`Output::PersistHead`]) so the node can tell, at
//! its next start, what it had vouched for.
//!
//! At its first instant the node compares its own chain with the last head it signed
//! ([`Node::check_tails`]): blocks it vouched for that are missing at the tail (a torn or
//! damaged last frame is cut off by the strand's recovery like a torn write) are reported, and
//! fetched back by pulling every peer's strand from the start; a chain whose root at that seq
//! differs was rewritten. Either way the node writes nothing of its own until its chain holds
//! the head again — a new block at a seq it already signed would fork its own chain. Every
//! other author's chain is compared the same way with the last head of it this node witnessed:
//! a missing tail is reported and fetched back; a rewritten copy is reported, and no proof of
//! that chain is served from it (nor is any later head of it cosigned or blamed on its author).
//!
//! Heads travel with pushes: a push carries the own latest head when the peer will hold its
//! blocks and has neither cosigned it nor been sent it (a caught-up peer gets a push of the
//! head alone), so each head reaches each peer once. The receiver cosigns it once the blocks
//! are durable there if it is signed with the author's enrolled key and its root is the root
//! of the author's blocks held there ([`Node::witness`]); the cosignature comes back in the
//! answer and joins the head ([`Node::push_witnessed`]).
//!
//! Proofs are built here from the chains' Merkle trees: an audit path of a block to a tree
//! size, and a consistency proof between two sizes, never past what the node vouches for (its
//! own chain: durable; another author's: the latest head it holds of it).

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use super::{Event, Node, Output, RequestId, Response};
use crate::block::Hash;
use crate::id::AgentId;
use crate::ledger::wire::{ConsistencyProof, InclusionProof};
use crate::ledger::{
    Evidence, EvidenceId, Head, HeadKey, HeadPublicKey, SignedHead, VerifiedHead, Witnessed,
};
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
    /// The author equivocated at `seq`: no proof reaches it or past it.
    #[error("{author} signed two different blocks or heads at seq {seq} (evidence kept): no proof reaches seq {seq} or past it")]
    Equivocated {
        /// Whose chain.
        author: AgentId,
        /// The first seq it equivocated at.
        seq: u64,
    },
    /// This node's copy of the author's chain is not the chain of the head it holds there (it
    /// signed or witnessed it): the strand was rewritten on this disk.
    #[error("this node's copy of {author}'s chain at seq {seq} is not the chain its head there vouches for (the strand was rewritten on this disk): no proof of that chain is served from it")]
    Diverged {
        /// Whose chain.
        author: AgentId,
        /// The witnessed head's seq.
        seq: u64,
    },
    /// A size past what this node vouches for of that chain, or sizes in the wrong order.
    #[error("this node vouches for {author}'s chain through seq {vouched}; the sizes asked are out of that range")]
    OutOfRange {
        /// Whose chain.
        author: AgentId,
        /// The largest size it will prove.
        vouched: u64,
    },
}

/// Why a pushed head was not cosigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadRefusal {
    /// Signed with a key that is not the author's enrolled head key.
    #[error("it is signed with head key {key}, not the key enrolled for its author")]
    NotEnrolled {
        /// The key it carries.
        key: HeadPublicKey,
    },
    /// Its root is not the root of the author's blocks held here at its seq.
    #[error("its root is not {held}, the root of the author's blocks held here at that seq: the author signed another chain")]
    Diverged {
        /// The root held here.
        held: Hash,
    },
}

/// The node's heads: its key, the latest head of each author, and when its own is due.
#[derive(Debug)]
pub(super) struct Heads {
    key: HeadKey,
    latest: BTreeMap<AgentId, SignedHead>,
    /// The own head (seq, key) each peer took in an acknowledged push.
    offered: BTreeMap<AgentId, (u64, HeadPublicKey)>,
    /// Equivocation evidence kept, by author.
    evidence: BTreeMap<AgentId, BTreeSet<EvidenceId>>,
    signed_at: Option<Instant>,
    due: Option<Instant>,
    /// The own chain was compared with the last own head (at the first instant).
    checked: bool,
    /// The own chain does not hold what the last own head vouched for: why, for refusals.
    unsafe_own: Option<OwnChainUnsafe>,
    /// Other authors' chains that do not hold the head this node witnessed of them.
    unsafe_witnessed: BTreeMap<AgentId, WitnessedChainUnsafe>,
}

/// Why another author's chain, as this node's strand holds it, is not the chain this node
/// witnessed a head of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessedChainUnsafe {
    /// Blocks under a head this node witnessed are missing at the tail of its copy; they are
    /// being fetched back from peers.
    #[error("this node witnessed {author}'s head at seq {witnessed} but holds its chain only through seq {held}: the missing tail is being fetched back from peers")]
    TailMissing {
        /// Whose chain.
        author: AgentId,
        /// Its length here now.
        held: u64,
        /// The witnessed head's seq.
        witnessed: u64,
    },
    /// The copy's root at the witnessed head's seq is not the head's: the strand was
    /// rewritten here.
    #[error("this node's copy of {author}'s chain at seq {seq} is not the chain it witnessed a head over: its strand was rewritten; no proof of that chain is served from it")]
    Diverged {
        /// Whose chain.
        author: AgentId,
        /// The witnessed head's seq.
        seq: u64,
    },
}

/// Why this node writes nothing of its own for now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnChainUnsafe {
    /// Blocks this node signed a head over are missing at the tail of its chain; it is
    /// fetching them back from peers.
    #[error("this node's own chain holds seq {held} but it signed a head at seq {signed}: the missing tail is being fetched back from peers; its own writes resume once it is")]
    TailMissing {
        /// The own chain's length now.
        held: u64,
        /// The last own head's seq.
        signed: u64,
    },
    /// The own chain's root at the last head's seq is not the head's: the chain on disk was
    /// rewritten.
    #[error("this node's own chain at seq {seq} is not the chain it signed a head over: its strand was rewritten; restore it from a backup or a peer")]
    Diverged {
        /// The head's seq.
        seq: u64,
    },
}

impl Heads {
    /// The node's head key.
    pub(super) fn key(&self) -> &HeadKey {
        &self.key
    }

    /// Signs with `next` from now on; the own head signed with the old key is dropped (and
    /// signed again with the new one by the caller).
    pub(super) fn rotate(&mut self, me: &AgentId, next: HeadKey) {
        self.key = next;
        self.latest.remove(me);
        self.due = None;
    }

    /// With the node's head key and the own head persisted by the last run, if any (kept only
    /// if signed by this key: a head of another key is not this node's to serve).
    pub(super) fn new(
        key: HeadKey,
        restored: Option<SignedHead>,
        evidence: Vec<(AgentId, EvidenceId)>,
        witnessed: Vec<VerifiedHead>,
    ) -> Self {
        let mut kept: BTreeMap<AgentId, BTreeSet<EvidenceId>> = BTreeMap::new();
        for (author, id) in evidence {
            kept.entry(author).or_default().insert(id);
        }
        let own = restored.filter(|h| h.key == key.public());
        // Witnessed heads of others, never one of this node's own author.
        let own_author = own.as_ref().map(|o| o.head.author.clone());
        let others = witnessed
            .into_iter()
            .map(VerifiedHead::into_signed)
            .filter(move |h| own_author.as_ref() != Some(&h.head.author));
        let latest = own
            .into_iter()
            .chain(others)
            .map(|h| (h.head.author.clone(), h))
            .collect();
        Heads {
            key,
            latest,
            offered: BTreeMap::new(),
            evidence: kept,
            signed_at: None,
            due: None,
            checked: false,
            unsafe_own: None,
            unsafe_witnessed: BTreeMap::new(),
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

    /// How many pieces of equivocation evidence of `author` are kept.
    pub(super) fn equivocations(&self, author: &AgentId) -> Option<u64> {
        self.evidence.get(author).map(|e| e.len() as u64)
    }

    /// The first seq at which `author` equivocated, if it did: no proof reaches past it.
    fn equivocated_at(&self, author: &AgentId) -> Option<u64> {
        self.evidence.get(author)?.iter().map(|e| e.seq).min()
    }

    /// How many witnesses cosigned the latest head held of `author`.
    pub(super) fn witnesses(&self, author: &AgentId) -> Option<usize> {
        self.latest.get(author).map(|h| h.cosignatures.len())
    }
}

impl Node {
    /// Compares every chain with the last head of it this node signed or witnessed, once, at
    /// the node's first instant; a missing tail is fetched back by pulling every peer's strand
    /// from the start (the missing blocks were pushed to them or pulled by them, and pull
    /// cursors are past them).
    pub(super) fn check_tails(&mut self) {
        if std::mem::replace(&mut self.heads.checked, true) {
            return;
        }
        let me = self.config.agent_id.clone();
        let mut refetch = false;
        if let Some(head) = self.heads.latest(&me).map(|h| h.head.clone()) {
            let held = self.chains.tip(&me).map_or(0, |(s, _)| s);
            if held < head.seq {
                let why = OwnChainUnsafe::TailMissing {
                    held,
                    signed: head.seq,
                };
                self.log(Event::OwnChainUnsafe(why.clone()));
                self.heads.unsafe_own = Some(why);
                refetch = true;
            } else {
                self.own_tail_matches(&head);
            }
        }
        let others: Vec<Head> = (self.heads.latest.iter())
            .filter(|(a, _)| **a != me)
            .map(|(_, h)| h.head.clone())
            .collect();
        for head in others {
            let held = self.chains.tip(&head.author).map_or(0, |(s, _)| s);
            if held < head.seq {
                let why = WitnessedChainUnsafe::TailMissing {
                    author: head.author.clone(),
                    held,
                    witnessed: head.seq,
                };
                self.witnessed_unsafe(why);
                refetch = true;
            } else {
                self.witnessed_tail_matches(&head);
            }
        }
        if refetch {
            for pull in self.pulls.values_mut() {
                *pull = crate::repl::pull::Pull::new(0);
                pull.want();
            }
        }
    }

    fn witnessed_unsafe(&mut self, why: WitnessedChainUnsafe) {
        self.log(Event::WitnessedChainUnsafe(why.clone()));
        let author = match &why {
            WitnessedChainUnsafe::TailMissing { author, .. }
            | WitnessedChainUnsafe::Diverged { author, .. } => author.clone(),
        };
        self.heads.unsafe_witnessed.insert(author, why);
    }

    /// The copy of another author's chain holds the witnessed head's seq: its root there must
    /// be the head's.
    fn witnessed_tail_matches(&mut self, head: &Head) {
        let root = self
            .chains
            .tree(&head.author)
            .and_then(|t| t.root(head.seq));
        if root == Some(head.root) {
            if self.heads.unsafe_witnessed.remove(&head.author).is_some() {
                self.log(Event::WitnessedChainRecovered {
                    author: head.author.clone(),
                    seq: head.seq,
                });
            }
        } else {
            self.witnessed_unsafe(WitnessedChainUnsafe::Diverged {
                author: head.author.clone(),
                seq: head.seq,
            });
        }
    }

    /// The own chain holds the head's seq: its root there must be the head's.
    fn own_tail_matches(&mut self, head: &Head) {
        let me = &self.config.agent_id;
        let root = self.chains.tree(me).and_then(|t| t.root(head.seq));
        if root == Some(head.root) {
            if self.heads.unsafe_own.take().is_some() {
                self.log(Event::OwnChainRecovered { seq: head.seq });
            }
        } else {
            let why = OwnChainUnsafe::Diverged { seq: head.seq };
            self.log(Event::OwnChainUnsafe(why.clone()));
            self.heads.unsafe_own = Some(why);
        }
    }

    /// Blocks became durable: a missing tail, own or witnessed, may be back.
    pub(super) fn tails_progress(&mut self) {
        if let Some(OwnChainUnsafe::TailMissing { signed, .. }) = self.heads.unsafe_own {
            let me = &self.config.agent_id;
            let held = self.chains.tip(me).map_or(0, |(s, _)| s);
            if held >= signed {
                if let Some(head) = self.heads.latest(me).map(|h| h.head.clone()) {
                    self.own_tail_matches(&head);
                }
            }
        }
        let back: Vec<Head> = (self.heads.unsafe_witnessed.values())
            .filter_map(|why| match why {
                WitnessedChainUnsafe::TailMissing {
                    author, witnessed, ..
                } if self.chains.tip(author).map_or(0, |(s, _)| s) >= *witnessed => {
                    self.heads.latest(author).map(|h| h.head.clone())
                }
                _ => None,
            })
            .collect();
        for head in back {
            self.witnessed_tail_matches(&head);
        }
    }

    /// Why this node may not write a block of its own now, if it may not.
    pub(super) fn own_chain_unsafe(&self) -> Option<OwnChainUnsafe> {
        self.heads.unsafe_own.clone()
    }

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

    /// Signs the own chain's head at its durable seq, unless the latest one is there or the
    /// own chain does not hold the latest one (a head over a rewritten chain would vouch for
    /// the rewrite).
    pub(super) fn sign_own_head(&mut self, now: Instant) {
        self.heads.due = None;
        if self.heads.unsafe_own.is_some() {
            return;
        }
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

    /// Whether `peer` is owed the own latest head once it holds own blocks through `holds`:
    /// it has not cosigned it and was not sent it.
    pub(super) fn head_owed(&self, peer: &AgentId, holds: u64) -> Option<&SignedHead> {
        let head = self.heads.latest(&self.config.agent_id)?;
        let sent = self.heads.offered.get(peer) == Some(&(head.head.seq, head.key));
        let cosigned = head.cosignatures.iter().any(|c| c.witness == *peer);
        (head.head.seq <= holds && !sent && !cosigned).then_some(head)
    }

    /// A push that carried the own head `sent` (seq, key) was acknowledged by `peer`, with
    /// its cosignature if it witnessed the head: the cosignature joins the head if it is the
    /// peer's, with its enrolled key, of the own latest head.
    pub(super) fn push_witnessed(
        &mut self,
        peer: &AgentId,
        sent: Option<(u64, HeadPublicKey)>,
        witnessed: Option<Witnessed>,
    ) {
        if let Some(sent) = sent {
            self.heads.offered.insert(peer.clone(), sent);
        }
        let Some(Witnessed { head, cosignature }) = witnessed else {
            return;
        };
        let enrolled = self
            .membership
            .get(peer)
            .and_then(|i| i.head_keys.current());
        if cosignature.witness != *peer || enrolled != Some(cosignature.key) {
            return;
        }
        let me = self.config.agent_id.clone();
        let Some(latest) = self.heads.latest.get_mut(&me) else {
            return;
        };
        if latest.head != head || latest.cosignatures.iter().any(|c| c.witness == *peer) {
            return;
        }
        latest.cosignatures.push(cosignature);
        let head = latest.clone();
        self.outputs.push_back(Output::PersistHead { head });
    }

    /// A peer's pushed head, its blocks durable here: kept and cosigned if it is signed with
    /// the author's enrolled key and its root is the root of the author's blocks held here;
    /// refused (and logged) if not; ignored if this node does not hold its blocks yet or holds
    /// a later head.
    pub(super) fn witness(&mut self, head: VerifiedHead) -> Option<Witnessed> {
        let mut signed = head.into_signed();
        let (author, seq) = (signed.head.author.clone(), signed.head.seq);
        let me = self.config.agent_id.clone();
        // A copy rewritten here proves nothing about the author: neither cosign nor blame.
        let rewritten = matches!(
            self.heads.unsafe_witnessed.get(&author),
            Some(WitnessedChainUnsafe::Diverged { .. })
        );
        if author == me || seq == 0 || rewritten {
            return None;
        }
        let enrolled = self
            .membership
            .get(&author)
            .and_then(|i| i.head_keys.current());
        if enrolled != Some(signed.key) {
            let why = HeadRefusal::NotEnrolled { key: signed.key };
            self.log(Event::HeadRefused { author, seq, why });
            return None;
        }
        let held = self.chains.tree(&author).and_then(|t| t.root(seq))?;
        if held != signed.head.root {
            let why = HeadRefusal::Diverged { held };
            self.log(Event::HeadRefused { author, seq, why });
            self.keep_evidence(Evidence::Head {
                held_root: held,
                refused: signed,
            });
            return None;
        }
        if let Some(latest) = self.heads.latest(&author) {
            if latest.head.seq > seq {
                return None;
            }
            if latest.head == signed.head {
                for c in &latest.cosignatures {
                    if !signed.cosignatures.iter().any(|k| k.witness == c.witness) {
                        signed.cosignatures.push(c.clone());
                    }
                }
            }
        }
        let cosignature = self.heads.key.cosign(&me, &signed.head);
        signed.cosignatures.retain(|c| c.witness != me);
        signed.cosignatures.push(cosignature.clone());
        let head = signed.head.clone();
        self.heads.latest.insert(author, signed);
        let others = self.heads.latest.iter().filter(|(a, _)| **a != me);
        let heads = others.map(|(_, h)| h.clone()).collect();
        self.outputs.push_back(Output::PersistWitnessed { heads });
        Some(Witnessed { head, cosignature })
    }

    /// Keeps `evidence` on disk unless the same piece is kept already.
    pub(super) fn keep_evidence(&mut self, evidence: Evidence) {
        let author = evidence.author().clone();
        if self
            .heads
            .evidence
            .entry(author)
            .or_default()
            .insert(evidence.id())
        {
            self.outputs.push_back(Output::KeepEvidence { evidence });
        }
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

    /// A proof to tree size `size` must not reach a seq the author equivocated at (this
    /// node's own chain is exempt: it knows which of the two it signed), and none is served
    /// from a copy rewritten under its head.
    fn provable(&self, author: &AgentId, size: u64) -> Result<(), LedgerRefusal> {
        if *author == self.config.agent_id {
            return match self.heads.unsafe_own {
                Some(OwnChainUnsafe::Diverged { seq }) => Err(LedgerRefusal::Diverged {
                    author: author.clone(),
                    seq,
                }),
                _ => Ok(()),
            };
        }
        if let Some(WitnessedChainUnsafe::Diverged { seq, .. }) =
            self.heads.unsafe_witnessed.get(author)
        {
            return Err(LedgerRefusal::Diverged {
                author: author.clone(),
                seq: *seq,
            });
        }
        match self.heads.equivocated_at(author) {
            Some(seq) if size >= seq => Err(LedgerRefusal::Equivocated {
                author: author.clone(),
                seq,
            }),
            _ => Ok(()),
        }
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
        self.provable(&author, size)?;
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
        self.provable(&author, to)?;
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
