//! Any bytes as a `POST /v1/mesh/ingest` body (one block object or `{"blocks":[…],
//! "head":{…}}`), parsed by the same function the endpoint calls: never a panic, memory linear
//! in the body, at most `MAX_BATCH` blocks, and every block it yields is structurally valid
//! (its binary encoding decodes back to it) and survives the JSON round trip exactly, payload
//! bytes included; a head it yields survives the round trip too, and checking its signature
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapix_core::ledger::VerifiedHead;
use sapix_core::wire::{ingest_json, parse_ingest, parse_ingest_body, IngestBody, MAX_BATCH};
use sapix_core::Block;
use sapix_fuzz::{assert_within, ingest_batch, ingest_single, json_bound, peak_during};

fuzz_target!(|data: &[u8]| {
    let (parsed, peak) = peak_during(|| parse_ingest_body(data));
    assert_within(
        "parse_ingest_body",
        data.len(),
        peak,
        json_bound(data.len()),
    );
    let Ok(IngestBody { blocks, head }) = parsed else {
        return;
    };
    assert!(
        blocks.len() <= MAX_BATCH,
        "{} blocks passed the batch bound",
        blocks.len()
    );
    for b in &blocks {
        assert_eq!(
            Block::decode(&b.encode()).as_ref(),
            Ok(b),
            "JSON accepted what binary refuses"
        );
        assert_eq!(parse_ingest(&ingest_single(b)), Ok(vec![b.clone()]));
    }
    let again = parse_ingest_body(&ingest_json(&blocks, head.as_ref()));
    assert_eq!(
        again,
        Ok(IngestBody {
            blocks: blocks.clone(),
            head: head.clone()
        })
    );
    if let Some(h) = head {
        let _ = VerifiedHead::check(h);
    }
    assert_eq!(parse_ingest(&ingest_batch(&blocks)), Ok(blocks));
});
