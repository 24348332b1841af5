//! The in-memory indexes over the strand: offset → frame location, hash → offset,
//! (author, seq) → offset, each author's tip, and collection → each author's records in it
//! (seq and offset, in seq order) for collection pages.
//!
//! Invariant: the index describes exactly the durable frames `1..=tip`, in offset order, and is
//! only ever extended by [`Index::push`] in that order — by recovery's scan, by the checkpoint
//! loader and by the writer after an fsync — so the same frames always give the same index.
//! When a hash or an (author, seq) appears twice, the lowest offset wins.

use std::collections::{BTreeMap, HashMap};

use sapix_core::{AgentId, Collection, Hash};

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
    /// Index into the collection table.
    pub(crate) collection: u32,
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
    collections: Vec<Collection>,
    collection_ids: HashMap<Collection, u32>,
    /// Per interned collection, per author: its records there as (seq, offset), seq order.
    by_collection: HashMap<u32, BTreeMap<AgentId, Vec<(u64, u64)>>>,
}

/// One page of a collection: the offsets, in commit order, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionPage {
    /// The records' offsets, lowest first.
    pub offsets: Vec<u64>,
    /// Per author, the last seq returned so far (the cursor given, moved past this page).
    pub next: BTreeMap<AgentId, u64>,
    /// Whether more records of the collection are held after this page.
    pub more: bool,
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
        (author, seq, hash): (&AgentId, u64, Hash),
        collection: &Collection,
    ) -> u64 {
        let author = self.intern(author);
        let collection = self.intern_collection(collection);
        self.push_entry(Entry {
            pos,
            len,
            author,
            seq,
            hash,
            collection,
        })
    }

    /// The interned id of `collection`, adding it if new.
    pub(crate) fn intern_collection(&mut self, collection: &Collection) -> u32 {
        if let Some(&id) = self.collection_ids.get(collection) {
            return id;
        }
        let id = self.collections.len() as u32;
        self.collections.push(collection.clone());
        self.collection_ids.insert(collection.clone(), id);
        id
    }

    /// The collection table, in interning order.
    pub(crate) fn collections(&self) -> &[Collection] {
        &self.collections
    }

    /// Like [`Index::push`], with the author already interned (checkpoint loading).
    pub(crate) fn push_entry(&mut self, e: Entry) -> u64 {
        self.entries.push(e);
        let offset = self.tip();
        self.by_hash.entry(e.hash).or_insert(offset);
        let first = !self.by_author_seq.contains_key(&(e.author, e.seq));
        self.by_author_seq
            .entry((e.author, e.seq))
            .or_insert(offset);
        if first {
            let author = self.authors[e.author as usize].clone();
            let records = self.by_collection.entry(e.collection).or_default();
            let chain = records.entry(author).or_default();
            // A chain is committed in seq order; a block out of it (never written by this
            // agent) is still indexed where it belongs.
            let at = chain.partition_point(|(s, _)| *s < e.seq);
            chain.insert(at, (e.seq, offset));
        }
        let a = e.author as usize;
        if self.tips.len() <= a {
            self.tips.resize(a + 1, (0, 0));
        }
        if e.seq > self.tips[a].0 {
            self.tips[a] = (e.seq, offset);
        }
        offset
    }

    /// A page of `collection`: its records no author's position in `after` covers (each
    /// author's records there with a higher seq), in commit order, at most `limit`. A cursor
    /// names per-author positions, not offsets, so it means the same on every node: a node
    /// holding at least what the cursor's node held neither skips nor repeats a record.
    pub(crate) fn collection_page(
        &self,
        collection: &Collection,
        after: &BTreeMap<AgentId, u64>,
        limit: usize,
    ) -> CollectionPage {
        let mut next = after.clone();
        let chains = self
            .collection_ids
            .get(collection)
            .and_then(|id| self.by_collection.get(id));
        let Some(chains) = chains else {
            return CollectionPage {
                offsets: Vec::new(),
                next,
                more: false,
            };
        };
        // Each author's unread records, seq order (= commit order on this node): merge them.
        let mut heads: Vec<(&AgentId, &[(u64, u64)])> = chains
            .iter()
            .map(|(a, recs)| {
                let seen = after.get(a).copied().unwrap_or(0);
                (a, &recs[recs.partition_point(|(s, _)| *s <= seen)..])
            })
            .filter(|(_, rest)| !rest.is_empty())
            .collect();
        let mut offsets = Vec::new();
        while offsets.len() < limit {
            let Some(i) = (0..heads.len()).min_by_key(|&i| heads[i].1[0].1) else {
                break;
            };
            let (author, rest) = heads[i];
            let (seq, offset) = rest[0];
            offsets.push(offset);
            next.insert(author.clone(), seq);
            if rest.len() == 1 {
                heads.swap_remove(i);
            } else {
                heads[i].1 = &rest[1..];
            }
        }
        CollectionPage {
            offsets,
            next,
            more: !heads.is_empty(),
        }
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

    fn c(s: &str) -> Collection {
        Collection::new(s).unwrap()
    }

    #[test]
    fn lookups_agree_and_first_occurrence_wins() {
        let mut idx = Index::default();
        let (a, b) = (id("a"), id("b"));
        assert_eq!(idx.push(0, 10, (&a, 1, Hash([1; 32])), &c("orders")), 1);
        assert_eq!(idx.push(18, 10, (&b, 1, Hash([2; 32])), &c("orders")), 2);
        assert_eq!(idx.push(36, 10, (&a, 1, Hash([1; 32])), &c("orders")), 3);
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
        idx.push(0, 10, (&a, 1, Hash([1; 32])), &c("orders"));
        idx.push(10, 10, (&b, 1, Hash([2; 32])), &c("orders"));
        idx.push(20, 10, (&a, 2, Hash([3; 32])), &c("orders"));
        // A duplicate of an earlier block (a re-sent push) never moves a tip back.
        idx.push(30, 10, (&a, 1, Hash([1; 32])), &c("orders"));
        assert_eq!(idx.tips(), vec![(a, 2, 3), (b, 1, 2)]);
    }

    /// Offsets 1..=8: a and b write orders and audit records, interleaved.
    fn mixed() -> Index {
        let mut idx = Index::default();
        let (a, b) = (id("a"), id("b"));
        let rows = [
            (&a, 1, "orders"),
            (&b, 1, "orders"),
            (&a, 2, "audit"),
            (&a, 3, "orders"),
            (&b, 2, "orders"),
            (&b, 3, "audit"),
            (&a, 4, "orders"),
            (&b, 4, "orders"),
        ];
        for (n, (who, seq, coll)) in rows.into_iter().enumerate() {
            idx.push(n as u64 * 10, 10, (who, seq, Hash([n as u8; 32])), &c(coll));
        }
        idx
    }

    #[test]
    fn collection_pages_follow_commit_order_and_resume_from_per_author_positions() {
        let idx = mixed();
        let orders = c("orders");
        let mut after = BTreeMap::new();
        let mut all = Vec::new();
        loop {
            let page = idx.collection_page(&orders, &after, 2);
            all.extend(page.offsets.iter().copied());
            after = page.next;
            if !page.more {
                break;
            }
        }
        assert_eq!(
            all,
            [1, 2, 4, 5, 7, 8],
            "every orders record once, in commit order"
        );
        assert_eq!(after, BTreeMap::from([(id("a"), 4), (id("b"), 4)]));
        assert_eq!(
            idx.collection_page(&c("audit"), &BTreeMap::new(), 10)
                .offsets,
            [3, 6]
        );
        let none = idx.collection_page(&c("nothing"), &BTreeMap::new(), 10);
        assert!(none.offsets.is_empty() && !none.more);
    }

    #[test]
    fn a_cursor_from_another_commit_order_neither_skips_nor_repeats() {
        // The same records committed in another order (b's before a's), as on another node.
        let mut other = Index::default();
        let (a, b) = (id("a"), id("b"));
        let rows = [
            (&b, 1, "orders"),
            (&b, 2, "orders"),
            (&b, 3, "audit"),
            (&a, 1, "orders"),
            (&a, 2, "audit"),
            (&b, 4, "orders"),
            (&a, 3, "orders"),
            (&a, 4, "orders"),
        ];
        for (n, (who, seq, coll)) in rows.into_iter().enumerate() {
            other.push(n as u64 * 10, 10, (who, seq, Hash([n as u8; 32])), &c(coll));
        }
        let orders = c("orders");
        let first = mixed().collection_page(&orders, &BTreeMap::new(), 3);
        assert_eq!(first.offsets, [1, 2, 4], "a:1, b:1, a:3");
        assert_eq!(first.next, BTreeMap::from([(id("a"), 3), (id("b"), 1)]));
        let rest = other.collection_page(&orders, &first.next, 10);
        let metas = other.metas();
        let rest: Vec<(AgentId, u64)> = rest
            .offsets
            .iter()
            .map(|o| {
                (
                    metas[*o as usize - 1].author.clone(),
                    metas[*o as usize - 1].seq,
                )
            })
            .collect();
        assert_eq!(rest, [(id("b"), 2), (id("b"), 4), (id("a"), 4)]);
        // With the first page's three, the six orders records, each once.
    }
}
