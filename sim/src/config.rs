//! The swarm configuration one seed draws: cluster size, workload mix, and which fault classes
//! are on and how hard they hit.
//!
//! Swarm testing (Groce et al.): instead of every seed running every fault at a middling rate,
//! each seed switches whole classes off and draws the rates of the rest, so some seeds are
//! quiet enough for rare interleavings to survive and others are storms. Every random choice
//! of a run comes from one `u64` seed through [`stream`], one ChaCha stream per concern, so
//! changing how the workload draws never perturbs the network's draws.

use core::fmt;
use core::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sapix_core::auth::{AuthPolicy, BreakerConfig};
use sapix_core::node::planted::PlantedBug;

/// Simulated time in microseconds since the start of the run.
pub type Micros = u64;

/// One second of simulated time.
pub const SECOND: Micros = 1_000_000;
/// One millisecond of simulated time.
pub const MILLI: Micros = 1_000;

/// The independent random streams of a run.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// Drawing the [`Config`].
    Config = 1,
    /// Latency, loss, duplication.
    Network = 2,
    /// Client operations.
    Workload = 3,
    /// Crashes, partitions, clock steps.
    Faults = 4,
    /// Storage latencies and crash tails.
    Storage = 5,
    /// Seeds of the nodes' own rngs and clock origins.
    Nodes = 6,
    /// Codios: whether it is used, its policy changes, outages and latencies. Its own stream,
    /// so a seed with Codios off runs exactly as it did before Codios was modelled.
    Codios = 7,
    /// Read-your-writes reads: when they fire and what they ask. Its own stream, so the
    /// other draws of a seed are those it had before reads were modelled.
    Reads = 8,
    /// The forging node: whether it acts, when, and what it forges. Its own stream, so a
    /// seed without it runs exactly as before it was modelled.
    Forgery = 9,
}

/// The rng of one concern of the run seeded by `seed`.
pub fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}

/// A rate of events per simulated second, with the time an episode lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Episodes {
    /// Mean episodes started per second (Poisson).
    pub per_sec: f64,
    /// Shortest episode.
    pub min: Micros,
    /// Longest episode.
    pub max: Micros,
}

impl Episodes {
    /// An episode's length, drawn from `rng`.
    pub(crate) fn length(&self, rng: &mut ChaCha8Rng) -> Micros {
        rng.gen_range(self.min..=self.max)
    }
}

/// The time to the next event of a Poisson process at `rate` per second, drawn from `rng`
/// (exponential; at least 1 µs, so a process never fires twice at one instant).
pub(crate) fn poisson_gap(rng: &mut ChaCha8Rng, rate: f64) -> Micros {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    ((-u.ln() / rate) * SECOND as f64) as Micros + 1
}

/// Client operations.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Writes per second across the cluster.
    pub writes_per_sec: f64,
    /// CP↔AP switches per second, if on.
    pub switches_per_sec: Option<f64>,
    /// Manual `SyncRequested` per second, if on.
    pub syncs_per_sec: Option<f64>,
    /// Divides of a spare node per second, if on (needs spares).
    pub divides_per_sec: Option<f64>,
    /// Status requests per second.
    pub status_per_sec: f64,
    /// Reads naming an acknowledged write's position, per second, on any node.
    pub reads_per_sec: Option<f64>,
    /// Whether spare (not yet divided) nodes take writes too.
    pub writes_on_spares: bool,
    /// Initial mode per initial member: true = AP.
    pub initial_ap: Vec<bool>,
}

/// The network between nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// Base one-way latency range of a link (each directed link draws its own).
    pub latency: (Micros, Micros),
    /// Extra uniform jitter per message, at most.
    pub jitter: Micros,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a request is delivered twice.
    pub dup: f64,
    /// Probability a message is held back (reordered behind later ones).
    pub reorder: f64,
    /// How long a held-back message waits, at most.
    pub reorder_delay: Micros,
    /// The mesh client's call timeout.
    pub timeout: Micros,
    /// Symmetric partitions of a random split of the nodes.
    pub partitions: Option<Episodes>,
    /// One-way link cuts.
    pub one_way: Option<Episodes>,
    /// Flapping links, with the toggle period bound.
    pub flapping: Option<(Episodes, Micros)>,
    /// Swizzle-clog (FoundationDB): nodes are cut off one by one in a random order, a step
    /// apart, then reconnected one by one in another random order. Episodes per second and
    /// the step bound.
    pub swizzle: Option<(f64, Micros)>,
}

