//! A peer that falls 1,000,000 blocks behind costs the node almost no memory, and loses
//! nothing: the retry queue is a range of positions in the durable strand, not copies of
//! blocks (DESIGN §4: "hold positions in the durable WAL, not copies"; §6.1, §6.7).
//!
//! The node authors every block itself through `WriteRequested`; appends complete at once
//! and nothing is traced or stored, so the run is dominated by sealing the blocks. The peer
//! is a fake that keeps only the highest seq it holds and checks every push continues it.
//!
//! How memory is measured: a counting global allocator keeps, per thread, the bytes
//! currently allocated. The node writes one block while the peer is up (so every
//! lazily-created piece of state exists), the peer goes down, and the bytes held are read;
//! then the node authors the other 999,999 blocks and they are read again. The growth is
//! everything the node keeps more — the lagging peer's queue, and the node's own hash chain
//! (32 bytes a block, in a `Vec` that doubles). The chain's part is measured on its own by
//! growing a standalone [`Chains`] the same way (the node's chain is a `Chains`), so what is
//! left is what the lagging peer costs. A separate run of the node with no peer gives the
//! same number to the byte but costs another million signatures, so it is not repeated
//! here. Counting per thread keeps the test harness's own threads out of the numbers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sapix_core::auth::Credential;
use sapix_core::block::Hash;
use sapix_core::chain::Chains;
use sapix_core::node::{
    CallId, ClusterState, Failure, Input, Output, Reply, RequestId, Response, Restored,
};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{
    AgentId, Collection, Consistency, Instant, KeySchedule, MasterSeed, Node, NodeConfig, Role,
    UnixMillis,
};

struct Counting;

