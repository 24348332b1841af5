//! One seed, one trace: two runs of a seed give the same trace hash, printing or not.

use sapix_sim::runner;
use sapix_sim::trace::Trace;

#[test]
fn the_same_seed_twice_gives_the_same_trace_hash() {
    for seed in [0x5eed_u64, 0xc7, 0xdead_beef] {
        let a = runner::run_seed(seed, &[], Trace::quiet());
        let b = runner::run_seed(seed, &[], Trace::quiet());
        assert_eq!(a.trace_hash, b.trace_hash, "seed 0x{seed:x}");
        assert_eq!((a.events, a.sim_time), (b.events, b.sim_time));
        assert_eq!(a.stats, b.stats);
    }
}

#[test]
fn the_printed_replay_has_the_hash_of_the_quiet_run() {
    let seed = 0x5eed;
    let quiet = runner::run_seed(seed, &[], Trace::quiet());
    let printed = runner::run_seed(seed, &[], Trace::to(Box::new(std::io::sink())));
    assert_eq!(quiet.trace_hash, printed.trace_hash);
}

#[test]
fn different_seeds_give_different_traces() {
    let a = runner::run_seed(1, &[], Trace::quiet());
    let b = runner::run_seed(2, &[], Trace::quiet());
    assert_ne!(a.trace_hash, b.trace_hash);
}
