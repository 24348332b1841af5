//! One node's disk: the strand (durable blocks plus appends in flight) and its two state files.
//!
//! An append is durable only when the simulator delivers its `Appended`; appends complete in
//! token order, as the real group-commit writer does. A crash loses everything still in
//! flight, except, when the configuration says so, a prefix of it (the fsync finished but its
//! completion never reached the node). The state files (`sync_cursors.json`, `cluster.json`)
//! are written in order by one persister, each atomically. The disk outlives the process: a
//! restart rebuilds the node from exactly what is durable here.

use std::collections::{BTreeMap, HashSet, VecDeque};

use sapix_core::block::{Block, Hash, Verified};
use sapix_core::chain::Chains;
use sapix_core::ledger::SignedHead;
use sapix_core::node::{AppendToken, CallId, ClusterState, Restored};
use sapix_core::AgentId;

use crate::config::Micros;

/// An append handed to the strand, not yet durable.
#[derive(Debug)]
struct InFlight {
    token: AppendToken,
    blocks: Vec<Block>,
    /// Queued before a resume: the node rolled it back, the strand refuses it.
    doomed: bool,
}

/// A state-file write handed to the persister, not yet done.
#[derive(Debug)]
pub enum StateWrite {
    /// `sync_cursors.json`, then the end of call `call`.
    Cursors {
        /// The whole file.
        cursors: BTreeMap<AgentId, u64>,
        /// The node's call.
        call: CallId,
    },
    /// `cluster.json`, then the end of call `call`.
    Cluster {
        /// The whole file.
        state: ClusterState,
        /// The node's call.
        call: CallId,
    },
    /// The node's own latest head (nothing is reported back).
    Head(SignedHead),
    /// The latest head of every other author the node witnessed (nothing is reported back).
    Witnessed(Vec<SignedHead>),
}

/// What a completed append turned into.
#[derive(Debug)]
pub enum Completion {
    /// Durable at these offsets.
    Durable(AppendToken, Vec<u64>),
    /// The strand failed; nothing of it is stored.
    Failed(AppendToken),
    /// The disk was full, or the strand refuses appends since it was; nothing is stored.
    Full(AppendToken),
}

/// One node's disk.
#[derive(Debug, Default)]
pub struct Store {
    /// Durable blocks; the offset of `durable[i]` is `i + 1`.
    durable: Vec<Verified>,
    /// Per author, the offset of seq `i + 1`.
    by_author: BTreeMap<AgentId, Vec<u64>>,
    hashes: HashSet<Hash>,
    in_flight: VecDeque<InFlight>,
    /// Per author, the tip over durable and in-flight blocks: what the next append must extend.
    view: BTreeMap<AgentId, (u64, Hash)>,
    /// When the last append handed over completes.
    pub last_append_done: Micros,
    /// The strand fails every append until the node restarts.
    pub broken: bool,
    /// The disk is full: the next append that lands fails, storing nothing.
    pub full: bool,
    /// The disk has been full at some time (a write may be answered `StorageFull`).
    pub was_full: bool,
    /// An append met the full disk: the strand refuses every append until the node resumes
    /// it (as the real writer does).
    refusing: bool,
    /// The durable `cluster.json`.
    pub cluster: Option<ClusterState>,
    /// The own head last persisted.
    pub head: Option<SignedHead>,
    /// `witnessed_heads.json`.
    pub witnessed: Vec<SignedHead>,
    /// The durable `sync_cursors.json`.
    pub cursors: BTreeMap<AgentId, u64>,
    writes: VecDeque<StateWrite>,
    /// When the last state write handed over completes.
    pub last_write_done: Micros,
}

impl Store {
    /// The last durable offset.
    pub fn tip(&self) -> u64 {
        self.durable.len() as u64
    }

    /// Number of appends in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The author's tip over durable and in-flight blocks.
    pub fn view_tip(&self, author: &AgentId) -> Option<(u64, Hash)> {
        self.view.get(author).copied()
    }

    /// Whether a block with this hash is durable here.
    pub fn holds_hash(&self, hash: &Hash) -> bool {
        self.hashes.contains(hash)
    }

    /// The durable block `author`/`seq`.
    pub fn get(&self, author: &AgentId, seq: u64) -> Option<(u64, &Verified)> {
        let idx = usize::try_from(seq.checked_sub(1)?).ok()?;
        let offset = *self.by_author.get(author)?.get(idx)?;
        Some((offset, &self.durable[offset as usize - 1]))
    }

    /// The durable block at `offset`.
    pub fn at(&self, offset: u64) -> Option<&Verified> {
        self.durable
            .get(usize::try_from(offset.checked_sub(1)?).ok()?)
    }

    /// How many of `author`'s blocks are durable here.
    pub fn held(&self, author: &AgentId) -> u64 {
        self.by_author.get(author).map_or(0, |o| o.len() as u64)
    }

    /// Every author's durable tip.
    pub fn tips(&self) -> BTreeMap<AgentId, (u64, Hash)> {
        self.by_author
            .iter()
            .filter_map(|(a, offs)| {
                let last = *offs.last()?;
                Some((
                    a.clone(),
                    (
                        offs.len() as u64,
                        self.durable[last as usize - 1].block().hash,
                    ),
                ))
            })
            .collect()
    }