/// Node and storage faults and latencies.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Crashes (with restart after the episode's downtime).
    pub crashes: Option<Episodes>,
    /// Stalls of a node's actor (GC-like pauses, a blocked thread): inputs queue up, timers
    /// wait, the disk and the server's export keep going.
    pub pauses: Option<Episodes>,
    /// On a crash, appends and state-file writes already handed over may survive (a random
    /// prefix of them), as when the fsync finished but its completion was never delivered.
    pub crash_keeps_tail: bool,
    /// Storage failures per second (the strand fails until the node restarts), if on.
    pub storage_faults: Option<f64>,
    /// Full disks: while an episode lasts, every append on the node fails storing nothing;
    /// space returns when it ends, and writes must resume by themselves.
    pub disk_full: Option<Episodes>,
    /// Fsync latency range of one append.
    pub fsync: (Micros, Micros),
    /// Probability an fsync stalls for up to 250 ms.
    pub slow_fsync: f64,
    /// Latency range of one state-file write.
    pub persist: (Micros, Micros),
    /// Forgeries per second, if on: someone holding the master seed signs a block as a
    /// member and sends it to every node (issue 17). Never with a member left down for good,
    /// whose blocks only pulls spread (a forged block stops a pull at it).
    pub forgeries: Option<f64>,
}

/// Clocks.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockConfig {
    /// Each boot's monotonic origin is a random instant instead of zero.
    pub random_origin: bool,
    /// Drift bound in parts per million (each node draws its own rate).
    pub drift_ppm: u32,
    /// Wall-clock offset bound in ms (each node draws its own).
    pub wall_offset_ms: u64,
    /// Wall-clock steps per second (NTP jumps of up to ±60 s), if on.
    pub wall_steps: Option<f64>,
}

/// Codios and the nodes' authorization settings (DESIGN §5), when the seed turns it on.
#[derive(Debug, Clone, PartialEq)]
pub struct CodiosConfig {
    /// Cache TTLs, stale bound, `require_codios`, capacity — the same for every node.
    pub policy: AuthPolicy,
    /// The opt-in circuit breaker.
    pub breaker: BreakerConfig,
    /// Bearer tokens the clients use (never the root key); each has a decision per collection.
    pub tokens: usize,
    /// Share of writes made with the root key (always permitted, Codios not asked).
    pub root_share: f64,
    /// Policy changes per second: one (token, collection) flips between permit and deny.
    pub flips_per_sec: f64,
    /// One-way latency range between a node and Codios.
    pub latency: (Micros, Micros),
    /// The node's Codios call timeout (`SAPIX_CODIOS_TIMEOUT_MS`).
    pub timeout: Micros,
    /// Outages: Codios refuses connections.
    pub outages: Option<Episodes>,
    /// Slow spells: each answer takes up to `slow_extra` more (often past the timeout).
    pub slow: Option<(Episodes, Micros)>,
    /// Flapping: Codios goes up and down with a period bound.
    pub flapping: Option<(Episodes, Micros)>,
}

impl CodiosConfig {
    /// Draws Codios for `seed` from its own stream: off for about half the seeds.
    fn draw(seed: u64) -> Option<CodiosConfig> {
        let r = &mut stream(seed, Stream::Codios);
        if !r.gen_bool(0.5) {
            return None;
        }
        let require_codios = r.gen_bool(0.2);
        let policy = AuthPolicy {
            permit_ttl: Duration::from_millis(r.gen_range(500..=10_000)),
            max_stale: Duration::from_millis(r.gen_range(1_000..=300_000)),
            require_codios,
            // Tiny caches make eviction part of the story.
            capacity: if r.gen_bool(0.2) {
                r.gen_range(1..=4)
            } else {
                AuthPolicy::default().capacity
            },
            ..AuthPolicy::default()
        };
        let breaker = BreakerConfig {
            // The breaker and require_codios are refused together at config time.
            enabled: !require_codios && r.gen_bool(0.5),
            open_after: Duration::from_millis(r.gen_range(500..=30_000)),
            probe_interval: Duration::from_millis(r.gen_range(200..=5_000)),
        };
        let lat_lo = r.gen_range(100..=5 * MILLI);
        Some(CodiosConfig {
            policy,
            breaker,
            tokens: r.gen_range(1..=4),
            root_share: r.gen_range(0.0..0.3),
            flips_per_sec: log_uniform(r, 0.05, 2.0),
            latency: (lat_lo, r.gen_range(lat_lo..=lat_lo + 50 * MILLI)),
            timeout: if r.gen_bool(0.5) {
                2 * SECOND
            } else {
                r.gen_range(50 * MILLI..=3 * SECOND)
            },
            outages: maybe(r, 0.5, |r| {
                episodes(r, (0.02, 0.3), (100 * MILLI, 60 * SECOND))
            }),
            slow: maybe(r, 0.3, |r| {
                let e = episodes(r, (0.02, 0.3), (100 * MILLI, 20 * SECOND));
                (e, r.gen_range(10 * MILLI..=5 * SECOND))
            }),
            flapping: maybe(r, 0.3, |r| {
                let e = episodes(r, (0.02, 0.1), (SECOND, 30 * SECOND));
                (e, r.gen_range(20 * MILLI..=2 * SECOND))
            }),
        })
    }
}

