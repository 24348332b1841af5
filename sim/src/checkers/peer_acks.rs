//! §4 / §6.1 / §6.7: the retry queue never forgets a block a peer lacks.
//!
//! The queue of a peer is the range (acked, own tip] of the node's own chain, so the whole
//! property is one inequality: a node never believes a peer durably holds more of its chain
//! than the peer's strand does. Believing more would drop blocks from the queue (the spec's
//! "no blocks are silently dropped") and could settle a CP write early. Checked after every
//! step of the node.

use sapix_core::{AgentId, Node};

use crate::storage::Store;

/// Node `node` (author `me`) against every peer's strand; `index` maps an agent to its node.
pub fn check(
    node: usize,
    me: &AgentId,
    n: &Node,
    stores: &[Store],
    index: impl Fn(&AgentId) -> Option<usize>,
) -> Result<(), String> {
    for (id, peer) in n.peers() {
        let (Some(acked), Some(p)) = (peer.acked(), index(id)) else {
            continue;
        };
        let held = stores[p].held(me);
        if acked > held {
            return Err(format!(
                "n{node} believes {id} holds its chain through seq {acked}, but {id}'s strand \
                 holds {held}: seqs {}..={acked} left the retry queue undelivered",
                held + 1
            ));
        }
    }
    Ok(())
}