    /// Hands an append to the strand.
    pub fn begin_append(&mut self, token: AppendToken, blocks: Vec<Block>) {
        for b in &blocks {
            self.view.insert(b.author().clone(), (b.seq(), b.hash));
        }
        self.in_flight.push_back(InFlight {
            token,
            blocks,
            doomed: false,
        });
    }

    /// The node rolled back every append in flight (the disk was full): the strand refuses
    /// them, and takes the appends handed over from now on.
    pub fn resume(&mut self) {
        for f in &mut self.in_flight {
            f.doomed = true;
        }
        self.refusing = false;
        self.settle_view();
    }

    /// Whether the oldest append in flight will be stored when it completes.
    pub fn next_lands(&self) -> bool {
        let refused = self.broken || self.full || self.refusing;
        !refused && self.in_flight.front().is_some_and(|f| !f.doomed)
    }

    /// Completes the oldest append in flight.
    pub fn complete_append(&mut self) -> Option<Completion> {
        let f = self.in_flight.pop_front()?;
        if self.broken {
            return Some(Completion::Failed(f.token));
        }
        if f.doomed || self.refusing || self.full {
            if !f.doomed {
                self.refusing = true;
            }
            return Some(Completion::Full(f.token));
        }
        let offsets = f.blocks.into_iter().map(|b| self.make_durable(b)).collect();
        Some(Completion::Durable(f.token, offsets))
    }

    fn make_durable(&mut self, block: Block) -> u64 {
        let offset = self.durable.len() as u64 + 1;
        self.by_author
            .entry(block.author().clone())
            .or_default()
            .push(offset);
        self.hashes.insert(block.hash);
        self.durable.push(Verified::trusted(block));
        offset
    }

    /// The blocks of the oldest append in flight (what completing it would store).
    pub fn next_append(&self) -> Option<&[Block]> {
        self.in_flight.front().map(|f| f.blocks.as_slice())
    }

    /// Own blocks `from..=to` of `author`, as a push reads them; an error names the first one
    /// that is not durable.
    pub fn own_range(&self, author: &AgentId, from: u64, to: u64) -> Result<Vec<Verified>, u64> {
        (from..=to)
            .map(|seq| self.get(author, seq).map(|(_, b)| b.clone()).ok_or(seq))
            .collect()
    }

    /// Up to `limit` durable blocks after `after`, with the offset of the last.
    pub fn page(&self, after: u64, limit: usize) -> (Vec<Verified>, u64) {
        let start = (after as usize).min(self.durable.len());
        let end = (start + limit).min(self.durable.len());
        let blocks = self.durable[start..end].to_vec();
        let next = if blocks.is_empty() { after } else { end as u64 };
        (blocks, next)
    }

    /// Hands a state-file write to the persister.
    pub fn begin_write(&mut self, w: StateWrite) {
        self.writes.push_back(w);
    }

    /// Completes the oldest state-file write; returns it and whether it reached the disk (a
    /// broken disk fails state files as it fails the strand: nothing is written).
    pub fn complete_write(&mut self) -> Option<(StateWrite, bool)> {
        let w = self.writes.pop_front()?;
        if self.broken {
            return Some((w, false));
        }
        match &w {
            StateWrite::Cursors { cursors, .. } => self.cursors = cursors.clone(),
            StateWrite::Cluster { state, .. } => self.cluster = Some(state.clone()),
            StateWrite::Head(head) => self.head = Some(head.clone()),
            StateWrite::Witnessed(heads) => self.witnessed = heads.clone(),
        }
        Some((w, true))
    }

    /// The process died: the first `keep_appends` appends and `keep_writes` state writes in
    /// flight reached the disk anyway, the rest is lost. Returns the blocks of the surviving
    /// appends, in order, for the caller to check and [`Store::land`], then
    /// [`Store::settle_view`].
    pub fn crash(&mut self, keep_appends: usize, keep_writes: usize) -> Vec<Block> {
        let inflight = std::mem::take(&mut self.in_flight);
        let kept = if self.broken {
            Vec::new()
        } else {
            // Only what the strand would have stored: none once it refuses.
            let refusing = self.refusing || self.full;
            inflight
                .into_iter()
                .take(if refusing { 0 } else { keep_appends })
                .take_while(|f| !f.doomed)
                .flat_map(|f| f.blocks)
                .collect()
        };
        // A new process: nothing queued to refuse (the disk may still be full).
        self.refusing = false;
        for _ in 0..keep_writes.min(self.writes.len()) {
            self.complete_write();
        }
        self.writes.clear();
        self.broken = false;
        kept
    }

    /// Stores a block that survived a crash.
    pub fn land(&mut self, block: Block) {
        self.make_durable(block);
    }

    /// Recomputes the chain view from what is durable, after a crash.
    pub fn settle_view(&mut self) {
        self.view = self.tips();
    }

    /// Number of state writes in flight.
    pub fn writes_in_flight(&self) -> usize {
        self.writes.len()
    }

    /// What a restarting node recovers.
    pub fn restored(&self) -> Restored {
        let mut chains = Chains::new();
        for v in &self.durable {
            chains.push_unchecked(v.block().author(), v.block().hash);
        }
        Restored {
            chains,
            local_tip: self.tip(),
            cluster: self.cluster.clone(),
            cursors: self.cursors.clone(),
            head: self.head.clone(),
            // Evidence is not modelled: honest nodes never leave any.
            evidence: Vec::new(),
            witnessed: (self.witnessed.iter().cloned())
                .map(sapix_core::ledger::VerifiedHead::trusted)
                .collect(),
        }
    }
}
