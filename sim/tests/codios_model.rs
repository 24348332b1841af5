//! The Codios model is exercised: across a handful of seeds with Codios on, writes are
//! permitted, denied, served degraded and refused, and such a seed replays identically.

mod common;

use common::{codios_seeds, LAYER_0};
use sapix_sim::runner;
use sapix_sim::trace::Trace;

#[test]
fn codios_seeds_reach_every_kind_of_answer() {
    LAYER_0.codios_reaches_every_kind_of_answer(40);
}

#[test]
fn a_codios_seed_twice_gives_the_same_trace_hash() {
    let seed = codios_seeds(1)[0];
    let a = runner::run_seed(seed, &[], Trace::quiet());
    let b = runner::run_seed(seed, &[], Trace::quiet());
    assert_eq!(a.trace_hash, b.trace_hash, "seed 0x{seed:x}");
    assert_eq!(a.stats, b.stats);
}
