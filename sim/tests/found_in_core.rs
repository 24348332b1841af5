//! Bugs the simulator found in the core, each pinned by the seed that first showed it (see
//! `regression-seeds.txt`) and named by the behaviour that is now right.

use sapix_sim::runner;
use sapix_sim::trace::Trace;

fn passes(seed: u64) {
    let r = runner::run_seed(seed, &[], Trace::quiet());
    if let Some(v) = r.violation {
        panic!("{v}\n  replay: {}", runner::replay_command(seed, &[]));
    }
}

/// The divider restarted before its announcement reached the new node: the new node must
/// still learn the cluster (a restarted node re-announces the membership).
#[test]
fn membership_survives_a_divider_restarting_before_it_announced() {
    passes(0x19);
    passes(0x96);
}

/// Divides at two members at once: every member must end up knowing every other (members
/// spread what they learn), or their blocks never meet.
#[test]
fn concurrent_divides_still_close_the_full_mesh() {
    passes(0x7a);
    passes(0xc7);
    passes(0x21e);
}
