//! Any bytes as a `GET /v1/mesh/export` page, parsed as the pulling node parses it: never a
//! panic, memory linear in the page, at most `MAX_BATCH` blocks, each structurally valid, and a
//! page that parses survives re-serialization exactly (offsets, cursor, tip and blocks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapix_core::wire::{ExportPage, WireBlock, MAX_BATCH};
use sapix_core::Block;
use sapix_fuzz::{assert_within, json_bound, peak_during};

fuzz_target!(|data: &[u8]| {
    let (parsed, peak) = peak_during(|| ExportPage::parse(data));
    assert_within(
        "ExportPage::parse",
        data.len(),
        peak,
        json_bound(data.len()),
    );
    let Ok(page) = parsed else { return };
    assert!(page.blocks.len() <= MAX_BATCH);
    for (_, b) in &page.blocks {
        assert_eq!(
            Block::decode(&b.encode()).as_ref(),
            Ok(b),
            "JSON accepted what binary refuses"
        );
    }
    let again = ExportPage {
        blocks: page
            .blocks
            .iter()
            .map(|(o, b)| WireBlock::from_block(b, Some(*o)))
            .collect(),
        next: page.next,
        tip: page.tip,
    };
    let bytes = serde_json::to_vec(&again).expect("page serializes");
    let back = ExportPage::parse(&bytes).expect("a re-serialized page parses");
    assert_eq!((back.next, back.tip), (page.next, page.tip));
    assert_eq!(back.blocks, page.blocks);
});
