//! The two ceilings, measured in this process with no HTTP: the node's own start-up, actor,
//! core and strand, asked directly through its handle.
//!
//! - The write ceiling: `clients` concurrent submitters of the same records the HTTP clients
//!   send, through the core's authorization, sign, hash and chain and the strand's
//!   group-commit fsync. No HTTP server can beat it.
//! - The verify ceiling: pages of [`PAGE`] signed blocks of another author verified (on the
//!   blocking pool, the next page while the last one is appended), then appended and fsynced.
//!   Ingest, pull catch-up and divide all verify and append pages like this.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sapix_core::block::{Block, BlockBody, Hash, Verified};
use sapix_core::node::Response;
use sapix_core::{AgentId, Collection, KeySchedule, MasterSeed, UnixMillis};
use sapix_runtime::actor::{NodeHandle, Request};
use sapix_server::config::Config;
use sapix_server::startup::{self, Environment};
use sapix_tests::TEST_SEED;
use tempfile::TempDir;
use tokio::sync::mpsc;

use crate::load::record_data;

/// Blocks per page, as a peer's push batch and a pull page.
pub const PAGE: usize = 500;

/// A node started in this process, and the directory it lives in.
struct InProcess {
    _dir: TempDir,
    node: NodeHandle,
    strand: Arc<sapix_runtime::strand::Strand>,
    keys: KeySchedule,
}

async fn in_process(agent_id: &str) -> InProcess {
    let dir = tempfile::Builder::new()
        .prefix("sapix-bench-ceiling-")
        .tempdir()
        .expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 temp path").to_owned();
    let env = [
        ("SAPIX_DATA_DIR", data.as_str()),
        ("SAPIX_AGENT_ID", agent_id),
        ("SAPIX_MASTER_SEED", TEST_SEED),
    ];
    let config = Config::from_env(|k| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("the ceiling's config is valid");
    let bound: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let started = startup::start(&config, bound, Environment::production())
        .await
        .expect("the in-process node starts");
    InProcess {
        _dir: dir,
        node: started.node,
        strand: started.strand,
        keys: KeySchedule::new(MasterSeed::from_hex(TEST_SEED).expect("seed")),
    }
}

/// What a ceiling run measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ceiling {
    /// Writes (or blocks) per second.
    pub rate: f64,
    /// Strand fdatasyncs per write (or block).
    pub fsyncs_per_item: f64,
}

impl Ceiling {
    /// Not measured: every ratio to it is NaN, and no target reads it as met.
    pub fn nan() -> Ceiling {
        Ceiling {
            rate: f64::NAN,
            fsyncs_per_item: f64::NAN,
        }
    }
}

/// The write ceiling: `clients` submitters for `time`.
pub async fn writes(clients: usize, time: Duration) -> Ceiling {
    let n = in_process("ceiling-w").await;
    let credential = n.keys.default_root_key().credential();
    let fsyncs0 = n.strand.stats().fsyncs;
    let started = Instant::now();
    let deadline = started + time;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (node, credential) = (n.node.clone(), credential);
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let payload = record_data(client, done);
                let answer = node
                    .ask(Request::Write {
                        credential,
                        collection: Collection::new("bench").expect("name"),
                        payload,
                    })
                    .await
                    .expect("the node runs");
                assert!(
                    matches!(answer, Response::Written(_)),
                    "write ceiling: {answer:?}"
                );
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("submitter");
    }
    let secs = started.elapsed().as_secs_f64();
    Ceiling {
        rate: total as f64 / secs,
        fsyncs_per_item: (n.strand.stats().fsyncs - fsyncs0) as f64 / total.max(1) as f64,
    }
}

/// `count` blocks of a chain by `author`, signed with the bench cluster's keys.
pub fn chain(author: &str, count: u64) -> Vec<Block> {
    let keys = KeySchedule::new(MasterSeed::from_hex(TEST_SEED).expect("seed"));
    let author = AgentId::new(author).expect("author name");
    let key = keys.signing_key(&author);
    let collection = Collection::new("bench").expect("name");
    let mut prev = Hash::ZERO;
    (1..=count)
        .map(|seq| {
            let payload = record_data(0, seq);
            let block = BlockBody {
                author: author.clone(),
                seq,
                prev,
                ts: UnixMillis(1_700_000_000_000 + seq),
                collection: collection.clone(),
                payload,
            }
            .seal(&key);
            prev = block.hash;
            block
        })
        .collect()
}

