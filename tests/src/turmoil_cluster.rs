//! Layer 1: the real shell under turmoil. Three `sapix-agent` nodes (the real start-up,
//! runtime, strand and axum router), a fourth that the workload divides in while the faults
//! come, and a `codios-dev` host, on turmoil's simulated network, clock and file system, driven
//! by a seeded workload while seeded faults hit them (partitions, hung links, random link
//! failures, crashes, bounces, clock steps); after the faults stop and everything heals, the
//! DESIGN §6 invariants are checked on the final state.
//!
//! Everything is a function of the seed: turmoil's rng (latencies, and tokio's own scheduling
//! under `--cfg tokio_unstable`), the fault schedule, the workload and each host's clock skew.
//! Blocking work runs inline on each host's task ([`Blocking::Inline`]), so no real thread can
//! reorder events. A process runs one simulation at a time, from the same task-id alignment,
//! so a seed replays identically whatever ran before it in the process (see [`run`]). Storage
//! is turmoil's simulated file system ([`TurmoilDisk`]): a crash is a power cut that keeps only
//! what was fsynced (and tears the last unsynced write at a block boundary), a bounce is a
//! process restart that keeps everything; either way the node recovers from what is left.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sapix_core::{Hash, KeySchedule, MasterSeed, UnixMillis};
use sapix_runtime::blocking::Blocking;
use sapix_runtime::clock::{SkewedClock, WallOffset};
use sapix_runtime::http::{Call, HttpClient};
use sapix_runtime::strand::Strand;
use sapix_server::config::Config;
use sapix_server::startup::{self, Environment};
use serde_json::{json, Value};

use crate::turmoil_disk::{Lie, TurmoilDisk};
use crate::turmoil_net::{connector, trace, Listener};

/// The sapix nodes' host names.
pub const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// A fourth node, running from the start but divided into the cluster during the faults.
const JOINER: &str = "n4";
/// Every sapix node, the joiner last.
const ALL_NODES: [&str; 4] = ["n1", "n2", "n3", JOINER];
const CODIOS: &str = "codios";
const DRIVER: &str = "driver";
const NODE_PORT: u16 = 7475;
const CODIOS_PORT: u16 = 9000;
const SEED_HEX: &str = "7e1f0c2d4b6a8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";
const CODIOS_KEY: &str = "sk-turmoil";
/// Permitted to write anywhere by the Codios policy.
const ALICE: &str = "alice-token";
/// Unknown to Codios: every answer about it is a deny.
const MALLORY: &str = "mallory-token";
/// The simulated wall clock at the start (turmoil's epoch).
const EPOCH_MS: u64 = 1_700_000_000_000;

/// Faults are injected this long after the cluster is formed...
const FAULT_WINDOW: Duration = Duration::from_secs(40);
/// ...and the cluster must converge within this long after they stop.
const CONVERGE_WITHIN: Duration = Duration::from_secs(240);

/// What a run produced: a digest of everything observable (the answers the driver saw and
/// every node's final strand), and counts for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// BLAKE3 over the driver's answers and the final strands.
    pub digest: String,
    /// Writes acknowledged.
    pub acked: usize,
    /// Faults injected.
    pub faults: usize,
    /// Blocks on every node at the end.
    pub blocks: usize,
    /// Whether the joiner was divided in while faults were still coming (else after the heal).
    pub joined_during_faults: bool,
}

