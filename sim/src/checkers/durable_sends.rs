//! Persist before you send (STYLE, raft-rs's `Ready`): a node pushes only own blocks that are
//! durable in its strand. The shell reads a push's blocks from the strand, as the runtime
//! does; a block that is not there was announced before it was durable.

use sapix_core::AgentId;

/// A push of `author`'s `from..=to` found seq `missing` not durable.
pub fn push_of_non_durable(author: &AgentId, from: u64, to: u64, missing: u64) -> String {
    format!("{author} pushed its seqs {from}..={to} but seq {missing} is not durable in its strand")
}
