//! The swarm: `SAPIX_SIM_SEEDS` seeds (default 10,000), or as many as fit in `SAPIX_SIM_SECS`
//! if that is set, on every core, must all pass. Seeds are consecutive from `SAPIX_SIM_START`
//! (default 0), so a failure is reproducible from the printed command alone.

use std::io::Write;
use std::time::Duration;

use sapix_sim::runner::{self, Budget};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| runner::parse_seed(&v))
        .unwrap_or(default)
}

#[test]
fn swarm_of_seeds_keeps_every_invariant() {
    let budget = match std::env::var("SAPIX_SIM_SECS") {
        Ok(_) => Budget::Time(Duration::from_secs(env("SAPIX_SIM_SECS", 60))),
        Err(_) => Budget::Seeds(env("SAPIX_SIM_SEEDS", 10_000)),
    };
    let start = env("SAPIX_SIM_START", 0);
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sum = runner::hunt(start, budget, jobs, &[], false, &|r| {
        runner::print_failure(r, &[])
    });
    // Straight to stderr, past the test harness's capture: the count is the point.
    let _ = writeln!(std::io::stderr(), "swarm: {}", sum.line(jobs));
    assert!(sum.seeds > 0);
    let failed: Vec<String> = sum
        .failures
        .iter()
        .map(|r| {
            format!(
                "0x{:x}: {}\n  replay: {}",
                r.seed,
                r.violation.as_ref().expect("failed"),
                runner::replay_command(r.seed, &[])
            )
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