/// One fault, or its end.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    Partition(&'static str, &'static str),
    Repair(&'static str, &'static str),
    PartitionOneway(&'static str, &'static str),
    RepairOneway(&'static str, &'static str),
    Hold(&'static str, &'static str),
    Release(&'static str, &'static str),
    Crash(&'static str),
    Restart(&'static str),
    Bounce(&'static str),
    /// The node's wall clock jumps by this many ms (negative: backwards).
    ClockStep(&'static str, i64),
    /// Every link starts failing at random: each 10 ms step it fails with this probability
    /// and, once failed, heals with the seed's repair rate; messages on a failed link are lost.
    LinksFlap(f64),
    /// Links stop failing at random.
    LinksSteady,
}

/// State the driver and the fault loop share (the simulation is single-threaded).
#[derive(Default)]
struct Shared {
    /// Set by the driver when the cluster is formed: faults start then.
    formed_at: Option<Duration>,
    /// Set by the fault loop when every fault has ended and every host runs.
    healed: bool,
    /// Each node's open strand, to read the final state without going through the network.
    strands: BTreeMap<&'static str, Weak<Strand>>,
    /// Each running node's disk, to kill before its host crashes or bounces.
    disks: BTreeMap<&'static str, TurmoilDisk>,
    /// What a node's strand held durably when it last crashed or bounced: a peer can answer a
    /// push and die before the ack reaches the writer, so a CP ack while it is down is fine if
    /// its disk holds the block.
    held_when_down: BTreeMap<&'static str, BTreeSet<Hash>>,
    /// The node whose divide of the joiner was answered 200: from then on its CP writes must
    /// reach the joiner too.
    joined_via: Option<&'static str>,
    /// Invariant violations seen by the hosts (at start-up), reported by the driver.
    violations: Vec<String>,
}

type SharedRef = Rc<RefCell<Shared>>;

/// Per-host clock skew drawn from the seed: an offset of up to ±10 minutes (which
/// [`Fault::ClockStep`] moves) and a drift of up to ±0.1 %. Correctness must not depend on
/// clocks agreeing (§6.8).
fn skews(rng: &mut ChaCha8Rng) -> BTreeMap<&'static str, (WallOffset, i64)> {
    NODES
        .iter()
        .map(|&n| {
            (
                n,
                (
                    WallOffset::new(rng.gen_range(-600_000..=600_000)),
                    rng.gen_range(-1000..=1000),
                ),
            )
        })
        .collect()
}

/// Each node's data directory, on its own host's simulated file system.
fn data_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("/var/lib/sapix/{name}"))
}

fn node_config(name: &str, dir: &std::path::Path) -> Config {
    let vars: BTreeMap<&str, String> = [
        ("SAPIX_AGENT_ID", name.to_string()),
        ("SAPIX_MASTER_SEED", SEED_HEX.to_string()),
        ("SAPIX_DATA_DIR", dir.display().to_string()),
        ("SAPIX_BIND_ADDR", format!("0.0.0.0:{NODE_PORT}")),
        ("SAPIX_ENDPOINT", format!("http://{name}:{NODE_PORT}")),
        ("SAPIX_MESH_TIMEOUT_MS", "2000".to_string()),
        ("SAPIX_CODIOS_URL", format!("http://{CODIOS}:{CODIOS_PORT}")),
        ("SAPIX_CODIOS_API_KEY", CODIOS_KEY.to_string()),
        ("SAPIX_CODIOS_TIMEOUT_MS", "1000".to_string()),
    ]
    .into_iter()
    .collect();
    Config::from_env(|k| vars.get(k).cloned()).expect("valid test config")
}

/// Starts node `name` on the current turmoil host and serves it until the host is crashed.
async fn serve_node(
    name: &'static str,
    dir: PathBuf,
    skew: (WallOffset, i64),
    rng_seed: u64,
    lie: Option<Lie>,
    shared: SharedRef,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = node_config(name, &dir);
    let listener = Listener::bind(NODE_PORT).await?;
    let bound = listener.0.local_addr()?;
    let since_epoch = turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64;
    let disk = TurmoilDisk::current(lie);
    shared.borrow_mut().disks.insert(name, disk.clone());
    let env = Environment {
        clock: Arc::new(SkewedClock::new(
            UnixMillis(EPOCH_MS + since_epoch),
            skew.0,
            skew.1,
        )),
        connector: connector(),
        rng_seed,
        blocking: Blocking::Inline,
        disk: Arc::new(disk),
        head_keys: sapix_server::head_key::KeySource::seeded(rng_seed),
    };
    let started = startup::start(&config, bound, env).await?;
    // What the disk kept must agree with itself right after a crash, before anything heals it.
    if let Err(v) = check_cursors(name, &started.strand, &shared) {
        shared.borrow_mut().violations.push(v);
    }
    shared
        .borrow_mut()
        .strands
        .insert(name, Arc::downgrade(&started.strand));
    startup::spawn_checkpoints(started.strand.clone(), Blocking::Inline);
    drop(started.strand);
    axum::serve(listener, started.app).await?;
    Ok(())
}

