//! The JSON wire form of blocks, used by the mesh endpoints and record reads.
//!
//! A block travels as an object whose `data` is the payload's JSON text, byte for byte
//! (`serde_json::value::RawValue` keeps it exact), so the receiver re-hashes exactly what the
//! author signed while a human can still read the record:
//!
//! ```json
//! {"version":1,"author":"primary","seq":1,"prev":"00…","ts_ms":1715000000000,
//!  "collection":"orders","data":{"amount":42},"hash":"9f…","sig":"ab…"}
//! ```
//!
//! An ingest body is either one such object or `{"blocks":[…]}`; an export page is
//! `{"blocks":[{"offset":1,…}],"next":1,"tip":7}`. Parsing is bounded by the caller's body limit
//! and by [`MAX_BATCH`]; every field is checked by [`Block::decode`]'s rules. The rest of the
//! mesh's contract (page bounds, refusals, probe and membership bodies) is [`mesh`].

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub mod cursor;
pub mod mesh;

/// A whole number as the read parameters write it: 1 to 20 ASCII digits (no sign, no spaces)
/// that fit in a u64. The one rule for `seq`, `after_seq`, `limit`, `wait_ms` and cursor seqs.
pub fn decimal(text: &str) -> Option<u64> {
    let digits = (1..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

use crate::block::{check_payload, Block, BlockBody, DecodeError, Hash, Signature, BLOCK_VERSION};
use crate::id::{AgentId, Collection};
use crate::ledger::wire::{BadLedger, HeadJson};
use crate::ledger::SignedHead;
use crate::time::UnixMillis;

/// The most blocks one ingest body or export page may carry.
pub const MAX_BATCH: usize = 1000;

/// One block as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireBlock {
    /// The block's local offset on the exporting node; only set in export pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Format version.
    pub version: u8,
    /// Author agent id.
    pub author: AgentId,
    /// Position in the author's chain.
    pub seq: u64,
    /// Hex hash of the author's previous block.
    pub prev: String,
    /// Author's wall clock, ms since the Unix epoch.
    pub ts_ms: u64,
    /// Collection name.
    pub collection: Collection,
    /// The payload's JSON text, exactly as signed.
    pub data: Box<RawValue>,
    /// Hex BLAKE3 hash.
    pub hash: String,
    /// Hex Ed25519 signature.
    pub sig: String,
}

/// Why a JSON block is not a well-formed block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A structural problem shared with the binary form.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// `prev` or `hash` is not 64 hex characters.
    #[error("`{0}` must be 64 hex characters")]
    BadHash(&'static str),
    /// `sig` is not 128 hex characters.
    #[error("`sig` must be 128 hex characters")]
    BadSignature,
    /// More blocks than [`MAX_BATCH`].
    #[error("batch of {len} blocks, the maximum is {max}")]
    BatchTooLarge {
        /// Blocks given.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not JSON of the expected shape.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The ingest body's `head` is malformed.
    #[error("`head`: {0}")]
    Head(BadLedger),
}

impl WireBlock {
    /// The JSON form of `block`, with an export offset if given.
    pub fn from_block(block: &Block, offset: Option<u64>) -> WireBlock {
        let text = String::from_utf8_lossy(&block.body.payload).into_owned();
        // Stored payloads were checked to be JSON on the way in, so this cannot fail; if it
        // somehow did, `null` keeps the response well-formed and the hash check fails loudly.
        let data = RawValue::from_string(text)
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"));
        WireBlock {
            offset,
            version: BLOCK_VERSION,
            author: block.body.author.clone(),
            seq: block.body.seq,
            prev: block.body.prev.to_hex(),
            ts_ms: block.body.ts.0,
            collection: block.body.collection.clone(),
            data,
            hash: block.hash.to_hex(),
            sig: block.sig.to_hex(),
        }
    }

    /// The block this JSON describes, checked like [`Block::decode`] (not yet verified).
    pub fn into_block(self) -> Result<Block, WireError> {
        if self.version != BLOCK_VERSION {
            return Err(DecodeError::Version(self.version).into());
        }
        if self.seq == 0 {
            return Err(DecodeError::ZeroSeq.into());
        }
        let prev = Hash::from_hex(&self.prev).ok_or(WireError::BadHash("prev"))?;
        let hash = Hash::from_hex(&self.hash).ok_or(WireError::BadHash("hash"))?;
        let sig = Signature::from_hex(&self.sig).ok_or(WireError::BadSignature)?;
        let payload = self.data.get().as_bytes().to_vec();
        check_payload(&payload)?;
        Ok(Block {
            body: BlockBody {
                author: self.author,
                seq: self.seq,
                prev,
                ts: UnixMillis(self.ts_ms),
                collection: self.collection,
                payload,
            },
            hash,
            sig,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    blocks: Vec<WireBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<HeadJson>,
}

/// A parsed ingest body: the blocks, and the pusher's latest head of its own chain when it
/// asks the receiver to witness it (signature not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestBody {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
    /// The pusher's head, if it sent one.
    pub head: Option<SignedHead>,
}

/// Parses an ingest body — one block object, or `{"blocks":[…], "head":{…}}` (the head
/// optional) — into blocks, in order, and the head. Bounded by [`MAX_BATCH`].
pub fn parse_ingest_body(body: &[u8]) -> Result<IngestBody, WireError> {
    let json = |e: serde_json::Error| WireError::Json(e.to_string());
    // Serde's untagged enums lose `RawValue`'s exact bytes, so look at the keys first.
    let keys: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
        serde_json::from_slice(body).map_err(json)?;
    let (wires, head) = if keys.contains_key("blocks") {
        let batch = serde_json::from_slice::<Batch>(body).map_err(json)?;
        (batch.blocks, batch.head)
    } else {
        (
            vec![serde_json::from_slice::<WireBlock>(body).map_err(json)?],
            None,
        )
    };
    if wires.len() > MAX_BATCH {
        return Err(WireError::BatchTooLarge {
            len: wires.len(),
            max: MAX_BATCH,
        });
    }
    let head = head
        .as_ref()
        .map(SignedHead::try_from)
        .transpose()
        .map_err(WireError::Head)?;
    let blocks = wires
        .into_iter()
        .map(WireBlock::into_block)
        .collect::<Result<_, _>>()?;
    Ok(IngestBody { blocks, head })
}

/// The blocks of an ingest body ([`parse_ingest_body`]).
pub fn parse_ingest(body: &[u8]) -> Result<Vec<Block>, WireError> {
    parse_ingest_body(body).map(|b| b.blocks)
}

/// The JSON of an ingest body carrying `blocks` and, if given, the pusher's `head`.
pub fn ingest_json(blocks: &[Block], head: Option<&SignedHead>) -> Vec<u8> {
    let batch = Batch {
        blocks: blocks
            .iter()
            .map(|b| WireBlock::from_block(b, None))
            .collect(),
        head: head.map(HeadJson::from),
    };
    serde_json::to_vec(&batch).expect("wire blocks and heads always serialize")
}

/// A page of a node's strand, as served by `GET /v1/mesh/export`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPage {
    /// Blocks with offsets after the request's `after`, in local order.
    pub blocks: Vec<WireBlock>,
    /// The cursor to ask for next: the last offset in `blocks`, or `after` if empty.
    pub next: u64,
    /// The exporting node's last durable offset when the page was read.
    pub tip: u64,
}

/// An export page as the pulling node sees it: structurally checked blocks with offsets.
#[derive(Debug)]
pub struct ParsedPage {
    /// `(offset on the exporter, block)`, in the exporter's order.
    pub blocks: Vec<(u64, Block)>,
    /// The cursor to ask for next.
    pub next: u64,
    /// The exporter's last durable offset.
    pub tip: u64,
}

impl ExportPage {
    /// Parses a page as the pulling node receives it, checking every block's structure.
    pub fn parse(body: &[u8]) -> Result<ParsedPage, WireError> {
        let page: ExportPage =
            serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))?;
        if page.blocks.len() > MAX_BATCH {
            return Err(WireError::BatchTooLarge {
                len: page.blocks.len(),
                max: MAX_BATCH,
            });
        }
        let mut out = Vec::with_capacity(page.blocks.len());
        for w in page.blocks {
            let offset = w.offset.unwrap_or(0);
            out.push((offset, w.into_block()?));
        }
        Ok(ParsedPage {
            blocks: out,
            next: page.next,
            tip: page.tip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySchedule, MasterSeed};

    fn block(payload: &str) -> Block {
        let ks = KeySchedule::new(MasterSeed::from_bytes([1; 32]));
        let author = AgentId::new("primary").unwrap();
        BlockBody {
            author: author.clone(),
            seq: 1,
            prev: Hash::ZERO,
            ts: UnixMillis(5),
            collection: Collection::new("c").unwrap(),
            payload: payload.as_bytes().to_vec(),
        }
        .seal(&ks.signing_key(&author))
    }

    #[test]
    fn json_round_trip_keeps_payload_bytes_exactly() {
        // Whitespace and key order must survive, or the hash would not.
        let b = block(r#"{ "z": 1,  "a": [1.50, "\u00e9"] }"#);
        let json = serde_json::to_string(&WireBlock::from_block(&b, None)).unwrap();
        let back = parse_ingest(json.as_bytes()).unwrap();
        assert_eq!(back, vec![b.clone()]);
        let ks = KeySchedule::new(MasterSeed::from_bytes([1; 32]));
        back[0].verify(&ks).unwrap();
    }

    #[test]
    fn an_ingest_body_carries_the_pushers_head_and_refuses_a_malformed_one() {
        let b = block("1");
        let head = crate::ledger::HeadKey::from_bytes([7; 32]).sign(crate::ledger::Head {
            author: b.author().clone(),
            seq: 1,
            root: Hash([2; 32]),
            ts_ms: 9,
        });
        let body = ingest_json(std::slice::from_ref(&b), Some(&head));
        let parsed = parse_ingest_body(&body).unwrap();
        assert_eq!(parsed.blocks, vec![b.clone()]);
        assert_eq!(parsed.head, Some(head));
        let without = parse_ingest_body(&ingest_json(&[b], None)).unwrap();
        assert_eq!(without.head, None);
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["head"]["root"] = "00".into();
        assert_eq!(
            parse_ingest_body(v.to_string().as_bytes()),
            Err(WireError::Head(BadLedger::Field("root")))
        );
    }

    #[test]
    fn batch_and_single_shapes_both_parse() {
        let b = block("1");
        let one = serde_json::to_string(&WireBlock::from_block(&b, None)).unwrap();
        let batch = format!(r#"{{"blocks":[{one},{one}]}}"#);
        assert_eq!(parse_ingest(batch.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn malformed_fields_are_typed_errors() {
        let b = block("1");
        let mut w = serde_json::to_value(WireBlock::from_block(&b, None)).unwrap();
        w["prev"] = "zz".into();
        assert_eq!(
            parse_ingest(w.to_string().as_bytes()),
            Err(WireError::BadHash("prev"))
        );
        let mut w = serde_json::to_value(WireBlock::from_block(&b, None)).unwrap();
        w["sig"] = "00".into();
        assert_eq!(
            parse_ingest(w.to_string().as_bytes()),
            Err(WireError::BadSignature)
        );
        let mut w = serde_json::to_value(WireBlock::from_block(&b, None)).unwrap();
        w["version"] = 9.into();
        assert_eq!(
            parse_ingest(w.to_string().as_bytes()),
            Err(WireError::Decode(DecodeError::Version(9)))
        );
        assert!(matches!(parse_ingest(b"{"), Err(WireError::Json(_))));
        assert!(matches!(parse_ingest(b"[]"), Err(WireError::Json(_))));
    }

    #[test]
    fn oversized_batch_is_refused() {
        let one = serde_json::to_string(&WireBlock::from_block(&block("1"), None)).unwrap();
        let many = vec![one; MAX_BATCH + 1].join(",");
        let body = format!(r#"{{"blocks":[{many}]}}"#);
        assert!(matches!(
            parse_ingest(body.as_bytes()),
            Err(WireError::BatchTooLarge { .. })
        ));
    }

    #[test]
    fn export_page_round_trips_offsets() {
        let b = block("[1,2]");
        let page = ExportPage {
            blocks: vec![WireBlock::from_block(&b, Some(7))],
            next: 7,
            tip: 9,
        };
        let p = ExportPage::parse(&serde_json::to_vec(&page).unwrap()).unwrap();
        assert_eq!((p.blocks[0].0, p.next, p.tip), (7, 7, 9));
        assert_eq!(p.blocks[0].1, b);
    }
}
