//! Every stored chain is intact (§2, §6.4): an append must extend each author's chain by its
//! next link — seq contiguous, `prev` the hash of the block before — over everything already
//! durable or in flight on that node, and each block's hash must be the hash of its body.
//!
//! Checked when the node hands the append over, before anything lands.

use std::collections::BTreeMap;

use sapix_core::block::{Block, Hash};
use sapix_core::AgentId;

use crate::storage::Store;

/// Checks an `Append` of `blocks` against `store`.
pub fn check_append(store: &Store, blocks: &[Block]) -> Result<(), String> {
    let mut batch: BTreeMap<&AgentId, (u64, Hash)> = BTreeMap::new();
    for b in blocks {
        let author = b.author();
        let (seq, prev) = batch
            .get(author)
            .copied()
            .or_else(|| store.view_tip(author))
            .unwrap_or((0, Hash::ZERO));
        if b.seq() != seq + 1 || b.body.prev != prev {
            return Err(format!(
                "append of {b:?} (prev {:?}) does not extend {author}'s chain at seq {seq} {prev:?}",
                b.body.prev
            ));
        }
        if b.body.hash() != b.hash {
            return Err(format!("append of {b:?} whose hash is not its body's"));
        }
        batch.insert(author, (b.seq(), b.hash));
    }
    Ok(())
}