async fn serve_codios() -> Result<(), Box<dyn std::error::Error>> {
    let policy = sapix_server::codios_dev::Policy::parse(
        &json!({
            "api_key": CODIOS_KEY,
            "tokens": { ALICE: { "*": ["*"] } },
        })
        .to_string(),
    )?;
    let listener = Listener::bind(CODIOS_PORT).await?;
    axum::serve(listener, sapix_server::codios_dev::router(policy)).await?;
    Ok(())
}

/// Held by the simulation this process is running: one at a time.
static ONE_SIM: Mutex<()> = Mutex::new(());

/// Tokio numbers tasks from one process-wide counter, and a runtime's shutdown drops its tasks
/// shard by shard, a task's shard being its id modulo the shard count (4 on a current-thread
/// runtime). A crash or bounce drops the host's runtime, so the order in which its connections
/// close (and their FIN/RST segments are sent, each drawing a latency from turmoil's rng)
/// depends on the counter's value modulo 4. Each run starts the counter at a multiple of this
/// (which any shard count up to 64 divides), and runs never overlap: two at once would
/// interleave their ids.
const TASK_ID_ALIGN: u64 = 64;

/// Spends task ids until the next one spawned is a multiple of [`TASK_ID_ALIGN`].
fn align_task_ids() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a bare runtime");
    loop {
        let id: u64 = rt
            .spawn(async {})
            .id()
            .to_string()
            .parse()
            .expect("task ids print as numbers");
        if id % TASK_ID_ALIGN == TASK_ID_ALIGN - 1 {
            break;
        }
    }
}

/// Runs seed `seed` to the end and checks the invariants; `Err` says which one broke.
///
/// A process runs one simulation at a time: calls from several threads take turns.
pub fn run(seed: u64) -> Result<Outcome, String> {
    run_with(seed, None)
}

/// [`run`] with nodes whose disks tell `lie`: a planted durability bug the run should catch.
pub fn run_lying(seed: u64, lie: Lie) -> Result<Outcome, String> {
    run_with(seed, Some(lie))
}

fn run_with(seed: u64, lie: Option<Lie>) -> Result<Outcome, String> {
    // See `TASK_ID_ALIGN`.
    let _one = ONE_SIM.lock().unwrap_or_else(PoisonError::into_inner);
    align_task_ids();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shared: SharedRef = Rc::default();
    let Extra {
        faults: more,
        repair_rate,
        joiner_skew,
    } = extra(seed);
    let mut skews = skews(&mut rng);
    skews.insert(JOINER, joiner_skew);

    let mut sim = turmoil::Builder::new();
    sim.rng_seed(seed)
        .repair_rate(repair_rate)
        .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
        .tick_duration(Duration::from_millis(10))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(50))
        .simulation_duration(Duration::from_secs(900))
        .fs()
        // A write not yet fsynced when the power goes is torn at a 512-byte boundary.
        .block_size(512);
    let mut sim = sim.build();

    sim.host(CODIOS, serve_codios);
    for (i, &name) in ALL_NODES.iter().enumerate() {
        let dir = data_dir(name);
        let skew = skews[name].clone();
        let shared = shared.clone();
        let node_seed = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        sim.host(name, move || {
            serve_node(
                name,
                dir.clone(),
                skew.clone(),
                node_seed,
                lie,
                shared.clone(),
            )
        });
    }
    let report: Rc<RefCell<Option<Result<Outcome, String>>>> = Rc::default();
    {
        let (shared, report) = (shared.clone(), report.clone());
        let driver_rng = ChaCha8Rng::seed_from_u64(rng.gen());
        sim.client(DRIVER, async move {
            let result = drive(driver_rng, shared).await;
            *report.borrow_mut() = Some(result);
            Ok(())
        });
    }

    let mut schedule = fault_schedule(&mut rng);
    schedule.extend(more);
    // Stable: faults due at the same moment keep the order they were drawn in.
    schedule.sort_by_key(|(at, _)| *at);
    let faults = schedule.len();
    let mut pending = schedule.into_iter().peekable();
    let mut down: BTreeSet<&'static str> = BTreeSet::new();
    loop {
        let formed = shared.borrow().formed_at;
        if let Some(formed) = formed {
            while let Some((at, _)) = pending.peek() {
                if sim.elapsed() < formed + *at {
                    break;
                }
                let (_, fault) = pending.next().expect("peeked");
                trace::record(|| format!("{:?} fault {fault:?}", sim.elapsed()));
                apply(&mut sim, &fault, &mut down, &shared, &skews);
            }
            if pending.peek().is_none() && !shared.borrow().healed {
                heal(&mut sim, &mut down);
                shared.borrow_mut().healed = true;
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(format!("simulation failed: {e}")),
        }
    }
    let outcome = report
        .borrow_mut()
        .take()
        .unwrap_or_else(|| Err("the driver never reported".into()));
    outcome.map(|o| Outcome { faults, ..o })
}

