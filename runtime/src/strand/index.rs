//! The in-memory indexes over the strand: offset → frame location, hash → offset,
//! (author, seq) → offset.
//!
//! Invariant: the index describes exactly the durable frames `1..=tip`, in offset order, and is
//! only ever extended by [`Index::push`] in that order — by recovery's scan, by the checkpoint
//! loader and by the writer after an fsync — so the same frames always give the same index.
//! When a hash or an (author, seq) appears twice, the lowest offset wins.

use std::collections::HashMap;

use sapix_core::{AgentId, Hash};

/// What the index keeps per offset. Authors are interned: a strand has few authors and many
/// blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Position of the frame header in its segment.
    pub(crate) pos: u64,
    /// Frame body length.
    pub(crate) len: u32,
    /// Index into the author table.
    pub(crate) author: u32,
    /// The block's seq.
    pub(crate) seq: u64,
    /// The block's hash.
    pub(crate) hash: Hash,
}

/// Offset, author, seq and hash of one stored block, as given to the core at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// Local commit offset, from 1.
    pub offset: u64,
    /// The block's author.
    pub author: AgentId,
    /// The block's position in its author's chain.
    pub seq: u64,
    /// The block's hash.
    pub hash: Hash,
}

/// The strand's derived lookup tables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    entries: Vec<Entry>,
    authors: Vec<AgentId>,
    author_ids: HashMap<AgentId, u32>,
    by_hash: HashMap<Hash, u64>,
    by_author_seq: HashMap<(u32, u64), u64>,
    /// Per interned author: its highest seq held and that block's offset.
    tips: Vec<(u64, u64)>,
}

impl Index {
    /// The last indexed offset; 0 when empty.
    pub(crate) fn tip(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Indexes the frame for offset `tip() + 1`; returns that offset.
    pub(crate) fn push(
        &mut self,
        pos: u64,
        len: u32,
        author: &AgentId,
        seq: u64,
        hash: Hash,
    ) -> u64 {
        let author = self.intern(author);
        self.push_entry(Entry {
            pos,
            len,
            author,
            seq,
            hash,
        })
    }

    /// Like [`Index::push`], with the author already interned (checkpoint loading).
    pub(crate) fn push_entry(&mut self, e: Entry) -> u64 {
        self.entries.push(e);
        let offset = self.tip();
        self.by_hash.entry(e.hash).or_insert(offset);
        self.by_author_seq
            .entry((e.author, e.seq))
            .or_insert(offset);
        let a = e.author as usize;
        if self.tips.len() <= a {
            self.tips.resize(a + 1, (0, 0));
        }
        if e.seq > self.tips[a].0 {
            self.tips[a] = (e.seq, offset);
        }
        offset
    }

    /// Every author held, with its highest seq and that block's offset, in interning order.
    pub(crate) fn tips(&self) -> Vec<(AgentId, u64, u64)> {
        (self.tips.iter().zip(&self.authors))
            .filter(|((seq, _), _)| *seq > 0)
            .map(|((seq, offset), a)| (a.clone(), *seq, *offset))
            .collect()
    }

    /// The interned id of `author`, adding it if new.
    pub(crate) fn intern(&mut self, author: &AgentId) -> u32 {
        if let Some(&id) = self.author_ids.get(author) {
            return id;
        }
        let id = self.authors.len() as u32;
        self.authors.push(author.clone());
        self.author_ids.insert(author.clone(), id);
        id
    }

    /// The entry for `offset`.
    pub(crate) fn get(&self, offset: u64) -> Option<&Entry> {
        let i = usize::try_from(offset.checked_sub(1)?).ok()?;
        self.entries.get(i)
    }

    /// The offset of the block with `hash`.
    pub(crate) fn offset_of_hash(&self, hash: &Hash) -> Option<u64> {
        self.by_hash.get(hash).copied()
    }

    /// The offset of `author`'s block `seq`.
    pub(crate) fn offset_of_author_seq(&self, author: &AgentId, seq: u64) -> Option<u64> {
        let id = *self.author_ids.get(author)?;
        self.by_author_seq.get(&(id, seq)).copied()
    }

    /// Every entry with its author, in offset order.
    pub(crate) fn metas(&self) -> Vec<EntryMeta> {
        self.entries
            .iter()
            .zip(1..)
            .map(|(e, offset)| EntryMeta {
                offset,
                author: self.authors[e.author as usize].clone(),
                seq: e.seq,
                hash: e.hash,
            })
            .collect()
    }

    /// The author table, in interning order.
    pub(crate) fn authors(&self) -> &[AgentId] {
        &self.authors
    }

    /// The raw entries, offset `i + 1` at `i`.
    pub(crate) fn raw_entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    #[test]
    fn lookups_agree_and_first_occurrence_wins() {
        let mut idx = Index::default();
        let (a, b) = (id("a"), id("b"));
        assert_eq!(idx.push(0, 10, &a, 1, Hash([1; 32])), 1);
        assert_eq!(idx.push(18, 10, &b, 1, Hash([2; 32])), 2);
        assert_eq!(idx.push(36, 10, &a, 1, Hash([1; 32])), 3);
        assert_eq!(idx.tip(), 3);
        assert_eq!(idx.offset_of_hash(&Hash([1; 32])), Some(1));
        assert_eq!(idx.offset_of_author_seq(&b, 1), Some(2));
        assert_eq!(idx.offset_of_author_seq(&id("c"), 1), None);
        assert_eq!(idx.get(0), None);
        assert_eq!(idx.get(3).map(|e| e.pos), Some(36));
        assert_eq!(idx.get(4), None);
        let metas = idx.metas();
        assert_eq!(metas.len(), 3);
        assert_eq!((metas[1].offset, &metas[1].author), (2, &b));
        assert_eq!(idx.authors(), &[a, b]);
    }

    #[test]
    fn each_authors_tip_is_its_highest_seq_whatever_the_commit_order() {
        let mut idx = Index::default();
        let (a, b) = (id("a"), id("b"));
        idx.push(0, 10, &a, 1, Hash([1; 32]));
        idx.push(10, 10, &b, 1, Hash([2; 32]));
        idx.push(20, 10, &a, 2, Hash([3; 32]));
        // A duplicate of an earlier block (a re-sent push) never moves a tip back.
        idx.push(30, 10, &a, 1, Hash([1; 32]));
        assert_eq!(idx.tips(), vec![(a, 2, 3), (b, 1, 2)]);
    }
}
