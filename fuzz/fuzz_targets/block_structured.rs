//! Structure-aware: builds real, correctly linked and signed chains, applies a few edits the
//! fuzzer chooses (fields, bits of the encoding, re-signing with the right or a wrong key,
//! reordering), and delivers the result to a real `Node` the way the ingest endpoint does:
//! decode (binary or a JSON batch), verify hash and signature, then ingest. So the fuzzer gets
//! past the decoder to the hash, signature and chain checks.
//!
//! Properties, each against an oracle written here rather than the code under test:
//! - decoding never panics and holds no more memory than the documented bound;
//! - encode∘decode is the identity on every valid block, and decode∘encode on every accepted
//!   encoding;
//! - a block verifies exactly when its carried hash is BLAKE3 of its bytes (computed here) and
//!   its (author, hash, signature) was produced by that author's real key (tracked here);
//! - the node's answer to each ingest is exactly what a model of per-author chains predicts,
//!   so a block at a wrong chain position (gap, broken link, equivocation) is never stored.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sapix_core::block::Verified;
use sapix_core::node::{AppendToken, Input, NodeConfig, Output, RequestId, Response, Restored};
use sapix_core::wire::parse_ingest;
use sapix_core::{Block, Collection, Hash, Instant, Node, UnixMillis};
use sapix_fuzz::{
    agent, assert_within, block_decode_bound, carried_hash_is_right, chain, ingest_batch,
    ingest_single, json_bound, keys, peak_during, small_payload,
};

const AUTHORS: [&str; 3] = ["alpha", "beta", "gamma"];

#[derive(Arbitrary, Debug)]
struct Case {
    /// alpha's chain has 1 + alpha % 6 blocks.
    alpha: u8,
    /// beta's chain has beta % 4 blocks, interleaved with alpha's.
    beta: u8,
    payload: Payload,
    edits: Vec<Edit>,
    /// Deliver as a JSON ingest body rather than binary blocks.
    json: bool,
    /// The delivery is cut into two ingest requests before this item.
    split: u8,
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Small,
    /// A JSON string holding this text.
    Text(String),
    /// Arrays nested this deep.
    Nested(u8),
}

#[derive(Arbitrary, Debug)]
struct Edit {
    /// Which delivered item (modulo their number).
    at: u8,
    what: Mutation,
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    Seq(u64),
    SeqStep(i8),
    PrevBit(u8),
    HashBit(u8),
    SigBit(u16),
    Ts(u64),
    /// Raw payload bytes, often not JSON.
    Payload(String),
    Collection(String),
    Author(u8),
    /// Recompute the hash and sign it: with the author's key (an honest block, maybe at a
    /// wrong chain position), another agent's key, or not at all (the old signature stays).
    Reseal(Signer),
    EncodedBit(u16, u8),
    Truncate(u16),
    AppendByte(u8),
    Swap(u8),
    Drop,
    Duplicate,
}

#[derive(Arbitrary, Debug)]
enum Signer {
    Author,
    Other(u8),
    HashOnly,
}

/// (author, hash, signature) for every block the real key holders signed.
type Honest = BTreeSet<(String, [u8; 32], [u8; 64])>;

fn payload_of(p: &Payload) -> impl Fn(u64) -> String + '_ {
    move |seq| match p {
        Payload::Small => small_payload(seq),
        Payload::Text(t) => serde_json::to_string(t).expect("a string serializes"),
        Payload::Nested(d) => {
            let d = usize::from(*d % 64);
            format!("{}{seq}{}", "[".repeat(d), "]".repeat(d))
        }
    }
}

fn remember(honest: &mut Honest, b: &Block) {
    honest.insert((b.body.author.to_string(), b.hash.0, b.sig.0));
}

/// Applies a field edit through the block; bytes that no longer decode are left alone.
fn edit_block(bytes: &mut Vec<u8>, honest: &mut Honest, f: impl FnOnce(&mut Block, &mut Honest)) {
    if let Ok(mut b) = Block::decode(bytes) {
        f(&mut b, honest);
        *bytes = b.encode();
    }
}