/// Everything a run is told: the seed and what it drew.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The master seed.
    pub seed: u64,
    /// Initial members (2..=5).
    pub members: usize,
    /// Spare nodes that can be divided in later (members + spares ≤ 5).
    pub spares: usize,
    /// Length of the phase with workload and faults.
    pub active: Micros,
    /// Bound on the liveness phase: all nodes must converge within it.
    pub liveness: Micros,
    /// Bound on membership (DESIGN §6.9): every live member knows every member this long
    /// after faults stop, or after the last member joined if later.
    pub membership: Micros,
    /// The liveness phase restarts every node (otherwise only those down or broken).
    pub restart_all: bool,
    /// The liveness phase leaves this member down for good: the others must still converge,
    /// including on its blocks that any of them holds (only pulls can spread those).
    pub leave_down: Option<usize>,
    /// Client operations.
    pub workload: WorkloadConfig,
    /// The network.
    pub net: NetConfig,
    /// Nodes and storage.
    pub nodes: NodeConfig,
    /// Clocks.
    pub clocks: ClockConfig,
    /// Codios, if the nodes use it (otherwise they run in local mode: root key only).
    pub codios: Option<CodiosConfig>,
    /// Bugs planted in every node (the "it bites" tests); never drawn.
    pub bugs: Vec<PlantedBug>,
}

fn maybe<T>(rng: &mut ChaCha8Rng, p: f64, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> Option<T> {
    if rng.gen_bool(p) {
        Some(f(rng))
    } else {
        None
    }
}

/// Log-uniform in `[lo, hi]`: rates spread over orders of magnitude.
fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (rng.gen_range(lo.ln()..=hi.ln())).exp()
}

fn episodes(rng: &mut ChaCha8Rng, rate: (f64, f64), len: (Micros, Micros)) -> Episodes {
    let min = rng.gen_range(len.0..=len.1);
    let max = rng.gen_range(min..=len.1);
    Episodes {
        per_sec: log_uniform(rng, rate.0, rate.1),
        min,
        max,
    }
}

