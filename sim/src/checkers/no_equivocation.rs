//! Honest nodes never equivocate (§2): across the whole cluster and the whole run, one author
//! and seq name one block. A node that lost an unsent, not-yet-durable block in a crash may
//! sign that seq again — nobody could have seen the first — so the registry records blocks as
//! they become durable anywhere, which is before anything can be sent. An `Equivocation` log
//! line from any node is a violation too: with honest authors it must never fire.

use std::collections::BTreeMap;

use sapix_core::block::{Block, Hash};
use sapix_core::AgentId;

/// Every author's chain as first seen durable anywhere.
#[derive(Debug, Default)]
pub struct NoEquivocation {
    chains: BTreeMap<AgentId, Vec<Hash>>,
}

impl NoEquivocation {
    /// `block` became durable on some node.
    pub fn landed(&mut self, block: &Block) -> Result<(), String> {
        let chain = self.chains.entry(block.author().clone()).or_default();
        let seq = block.seq();
        let idx = (seq - 1) as usize;
        match chain.get(idx) {
            Some(h) if *h == block.hash => Ok(()),
            Some(h) => Err(format!(
                "{} signed two blocks at seq {seq}: {h:?} and {:?}",
                block.author(),
                block.hash
            )),
            None if idx == chain.len() => {
                chain.push(block.hash);
                Ok(())
            }
            None => Err(format!(
                "{block:?} is durable somewhere before seq {} of its chain is durable anywhere",
                chain.len() + 1
            )),
        }
    }
}
