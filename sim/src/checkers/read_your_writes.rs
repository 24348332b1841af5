//! Read-your-writes (issue 16): a client that reads on any node with the position of a write
//! it had acknowledged never misses that write. `PositionReached` means the node durably holds
//! the author's chain through that seq, with the very block that was acknowledged there; a
//! `PositionNotReached` must be true (the node does not hold it) and must say so.

use sapix_core::block::Hash;
use sapix_core::node::ChainPosition;

use crate::storage::Store;

/// Node `i` answered that it holds `position`, the write acknowledged as `hash`. A node that
/// took a forged block at that position before the author's own cannot tell the two apart
/// (a position names no hash); the forgery checker requires it to detect the forgery later.
pub fn reached(
    i: usize,
    position: &ChainPosition,
    hash: &Hash,
    store: &Store,
    forged: impl Fn(&Hash) -> bool,
) -> Result<(), String> {
    match store.get(&position.author, position.seq) {
        Some((_, block)) if block.block().hash == *hash => Ok(()),
        Some((_, block)) if forged(&block.block().hash) => Ok(()),
        Some((_, block)) => Err(format!(
            "n{i} answered a read at {position} holding {:?} there, not the acknowledged {hash:?}",
            block.block().hash
        )),
        None => Err(format!(
            "n{i} answered a read at {position} without holding it durably (holds {} of {})",
            store.held(&position.author),
            position.author
        )),
    }
}

/// Node `i` refused a read at `position`, saying it holds `holds`.
pub fn not_reached(
    i: usize,
    position: &ChainPosition,
    holds: &[ChainPosition],
    store: &Store,
) -> Result<(), String> {
    let said = holds
        .iter()
        .find(|h| h.author == position.author)
        .ok_or_else(|| format!("n{i} refused a read at {position} without saying what it holds"))?;
    if said.seq >= position.seq {
        return Err(format!(
            "n{i} refused a read at {position} while saying it holds {said}"
        ));
    }
    if store.held(&position.author) >= position.seq {
        return Err(format!(
            "n{i} refused a read at {position} it holds durably ({} blocks of {})",
            store.held(&position.author),
            position.author
        ));
    }
    Ok(())
}
