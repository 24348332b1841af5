//! Layer 1 under turmoil: seeded faults against three real nodes and a Codios host, then the
//! DESIGN §6 invariants on the final state (see `sapix_tests::turmoil_cluster`).
//!
//! `cargo test -p sapix-tests --test turmoil_cluster` runs 200 seeds in four chunks (the test
//! threads take turns: a process runs one simulation at a time, see `run`).
//! Long hunt: `TURMOIL_SEEDS=5000 cargo test --release -p sapix-tests --test turmoil_cluster`
//! (seeds are split over the chunks; `TURMOIL_SEED_BASE` moves the range). A failing seed
//! prints the one command that replays it.

use sapix_tests::turmoil_cluster::{replay_command, run};

const DEFAULT_SEEDS: u64 = 200;
const CHUNKS: u64 = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs chunk `chunk` of the seed range and fails with every failing seed's replay command.
fn seeds(chunk: u64) {
    let total = env_u64("TURMOIL_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let base = env_u64("TURMOIL_SEED_BASE").unwrap_or(0);
    let mut failures = Vec::new();
    let mut ran = 0;
    for seed in (base..base + total).filter(|s| s % CHUNKS == chunk) {
        ran += 1;
        if let Err(why) = run(seed) {
            failures.push(format!(
                "seed {seed}: {why}\n  replay: {}",
                replay_command(seed)
            ));
        }
    }
    assert!(ran > 0, "no seed ran in chunk {chunk}");
    assert!(
        failures.is_empty(),
        "{} of {ran} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn seeds_chunk_0() {
    seeds(0);
}

#[test]
fn seeds_chunk_1() {
    seeds(1);
}

#[test]
fn seeds_chunk_2() {
    seeds(2);
}

#[test]
fn seeds_chunk_3() {
    seeds(3);
}

/// The same seed twice gives the same answers and the same final strands.
#[test]
fn a_seed_replays_identically() {
    let seed = env_u64("TURMOIL_SEED").unwrap_or(7);
    let first = run(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let second = run(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(first, second, "seed {seed} is not deterministic");
}

/// Replays `TURMOIL_SEED` (default 0) alone, printing what it did.
#[test]
fn replay() {
    let seed = env_u64("TURMOIL_SEED").unwrap_or(0);
    match run(seed) {
        Ok(o) => println!("seed {seed}: {o:?}"),
        Err(e) => panic!("seed {seed}: {e}\n  replay: {}", replay_command(seed)),
    }
}
