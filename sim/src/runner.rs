//! Running seeds: one with a printed trace (replay), or many across threads until a count or
//! a time budget is used up (the hunt), with the throughput numbers.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sapix_core::node::planted::PlantedBug;

use crate::config::{Config, Micros};
use crate::coverage::Tally;
use crate::overrides::Overrides;
use crate::trace::Trace;
use crate::world::{Report, World};

/// Runs `seed` with `bugs` planted, tracing into `trace`.
pub fn run_seed(seed: u64, bugs: &[PlantedBug], trace: Trace) -> Report {
    run_seed_with(seed, bugs, &Overrides::default(), trace)
}

/// [`run_seed`] with `overrides` applied to what the seed drew.
pub fn run_seed_with(
    seed: u64,
    bugs: &[PlantedBug],
    overrides: &Overrides,
    trace: Trace,
) -> Report {
    let mut cfg = Config::draw(seed);
    overrides.apply(&mut cfg);
    cfg.bugs = bugs.to_vec();
    World::new(cfg, trace).run()
}

/// The one command that replays `seed` with its full trace.
pub fn replay_command(seed: u64, bugs: &[PlantedBug]) -> String {
    replay_command_with(seed, bugs, &Overrides::default())
}

/// The one command that replays `seed` with `overrides` and its full trace.
pub fn replay_command_with(seed: u64, bugs: &[PlantedBug], overrides: &Overrides) -> String {
    command("replay", seed, bugs) + &overrides.args()
}

/// The one command that shrinks failing `seed`.
pub fn shrink_command(seed: u64, bugs: &[PlantedBug]) -> String {
    command("shrink", seed, bugs)
}

fn command(verb: &str, seed: u64, bugs: &[PlantedBug]) -> String {
    let mut cmd = format!("cargo run -p sapix-sim --release -- {verb} 0x{seed:016x}");
    for b in bugs {
        cmd.push_str(&format!(" --bug {}", bug_name(*b)));
    }
    cmd
}

/// Every planted bug with its command-line name.
pub const BUGS: [(&str, PlantedBug); 8] = [
    ("cp-ack-before-peers", PlantedBug::CpAckBeforePeers),
    (
        "ingest-ack-before-durable",
        PlantedBug::IngestAckBeforeDurable,
    ),
    ("push-before-durable", PlantedBug::PushBeforeDurable),
    ("cursor-before-durable", PlantedBug::CursorBeforeDurable),
    (
        "failed-push-counts-as-delivered",
        PlantedBug::FailedPushCountsAsDelivered,
    ),
    ("stale-permit-past-deny", PlantedBug::StalePermitPastDeny),
    ("queue-overflow-drops", PlantedBug::QueueOverflowDrops),
    ("position-before-durable", PlantedBug::PositionBeforeDurable),
];

/// The command-line name of `bug`.
pub fn bug_name(bug: PlantedBug) -> &'static str {
    BUGS.iter().find(|(_, b)| *b == bug).map_or("?", |(n, _)| n)
}

/// The bug named `name`.
pub fn parse_bug(name: &str) -> Option<PlantedBug> {
    BUGS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// A start seed nobody chose: the OS's per-process hash keys mixed with the wall clock, so
/// every test run searches seeds no run searched before (DESIGN §6, invariant 10). Print it
/// before running anything: it is the only way to run the same seeds again.
pub fn fresh_start() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

/// Parses `0x…` hex or decimal.
pub fn parse_seed(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// When a hunt stops.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// After this many seeds.
    Seeds(u64),
    /// When this much wall time has passed (seeds started before then finish).
    Time(Duration),
}

/// What a hunt did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Steps across all seeds.
    pub events: u64,
    /// Simulated time across all seeds.
    pub sim_time: Micros,
    /// Wall time.
    pub elapsed: Duration,
    /// Failing seeds, in the order found.
    pub failures: Vec<Report>,
    /// Fault classes drawn and fired, over every seed.
    pub coverage: Tally,
}

impl Summary {
    /// Steps per wall second, over all threads.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Seeds per wall second.
    pub fn seeds_per_sec(&self) -> f64 {
        self.seeds as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A one-line account.
    pub fn line(&self, jobs: usize) -> String {
        format!(
            "{} seeds, {} failing, {} events in {:.1} s on {jobs} thread(s): {:.0} events/s ({:.0}/s per thread), {:.2} seeds/s, {:.0} simulated s",
            self.seeds,
            self.failures.len(),
            self.events,
            self.elapsed.as_secs_f64(),
            self.events_per_sec(),
            self.events_per_sec() / jobs as f64,
            self.seeds_per_sec(),
            self.sim_time as f64 / 1e6
        )
    }
}

/// Runs seeds `start`, `start + 1`, … on `jobs` threads until `budget` is spent (or, with
/// `stop_at_first`, a seed fails). `on_fail` hears of each failure as it is found.
pub fn hunt(
    start: u64,
    budget: Budget,
    jobs: usize,
    bugs: &[PlantedBug],
    stop_at_first: bool,
    on_fail: &(dyn Fn(&Report) + Sync),
) -> Summary {
    let began = Instant::now();
    let next = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let summary = Mutex::new(Summary::default());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let more = match budget {
                    Budget::Seeds(n) => k < n,
                    Budget::Time(t) => began.elapsed() < t,
                };
                if !more {
                    break;
                }
                let report = run_seed(start.wrapping_add(k), bugs, Trace::quiet());
                let mut sum = summary.lock().expect("no panics while held");
                sum.seeds += 1;
                sum.events += report.events;
                sum.sim_time += report.sim_time;
                sum.coverage.add(&report.coverage);
                if report.violation.is_some() {
                    on_fail(&report);
                    sum.failures.push(report);
                    if stop_at_first {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut sum = summary.into_inner().expect("no panics while held");
    sum.elapsed = began.elapsed();
    sum.failures.sort_by_key(|r| r.seed);
    sum
}

/// Prints a failing seed and the command that replays it.
pub fn print_failure(r: &Report, bugs: &[PlantedBug]) {
    let v = r.violation.as_ref().expect("a failure");
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "FAILED seed 0x{:016x}: {v}", r.seed);
    let _ = writeln!(err, "  replay: {}", replay_command(r.seed, bugs));
    let _ = writeln!(err, "  shrink: {}", shrink_command(r.seed, bugs));
}
