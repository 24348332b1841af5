//! Shrinking a failing seed: the smallest configuration, reached by [`Overrides`] of what the
//! seed drew, in which the same checker still fails.
//!
//! Greedy, one override at a time: fewer spares, fewer members, each class of fault or client
//! operation switched off, a shorter active phase, fewer writes. An override is kept only if
//! the run with it still breaks the invariant the original run broke (the same checker; the
//! message may differ). It stops when no single further override keeps the failure. Every run is a plain replay
//! of the seed with overrides, so the result replays with one command.

use sapix_core::node::planted::PlantedBug;

use crate::checkers::Violation;
use crate::config::{Config, SECOND};
use crate::overrides::{Class, Overrides};
use crate::runner;
use crate::trace::Trace;

/// What a shrink found.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The seed.
    pub seed: u64,
    /// The violation of the seed as drawn.
    pub original: Violation,
    /// The overrides kept.
    pub overrides: Overrides,
    /// The configuration they give.
    pub config: Config,
    /// The violation under them (same checker as `original`).
    pub violation: Violation,
    /// Runs made, the original included.
    pub runs: u64,
}

/// One step the shrinker tries.
#[derive(Debug, Clone, Copy)]
enum Edit {
    Members(usize),
    Spares(usize),
    Off(Class),
    ActiveSecs(u64),
    Writes(f64),
}

impl Edit {
    fn on(self, o: &Overrides) -> Overrides {
        let mut o = o.clone();
        match self {
            Edit::Members(m) => o.members = Some(m),
            Edit::Spares(s) => o.spares = Some(s),
            Edit::Off(c) => o.off.push(c),
            Edit::ActiveSecs(a) => o.active_secs = Some(a),
            Edit::Writes(w) => o.writes_per_sec = Some(w),
        }
        o
    }
}

/// The edits worth trying on `cfg`, the biggest cuts first.
fn edits(cfg: &Config) -> Vec<Edit> {
    let mut e = Vec::new();
    if cfg.spares > 0 {
        e.push(Edit::Spares(0));
        e.push(Edit::Spares(cfg.spares - 1));
    }
    if cfg.members > 2 {
        e.push(Edit::Members(2));
        e.push(Edit::Members(cfg.members - 1));
    }
    e.extend(
        Class::ALL
            .into_iter()
            .filter(|c| c.is_on(cfg))
            .map(Edit::Off),
    );
    let secs = cfg.active / SECOND;
    for shorter in [secs / 4, secs / 2, secs * 3 / 4] {
        if shorter >= 1 && shorter < secs {
            e.push(Edit::ActiveSecs(shorter));
        }
    }
    // Rounded to hundredths, so the replay command stays short.
    let w = cfg.workload.writes_per_sec;
    for fewer in [w / 4.0, w / 2.0] {
        let fewer = (fewer * 100.0).round() / 100.0;
        if fewer >= 0.1 && fewer < w {
            e.push(Edit::Writes(fewer));
        }
    }
    e
}

/// The drawn configuration of `seed` under `o`.
pub fn config_of(seed: u64, o: &Overrides) -> Config {
    let mut cfg = Config::draw(seed);
    o.apply(&mut cfg);
    cfg
}

/// Shrinks `seed` (with `bugs` planted); `log` hears of each override kept. `Err` if the seed
/// passes as drawn: there is nothing to keep failing.
pub fn shrink(seed: u64, bugs: &[PlantedBug], log: &mut dyn FnMut(&str)) -> Result<Shrunk, String> {
    let run = |o: &Overrides| runner::run_seed_with(seed, bugs, o, Trace::quiet()).violation;
    let original = run(&Overrides::default())
        .ok_or_else(|| format!("seed 0x{seed:016x} passes: nothing to shrink"))?;
    let checker = original.checker;
    let mut runs = 1;
    let mut kept = Overrides::default();
    let mut violation = original.clone();
    // After each override kept, the edits are drawn again from the smaller configuration,
    // so every one tried is a cut of what is kept; it ends when none of them keeps failing.
    'search: loop {
        let now = config_of(seed, &kept);
        for edit in edits(&now) {
            let trial = edit.on(&kept);
            if config_of(seed, &trial) == now {
                continue;
            }
            runs += 1;
            if let Some(v) = run(&trial).filter(|v| v.checker == checker) {
                log(&format!("kept{}: {v}", diff(&kept, &trial).args()));
                kept = trial;
                violation = v;
                continue 'search;
            }
        }
        break;
    }
    Ok(Shrunk {
        seed,
        original,
        config: config_of(seed, &kept),
        overrides: kept,
        violation,
        runs,
    })
}

/// The overrides `after` adds to `before` (for the log).
fn diff(before: &Overrides, after: &Overrides) -> Overrides {
    Overrides {
        members: after.members.filter(|_| after.members != before.members),
        spares: after.spares.filter(|_| after.spares != before.spares),
        active_secs: after
            .active_secs
            .filter(|_| after.active_secs != before.active_secs),
        writes_per_sec: after
            .writes_per_sec
            .filter(|_| after.writes_per_sec != before.writes_per_sec),
        off: after
            .off
            .iter()
            .filter(|c| !before.off.contains(c))
            .copied()
            .collect(),
    }
}
