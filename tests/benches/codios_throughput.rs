//! Throughput comparison, printed, not asserted: writes/s of an agent in Codios mode with a
//! warm auth cache against an agent in local mode, in the same run on the same machine. The
//! spec promises cache hits add no latency; the goal is ≥ 95 %. Both agents are loaded at
//! the same time, so the machine's background noise falls on both alike.
//!
//! `cargo bench -p sapix-tests --bench codios_throughput`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sapix_core::auth::{Credential, Decision};
use sapix_core::node::{Input, NodeConfig, Output, Reply, RequestId, Response, Restored};
use sapix_core::{AgentId, Collection, KeySchedule, MasterSeed, Node, UnixMillis};
use sapix_tests::{Agent, Api, Auth, CodiosDev};
use serde_json::json;

const CLIENTS: usize = 12;
const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 6;

/// Writes to each `(base, token)` from `CLIENTS` threads at the same time, for `ROUND`, so
/// whatever else the machine does hits both alike; returns acknowledged writes per second.
fn load(targets: &[(String, String)]) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<AtomicU64>> = targets.iter().map(|_| Arc::default()).collect();
    let started = Instant::now();
    let mut threads = Vec::new();
    for ((base, token), ok) in targets.iter().zip(&counts) {
        for id in 0..CLIENTS {
            let (ok, stop) = (ok.clone(), stop.clone());
            let api = Api::new(base.clone(), token.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let body = Api::record_body("orders", &json!({"client": id, "n": n}));
                    let reply = api.post_with("/v1/records", Auth::Root, body);
                    assert_eq!(reply.status, 201, "{}", reply.text);
                    ok.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            }));
        }
    }
    std::thread::sleep(ROUND);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    let secs = started.elapsed().as_secs_f64();
    counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed) as f64 / secs)
        .collect()
}

/// One client alternating requests between the two agents, `n` each: per-request latency in
/// both modes measured under exactly the same conditions. Returns (local, codios) medians, µs.
fn interleaved_latency(
    local: &(String, String),
    remote: &(String, String),
    n: usize,
) -> (f64, f64) {
    let apis = [
        Api::new(local.0.clone(), local.1.clone()),
        Api::new(remote.0.clone(), remote.1.clone()),
    ];
    let mut lat = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for i in 0..2 * n {
        // Pairs alternate their order (LC, CL, LC…): neither always follows the other.
        let which = (i % 2) ^ ((i / 2) % 2);
        let body = Api::record_body("orders", &json!({"serial": i}));
        let t = Instant::now();
        let reply = apis[which].post_with("/v1/records", Auth::Root, body);
        lat[which].push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let [mut l, mut c] = lat;
    (median(&mut l), median(&mut c))
}

/// The core's own cost of one client write, authorized, sealed, appended and answered, per
/// request in ns: (root key, Codios-mode cache hit). Both seal and sign a block; the
/// difference is what authorization through the cache adds.
fn core_write_ns() -> (f64, f64) {
    let keys = KeySchedule::new(MasterSeed::from_bytes([7; 32]));
    let agent_id = AgentId::new("bench").unwrap();
    let root = Credential::of_token("bench-root-key");
    let config = NodeConfig {
        agent_id: agent_id.clone(),
        endpoint: "http://bench:7475".into(),
        added_at: UnixMillis(0),
        backoff: Default::default(),
        rng_seed: 1,
        root,
        auth: sapix_core::node::AuthSettings {
            codios: true,
            ..Default::default()
        },
        head_key: sapix_core::ledger::HeadKey::from_bytes([7; 32]),
    };
    let mut node = Node::new(config, keys.signing_key(&agent_id), Restored::default());
    let orders = Collection::new("orders").unwrap();
    let alice = Credential::of_token("alice-token");
    let t0 = sapix_core::Instant::ZERO;
    let write = |node: &mut Node, i: u64, credential: Credential| {
        node.handle(
            t0,
            Input::WriteRequested {
                request: RequestId(i),
                credential,
                collection: orders.clone(),
                payload: b"{\"n\":1}".to_vec(),
                wall: UnixMillis(i),
            },
        );
        let (mut answered, mut asked) = (false, None);
        while let Some(o) = node.poll_output() {
            match o {
                Output::Append { token, blocks } => {
                    let offsets = (0..blocks.len() as u64).collect();
                    node.handle(t0, Input::Appended { token, offsets });
                }
                Output::Respond { response, .. } => {
                    answered = matches!(response, Response::Written(_));
                }
                Output::AskCodios { call, .. } => asked = Some(call),
                _ => {}
            }
        }
        (answered, asked)
    };
    let (_, asked) = write(&mut node, 0, alice);
    let call = asked.expect("the first write of a token asks Codios");
    let outcome = Ok(Reply::Decided(Decision::Permit));
    node.handle(t0, Input::CallEnded { call, outcome });
    while node.poll_output().is_some() {}
    const N: u64 = 50_000;
    let mut next = 0;
    let mut per = |credential: Credential| {
        let t = Instant::now();
        for _ in 0..N {
            next += 1;
            assert!(
                write(&mut node, next, credential).0,
                "write {next} not written"
            );
        }
        t.elapsed().as_nanos() as f64 / N as f64
    };
    (per(root), per(alice))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// A benchmark, not a test: run with
/// `cargo bench -p sapix-tests --bench codios_throughput`. It prints figures and asserts none.
fn main() {
    let codios = CodiosDev::start(&json!({"tokens": {"alice-token": {"write": ["*"]}}}));
    let local = Agent::start();
    let remote = Agent::builder()
        .env("SAPIX_CODIOS_URL", &codios.url())
        .start();
    let local = (local.base_url(), local.root_key());
    let remote = (remote.base_url(), "alice-token".to_owned());
    // Warm the cache; with the default 5 s TTL each round still refreshes it once or twice.
    load(&[local.clone(), remote.clone()]);

    let (mut ls, mut cs) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        // Both at once; which is listed first alternates, in case thread start order matters.
        let (lw, cw) = if round % 2 == 1 {
            let r = load(&[local.clone(), remote.clone()]);
            (r[0], r[1])
        } else {
            let r = load(&[remote.clone(), local.clone()]);
            (r[1], r[0])
        };
        println!("round {round}: local {lw:.0} writes/s, codios (warm cache) {cw:.0} writes/s");
        ls.push(lw);
        cs.push(cw);
    }
    let (l, c): (f64, f64) = (ls.iter().sum(), cs.iter().sum());
    println!(
        "concurrent: codios-mode / local-mode throughput {:.1} % ({} clients each, {} x {:?}, \
         {} Codios calls in all)",
        100.0 * c / l,
        CLIENTS,
        ROUNDS,
        ROUND,
        codios.authorize_calls()
    );
    let (lu, cu) = interleaved_latency(&local, &remote, 5_000);
    println!(
        "interleaved single client: median latency local {lu:.0} µs, codios {cu:.0} µs: \
         codios-mode / local-mode throughput {:.1} %",
        100.0 * lu / cu
    );
    let (root_ns, hit_ns) = core_write_ns();
    println!(
        "core: one write (authorize, seal, append, answer) by the root key {root_ns:.0} ns, \
         by a token on a Codios cache hit {hit_ns:.0} ns: authorization adds {:.0} ns",
        hit_ns - root_ns
    );
}