/// What [`run_traced`] records: every read, write, shutdown and drop on every simulated socket
/// (the bytes, with hyper's real-clock `date:` header blanked), and every fault, each at its
/// simulated time.
pub type Trace = Vec<String>;

/// [`run`], also returning the run's [`Trace`]: two runs of a seed must give equal traces.
pub fn run_traced(seed: u64) -> (Result<Outcome, String>, Trace) {
    trace::start();
    let outcome = run(seed);
    (outcome, trace::take())
}

/// Up to ten faults at seeded moments of the fault window, each ended within it.
fn fault_schedule(rng: &mut ChaCha8Rng) -> Vec<(Duration, Fault)> {
    let mut events = Vec::new();
    let window = FAULT_WINDOW.as_millis() as u64;
    for _ in 0..rng.gen_range(2..=10) {
        let start = rng.gen_range(0..window - 1000);
        let end = rng.gen_range(start + 500..window);
        let a = NODES[rng.gen_range(0..NODES.len())];
        let others: Vec<&'static str> = NODES
            .iter()
            .copied()
            .chain([CODIOS])
            .filter(|&h| h != a)
            .collect();
        let b = others[rng.gen_range(0..others.len())];
        let (begin, finish) = match rng.gen_range(0..7) {
            0 => (Fault::Partition(a, b), Some(Fault::Repair(a, b))),
            1 => (
                Fault::PartitionOneway(a, b),
                Some(Fault::RepairOneway(a, b)),
            ),
            2 => (Fault::Hold(a, b), Some(Fault::Release(a, b))),
            3 => (Fault::Crash(a), Some(Fault::Restart(a))),
            4 => (Fault::Bounce(a), None),
            5 => (Fault::Crash(CODIOS), Some(Fault::Restart(CODIOS))),
            _ => (Fault::Hold(a, CODIOS), Some(Fault::Release(a, CODIOS))),
        };
        events.push((Duration::from_millis(start), begin));
        if let Some(f) = finish {
            events.push((Duration::from_millis(end), f));
        }
    }
    events.sort_by_key(|(at, _)| *at);
    events
}

/// What a seed draws from its second stream.
struct Extra {
    /// Clock steps, random link failures, and faults of the joiner.
    faults: Vec<(Duration, Fault)>,
    /// The rate at which a randomly failed link heals.
    repair_rate: f64,
    /// The joiner's clock skew.
    joiner_skew: (WallOffset, i64),
}

/// The seed's second stream of draws. Kept apart so that adding these fault classes and the
/// joiner left the rest of every seed's schedule as it was.
fn extra(seed: u64) -> Extra {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC10C_F1A9_5EED_0001);
    let window = FAULT_WINDOW.as_millis() as u64;
    let mut events = Vec::new();
    let joiner_skew = (
        WallOffset::new(rng.gen_range(-600_000..=600_000)),
        rng.gen_range(-1000..=1000),
    );
    // The joiner may be cut off or crash around the time it is divided in.
    if rng.gen_bool(0.5) {
        let start = rng.gen_range(0..window - 1000);
        let end = rng.gen_range(start + 500..window);
        let (begin, finish) = if rng.gen_bool(0.5) {
            (Fault::Crash(JOINER), Fault::Restart(JOINER))
        } else {
            let other = NODES[rng.gen_range(0..NODES.len())];
            (
                Fault::Partition(JOINER, other),
                Fault::Repair(JOINER, other),
            )
        };
        events.push((Duration::from_millis(start), begin));
        events.push((Duration::from_millis(end), finish));
    }
    for _ in 0..rng.gen_range(0..=3) {
        let node = NODES[rng.gen_range(0..NODES.len())];
        let by: i64 = rng.gen_range(1_000..=600_000);
        let by = if rng.gen_bool(0.5) { -by } else { by };
        events.push((
            Duration::from_millis(rng.gen_range(0..window)),
            Fault::ClockStep(node, by),
        ));
    }
    // Per 10 ms step and link: a failure every few seconds, lasting 50 ms to a second.
    let repair_rate = rng.gen_range(0.01..0.2);
    if rng.gen_bool(0.3) {
        let start = rng.gen_range(0..window - 1000);
        let end = rng.gen_range(start + 500..window);
        let fail_rate = rng.gen_range(0.0005..0.005);
        events.push((Duration::from_millis(start), Fault::LinksFlap(fail_rate)));
        events.push((Duration::from_millis(end), Fault::LinksSteady));
    }
    Extra {
        faults: events,
        repair_rate,
        joiner_skew,
    }
}