impl Config {
    /// Draws the configuration of `seed`.
    pub fn draw(seed: u64) -> Config {
        let r = &mut stream(seed, Stream::Config);
        let total = r.gen_range(2..=5usize);
        let members = r.gen_range(2..=total);
        let spares = total - members;
        // A few long runs let outages outlast the backoff cap (about a minute of failures).
        let active = if r.gen_bool(0.1) {
            r.gen_range(120..=300)
        } else {
            r.gen_range(10..=90)
        } * SECOND;
        let mode = r.gen_range(0..3);
        let initial_ap = (0..members)
            .map(|_| match mode {
                0 => false,
                1 => true,
                _ => r.gen_bool(0.5),
            })
            .collect();
        let workload = WorkloadConfig {
            writes_per_sec: log_uniform(r, 0.5, 40.0),
            switches_per_sec: maybe(r, 0.5, |r| log_uniform(r, 0.02, 0.5)),
            syncs_per_sec: maybe(r, 0.5, |r| log_uniform(r, 0.05, 1.0)),
            divides_per_sec: if spares > 0 {
                maybe(r, 0.8, |r| log_uniform(r, 0.03, 0.3))
            } else {
                None
            },
            status_per_sec: 0.2,
            reads_per_sec: Some(2.0),
            writes_on_spares: r.gen_bool(0.3),
            initial_ap,
        };
        let lat_lo = r.gen_range(100..=5 * MILLI);
        let lat_hi = r.gen_range(lat_lo..=lat_lo + 80 * MILLI);
        let net = NetConfig {
            latency: (lat_lo, lat_hi),
            jitter: r.gen_range(0..=lat_hi),
            loss: maybe(r, 0.4, |r| log_uniform(r, 0.001, 0.2)).unwrap_or(0.0),
            dup: maybe(r, 0.3, |r| log_uniform(r, 0.001, 0.1)).unwrap_or(0.0),
            reorder: maybe(r, 0.3, |r| log_uniform(r, 0.01, 0.2)).unwrap_or(0.0),
            reorder_delay: r.gen_range(10 * MILLI..=2 * SECOND),
            timeout: if r.gen_bool(0.3) {
                r.gen_range(300 * MILLI..=5 * SECOND)
            } else {
                5 * SECOND
            },
            partitions: maybe(r, 0.5, |r| {
                episodes(r, (0.02, 0.2), (200 * MILLI, 30 * SECOND))
            }),
            one_way: maybe(r, 0.3, |r| {
                episodes(r, (0.02, 0.2), (200 * MILLI, 30 * SECOND))
            }),
            flapping: maybe(r, 0.3, |r| {
                let e = episodes(r, (0.02, 0.1), (SECOND, 20 * SECOND));
                (e, r.gen_range(20 * MILLI..=SECOND))
            }),
            swizzle: None, // drawn last, below, so earlier draws keep their values
        };
        let fsync_lo = r.gen_range(20..=2 * MILLI);
        let persist_lo = r.gen_range(50..=5 * MILLI);
        let nodes = NodeConfig {
            crashes: maybe(r, 0.5, |r| {
                // Some seeds keep a node down long enough for the backoff to reach its cap.
                let longest = if r.gen_bool(0.2) { 100 } else { 20 };
                episodes(r, (0.01, 0.2), (10 * MILLI, longest * SECOND))
            }),
            pauses: maybe(r, 0.3, |r| episodes(r, (0.02, 0.3), (MILLI, 10 * SECOND))),
            crash_keeps_tail: r.gen_bool(0.5),
            storage_faults: maybe(r, 0.15, |r| log_uniform(r, 0.002, 0.02)),
            disk_full: None, // drawn last, below, so earlier draws keep their values
            forgeries: None, // drawn from its own stream, below
            fsync: (fsync_lo, r.gen_range(fsync_lo..=fsync_lo + 30 * MILLI)),
            slow_fsync: maybe(r, 0.3, |r| log_uniform(r, 0.001, 0.05)).unwrap_or(0.0),
            persist: (
                persist_lo,
                r.gen_range(persist_lo..=persist_lo + 20 * MILLI),
            ),
        };
        let clocks = ClockConfig {
            random_origin: r.gen_bool(0.5),
            drift_ppm: maybe(r, 0.5, |r| r.gen_range(100..=50_000)).unwrap_or(0),
            wall_offset_ms: maybe(r, 0.5, |r| r.gen_range(1..=600_000)).unwrap_or(0),
            wall_steps: maybe(r, 0.2, |r| log_uniform(r, 0.01, 0.1)),
        };
        let restart_all = r.gen_bool(0.5);
        let mut net = net;
        net.swizzle = maybe(r, 0.25, |r| {
            (
                log_uniform(r, 0.01, 0.1),
                r.gen_range(10 * MILLI..=3 * SECOND),
            )
        });
        let leave_down = if members >= 3 && r.gen_bool(0.3) {
            Some(r.gen_range(0..members))
        } else {
            None
        };
        let mut nodes = nodes;
        nodes.disk_full = maybe(r, 0.3, |r| {
            episodes(r, (0.01, 0.1), (100 * MILLI, 20 * SECOND))
        });
        let f = &mut stream(seed, Stream::Forgery);
        nodes.forgeries = if leave_down.is_none() {
            maybe(f, 0.15, |f| log_uniform(f, 0.02, 0.3))
        } else {
            None
        };
        Config {
            seed,
            members,
            spares,
            active,
            liveness: 120 * SECOND,
            membership: 10 * SECOND,
            restart_all,
            leave_down,
            workload,
            net,
            nodes,
            clocks,
            codios: CodiosConfig::draw(seed),
            bugs: Vec::new(),
        }
    }

    /// Members plus spares.
    pub fn total(&self) -> usize {
        self.members + self.spares
    }
}

struct Ms(Micros);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= SECOND {
            write!(f, "{:.1}s", self.0 as f64 / SECOND as f64)
        } else {
            write!(f, "{:.1}ms", self.0 as f64 / MILLI as f64)
        }
    }
}

fn rate(f: &mut fmt::Formatter<'_>, name: &str, r: Option<f64>) -> fmt::Result {
    match r {
        Some(r) => write!(f, " {name}={r:.3}/s"),
        None => write!(f, " {name}=off"),
    }
}

