//! Faults: crashes with restarts, symmetric and one-way partitions, flapping links, storage
//! failures, and wall-clock steps — each class a Poisson process at the rate the seed drew, or
//! off.
//!
//! A crash kills the process only; the disk stays and the node restarts from it after the
//! episode's downtime. Heals and flaps carry the network generation they belong to, so once
//! the liveness phase has healed everything, faults scheduled before it change nothing.
//!
//! This module is the faults' classes, rates and rng; what a fault does to the world is the
//! world's (`world/faults.rs`).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{poisson_gap, Config, Episodes, Micros};

/// A fault, or the next occurrence of a class of them.
#[derive(Debug)]
pub(crate) enum Fault {
    CrashTick,
    PauseTick,
    Restart {
        node: usize,
        inc: u32,
    },
    PartitionTick,
    OneWayTick,
    Heal {
        links: Vec<(usize, usize)>,
        generation: u32,
    },
    FlapTick,
    Flap {
        a: usize,
        b: usize,
        down: bool,
        until: Micros,
        generation: u32,
    },
    StorageTick,
    /// A node's disk fills up.
    DiskFullTick,
    /// Space returns on `node`'s disk.
    SpaceBack {
        node: usize,
    },
    WallStepTick,
    SwizzleTick,
    /// Swizzle-clog: cut every link to and from `node` (if still in `generation`).
    Clog {
        node: usize,
        generation: u32,
    },
    /// Swizzle-clog: restore them.
    Unclog {
        node: usize,
        generation: u32,
    },
    /// The forging node acts (its schedule and choices are `crate::forger`'s).
    ForgeTick,
}

/// The faults' rng, which the world's glue (`world/faults.rs`) draws from as faults fire.
#[derive(Debug)]
pub(crate) struct Faults {
    pub(crate) rng: ChaCha8Rng,
}

/// How often class `f` recurs, per second, if it is on (`None` for a single fault).
pub(crate) fn rate_of(cfg: &Config, f: &Fault) -> Option<f64> {
    match f {
        Fault::CrashTick => cfg.nodes.crashes.map(|e| e.per_sec),
        Fault::PauseTick => cfg.nodes.pauses.map(|e| e.per_sec),
        Fault::PartitionTick => cfg.net.partitions.map(|e| e.per_sec),
        Fault::OneWayTick => cfg.net.one_way.map(|e| e.per_sec),
        Fault::FlapTick => cfg.net.flapping.map(|(e, _)| e.per_sec),
        Fault::StorageTick => cfg.nodes.storage_faults,
        Fault::DiskFullTick => cfg.nodes.disk_full.map(|e| e.per_sec),
        Fault::WallStepTick => cfg.clocks.wall_steps,
        Fault::SwizzleTick => cfg.net.swizzle.map(|(r, _)| r),
        _ => None,
    }
}

impl Faults {
    /// Faults drawing from `rng`.
    pub(crate) fn new(rng: ChaCha8Rng) -> Self {
        Faults { rng }
    }

    pub(crate) fn gap(&mut self, rate: f64) -> Micros {
        poisson_gap(&mut self.rng, rate)
    }

    pub(crate) fn length(&mut self, e: Episodes) -> Micros {
        e.length(&mut self.rng)
    }

    /// `0..n` in a random order.
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.rng.gen_range(0..=i);
            v.swap(i, j);
        }
        v
    }

    pub(crate) fn pair(&mut self, n: usize) -> (usize, usize) {
        let a = self.rng.gen_range(0..n);
        let b = (a + self.rng.gen_range(1..n)) % n;
        (a, b)
    }

    /// The first occurrence of every enabled class.
    pub(crate) fn first(&mut self, cfg: &Config) -> Vec<(Micros, Fault)> {
        let ticks = [
            Fault::CrashTick,
            Fault::PauseTick,
            Fault::PartitionTick,
            Fault::OneWayTick,
            Fault::FlapTick,
            Fault::StorageTick,
            Fault::WallStepTick,
            Fault::SwizzleTick,
            // Last: the draws of the classes before it keep their values.
            Fault::DiskFullTick,
        ];
        ticks
            .into_iter()
            .filter_map(|f| rate_of(cfg, &f).map(|r| (self.gap(r), f)))
            .collect()
    }
}