fn apply(
    sim: &mut turmoil::Sim<'_>,
    fault: &Fault,
    down: &mut BTreeSet<&'static str>,
    shared: &SharedRef,
    skews: &BTreeMap<&'static str, (WallOffset, i64)>,
) {
    if let Fault::Crash(h) | Fault::Bounce(h) = *fault {
        // Inline writer: the strand's entries are exactly what is durable on its disk.
        if let Some(strand) = strand_of(shared, h) {
            let held = strand.entries().into_iter().map(|e| e.hash).collect();
            shared.borrow_mut().held_when_down.insert(h, held);
        }
        if let Some(disk) = shared.borrow_mut().disks.remove(h) {
            disk.kill();
        }
    }
    match *fault {
        Fault::Partition(a, b) => sim.partition(a, b),
        Fault::Repair(a, b) => sim.repair(a, b),
        Fault::PartitionOneway(a, b) => sim.partition_oneway(a, b),
        Fault::RepairOneway(a, b) => sim.repair_oneway(a, b),
        Fault::Hold(a, b) => sim.hold(a, b),
        Fault::Release(a, b) => sim.release(a, b),
        Fault::Crash(h) => {
            if down.insert(h) {
                sim.crash(h);
            }
        }
        Fault::Restart(h) => {
            if down.remove(h) {
                sim.bounce(h);
            }
        }
        Fault::Bounce(h) => {
            if !down.contains(h) {
                sim.bounce(h);
            }
        }
        Fault::ClockStep(h, by) => skews[h].0.step(by),
        // The heal rate is the builder's (turmoil has no setter for it).
        Fault::LinksFlap(fail) => sim.set_fail_rate(fail),
        Fault::LinksSteady => sim.set_fail_rate(0.0),
    }
}

/// Ends every fault: links stop failing and are repaired and released both ways (the
/// driver's too), crashed hosts restarted. Clocks keep their steps.
fn heal(sim: &mut turmoil::Sim<'_>, down: &mut BTreeSet<&'static str>) {
    sim.set_fail_rate(0.0);
    let hosts: Vec<&'static str> = ALL_NODES.iter().copied().chain([CODIOS, DRIVER]).collect();
    for (i, &a) in hosts.iter().enumerate() {
        for &b in &hosts[i + 1..] {
            sim.repair(a, b);
            sim.release(a, b);
        }
    }
    for h in std::mem::take(down) {
        sim.bounce(h);
    }
}

/// The driver's view of one node's consistency mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cp,
    Ap,
    /// A switch whose answer was lost: either may hold.
    Unknown,
}

/// An acknowledged write.
#[derive(Debug, Clone)]
struct Acked {
    node: &'static str,
    hash: Hash,
}

/// A client of every node, over the same HTTP client the nodes use for each other.
struct Driver {
    http: HttpClient,
    root_key: String,
    /// Every answer seen, in order, for the digest.
    log: Vec<String>,
}

impl Driver {
    async fn call(&mut self, call: Call<'_>) -> Option<(u16, Value)> {
        let what = format!("{:?}", call);
        let answer = self.http.send(call).await;
        let out = match answer {
            Ok(a) => Some((
                a.status.as_u16(),
                serde_json::from_slice(&a.body).unwrap_or(Value::Null),
            )),
            Err(_) => None,
        };
        self.log.push(format!(
            "{} -> {:?}",
            what.split("bearer").next().unwrap_or_default(),
            out.as_ref().map(|(s, _)| *s)
        ));
        out
    }

