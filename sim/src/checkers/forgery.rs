//! Forged blocks (issue 17): blocks signed with the master seed as a member, by someone who is
//! not that member. The honest nodes cannot tell them from the member's own by the signature;
//! what they must do:
//!
//! - a member never stores a forged block of its own chain (it refuses one past what it
//!   vouches for, and one at a held seq is equivocation);
//! - every node that stored a forged block detects it — an equivocation alert naming it, or a
//!   head of its author that does not match the chain held there — once the author's own
//!   block at that seq is durable on any live member (before that, nothing tells them apart);
//! - an equivocation alert always names a forged block (honest authors never equivocate), a
//!   `forged_own_block` alert always names a forged block of the node's own chain, and a head
//!   refused as over another chain only comes where a forged block of its author is stored.

use std::collections::{BTreeMap, BTreeSet};

use sapix_core::block::{Block, Hash};
use sapix_core::AgentId;

/// The forgeries of a run and what the nodes did with them.
#[derive(Debug, Default)]
pub struct Forgeries {
    /// Every forged block: its author and seq.
    planted: BTreeMap<Hash, (AgentId, u64)>,
    /// (node, forged block) stored durably there.
    stored: BTreeSet<(usize, Hash)>,
    /// (node, forged block) that node alerted about.
    detected: BTreeSet<(usize, Hash)>,
}

impl Forgeries {
    /// The forger made `block`.
    pub fn planted(&mut self, block: &Block) {
        self.planted
            .insert(block.hash, (block.author().clone(), block.seq()));
    }

    /// Whether `hash` is a forged block's.
    pub fn is_forged(&self, hash: &Hash) -> bool {
        self.planted.contains_key(hash)
    }

    /// Node `node` (agent `me`) stores forged `block` durably.
    pub fn stored(&mut self, node: usize, me: &AgentId, block: &Block) -> Result<(), String> {
        self.stored.insert((node, block.hash));
        if block.author() == me {
            return Err(format!(
                "n{node} stored a forged block of its own chain: {}/{} {:?}",
                me,
                block.seq(),
                block.hash
            ));
        }
        Ok(())
    }

    /// Node `node` alerted that `held` and `refused` are two blocks at one seq.
    pub fn equivocation(&mut self, node: usize, held: &Hash, refused: &Hash) -> Result<(), String> {
        let forged: Vec<Hash> = [held, refused]
            .into_iter()
            .filter(|h| self.is_forged(h))
            .copied()
            .collect();
        if forged.is_empty() {
            return Err(format!(
                "n{node} saw two honest blocks at one seq: {held:?} and {refused:?}"
            ));
        }
        for h in forged {
            self.detected.insert((node, h));
        }
        Ok(())
    }

    /// Node `node` (agent `me`) alerted that `hash` is a block of its own chain it never signed.
    pub fn forged_own(&mut self, node: usize, me: &AgentId, hash: &Hash) -> Result<(), String> {
        match self.planted.get(hash) {
            Some((author, _)) if author == me => {
                self.detected.insert((node, *hash));
                Ok(())
            }
            _ => Err(format!(
                "n{node} called {hash:?} a forged block of its own chain, and it is not"
            )),
        }
    }

    /// Node `node` (agent `me`) alerted that a peer holds a block of its chain it never signed.
    pub fn peer_holds_forged(&mut self, node: usize, me: &AgentId) -> Result<(), String> {
        if self.planted.values().any(|(a, _)| a == me) {
            return Ok(());
        }
        Err(format!(
            "n{node} said a peer holds a forged block of its chain, and none of {me} was forged"
        ))
    }

    /// Node `node` refused a head of `author` as over another chain than the one it holds.
    pub fn head_refused(&mut self, node: usize, author: &AgentId) -> Result<(), String> {
        let held: Vec<Hash> = (self.stored.iter())
            .filter(|(n, h)| *n == node && self.planted.get(h).is_some_and(|(a, _)| a == author))
            .map(|(_, h)| *h)
            .collect();
        if held.is_empty() {
            return Err(format!(
                "n{node} refused a head of {author} as over another chain, and it holds no \
                 forged block of {author}"
            ));
        }
        for h in held {
            self.detected.insert((node, h));
        }
        Ok(())
    }

    /// The authors a forged block of which is stored somewhere: their chains may differ
    /// between nodes for good.
    pub fn victims(&self) -> BTreeSet<AgentId> {
        (self.stored.iter())
            .filter_map(|(_, h)| self.planted.get(h).map(|(a, _)| a.clone()))
            .collect()
    }

    /// A forged block stored on a node of `live` that never detected it, although the
    /// author's own block at that seq is durable on a live member (`genuine(author, seq)`
    /// says whether it is).
    pub fn undetected(
        &self,
        live: &[usize],
        genuine: impl Fn(&AgentId, u64) -> bool,
    ) -> Result<(), String> {
        for (node, hash) in &self.stored {
            let (author, seq) = &self.planted[hash];
            if live.contains(node)
                && !self.detected.contains(&(*node, *hash))
                && genuine(author, *seq)
            {
                return Err(format!(
                    "n{node} stores forged {author}/{seq} {hash:?} and never detected it, though \
                     {author}'s own block at that seq is durable on a live member"
                ));
            }
        }
        Ok(())
    }
}
