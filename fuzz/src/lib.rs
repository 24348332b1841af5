//! What the fuzz targets share: real signed fixtures from one fixed master seed, an allocation
//! meter that makes "memory stays within the documented bound" a checkable property, and
//! oracles written independently of the code under test.
//!
//! The meter is this crate's global allocator, so every target and the seed-corpus example
//! that link this crate measure the same way. libFuzzer's own allocations (C++) are not seen.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use sapix_core::block::MAX_BLOCK_LEN;
use sapix_core::wire::WireBlock;
use sapix_core::{
    AgentId, Block, BlockBody, Collection, Hash, KeySchedule, MasterSeed, UnixMillis,
};

// ---------------------------------------------------------------------------------------------
// Allocation meter.

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes and their high-water mark.
pub struct Meter;

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated besides.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            // Count the new block before the old one is gone: realloc may hold both at once.
            grew(new_size);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Meter = Meter;

/// Runs `f` and returns its result with the most heap bytes it held live at once (above what
/// was live when it started). Includes other threads' allocations in that time.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    let peak = PEAK.load(Ordering::Relaxed);
    (r, peak.saturating_sub(base))
}

/// Fails the run when `peak` heap bytes for `input_len` input bytes exceed `bound`.
#[track_caller]
pub fn assert_within(what: &str, input_len: usize, peak: usize, bound: usize) {
    assert!(
        peak <= bound,
        "{what}: {input_len} input bytes held {peak} heap bytes at once, over the bound {bound}"
    );
}

/// The bound for [`Block::decode`] (block.rs: input over `MAX_BLOCK_LEN` is refused unread;
/// names are at most 255 bytes each, and the payload is copied once and scanned by the JSON
/// checker, whose scratch is never longer than the payload): twice the input plus names.
pub fn block_decode_bound(input_len: usize) -> usize {
    2 * input_len.min(MAX_BLOCK_LEN) + 4 * 1024
}

/// The bound for the JSON parsers of untrusted bodies (ingest body, export page, Codios
/// answer, state files): linear in the input. The body limit that callers apply (32 MiB for
/// ingest, 16 KiB for Codios, 16 MiB for state files) then bounds the whole. The factor covers
/// the parsed structs (a `WireBlock` is about twice its shortest JSON text), the copy of each
/// field and the vector's doubling growth.
pub fn json_bound(input_len: usize) -> usize {
    16 * input_len + 64 * 1024
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

/// The master seed of every fixture: blocks in the corpus verify under it.
pub const MASTER_SEED: [u8; 32] = [0x5a; 32];

/// The key schedule of [`MASTER_SEED`], derived once.
pub fn keys() -> &'static KeySchedule {
    static KEYS: OnceLock<KeySchedule> = OnceLock::new();
    KEYS.get_or_init(|| KeySchedule::new(MasterSeed::from_bytes(MASTER_SEED)))
}

/// An agent id known to be valid.
pub fn agent(name: &str) -> AgentId {
    AgentId::new(name).expect("fixture agent id is valid")
}

/// A collection name known to be valid.
pub fn collection(name: &str) -> Collection {
    Collection::new(name).expect("fixture collection is valid")
}

/// `n` correctly linked blocks by `author`, signed with its real key; `payload(seq)` is the
/// JSON of each.
pub fn chain(author: &str, n: u64, payload: impl Fn(u64) -> String) -> Vec<Block> {
    let author = agent(author);
    let key = keys().signing_key(&author);
    let mut prev = Hash::ZERO;
    (1..=n)
        .map(|seq| {
            let b = BlockBody {
                author: author.clone(),
                seq,
                prev,
                ts: UnixMillis(1_715_000_000_000 + seq),
                collection: collection("orders"),
                payload: payload(seq).into_bytes(),
            }
            .seal(&key);
            prev = b.hash;
            b
        })
        .collect()
}

/// A small numbered JSON record.
pub fn small_payload(seq: u64) -> String {
    format!(r#"{{"id":{seq},"amount":42.5,"currency":"EUR","tags":["a","é"]}}"#)
}

/// One block as the ingest endpoint takes it.
pub fn ingest_single(b: &Block) -> Vec<u8> {
    serde_json::to_vec(&WireBlock::from_block(b, None)).expect("wire block serializes")
}

/// Blocks as a batch ingest body. Written out directly: going through `serde_json::Value`
/// would re-order the keys inside each payload and so change the signed bytes.
pub fn ingest_batch(blocks: &[Block]) -> Vec<u8> {
    let mut out = b"{\"blocks\":[".to_vec();
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&ingest_single(b));
    }
    out.extend_from_slice(b"]}");
    out
}

// ---------------------------------------------------------------------------------------------
// Oracles.

/// The domain tag the block hash starts with (block.rs; pinned there by a snapshot test).
pub const BLOCK_HASH_DOMAIN: &[u8] = b"sapixdb/v1/block\0";

/// Whether a canonical block encoding carries the right hash, computed here from the bytes
/// alone rather than through the core: BLAKE3 of the domain tag and everything before the
/// trailing hash and signature.
pub fn carried_hash_is_right(encoded: &[u8]) -> bool {
    let Some(body_len) = encoded.len().checked_sub(32 + 64) else {
        return false;
    };
    let mut h = blake3::Hasher::new();
    h.update(BLOCK_HASH_DOMAIN);
    h.update(&encoded[..body_len]);
    h.finalize().as_bytes() == &encoded[body_len..body_len + 32]
}

/// How deep `payload` (JSON the decoder accepted) nests arrays and objects, by a recursive
/// walk of the parsed value: an oracle independent of the decoder's one-pass scan.
pub fn json_depth(payload: &[u8]) -> Option<usize> {
    fn depth(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            serde_json::Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let mut de = serde_json::Deserializer::from_slice(payload);
    // The decoder bounds depth at MAX_JSON_DEPTH; past serde_json's own limit of 127 the
    // oracle must still measure, and the decoder's bound keeps the recursion shallow.
    de.disable_recursion_limit();
    // `None` where a `Value` cannot hold what the payload says (a number beyond f64's range,
    // which valid JSON may carry): the oracle then cannot measure that payload.
    let value = de
        .into_iter::<serde_json::Value>()
        .next()
        .expect("a decoded payload is not empty")
        .ok()?;
    Some(depth(&value))
}