fn apply(items: &mut Vec<Vec<u8>>, honest: &mut Honest, edit: &Edit) {
    if items.is_empty() {
        return;
    }
    let at = usize::from(edit.at) % items.len();
    let bytes = &mut items[at];
    match &edit.what {
        Mutation::Seq(s) => edit_block(bytes, honest, |b, _| b.body.seq = *s),
        Mutation::SeqStep(d) => edit_block(bytes, honest, |b, _| {
            b.body.seq = b.body.seq.wrapping_add_signed(i64::from(*d))
        }),
        Mutation::PrevBit(i) => edit_block(bytes, honest, |b, _| {
            b.body.prev.0[usize::from(*i / 8) % 32] ^= 1 << (i % 8)
        }),
        Mutation::HashBit(i) => edit_block(bytes, honest, |b, _| {
            b.hash.0[usize::from(*i / 8) % 32] ^= 1 << (i % 8)
        }),
        Mutation::SigBit(i) => edit_block(bytes, honest, |b, _| {
            b.sig.0[usize::from(*i / 8) % 64] ^= 1 << (i % 8)
        }),
        Mutation::Ts(t) => edit_block(bytes, honest, |b, _| b.body.ts = UnixMillis(*t)),
        Mutation::Payload(p) => {
            edit_block(bytes, honest, |b, _| b.body.payload = p.as_bytes().to_vec())
        }
        Mutation::Collection(c) => edit_block(bytes, honest, |b, _| {
            if let Ok(c) = Collection::new(c.as_str()) {
                b.body.collection = c;
            }
        }),
        Mutation::Author(a) => edit_block(bytes, honest, |b, _| {
            b.body.author = agent(AUTHORS[usize::from(*a) % AUTHORS.len()])
        }),
        Mutation::Reseal(signer) => edit_block(bytes, honest, |b, honest| {
            let body = b.body.clone();
            match signer {
                Signer::Author => {
                    *b = body.seal(&keys().signing_key(&b.body.author));
                    remember(honest, b);
                }
                Signer::Other(k) => {
                    let other = agent(AUTHORS[usize::from(*k) % AUTHORS.len()]);
                    let sealed = body.seal(&keys().signing_key(&other));
                    if other == b.body.author {
                        remember(honest, &sealed);
                    }
                    *b = sealed;
                }
                Signer::HashOnly => b.hash = body.hash(),
            }
        }),
        Mutation::EncodedBit(i, bit) => {
            if !bytes.is_empty() {
                let i = usize::from(*i) % bytes.len();
                bytes[i] ^= 1 << (bit % 8);
            }
        }
        Mutation::Truncate(n) => {
            let keep = bytes.len().saturating_sub(usize::from(*n % 256) + 1);
            bytes.truncate(keep);
        }
        Mutation::AppendByte(x) => bytes.push(*x),
        Mutation::Swap(j) => {
            let j = usize::from(*j) % items.len();
            items.swap(at, j);
        }
        Mutation::Drop => {
            items.remove(at);
        }
        Mutation::Duplicate => {
            let copy = items[at].clone();
            items.insert(at, copy);
        }
    }
}

/// The expected answer to one ingest request of verified blocks.
#[derive(Debug, PartialEq)]
enum Expected {
    Ingested { fresh: Vec<Block>, duplicates: u64 },
    Refused { index: usize },
}

/// Per-author chains of hashes: the next link is accepted, an exact copy is a duplicate,
/// anything else refuses the whole request.
#[derive(Default, Clone)]
struct Model(BTreeMap<String, Vec<Hash>>);

impl Model {
    fn ingest(&mut self, blocks: &[Block]) -> Expected {
        let mut scratch = self.clone();
        let mut fresh = Vec::new();
        let mut duplicates = 0;
        for (index, b) in blocks.iter().enumerate() {
            let chain = scratch.0.entry(b.body.author.to_string()).or_default();
            let len = chain.len() as u64;
            let seq = b.body.seq;
            if seq >= 1 && seq <= len {
                if chain[(seq - 1) as usize] == b.hash {
                    duplicates += 1;
                    continue;
                }
                return Expected::Refused { index };
            }
            let tip = chain.last().copied().unwrap_or(Hash::ZERO);
            if seq == len + 1 && b.body.prev == tip {
                chain.push(b.hash);
                fresh.push(b.clone());
                continue;
            }
            return Expected::Refused { index };
        }
        *self = scratch;
        Expected::Ingested { fresh, duplicates }
    }
}

struct Sink {
    node: Node,
    model: Model,
    next_request: u64,
    next_offset: u64,
    now: Instant,
}

impl Sink {
    fn new() -> Sink {
        let id = agent("sink");
        let config = NodeConfig {
            agent_id: id.clone(),
            endpoint: "http://127.0.0.1:1".into(),
            added_at: UnixMillis(1_715_000_000_000),
            backoff: Default::default(),
            rng_seed: 7,
            // The sink only ingests; no client write is ever fed to it.
            root: sapix_core::auth::Credential::of_token("fuzz-root-key"),
            auth: Default::default(),
            head_key: sapix_core::ledger::HeadKey::from_bytes([7; 32]),
        };
        Sink {
            node: Node::new(config, keys().signing_key(&id), Restored::default()),
            model: Model::default(),
            next_request: 0,
            next_offset: 1,
            now: Instant::ZERO,
        }
    }

