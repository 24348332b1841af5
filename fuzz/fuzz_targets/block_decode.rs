//! Any bytes given to the block decoder (the strand's frames and any binary block): never a
//! panic, never more memory than the documented bound, and whatever decodes re-encodes to
//! exactly the same bytes (the encoding is canonical). A decoded block that verifies carries
//! the hash its bytes really have, and its payload nests at most `MAX_JSON_DEPTH` levels
//! (measured here by a recursive parse, not by the decoder's own scan).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapix_core::block::MAX_JSON_DEPTH;
use sapix_core::Block;
use sapix_fuzz::{
    assert_within, block_decode_bound, carried_hash_is_right, json_depth, keys, peak_during,
};

fuzz_target!(|data: &[u8]| {
    let (decoded, peak) = peak_during(|| Block::decode(data));
    assert_within(
        "Block::decode",
        data.len(),
        peak,
        block_decode_bound(data.len()),
    );
    if let Ok(block) = decoded {
        assert_eq!(
            block.encode(),
            data,
            "decode then encode must be the identity"
        );
        assert_eq!(block.encoded_len(), data.len());
        if let Some(depth) = json_depth(&block.body.payload) {
            assert!(
                depth <= MAX_JSON_DEPTH,
                "decoded a payload {depth} levels deep"
            );
        }
        if block.verify(keys()).is_ok() {
            assert!(
                carried_hash_is_right(data),
                "verified a block whose hash is wrong"
            );
        }
    }
});
