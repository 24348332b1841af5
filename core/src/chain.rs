//! Per-author hash chains: where each incoming block stands relative to what this node holds.
//!
//! The database on a node is the union of every author's chain. This module keeps, per author,
//! the hashes of seq 1..=n in order (32 bytes a block, no payloads), so that a block can be
//! classified without touching storage: the next link, a duplicate, a gap, a broken link, or
//! equivocation (another block at a taken position). Invariant: a chain only ever grows by its
//! next link, so every stored block's `prev` is the stored hash before it. Beside each chain
//! it keeps that chain's Merkle tree ([`Tree`]), grown and shrunk with it, for signed heads and
//! proofs.

use std::collections::BTreeMap;

use crate::block::{Block, Hash};
use crate::id::AgentId;
use crate::ledger::Tree;

/// Where a block stands against the chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The author's next block: store it.
    Next,
    /// This exact block is already held: accept silently, store nothing.
    Duplicate,
    /// The position is taken by a different block: equivocation by the author.
    Equivocation {
        /// The hash held at that position.
        held: Hash,
    },
    /// The block is ahead of the chain: its predecessors are missing.
    Gap {
        /// The seq this node expects next from the author.
        expected: u64,
    },
    /// The right seq, but `prev` is not the hash of the author's previous block.
    BrokenLink {
        /// The hash this node holds for seq - 1.
        expected_prev: Hash,
    },
    /// A block of the receiving node's own chain past what it vouches for: it never signed
    /// it (anyone with the master seed can sign as any author). Only the node says this,
    /// never [`Chains::classify`], which knows nobody's identity.
    NotSignedHere {
        /// The last own seq the node vouches for (its last signed head's).
        vouched: u64,
    },
}

/// Every author's chain of hashes.
#[derive(Debug, Default, Clone)]
pub struct Chains {
    by_author: BTreeMap<AgentId, Vec<Hash>>,
    /// Each chain's Merkle tree: always exactly as long as the chain.
    trees: BTreeMap<AgentId, Tree>,
}

impl Chains {
    /// Empty chains.
    pub fn new() -> Self {
        Self::default()
    }

    /// The author's last (seq, hash), if any.
    pub fn tip(&self, author: &AgentId) -> Option<(u64, Hash)> {
        let chain = self.by_author.get(author)?;
        chain.last().map(|h| (chain.len() as u64, *h))
    }

    /// The hash held at `(author, seq)`.
    pub fn get(&self, author: &AgentId, seq: u64) -> Option<Hash> {
        let idx = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.by_author.get(author)?.get(idx).copied()
    }

    /// Where `block` stands. Pure: changes nothing.
    pub fn classify(&self, block: &Block) -> Position {
        Overlay::new(self).classify(block)
    }

    fn len(&self, author: &AgentId) -> u64 {
        self.by_author.get(author).map_or(0, |c| c.len() as u64)
    }

    /// Records `block` as its author's next link.
    ///
    /// # Panics
    /// If the block is not [`Position::Next`]: callers classify first, and storing anything
    /// else would break the chain invariant.
    pub fn push(&mut self, block: &Block) {
        assert_eq!(
            self.classify(block),
            Position::Next,
            "push of a non-next block"
        );
        self.push_unchecked(block.author(), block.hash);
    }

    /// Records a link known to be valid, as when rebuilding from the durable strand.
    pub fn push_unchecked(&mut self, author: &AgentId, hash: Hash) {
        self.by_author.entry(author.clone()).or_default().push(hash);
        self.trees.entry(author.clone()).or_default().push(&hash);
    }

    /// The author's Merkle tree, as long as its chain.
    pub fn tree(&self, author: &AgentId) -> Option<&Tree> {
        self.trees.get(author)
    }

    /// Removes the author's last link, which must be `hash`: an append rolled back (the disk
    /// was full) takes its blocks out again, newest first.
    ///
    /// # Panics
    /// If `hash` is not the author's last link: rollbacks undo pushes in reverse order.
    pub fn pop(&mut self, author: &AgentId, hash: Hash) {
        let chain = self.by_author.get_mut(author);
        let last = chain.and_then(|c| c.pop());
        assert_eq!(
            last,
            Some(hash),
            "rollback of a link that is not {author}'s last"
        );
        if let Some(tree) = self.trees.get_mut(author) {
            tree.pop();
        }
        if self.by_author.get(author).is_some_and(|c| c.is_empty()) {
            self.by_author.remove(author);
            self.trees.remove(author);
        }
    }

    /// A scratch view for checking a batch as if its earlier blocks were already stored.
    pub fn overlay(&self) -> Overlay<'_> {
        Overlay::new(self)
    }

    /// Every author and the length of their chain, in author order.
    pub fn lengths(&self) -> impl Iterator<Item = (&AgentId, u64)> {
        self.by_author.iter().map(|(a, c)| (a, c.len() as u64))
    }

    /// Number of blocks held across all authors.
    pub fn total(&self) -> u64 {
        self.by_author.values().map(|c| c.len() as u64).sum()
    }
}