    async fn get(&mut self, node: &str, path: &str) -> Option<(u16, Value)> {
        let key = self.root_key.clone();
        self.call(Call::get(format!("http://{node}:{NODE_PORT}{path}"), 1 << 20).bearer(&key))
            .await
    }

    async fn post(
        &mut self,
        node: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Option<(u16, Value)> {
        let url = format!("http://{node}:{NODE_PORT}{path}");
        self.call(Call::post_json(url, body, 1 << 20).bearer(token))
            .await
    }
}

/// Polls `cond` every simulated second until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn strand_of(shared: &SharedRef, node: &str) -> Option<Arc<Strand>> {
    shared.borrow().strands.get(node).and_then(Weak::upgrade)
}

/// Forms the cluster, runs the workload through the faults, waits for convergence and checks.
async fn drive(mut rng: ChaCha8Rng, shared: SharedRef) -> Result<Outcome, String> {
    let keys = KeySchedule::new(MasterSeed::from_hex(SEED_HEX).expect("hex seed"));
    let mut d = Driver {
        http: HttpClient::new(connector(), Duration::from_secs(5), Duration::from_secs(2)),
        root_key: keys.default_root_key().expose().to_string(),
        log: Vec::new(),
    };
    let root = d.root_key.clone();

    // Formation, fault-free: n1 divides to n2 and n3; the membership reaches everyone. The
    // joiner runs alone until the workload divides it in.
    for node in ALL_NODES {
        let mut up = false;
        for _ in 0..30 {
            if matches!(d.get(node, "/healthz").await, Some((200, _))) {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !up {
            return Err(format!("{node} never answered /healthz"));
        }
    }
    for new in ["n2", "n3"] {
        let body = json!({ "new_agent_id": new, "endpoint": format!("http://{new}:{NODE_PORT}"), "role": "Replica" });
        match d.post("n1", "/v1/cluster/divide", &root, &body).await {
            Some((200, _)) => {}
            other => return Err(format!("divide to {new} answered {other:?}")),
        }
    }
    for node in NODES {
        let mut meshed = false;
        for _ in 0..60 {
            if let Some((200, s)) = d.get(node, "/v1/cluster/status").await {
                let known = s["nodes"].as_array().map_or(0, Vec::len);
                if known == NODES.len() {
                    meshed = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !meshed {
            return Err(format!("{node} never learned the full membership"));
        }
    }
    shared.borrow_mut().formed_at = Some(turmoil::sim_elapsed().unwrap_or_default());

    // The workload, while faults come and go: writes on any node (the joiner's too, before and
    // after it joins), mode switches, manual syncs, and the joiner's divide.
    let mut modes: BTreeMap<&'static str, Mode> =
        ALL_NODES.iter().map(|&n| (n, Mode::Cp)).collect();
    let mut acked: Vec<Acked> = Vec::new();
    let mut n = 0u64;
    while !shared.borrow().healed {
        let node = ALL_NODES[rng.gen_range(0..ALL_NODES.len())];
        if shared.borrow().joined_via.is_none() && rng.gen_bool(0.05) {
            divide_joiner(&mut d, &shared, NODES[rng.gen_range(0..NODES.len())]).await;
        }
        match rng.gen_range(0..10) {
            0 => {
                let mode = if rng.gen_bool(0.5) { "Ap" } else { "Cp" };
                let body = json!({ "mode": mode });
                modes.insert(
                    node,
                    match d.post(node, "/v1/cluster/consistency", &root, &body).await {
                        Some((200, _)) if mode == "Cp" => Mode::Cp,
                        Some((200, _)) => Mode::Ap,
                        Some(_) => modes[node],
                        None => Mode::Unknown,
                    },
                );
            }
            1 => {
                let peer = ALL_NODES[rng.gen_range(0..ALL_NODES.len())];
                let path = format!("/v1/mesh/sync/{peer}");
                d.post(node, &path, &root, &json!({})).await;
            }
            k => {
                n += 1;
                let token = match k {
                    2 => MALLORY,
                    3..=5 => ALICE,
                    _ => root.as_str(),
                };
                let body = json!({ "collection": "orders", "data": { "n": n } });
                let mode = modes[node];
                let answer = d.post(node, "/v1/records", token, &body).await;
                if let Some((201, receipt)) = answer {
                    // §6.6: Codios never permits mallory, so no cache can either.
                    if token == MALLORY {
                        return Err(format!("{node} acknowledged a write Codios denies"));
                    }
                    let hash = receipt["hash"]
                        .as_str()
                        .and_then(Hash::from_hex)
                        .ok_or_else(|| format!("receipt without a hash: {receipt}"))?;
                    if mode == Mode::Cp {
                        check_cp(&shared, node, &hash)?;
                    }
                    acked.push(Acked { node, hash });
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1500))).await;
    }

    // Healed: the joiner is divided in if it was not yet, then every node converges to the
    // same blocks, holding every acknowledged write.
    let joined_during_faults = shared.borrow().joined_via.is_some();
    if !joined(&mut d, &shared).await {
        return Err(format!("{JOINER} never joined the cluster"));
    }
    let converged = eventually(CONVERGE_WITHIN, || {
        let shared = shared.clone();
        let acked = acked.clone();
        async move { same_blocks(&shared).is_ok() && missing(&shared, &acked).is_none() }
    })
    .await;
    if !converged {
        same_blocks(&shared)?;
        if let Some(m) = missing(&shared, &acked) {
            return Err(m);
        }
    }
    let mut digest = blake3::Hasher::new();
    for line in &d.log {
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    if let Some(v) = shared.borrow().violations.first() {
        return Err(v.clone());
    }
    let mut blocks = 0;
    for node in ALL_NODES {
        let strand = strand_of(&shared, node).ok_or_else(|| format!("{node} is not running"))?;
        blocks = check_strand(node, &strand, &keys)?;
        check_cursors(node, &strand, &shared)?;
        for e in strand.entries() {
            digest.update(e.hash.to_hex().as_bytes());
        }
    }
    Ok(Outcome {
        digest: digest.finalize().to_hex().to_string(),
        acked: acked.len(),
        faults: 0,
        blocks,
        joined_during_faults,
    })
}

/// Asks `via` to divide the cluster to the joiner; true if it answered 200.
async fn divide_joiner(d: &mut Driver, shared: &SharedRef, via: &'static str) -> bool {
    let root = d.root_key.clone();
    let endpoint = format!("http://{JOINER}:{NODE_PORT}");
    let body = json!({ "new_agent_id": JOINER, "endpoint": endpoint, "role": "Replica" });
    let ok = matches!(
        d.post(via, "/v1/cluster/divide", &root, &body).await,
        Some((200, _))
    );
    if ok {
        shared.borrow_mut().joined_via = Some(via);
    }
    ok
}

/// After the heal: the joiner is a member, dividing it in now if no divide was answered 200
/// (one may have succeeded with its answer lost: then a founding node already lists it).
async fn joined(d: &mut Driver, shared: &SharedRef) -> bool {
    for attempt in 0..30 {
        if shared.borrow().joined_via.is_some() {
            return true;
        }
        let via = NODES[attempt % NODES.len()];
        if let Some((200, s)) = d.get(via, "/v1/cluster/status").await {
            let listed = s["nodes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|m| m["agent_id"] == JOINER));
            if listed {
                return true;
            }
        }
        if divide_joiner(d, shared, via).await {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    false
}

/// §6.3: a write acknowledged in CP mode is already on every peer: the founding nodes, and
/// the joiner once the writer itself divided it in. (Other nodes learn the joiner by
/// announcement, at a moment the driver cannot see; the joiner learns its peers the same way,
/// so its own CP writes are not judged.)
fn check_cp(shared: &SharedRef, node: &str, hash: &Hash) -> Result<(), String> {
    if node == JOINER {
        return Ok(());
    }
    let joiner = (shared.borrow().joined_via == Some(node)).then_some(JOINER);
    for peer in NODES.iter().copied().chain(joiner).filter(|&p| p != node) {
        // A peer that is down now may have stored the block and answered just before it
        // died: judge it by what its disk held then.
        let Some(strand) = strand_of(shared, peer) else {
            let s = shared.borrow();
            if s.held_when_down.get(peer).is_some_and(|h| h.contains(hash)) {
                continue;
            }
            return Err(format!(
                "{node} acknowledged CP write {} while {peer} was down without it",
                hash.to_hex()
            ));
        };
        if strand.offset_of_hash(hash).is_none() {
            return Err(format!(
                "{node} acknowledged CP write {} that {peer} does not hold",
                hash.to_hex()
            ));
        }
    }
    Ok(())
}

/// §6.7: a persisted pull cursor never passes a block the node does not hold durably: every
/// block at the peer's offsets up to the cursor in `node`'s `sync_cursors.json` is in
/// `node`'s strand. (Offsets of durable blocks never change, so a running peer's strand
/// answers for the blocks the pull saw.)
fn check_cursors(node: &str, strand: &Strand, shared: &SharedRef) -> Result<(), String> {
    let Some(disk) = shared.borrow().disks.get(node).cloned() else {
        return Ok(());
    };
    let dir = data_dir(node).join("strand");
    let (_, cursors) = sapix_runtime::persist::load(&disk, &dir)
        .map_err(|e| format!("{node}: unreadable state files: {e}"))?;
    for (peer, cursor) in cursors {
        let Some(theirs) = strand_of(shared, peer.as_str()) else {
            continue;
        };
        let passed = theirs
            .entries()
            .into_iter()
            .take_while(|e| e.offset <= cursor)
            .find(|e| strand.offset_of_hash(&e.hash).is_none());
        if let Some(e) = passed {
            return Err(format!(
                "{node}'s cursor for {peer} is {cursor}, past {peer}'s offset {} ({}) which {node} does not hold",
                e.offset,
                e.hash.to_hex()
            ));
        }
    }
    Ok(())
}

/// §6.2: every node holds the same set of blocks.
fn same_blocks(shared: &SharedRef) -> Result<(), String> {
    let mut sets = Vec::new();
    for node in ALL_NODES {
        let strand = strand_of(shared, node).ok_or_else(|| format!("{node} is not running"))?;
        let set: BTreeSet<(String, u64, Hash)> = strand
            .entries()
            .into_iter()
            .map(|e| (e.author.to_string(), e.seq, e.hash))
            .collect();
        sets.push((node, set));
    }
    let (first, base) = &sets[0];
    for (node, set) in &sets[1..] {
        if set != base {
            return Err(format!(
                "blocks differ: {first} holds {} and {node} holds {} ({} only on {first}, {} only on {node})",
                base.len(),
                set.len(),
                base.difference(set).count(),
                set.difference(base).count()
            ));
        }
    }
    Ok(())
}

/// §6.1: the first acknowledged write some node lacks, if any.
fn missing(shared: &SharedRef, acked: &[Acked]) -> Option<String> {
    for node in ALL_NODES {
        let strand = strand_of(shared, node)?;
        if let Some(a) = acked
            .iter()
            .find(|a| strand.offset_of_hash(&a.hash).is_none())
        {
            return Some(format!(
                "write {} acknowledged by {} is missing on {node}",
                a.hash.to_hex(),
                a.node
            ));
        }
    }
    None
}

/// §6.4 and §6.5 on one node's strand: every block verifies, each author's chain is contiguous
/// and linked, and no block is stored twice. Returns the number of blocks.
fn check_strand(node: &str, strand: &Strand, keys: &KeySchedule) -> Result<usize, String> {
    let entries = strand.entries();
    let mut chains: BTreeMap<String, (u64, Hash)> = BTreeMap::new();
    let mut hashes = BTreeSet::new();
    for e in &entries {
        if !hashes.insert(e.hash) {
            return Err(format!("{node} stores {} twice", e.hash.to_hex()));
        }
        let block = strand
            .get(e.offset)
            .map_err(|err| format!("{node} offset {}: {err}", e.offset))?
            .ok_or_else(|| format!("{node} offset {} is unreadable", e.offset))?;
        block
            .verify(keys)
            .map_err(|err| format!("{node} offset {} does not verify: {err}", e.offset))?;
        let (seq, prev) = chains
            .entry(e.author.to_string())
            .or_insert((0, Hash::ZERO));
        if block.body.seq != *seq + 1 || block.body.prev != *prev {
            return Err(format!(
                "{node}: {}'s seq {} does not follow seq {seq}",
                e.author, block.body.seq
            ));
        }
        *seq = block.body.seq;
        *prev = block.hash;
    }
    Ok(entries.len())
}

/// The command that replays `seed` alone.
pub fn replay_command(seed: u64) -> String {
    format!(
        "TURMOIL_SEED={seed} cargo test -p sapix-tests --test turmoil_cluster replay -- --nocapture"
    )
}
