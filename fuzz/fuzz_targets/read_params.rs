//! Any text as a read's parameters (issue 16): a collection cursor (`after`) and a chain
//! position (`min_position`). Never a panic; a cursor that parses re-encodes to one that
//! parses to the same positions, and a position prints back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapix_core::node::ChainPosition;
use sapix_core::wire::cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(positions) = cursor::decode(text) {
        assert!(positions.len() <= cursor::MAX_CURSOR_AUTHORS);
        assert_eq!(cursor::decode(&cursor::encode(&positions)), Ok(positions));
    }
    if let Ok(p) = ChainPosition::parse(text) {
        assert_eq!(ChainPosition::parse(&p.to_string()), Ok(p));
    }
});