/// The chains plus a batch's tentative links, without copying the chains.
#[derive(Debug)]
pub struct Overlay<'a> {
    base: &'a Chains,
    added: BTreeMap<AgentId, Vec<Hash>>,
}

impl<'a> Overlay<'a> {
    fn new(base: &'a Chains) -> Self {
        Overlay {
            base,
            added: BTreeMap::new(),
        }
    }

    fn len(&self, author: &AgentId) -> u64 {
        self.base.len(author) + self.added.get(author).map_or(0, |a| a.len() as u64)
    }

    fn get(&self, author: &AgentId, seq: u64) -> Option<Hash> {
        let base_len = self.base.len(author);
        if seq <= base_len {
            return self.base.get(author, seq);
        }
        let idx = usize::try_from(seq - base_len - 1).ok()?;
        self.added.get(author)?.get(idx).copied()
    }

    /// Where `block` stands against the chains plus what was pushed here.
    pub fn classify(&self, block: &Block) -> Position {
        let (author, seq) = (block.author(), block.seq());
        let len = self.len(author);
        if seq <= len {
            let held = self.get(author, seq).unwrap_or_default();
            return if held == block.hash {
                Position::Duplicate
            } else {
                Position::Equivocation { held }
            };
        }
        if seq > len + 1 {
            return Position::Gap { expected: len + 1 };
        }
        let expected_prev = self.get(author, len).unwrap_or(Hash::ZERO);
        if block.body.prev != expected_prev {
            return Position::BrokenLink { expected_prev };
        }
        Position::Next
    }

    /// Tentatively records `block`, which must be [`Position::Next`] here.
    pub fn push(&mut self, block: &Block) {
        debug_assert_eq!(self.classify(block), Position::Next);
        self.added
            .entry(block.author().clone())
            .or_default()
            .push(block.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockBody;
    use crate::id::Collection;
    use crate::keys::{KeySchedule, MasterSeed};
    use crate::time::UnixMillis;

    fn block(author: &str, seq: u64, prev: Hash, payload: &str) -> Block {
        let ks = KeySchedule::new(MasterSeed::from_bytes([3; 32]));
        let a = AgentId::new(author).unwrap();
        BlockBody {
            author: a.clone(),
            seq,
            prev,
            ts: UnixMillis(0),
            collection: Collection::new("c").unwrap(),
            payload: payload.as_bytes().to_vec(),
        }
        .seal(&ks.signing_key(&a))
    }

    #[test]
    fn classifies_every_position() {
        let mut c = Chains::new();
        let b1 = block("a", 1, Hash::ZERO, "1");
        assert_eq!(c.classify(&b1), Position::Next);
        c.push(&b1);
        assert_eq!(c.classify(&b1), Position::Duplicate);

        let other1 = block("a", 1, Hash::ZERO, "2");
        assert_eq!(
            c.classify(&other1),
            Position::Equivocation { held: b1.hash }
        );

        let b3 = block("a", 3, Hash::ZERO, "3");
        assert_eq!(c.classify(&b3), Position::Gap { expected: 2 });

        let bad2 = block("a", 2, Hash::ZERO, "2");
        assert_eq!(
            c.classify(&bad2),
            Position::BrokenLink {
                expected_prev: b1.hash
            }
        );
        let b2 = block("a", 2, b1.hash, "2");
        assert_eq!(c.classify(&b2), Position::Next);
        c.push(&b2);
        assert_eq!(c.tip(&b2.body.author), Some((2, b2.hash)));
        assert_eq!(c.total(), 2);
        let tree = c.tree(&b2.body.author).unwrap();
        assert_eq!(tree, &Tree::from_blocks([&b1.hash, &b2.hash]));
        c.pop(&b2.body.author, b2.hash);
        assert_eq!(
            c.tree(&b2.body.author),
            Some(&Tree::from_blocks([&b1.hash]))
        );
        c.push(&b2);

        // A batch can chain onto itself before anything is stored.
        let mut o = c.overlay();
        let b3 = block("a", 3, b2.hash, "3");
        let b4 = block("a", 4, b3.hash, "4");
        assert_eq!(o.classify(&b4), Position::Gap { expected: 3 });
        o.push(&b3);
        assert_eq!(o.classify(&b3), Position::Duplicate);
        assert_eq!(o.classify(&b4), Position::Next);
        assert_eq!(c.tip(&b2.body.author), Some((2, b2.hash)));

        // Another author's chain is independent.
        let x1 = block("b", 1, Hash::ZERO, "1");
        assert_eq!(c.classify(&x1), Position::Next);
    }

    #[test]
    fn first_block_must_link_to_zero() {
        let c = Chains::new();
        let b = block("a", 1, Hash([1; 32]), "1");
        assert_eq!(
            c.classify(&b),
            Position::BrokenLink {
                expected_prev: Hash::ZERO
            }
        );
    }
}
