//! Inputs the fuzz targets in `fuzz/` found to break a parser, each pinned here first (failing)
//! and then fixed. Named for the behaviour that must hold.

use sapix_core::block::{check_payload, DecodeError};
use sapix_core::wire::{parse_ingest, WireBlock};
use sapix_core::{
    AgentId, Block, BlockBody, Collection, Hash, KeySchedule, MasterSeed, UnixMillis,
};

fn sealed(payload: &[u8]) -> Block {
    let keys = KeySchedule::new(MasterSeed::from_bytes([0x5a; 32]));
    let author = AgentId::new("alpha").unwrap();
    BlockBody {
        author: author.clone(),
        seq: 1,
        prev: Hash::ZERO,
        ts: UnixMillis(1_715_000_000_001),
        collection: Collection::new("orders").unwrap(),
        payload: payload.to_vec(),
    }
    .seal(&keys.signing_key(&author))
}

/// Found triaging block_structured's JSON round trip: a payload whose JSON strings hold bytes
/// that are not UTF-8 passed the check (serde_json skips ignored string contents without
/// validating them), so such a block decoded from disk, and its JSON wire form (which must be
/// text) then carried other payload bytes than the author signed: it could not replicate.
#[test]
fn payload_with_invalid_utf8_inside_a_string_is_not_json() {
    for bad in [
        &b"\"\xff\""[..],
        b"{\"k\xc3\":1}",
        b"[\"\xed\xa0\x80\"]",
        b"\"\xe2\x82\"",
    ] {
        assert_eq!(
            check_payload(bad),
            Err(DecodeError::PayloadNotJson),
            "{bad:?}"
        );
        assert_eq!(
            Block::decode(&sealed(bad).encode()),
            Err(DecodeError::PayloadNotJson),
            "{bad:?}"
        );
    }
    assert_eq!(check_payload("\"é€😀\"".as_bytes()), Ok(()));
}

#[test]
fn every_block_that_decodes_crosses_the_json_wire_unchanged() {
    for payload in [
        "\"é€😀\"",
        r#"{ "a" : [1.50, "\u00e9", "\ud83d\ude00"] }"#,
        "null",
    ] {
        let bytes = sealed(payload.as_bytes()).encode();
        let block = Block::decode(&bytes).unwrap();
        let json = serde_json::to_vec(&WireBlock::from_block(&block, None)).unwrap();
        assert_eq!(parse_ingest(&json), Ok(vec![block]));
    }
}
