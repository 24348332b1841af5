//! The Codios model is exercised: across a handful of seeds with Codios on, writes are
//! permitted, denied, served degraded and refused, and such a seed replays identically.

use sapix_sim::runner;
use sapix_sim::trace::Trace;
use sapix_sim::{Config, Stats};

fn codios_seeds(n: usize) -> Vec<u64> {
    (0u64..)
        .filter(|&s| Config::draw(s).codios.is_some())
        .take(n)
        .collect()
}

#[test]
fn codios_seeds_reach_every_kind_of_answer() {
    let mut total = Stats::default();
    for seed in codios_seeds(40) {
        let r = runner::run_seed(seed, &[], Trace::quiet());
        assert!(
            r.violation.is_none(),
            "{:?}; replay: {}",
            r.violation,
            runner::replay_command(seed, &[])
        );
        total.authorized += r.stats.authorized;
        total.auth_degraded += r.stats.auth_degraded;
        total.denied += r.stats.denied;
        total.auth_unavailable += r.stats.auth_unavailable;
    }
    println!(
        "authorized {} (degraded {}), denied {}, unavailable {}",
        total.authorized, total.auth_degraded, total.denied, total.auth_unavailable
    );
    assert!(total.authorized > 0);
    assert!(total.auth_degraded > 0);
    assert!(total.denied > 0);
    assert!(total.auth_unavailable > 0);
}

#[test]
fn a_codios_seed_twice_gives_the_same_trace_hash() {
    let seed = codios_seeds(1)[0];
    let a = runner::run_seed(seed, &[], Trace::quiet());
    let b = runner::run_seed(seed, &[], Trace::quiet());
    assert_eq!(a.trace_hash, b.trace_hash, "seed 0x{seed:x}");
    assert_eq!(a.stats, b.stats);
}
