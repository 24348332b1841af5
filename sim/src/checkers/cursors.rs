//! §4 / §6.7: a pull cursor never passes a block that is not durable here.
//!
//! Whenever `sync_cursors.json` lands, every cursor in it names an offset of that peer's
//! export; every block the peer had at or below that offset must already be durable in this
//! node's strand, or a crash now would skip it forever. (Offsets of a durable export never
//! change, so a prefix once checked stays good; only the new part is checked.)

use std::collections::BTreeMap;

use sapix_core::AgentId;

use crate::storage::Store;

/// How far each node's cursor for each peer has been checked.
#[derive(Debug)]
pub struct CursorsBehindDurable {
    checked: Vec<Vec<u64>>,
}

impl CursorsBehindDurable {
    /// Nothing checked yet, for `n` nodes.
    pub fn new(n: usize) -> Self {
        CursorsBehindDurable {
            checked: vec![vec![0; n]; n],
        }
    }

    /// Node `node`'s cursor file now reads `cursors`; `index` maps an agent id to its node.
    pub fn persisted(
        &mut self,
        node: usize,
        cursors: &BTreeMap<AgentId, u64>,
        stores: &[Store],
        index: impl Fn(&AgentId) -> Option<usize>,
    ) -> Result<(), String> {
        for (peer, &cursor) in cursors {
            let Some(p) = index(peer) else {
                return Err(format!(
                    "n{node} persisted a cursor for unknown peer {peer}"
                ));
            };
            let from = self.checked[node][p];
            if cursor <= from {
                continue;
            }
            if cursor > stores[p].tip() {
                return Err(format!(
                    "n{node} persisted cursor {cursor} for {peer}, past its strand tip {}",
                    stores[p].tip()
                ));
            }
            for offset in from + 1..=cursor {
                let b = stores[p].at(offset).expect("below the tip").block();
                if !stores[node].holds_hash(&b.hash) {
                    return Err(format!(
                        "n{node} persisted cursor {cursor} for {peer}, but {b:?} at its offset {offset} is not durable on n{node}"
                    ));
                }
            }
            self.checked[node][p] = cursor;
        }
        Ok(())
    }
}
