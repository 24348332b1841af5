//! Fresh seeds (DESIGN §6, invariant 10): besides the fixed seeds of `swarm.rs`, every test run
//! hunts from a start nobody chose, for `SAPIX_FRESH_SECS` seconds of wall time (default 60;
//! `0` skips) on every core. The start is printed before anything runs; `SAPIX_FRESH_START=0x…`
//! runs the same seeds again. A failing seed fails the test with its replay command.

use std::io::Write;
use std::time::Duration;

use sapix_sim::runner::{self, Budget};

const DEFAULT_SECS: u64 = 60;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        runner::parse_seed(v.trim()).unwrap_or_else(|| panic!("{name}={v} is not a number"))
    })
}

#[test]
fn fresh_seeds_keep_every_invariant() {
    let secs = env("SAPIX_FRESH_SECS").unwrap_or(DEFAULT_SECS);
    if secs == 0 {
        let _ = writeln!(
            std::io::stderr(),
            "fresh seeds: skipped (SAPIX_FRESH_SECS=0)"
        );
        return;
    }
    let start = env("SAPIX_FRESH_START").unwrap_or_else(runner::fresh_start);
    // Printed first and straight to stderr, past the harness's capture: if anything below
    // hangs or aborts, this line is still what reproduces the run.
    let _ = writeln!(
        std::io::stderr(),
        "fresh seeds: start 0x{start:016x}, {secs} s; reproduce: SAPIX_FRESH_START=0x{start:016x} SAPIX_FRESH_SECS={secs} cargo test -p sapix-sim --test fresh_seeds -- --nocapture"
    );
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let budget = Budget::Time(Duration::from_secs(secs));
    let sum = runner::hunt(start, budget, jobs, &[], false, &|r| {
        runner::print_failure(r, &[])
    });
    let _ = writeln!(
        std::io::stderr(),
        "fresh seeds from 0x{start:016x}: {}",
        sum.line(jobs)
    );
    let _ = writeln!(std::io::stderr(), "{}", sum.coverage);
    assert!(sum.seeds > 0, "no fresh seed ran");
    let failed: Vec<String> = sum
        .failures
        .iter()
        .map(|r| {
            format!(
                "0x{:016x}: {}\n  replay: {}\n  shrink: {}",
                r.seed,
                r.violation.as_ref().expect("failed"),
                runner::replay_command(r.seed, &[]),
                runner::shrink_command(r.seed, &[])
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} fresh seed(s) from 0x{start:016x} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
