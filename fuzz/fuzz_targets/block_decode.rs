//! Any bytes given to the block decoder: never a panic, and whatever decodes re-encodes to
//! exactly the same bytes (the encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapix_core::Block;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data) {
        assert_eq!(block.encode(), data, "decode then encode must be the identity");
    }
});
