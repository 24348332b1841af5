//! §6.5: ingest is idempotent; no block is stored twice on one node.
//!
//! Checked for every block as it lands in a strand (an append completing, or surviving a
//! crash): neither its hash nor its (author, seq) may already be durable there.

use sapix_core::block::Block;

use crate::storage::Store;

/// Checks that `block` is not already durable in `store`.
pub fn check_landing(store: &Store, block: &Block) -> Result<(), String> {
    if store.holds_hash(&block.hash) {
        return Err(format!("{block:?} is already durable: stored twice"));
    }
    if let Some((offset, held)) = store.get(block.author(), block.seq()) {
        return Err(format!(
            "{block:?} lands where {:?} is already durable at offset {offset}",
            held.block()
        ));
    }
    Ok(())
}
