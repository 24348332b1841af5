//! §6.3: CP — an acknowledged write is on every peer at the moment of the answer.
//!
//! "On" means durable in the peer's strand: the ack must not rest on a block a crash can
//! still take away. The peers are those the writer had when the write was requested (a node
//! divided in later is not owed it), and only writes whose node stayed in CP from request to
//! answer are held to this.

use sapix_core::node::Receipt;

use crate::storage::Store;

/// Checks that every store in `peers` holds `receipt`'s block durably.
pub fn check(receipt: &Receipt, peers: &[usize], stores: &[Store]) -> Result<(), String> {
    for &p in peers {
        let held = stores[p].get(&receipt.author, receipt.seq);
        if held.is_none_or(|(_, b)| b.block().hash != receipt.hash) {
            return Err(format!(
                "CP write {}/{} {:?} acknowledged while peer n{p} does not hold it durably (it holds {} of that chain)",
                receipt.author,
                receipt.seq,
                receipt.hash,
                stores[p].tips().get(&receipt.author).map_or(0, |t| t.0)
            ));
        }
    }
    Ok(())
}
