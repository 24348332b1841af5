//! What the simulator's test files ask of either driver: that a planted bug is found by the
//! checker that owns its property within a stated number of seeds, and that Codios seeds reach
//! every kind of authorization answer. One [`Driver`] per way of running a seed, so Layer 0
//! (`runner`) and Layer 0b (`madsim_driver`) are held to the same claims by the same code.
#![allow(dead_code)]

use sapix_core::node::planted::PlantedBug;
use sapix_sim::runner;
use sapix_sim::trace::Trace;
use sapix_sim::{Config, Report, Stats};

/// A way of running a seed with bugs planted, and of replaying it.
pub struct Driver {
    pub name: &'static str,
    pub run: fn(u64, &[PlantedBug], Trace) -> Report,
    pub replay: fn(u64, &[PlantedBug]) -> String,
}

/// Layer 0: the event heap.
pub const LAYER_0: Driver = Driver {
    name: "layer 0",
    run: runner::run_seed,
    replay: runner::replay_command,
};

/// The first `n` seeds (from 0) whose config turns Codios on.
pub fn codios_seeds(n: usize) -> Vec<u64> {
    (0u64..)
        .filter(|&s| Config::draw(s).codios.is_some())
        .take(n)
        .collect()
}

impl Driver {
    /// Runs seeds 0.. with `bug` planted; the first failing seed and its checker.
    fn first_failure(&self, bug: PlantedBug, within: u64) -> Option<(u64, &'static str)> {
        (0..within).find_map(|seed| {
            let r = (self.run)(seed, &[bug], Trace::quiet());
            r.violation.map(|v| (seed, v.checker))
        })
    }

    /// `bug`, planted, is found by `checker` within `within` seeds from 0.
    pub fn bites(&self, bug: PlantedBug, within: u64, checker: &str) {
        let found = self.first_failure(bug, within);
        println!(
            "{}, {bug:?}: found at {found:?} (bound {within} seeds)",
            self.name
        );
        let (seed, by) = found.unwrap_or_else(|| panic!("{bug:?} not found in {within} seeds"));
        assert_eq!(
            by,
            checker,
            "{bug:?} was found by the wrong checker; replay: {}",
            (self.replay)(seed, &[bug])
        );
    }

    /// Across the first `n` Codios seeds, nothing fails, and writes are authorized (fresh
    /// and, during outages, from stale permits), denied, and refused when no decision can be
    /// served: Codios answers, and its outages are felt.
    pub fn codios_reaches_every_kind_of_answer(&self, n: usize) {
        let mut total = Stats::default();
        for seed in codios_seeds(n) {
            let r = (self.run)(seed, &[], Trace::quiet());
            assert!(
                r.violation.is_none(),
                "{:?}; replay: {}",
                r.violation,
                (self.replay)(seed, &[])
            );
            total.authorized += r.stats.authorized;
            total.auth_degraded += r.stats.auth_degraded;
            total.denied += r.stats.denied;
            total.auth_unavailable += r.stats.auth_unavailable;
        }
        println!(
            "{}, {n} Codios seeds: authorized {} (degraded {}), denied {}, unavailable {}",
            self.name, total.authorized, total.auth_degraded, total.denied, total.auth_unavailable
        );
        assert!(total.authorized > 0, "{total:?}");
        assert!(total.auth_degraded > 0, "{total:?}");
        assert!(total.denied > 0, "{total:?}");
        assert!(total.auth_unavailable > 0, "{total:?}");
    }
}