/// The verify ceiling over `blocks` (a chain from seq 1, of an author that is not the node).
pub async fn verify(blocks: &[Block]) -> Ceiling {
    let n = in_process("ceiling-v").await;
    let pages: Vec<Vec<Block>> = blocks.chunks(PAGE).map(<[Block]>::to_vec).collect();
    let keys = Arc::new(n.keys);
    let fsyncs0 = n.strand.stats().fsyncs;
    let started = Instant::now();
    // One page verified while the one before it is appended: a pipeline of two stages.
    let (tx, mut rx) = mpsc::channel::<Vec<Verified>>(1);
    let node = n.node.clone();
    let appender = tokio::spawn(async move {
        let mut accepted = 0u64;
        while let Some(page) = rx.recv().await {
            match node
                .ask(Request::Ingest {
                    blocks: page,
                    head: None,
                })
                .await
            {
                Ok(Response::Ingested { accepted: a, .. }) => accepted += a,
                other => panic!("verify ceiling: ingest answered {other:?}"),
            }
        }
        accepted
    });
    for page in pages {
        let keys = keys.clone();
        let verified = tokio::task::spawn_blocking(move || {
            page.into_iter()
                .map(|b| b.into_verified(&keys).expect("the bench chain verifies"))
                .collect::<Vec<_>>()
        })
        .await
        .expect("verifier");
        tx.send(verified).await.expect("appender runs");
    }
    drop(tx);
    let accepted = appender.await.expect("appender");
    assert_eq!(accepted, blocks.len() as u64, "every block is taken once");
    let secs = started.elapsed().as_secs_f64();
    Ceiling {
        rate: accepted as f64 / secs,
        fsyncs_per_item: (n.strand.stats().fsyncs - fsyncs0) as f64 / accepted.max(1) as f64,
    }
}

/// One thread's rate of appending block hashes to an author's Merkle tree (every stored
/// block is appended once), of signing heads (at most one every 100 ms per node), and of
/// witness rounds (a peer checks a pushed head carrying one cosignature and cosigns it, the
/// author checks that cosignature): what the tamper-evident ledger adds to the write path.
pub fn ledger(count: u64) -> (f64, f64, f64) {
    use sapix_core::ledger::{Head, HeadKey, Tree, VerifiedHead};
    let blocks: Vec<Hash> = (0..count)
        .map(|i| Hash(*blake3::hash(&i.to_le_bytes()).as_bytes()))
        .collect();
    let started = Instant::now();
    let mut tree = Tree::new();
    for b in &blocks {
        tree.push(b);
    }
    let append = count as f64 / started.elapsed().as_secs_f64();
    let root = tree.root(count).expect("the whole tree");
    let key = HeadKey::from_bytes([7; 32]);
    let author = AgentId::new("bench").expect("id");
    let heads = 2_000u64;
    let started = Instant::now();
    for seq in 1..=heads {
        let head = Head {
            author: author.clone(),
            seq,
            root,
            ts_ms: seq,
        };
        std::hint::black_box(key.sign(head));
    }
    let sign = heads as f64 / started.elapsed().as_secs_f64();
    let (peer, other) = (HeadKey::from_bytes([8; 32]), HeadKey::from_bytes([9; 32]));
    let (peer_id, other_id) = (
        AgentId::new("peer").expect("id"),
        AgentId::new("other").expect("id"),
    );
    let rounds = 1_000u64;
    let pushed: Vec<_> = (1..=rounds)
        .map(|seq| {
            let mut h = key.sign(Head {
                author: author.clone(),
                seq,
                root,
                ts_ms: seq,
            });
            let co = other.cosign(&other_id, &h.head);
            h.cosignatures.push(co);
            h
        })
        .collect();
    let started = Instant::now();
    for h in pushed {
        let checked = VerifiedHead::check(h).expect("honest heads verify");
        let co = peer.cosign(&peer_id, &checked.get().head);
        assert!(co.verifies(&checked.get().head));
    }
    let witness = rounds as f64 / started.elapsed().as_secs_f64();
    (append, sign, witness)
}

/// One thread's rate of sealing blocks (hash and sign) and of verifying them (hash and
/// signature check), over `count` blocks each: the crypto every write pays once on its
/// author and once on every replica.
pub fn crypto(count: u64) -> (f64, f64) {
    let started = Instant::now();
    let blocks = chain("crypto-src", count);
    let seal = count as f64 / started.elapsed().as_secs_f64();
    let keys = KeySchedule::new(MasterSeed::from_hex(TEST_SEED).expect("seed"));
    let started = Instant::now();
    for b in &blocks {
        b.verify(&keys).expect("the bench chain verifies");
    }
    let verify = count as f64 / started.elapsed().as_secs_f64();
    (seal, verify)
}