fn episode(f: &mut fmt::Formatter<'_>, name: &str, e: Option<Episodes>) -> fmt::Result {
    match e {
        Some(e) => write!(f, " {name}={:.3}/s×{}..{}", e.per_sec, Ms(e.min), Ms(e.max)),
        None => write!(f, " {name}=off"),
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.workload;
        let n = &self.net;
        let d = &self.nodes;
        let c = &self.clocks;
        let modes: String = w
            .initial_ap
            .iter()
            .map(|ap| if *ap { 'A' } else { 'C' })
            .collect();
        writeln!(
            f,
            "seed 0x{:016x}: {} members ({modes}) + {} spares, active {}, liveness ≤ {}, restart {}",
            self.seed,
            self.members,
            self.spares,
            Ms(self.active),
            Ms(self.liveness),
            if self.restart_all { "all" } else { "down/broken" }
        )?;
        if let Some(d) = self.leave_down {
            writeln!(f, "  liveness leaves n{d} down for good")?;
        }
        write!(f, "  workload: writes={:.2}/s", w.writes_per_sec)?;
        rate(f, "switches", w.switches_per_sec)?;
        rate(f, "syncs", w.syncs_per_sec)?;
        rate(f, "divides", w.divides_per_sec)?;
        writeln!(f, " spare-writes={}", w.writes_on_spares)?;
        write!(
            f,
            "  network: latency {}..{} +jitter {} loss={:.3} dup={:.3} reorder={:.3}(≤{}) timeout {}",
            Ms(n.latency.0),
            Ms(n.latency.1),
            Ms(n.jitter),
            n.loss,
            n.dup,
            n.reorder,
            Ms(n.reorder_delay),
            Ms(n.timeout)
        )?;
        episode(f, "partitions", n.partitions)?;
        episode(f, "one-way", n.one_way)?;
        episode(f, "flapping", n.flapping.map(|(e, _)| e))?;
        if let Some((_, p)) = n.flapping {
            write!(f, " period≤{}", Ms(p))?;
        }
        match n.swizzle {
            Some((r, step)) => write!(f, " swizzle={r:.3}/s step≤{}", Ms(step))?,
            None => write!(f, " swizzle=off")?,
        }
        writeln!(f)?;
        write!(f, "  nodes:")?;
        episode(f, "crashes", d.crashes)?;
        episode(f, "pauses", d.pauses)?;
        write!(f, " keep-tail={}", d.crash_keeps_tail)?;
        rate(f, "storage-faults", d.storage_faults)?;
        episode(f, "disk-full", d.disk_full)?;
        rate(f, "forgeries", d.forgeries)?;
        writeln!(
            f,
            " fsync {}..{} slow={:.3} persist {}..{}",
            Ms(d.fsync.0),
            Ms(d.fsync.1),
            d.slow_fsync,
            Ms(d.persist.0),
            Ms(d.persist.1)
        )?;
        write!(
            f,
            "  clocks: random-origin={} drift≤{}ppm wall-offset≤{}ms",
            c.random_origin, c.drift_ppm, c.wall_offset_ms
        )?;
        rate(f, "wall-steps", c.wall_steps)?;
        match &self.codios {
            None => write!(f, "\n  codios: off (local mode)")?,
            Some(a) => {
                write!(
                    f,
                    "\n  codios: permit-ttl {} max-stale {} require={} capacity={} breaker={}",
                    Ms(a.policy.permit_ttl.as_micros() as Micros),
                    Ms(a.policy.max_stale.as_micros() as Micros),
                    a.policy.require_codios,
                    a.policy.capacity,
                    if a.breaker.enabled {
                        format!(
                            "after {} probe {}",
                            Ms(a.breaker.open_after.as_micros() as Micros),
                            Ms(a.breaker.probe_interval.as_micros() as Micros)
                        )
                    } else {
                        "off".into()
                    }
                )?;
                write!(
                    f,
                    " tokens={} root={:.2} flips={:.3}/s latency {}..{} timeout {}",
                    a.tokens,
                    a.root_share,
                    a.flips_per_sec,
                    Ms(a.latency.0),
                    Ms(a.latency.1),
                    Ms(a.timeout)
                )?;
                episode(f, "outages", a.outages)?;
                episode(f, "slow", a.slow.map(|(e, _)| e))?;
                episode(f, "flapping", a.flapping.map(|(e, _)| e))?;
            }
        }
        if !self.bugs.is_empty() {
            write!(f, "\n  planted bugs: {:?}", self.bugs)?;
        }
        Ok(())
    }
}