    /// Ingests `blocks` as the endpoint would after verifying them, playing the shell (every
    /// append succeeds), and checks the answer against the model.
    fn ingest(&mut self, blocks: Vec<Verified>) {
        let plain: Vec<Block> = blocks.iter().map(|v| v.block().clone()).collect();
        let expected = self.model.ingest(&plain);
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.node.handle(
            self.now,
            Input::IngestRequested {
                request,
                blocks,
                head: None,
            },
        );
        let mut appended: Vec<Block> = Vec::new();
        let mut answer = None;
        while answer.is_none() {
            let mut pending: Vec<(AppendToken, usize)> = Vec::new();
            while let Some(out) = self.node.poll_output() {
                match out {
                    Output::Append { token, blocks } => {
                        pending.push((token, blocks.len()));
                        appended.extend(blocks);
                    }
                    Output::Respond {
                        request: r,
                        response,
                    } if r == request => answer = Some(response),
                    _ => {}
                }
            }
            if answer.is_some() {
                break;
            }
            assert!(
                !pending.is_empty(),
                "the node neither answered nor appended"
            );
            for (token, n) in pending {
                let offsets = (self.next_offset..self.next_offset + n as u64).collect();
                self.next_offset += n as u64;
                self.node
                    .handle(self.now, Input::Appended { token, offsets });
            }
        }
        match (expected, answer.expect("answered")) {
            (Expected::Refused { index }, Response::IngestRefused { index: got, .. }) => {
                assert_eq!(got, index, "refused at another block");
                assert!(appended.is_empty(), "a refused request stored blocks");
            }
            (
                Expected::Ingested { fresh, duplicates },
                Response::Ingested {
                    accepted,
                    duplicates: d,
                    ..
                },
            ) => {
                assert_eq!((accepted, d), (fresh.len() as u64, duplicates));
                assert_eq!(appended, fresh, "stored other blocks than the next links");
            }
            (e, got) => panic!("expected {e:?}, the node answered {got:?}"),
        }
    }

    fn check_chains(&self) {
        for (author, hashes) in &self.model.0 {
            let tip = hashes.last().map(|h| (hashes.len() as u64, *h));
            assert_eq!(
                self.node.chains().tip(&agent(author)),
                tip,
                "{author}'s chain"
            );
        }
        let total: usize = self.model.0.values().map(Vec::len).sum();
        assert_eq!(self.node.chains().total(), total as u64);
    }
}

fn run(case: Case) {
    let payload = payload_of(&case.payload);
    let alpha = chain("alpha", 1 + u64::from(case.alpha % 6), &payload);
    let beta = chain("beta", u64::from(case.beta % 4), &payload);
    let mut honest = Honest::new();
    let mut items = Vec::new();
    for i in 0..alpha.len().max(beta.len()) {
        for b in [alpha.get(i), beta.get(i)].into_iter().flatten() {
            // encode∘decode and decode∘encode on valid blocks.
            let enc = b.encode();
            let back = Block::decode(&enc).expect("a sealed block decodes");
            assert_eq!(&back, b);
            assert_eq!(back.encode(), enc);
            remember(&mut honest, b);
            items.push(enc);
        }
    }
    for edit in case.edits.iter().take(4) {
        apply(&mut items, &mut honest, edit);
    }

    // Decode as the endpoint would: binary blocks one by one, or one JSON body of those
    // that still decode (JSON can only express well-formed blocks).
    let mut decoded: Vec<(Block, Vec<u8>)> = Vec::new();
    for bytes in &items {
        let (d, peak) = peak_during(|| Block::decode(bytes));
        assert_within(
            "Block::decode",
            bytes.len(),
            peak,
            block_decode_bound(bytes.len()),
        );
        if let Ok(b) = d {
            assert_eq!(
                &b.encode(),
                bytes,
                "decode then encode must be the identity"
            );
            decoded.push((b, bytes.clone()));
        }
    }
    if case.json && !decoded.is_empty() {
        let blocks: Vec<Block> = decoded.iter().map(|(b, _)| b.clone()).collect();
        let body = match blocks.as_slice() {
            [one] => ingest_single(one),
            many => ingest_batch(many),
        };
        let (parsed, peak) = peak_during(|| parse_ingest(&body));
        assert_within("parse_ingest", body.len(), peak, json_bound(body.len()));
        assert_eq!(parsed.expect("well-formed blocks parse as JSON"), blocks);
    }

    // Verify: exactly the blocks with a right hash and a real signature pass.
    let mut verified = Vec::new();
    for (b, bytes) in decoded {
        let authentic = carried_hash_is_right(&bytes)
            && honest.contains(&(b.body.author.to_string(), b.hash.0, b.sig.0));
        match b.into_verified(keys()) {
            Ok(v) => {
                assert!(authentic, "verified a block with a wrong hash or signature");
                verified.push(v);
            }
            Err(e) => {
                assert!(!authentic, "refused an authentic block: {e}");
            }
        }
    }

    // The node only ever takes verified blocks (the endpoint refuses a request with any other
    // whole), so what passed goes on, as a peer resending without the bad ones would send it;
    // the node still judges every chain position.
    let mut sink = Sink::new();
    let split = usize::from(case.split) % (verified.len() + 1);
    let second = verified.split_off(split);
    for request in [verified, second] {
        if !request.is_empty() {
            sink.ingest(request);
        }
    }
    sink.check_chains();
}

fuzz_target!(|case: Case| run(case));