thread_local! {
    // Const-initialized and without a destructor: safe to touch from inside the allocator.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn add(delta: i64) {
    // `try_with` so an allocation during thread teardown is simply not counted.
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

fn live() -> i64 {
    LIVE.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting only
// touches a thread-local integer.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as i64);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as i64 - layout.size() as i64);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BLOCKS: u64 = 1_000_000;
const MIB: i64 = 1 << 20;

fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

/// The lagging peer: it holds `a`'s chain through `holds`, and nothing else.
struct FakePeer {
    up: bool,
    holds: u64,
    pushes: u64,
}

struct Run {
    node: Node,
    now: Instant,
    next_request: u64,
    next_offset: u64,
    peer: FakePeer,
    written: u64,
}

impl Run {
    fn new() -> Self {
        let keys = KeySchedule::new(MasterSeed::from_bytes([42; 32]));
        let peers = vec![PeerInfo::new(id("b"), "http://b:7475", Role::Replica, 0)];
        let config = NodeConfig {
            agent_id: id("a"),
            endpoint: "http://a:7475".into(),
            added_at: UnixMillis(0),
            backoff: BackoffPolicy::default(),
            rng_seed: 1,
            root: Credential::of_token("root"),
            auth: Default::default(),
            head_key: sapix_core::ledger::HeadKey::from_bytes([1; 32]),
        };
        let restored = Restored {
            cluster: Some(ClusterState {
                role: Role::Primary,
                consistency: Consistency::Ap,
                peers,
                me: None,
            }),
            ..Default::default()
        };
        let node = Node::new(config, keys.signing_key(&id("a")), restored);
        Run {
            node,
            now: Instant::ZERO,
            next_request: 0,
            next_offset: 0,
            peer: FakePeer {
                up: true,
                holds: 0,
                pushes: 0,
            },
            written: 0,
        }
    }

    /// Performs outputs until the node is quiet, as the shell would.
    fn drain(&mut self) {
        while let Some(out) = self.node.poll_output() {
            let input = match out {
                Output::Append { token, blocks } => {
                    let offsets = blocks
                        .iter()
                        .map(|_| {
                            self.next_offset += 1;
                            self.next_offset
                        })
                        .collect();
                    Input::Appended { token, offsets }
                }
                Output::Respond { response, .. } => {
                    assert!(matches!(response, Response::Written(_)), "{response:?}");
                    self.written += 1;
                    continue;
                }
                Output::Log(_) => continue,
                Output::Probe { call, .. } if self.peer.up => ended(
                    call,
                    Ok(Reply::Probed {
                        agent_id: id("b"),
                        holds: self.peer.holds,
                        tip: None,
                        digest: None,
                        head_key: None,
                    }),
                ),
                Output::Push { call, from, to, .. } if self.peer.up => {
                    assert_eq!(from, self.peer.holds + 1, "pushes continue the chain");
                    assert!(to >= from);
                    self.peer.holds = to;
                    self.peer.pushes += 1;
                    ended(call, Ok(Reply::Ingested { witnessed: None }))
                }
                // b has no blocks of its own to serve.
                Output::FetchPage { call, after, .. } if self.peer.up => ended(
                    call,
                    Ok(Reply::Page {
                        blocks: Vec::new(),
                        next: after,
                        tip: after,
                    }),
                ),
                Output::Announce { call, .. } if self.peer.up => ended(
                    call,
                    Ok(Reply::MembersUpdated {
                        members: Vec::new(),
                    }),
                ),
                Output::Probe { call, .. }
                | Output::Push { call, .. }
                | Output::FetchPage { call, .. }
                | Output::Announce { call, .. } => {
                    ended(call, Err(Failure::Unreachable("down".into())))
                }
                // The node persists its cluster view after start; nothing to keep here.
                Output::PersistCluster { call, .. } => ended(call, Ok(Reply::Stored)),
                // Its heads need no answer.
                Output::PersistHead { .. } => continue,
                other => panic!("unexpected {other:?}"),
            };
            self.node.handle(self.now, input);
        }
    }

    fn at(&mut self, now: Instant) {
        while let Some(due) = self.node.poll_timeout().filter(|at| *at <= now) {
            self.now = self.now.max(due);
            self.node.handle_timeout(self.now);
            self.drain();
        }
        self.now = now;
    }

    fn write(&mut self) {
        self.next_request += 1;
        let input = Input::WriteRequested {
            request: RequestId(self.next_request),
            credential: Credential::of_token("root"),
            collection: Collection::new("c").unwrap(),
            payload: b"1".to_vec(),
            wall: UnixMillis(self.now.as_micros() / 1000),
        };
        self.node.handle(self.now, input);
        self.drain();
    }

    fn queue_depth(&mut self) -> Option<u64> {
        self.node.handle(
            self.now,
            Input::StatusRequested {
                request: RequestId(0),
                wall: UnixMillis(0),
            },
        );
        let mut depth = None;
        while let Some(out) = self.node.poll_output() {
            if let Output::Respond {
                response: Response::Status(s),
                ..
            } = out
            {
                depth = s.nodes.get(1).and_then(|n| n.queue_depth);
            }
        }
        depth
    }
}

/// Authors `BLOCKS` blocks, one every 100 µs of simulated time (100 s in all, so the
/// peer is retried and probed throughout), the peer down after the first. Returns the run
/// and how many more bytes this thread held at the end than when the peer was 0 behind.
fn fall_behind() -> (Run, i64) {
    let mut run = Run::new();
    run.at(Instant::ZERO);
    run.write();
    run.at(Instant::from_millis(1));
    assert_eq!(run.queue_depth(), Some(0));
    run.peer.up = false;
    let before = live();
    for i in 2..=BLOCKS {
        run.at(Instant::from_micros(1_000 + i * 100));
        run.write();
    }
    let grown = live() - before;
    (run, grown)
}

/// What the node's own chain costs as it grows from 1 to `BLOCKS` links.
fn chain_growth() -> i64 {
    let (a, h) = (id("a"), Hash([7; 32]));
    let mut chains = Chains::new();
    chains.push_unchecked(&a, h);
    let before = live();
    for _ in 2..=BLOCKS {
        chains.push_unchecked(&a, h);
    }
    let grown = live() - before;
    assert_eq!(chains.total(), BLOCKS);
    grown
}

#[test]
fn a_million_blocks_behind_costs_under_a_mebibyte_and_loses_nothing() {
    let (mut run, node_growth) = fall_behind();
    let chain = chain_growth();

    assert_eq!(run.written, BLOCKS, "every write was acknowledged");
    assert_eq!(
        run.queue_depth(),
        Some(BLOCKS - 1),
        "a million blocks behind"
    );
    let peer_cost = node_growth - chain;
    eprintln!(
        "bytes held by the node grew by {node_growth} while its peer fell {} blocks behind; \
         its own chain accounts for {chain}: the lagging peer costs {peer_cost} bytes",
        BLOCKS - 1
    );
    assert!(peer_cost < MIB, "the lagging peer costs {peer_cost} bytes");
    // Sanity of the method: the chain did grow, 32 bytes a block at least.
    assert!(chain >= 32 * (BLOCKS as i64 - 1), "{chain}");

    // The peer comes back: a probe succeeds and the whole backlog drains, in order.
    run.peer.up = true;
    let healed = run.now + core::time::Duration::from_secs(3);
    run.at(healed);
    assert_eq!(
        run.peer.holds, BLOCKS,
        "no block lost: the peer holds 1..=1,000,000"
    );
    assert_eq!(run.queue_depth(), Some(0));
    assert!(
        run.peer.pushes >= BLOCKS / 256,
        "{} pushes",
        run.peer.pushes
    );
}

/// The input for the end of call `call`.
fn ended(call: CallId, outcome: Result<Reply, Failure>) -> Input {
    Input::CallEnded { call, outcome }
}
