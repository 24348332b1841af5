//! Shared helpers for the strand tests: real signed chains, directory layouts and a full
//! snapshot of everything a strand answers, so "identical results" is one `assert_eq!`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use sapix_core::{
    AgentId, Block, BlockBody, Collection, Hash, KeySchedule, MasterSeed, UnixMillis,
};
use sapix_runtime::strand::{EntryMeta, Strand, StrandOptions};

/// One author's hash chain, producing correctly linked, signed blocks.
pub struct Chain {
    author: AgentId,
    key: sapix_core::keys::AgentKey,
    seq: u64,
    prev: Hash,
}

impl Chain {
    /// A chain for `author`, starting at seq 1.
    pub fn new(author: &str) -> Chain {
        let keys = KeySchedule::new(MasterSeed::from_bytes([42; 32]));
        let author = AgentId::new(author).unwrap();
        Chain {
            key: keys.signing_key(&author),
            author,
            seq: 0,
            prev: Hash::ZERO,
        }
    }

    /// The next block, carrying `payload` (JSON).
    pub fn next(&mut self, payload: &str) -> Block {
        self.seq += 1;
        let block = BlockBody {
            author: self.author.clone(),
            seq: self.seq,
            prev: self.prev,
            ts: UnixMillis(1_715_000_000_000 + self.seq),
            collection: Collection::new("orders").unwrap(),
            payload: payload.as_bytes().to_vec(),
        }
        .seal(&self.key);
        self.prev = block.hash;
        block
    }

    /// The next block with a small numbered JSON payload.
    pub fn next_small(&mut self) -> Block {
        let payload = format!(r#"{{"author":"{}","n":{}}}"#, self.author, self.seq + 1);
        self.next(&payload)
    }
}

/// Options with every directory under `root`.
pub fn opts(root: &Path) -> StrandOptions {
    StrandOptions::new(root.join("strand"), root.join("graph"), root.join("blobs"))
}

/// Opens, panicking on error, and returns just the strand.
pub fn open(opts: &StrandOptions) -> Strand {
    Strand::open(opts.clone()).unwrap().0
}

/// The segment files of a strand dir, in offset order.
pub fn segments(strand_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(strand_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Everything a strand answers about its contents.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub tip: u64,
    pub entries: Vec<EntryMeta>,
    pub blocks: Vec<Block>,
    pub export: Vec<(u64, Block)>,
    pub by_hash: Vec<Option<u64>>,
    pub by_author_seq: Vec<Option<u64>>,
}

/// Reads everything, checking the lookups agree with each other on the way.
pub fn snapshot(s: &Strand) -> Snapshot {
    let tip = s.tip();
    let entries = s.entries();
    let blocks: Vec<Block> = (1..=tip).map(|o| s.get(o).unwrap().unwrap()).collect();
    assert_eq!(s.get(tip + 1).unwrap(), None);
    assert_eq!(s.get(0).unwrap(), None);
    let by_hash = entries.iter().map(|e| s.offset_of_hash(&e.hash)).collect();
    let by_author_seq = entries
        .iter()
        .map(|e| {
            s.get_by_author_seq(&e.author, e.seq)
                .unwrap()
                .map(|(o, _)| o)
        })
        .collect();
    for e in &entries {
        let (o, b) = s.get_by_hash(&e.hash).unwrap().unwrap();
        assert_eq!(b.hash, e.hash);
        assert_eq!(&blocks[o as usize - 1], &b);
    }
    Snapshot {
        tip,
        entries,
        blocks,
        export: s.export(0, usize::MAX, usize::MAX).unwrap(),
        by_hash,
        by_author_seq,
    }
}
