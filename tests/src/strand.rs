//! Export pages and the checks a strand must pass, done independently of the server with
//! `sapix-core`'s block model and key schedule.
//!
//! Blocks are kept as the exact JSON text the exporter sent, field by field, so they can be
//! re-sent to another node's ingest byte for byte (the hash covers `data` exactly as signed;
//! going through `serde_json::Value` would re-order its keys and break it) or altered in one
//! field to build a forgery.

use std::collections::BTreeMap;

use sapix_core::wire::WireBlock;
use sapix_core::{Block, Hash, KeySchedule};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// The fields of an exported block, per the contract.
pub const EXPORT_FIELDS: [&str; 10] = [
    "author",
    "collection",
    "data",
    "hash",
    "offset",
    "prev",
    "seq",
    "sig",
    "ts_ms",
    "version",
];

/// One page of `GET /v1/mesh/export`.
#[derive(Debug)]
pub struct ExportPage {
    /// The page's blocks, in offset order.
    pub blocks: Vec<ExportedBlock>,
    /// The cursor for the next page.
    pub next: u64,
    /// The exporter's last offset.
    pub tip: u64,
}

/// One exported block: its offset, its exact JSON fields, and the decoded block.
#[derive(Debug)]
pub struct ExportedBlock {
    /// The exporter's local offset.
    pub offset: u64,
    /// Every field's JSON text, exactly as exported.
    pub fields: BTreeMap<String, Box<RawValue>>,
    /// The decoded block (structure checked, not yet verified).
    pub block: Block,
}

#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    blocks: Vec<&'a RawValue>,
    next: u64,
    tip: u64,
}

impl ExportPage {
    /// Parses a page body; panics with the body if it is not the contract's shape.
    #[track_caller]
    pub fn parse(text: &str) -> ExportPage {
        let page: RawPage<'_> = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("export page is not {{blocks,next,tip}} ({e}): {text}"));
        ExportPage {
            blocks: page
                .blocks
                .iter()
                .map(|raw| ExportedBlock::parse(raw.get()))
                .collect(),
            next: page.next,
            tip: page.tip,
        }
    }
}

impl ExportedBlock {
    /// Parses one exported block object.
    #[track_caller]
    pub fn parse(text: &str) -> ExportedBlock {
        let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("exported block is not a JSON object ({e}): {text}"));
        let offset = fields
            .get("offset")
            .and_then(|raw| raw.get().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("exported block has no numeric offset: {text}"));
        let without_offset = join(fields.iter().filter(|(k, _)| *k != "offset"));
        let block = serde_json::from_str::<WireBlock>(&without_offset)
            .map_err(|e| e.to_string())
            .and_then(|w| w.into_block().map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("exported block does not decode ({e}): {text}"));
        ExportedBlock {
            offset,
            fields,
            block,
        }
    }

    /// The block's hash as hex.
    pub fn hash(&self) -> String {
        self.block.hash.to_hex()
    }

    /// The author's agent id.
    pub fn author(&self) -> &str {
        self.block.body.author.as_str()
    }

    /// The position in the author's chain.
    pub fn seq(&self) -> u64 {
        self.block.body.seq
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        self.block.body.collection.as_str()
    }

    /// The record's data as JSON.
    pub fn data(&self) -> Value {
        serde_json::from_slice(&self.block.body.payload).expect("payload is JSON")
    }

    /// The field names as exported, sorted.
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.keys().map(String::as_str).collect()
    }

    /// The block as an ingest body: every field but `offset`, byte for byte.
    pub fn ingest_json(&self) -> String {
        join(self.fields.iter().filter(|(k, _)| *k != "offset"))
    }

    /// The ingest body with one field's JSON replaced by `json`: a forgery, since the hash
    /// and signature are kept.
    pub fn ingest_json_with(&self, field: &str, json: &str) -> String {
        assert!(
            self.fields.contains_key(field),
            "no field {field:?} to replace"
        );
        let replacement = RawValue::from_string(json.to_owned()).expect("replacement is JSON");
        join(
            self.fields
                .iter()
                .filter(|(k, _)| *k != "offset")
                .map(|(k, v)| (k, if k == field { &replacement } else { v })),
        )
    }
}

impl ExportedBlock {
    /// This block's ingest body forged eight ways, each named: every signed field changed in
    /// turn (hash and signature kept), then the hash and the signature altered by one digit.
    /// Each must be refused 422 `invalid_block`.
    pub fn forgeries(&self) -> Vec<(&'static str, String)> {
        let flip_last = |field: &str| {
            let hex = self.fields[field].get().trim_matches('"').to_owned();
            let last = if hex.ends_with('0') { '1' } else { '0' };
            format!("\"{}{last}\"", &hex[..hex.len() - 1])
        };
        vec![
            (
                "data changed",
                self.ingest_json_with("data", r#"{"forged":1000000}"#),
            ),
            (
                "collection changed",
                self.ingest_json_with("collection", r#""refunds""#),
            ),
            ("ts_ms changed", self.ingest_json_with("ts_ms", "1")),
            (
                "author changed",
                self.ingest_json_with("author", r#""someone-else""#),
            ),
            (
                "prev changed",
                self.ingest_json_with("prev", &format!("\"{}\"", "1".repeat(64))),
            ),
            ("seq changed", self.ingest_json_with("seq", "2")),
            (
                "hash altered",
                self.ingest_json_with("hash", &flip_last("hash")),
            ),
            (
                "sig altered",
                self.ingest_json_with("sig", &flip_last("sig")),
            ),
        ]
    }
}

/// `{"blocks":[...]}` of the given ingest bodies.
pub fn batch<S: AsRef<str>>(blocks: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = blocks.into_iter().map(|b| b.as_ref().to_owned()).collect();
    format!(r#"{{"blocks":[{}]}}"#, items.join(","))
}

fn join<'a>(fields: impl Iterator<Item = (&'a String, &'a Box<RawValue>)>) -> String {
    let body: Vec<String> = fields
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v.get()))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Checks a whole strand as exported from offset 0: offsets are exactly `1..=n`; every block's
/// hash is its body's and its signature its author's under `keys`; each author's blocks appear
/// as `seq` 1, 2, 3… with `prev` the hash of the one before. Returns each author's last seq.
#[track_caller]
pub fn verify_strand(blocks: &[ExportedBlock], keys: &KeySchedule) -> BTreeMap<String, u64> {
    let mut chains: BTreeMap<String, (u64, Hash)> = BTreeMap::new();
    for (i, b) in blocks.iter().enumerate() {
        let expected_offset = i as u64 + 1;
        assert_eq!(
            b.offset, expected_offset,
            "offsets must be gap-free from 1: position {i} has offset {}",
            b.offset
        );
        if let Err(e) = b.block.verify(keys) {
            panic!("block at offset {} does not verify: {e}", b.offset);
        }
        let (last_seq, last_hash) = chains
            .entry(b.author().to_owned())
            .or_insert((0, Hash::ZERO));
        assert_eq!(
            b.seq(),
            *last_seq + 1,
            "author {}'s seqs must be contiguous: offset {} has seq {} after seq {}",
            b.author(),
            b.offset,
            b.seq(),
            last_seq
        );
        assert_eq!(
            b.block.body.prev,
            *last_hash,
            "author {}'s seq {} (offset {}) must link to the hash of seq {}",
            b.author(),
            b.seq(),
            b.offset,
            last_seq
        );
        *last_seq = b.seq();
        *last_hash = b.block.hash;
    }
    chains
        .into_iter()
        .map(|(author, (seq, _))| (author, seq))
        .collect()
}
