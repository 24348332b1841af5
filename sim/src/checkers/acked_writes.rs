//! §6.1: no acknowledged write is ever lost.
//!
//! A `Written` receipt (and an `Indeterminate` one: "committed locally") says the block is
//! durable in the author's strand at the receipt's offset. That must be true when the answer
//! leaves the node, and stay true forever: it is checked again after every restart, against
//! what the restarted node recovered from.

use sapix_core::block::Hash;
use sapix_core::node::Receipt;

use crate::storage::Store;

/// Every receipt handed out, per author.
#[derive(Debug)]
pub struct AckedWrites {
    receipts: Vec<Vec<(u64, Hash, u64)>>,
}

impl AckedWrites {
    /// No receipts yet, for `n` nodes.
    pub fn new(n: usize) -> Self {
        AckedWrites {
            receipts: vec![Vec::new(); n],
        }
    }

    /// Number of receipts handed out.
    pub fn count(&self) -> usize {
        self.receipts.iter().map(Vec::len).sum()
    }

    /// Node `author` answered a write with `receipt`; `store` is its disk.
    pub fn acknowledged(
        &mut self,
        author: usize,
        receipt: &Receipt,
        store: &Store,
    ) -> Result<(), String> {
        let held = store.get(&receipt.author, receipt.seq);
        match held {
            Some((offset, b)) if b.block().hash == receipt.hash && offset == receipt.offset => {
                self.receipts[author].push((receipt.seq, receipt.hash, receipt.offset));
                Ok(())
            }
            Some((offset, b)) => Err(format!(
                "receipt {}/{} {:?} at offset {} but the strand holds {:?} at offset {offset}",
                receipt.author,
                receipt.seq,
                receipt.hash,
                receipt.offset,
                b.block().hash
            )),
            None => Err(format!(
                "receipt {}/{} {:?} answered but the block is not durable (strand tip {}, {} appends in flight)",
                receipt.author,
                receipt.seq,
                receipt.hash,
                store.tip(),
                store.in_flight()
            )),
        }
    }

    /// Node `author` restarted from `store`: every receipt it ever gave must be there.
    pub fn after_restart(&self, author: usize, store: &Store) -> Result<(), String> {
        for &(seq, hash, offset) in &self.receipts[author] {
            let ok = store.at(offset).is_some_and(|b| b.block().hash == hash);
            if !ok {
                return Err(format!(
                    "after restart, acknowledged own block seq {seq} {hash:?} is gone from offset {offset}"
                ));
            }
        }
        Ok(())
    }
}
