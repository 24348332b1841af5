//! Helpers for the strand's unit tests: real signed blocks.

use sapix_core::{
    AgentId, Block, BlockBody, Collection, Hash, KeySchedule, MasterSeed, UnixMillis,
};

/// A signed block by `unit-test` at `seq` carrying `payload`.
pub(crate) fn block_with_payload(seq: u64, payload: Vec<u8>) -> Block {
    let keys = KeySchedule::new(MasterSeed::from_bytes([7; 32]));
    let author = AgentId::new("unit-test").expect("valid id");
    BlockBody {
        author: author.clone(),
        seq,
        prev: Hash::ZERO,
        ts: UnixMillis(1_715_000_000_000 + seq),
        collection: Collection::new("orders").expect("valid name"),
        payload,
    }
    .seal(&keys.signing_key(&author))
}
