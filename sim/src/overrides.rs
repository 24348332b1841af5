//! Overrides of a seed's drawn configuration: fewer nodes, a shorter active phase, fewer
//! writes, and classes of faults or client operations switched off.
//!
//! They are applied to what [`Config::draw`] returned, never inside it, so a seed without
//! overrides draws and runs exactly as it always did. A run with overrides is still a pure
//! function of the seed and the overrides: its replay command carries both
//! ([`Overrides::args`]). The shrinker (`crate::shrink`) searches over them.

use core::fmt;

use crate::config::{Config, SECOND};

/// A class of the drawn configuration that can be switched off: a fault (`--no-fault`) or an
/// optional client operation (`--no-op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Message loss.
    Loss,
    /// Duplicated requests.
    Dup,
    /// Reordered (held back) messages.
    Reorder,
    /// Symmetric partitions.
    Partitions,
    /// One-way link cuts.
    OneWay,
    /// Flapping links.
    Flapping,
    /// Swizzle-clog.
    Swizzle,
    /// Crashes with restarts.
    Crashes,
    /// Stalls of a node's actor.
    Pauses,
    /// Appends and writes in flight surviving a crash.
    KeepTail,
    /// Storage failures.
    Storage,
    /// Full disks, with space returning.
    DiskFull,
    /// Slow fsyncs.
    SlowFsync,
    /// Clock drift.
    Drift,
    /// Wall-clock offsets.
    WallOffset,
    /// Wall-clock steps.
    WallSteps,
    /// Random monotonic clock origins.
    RandomOrigin,
    /// Codios outages.
    CodiosOutages,
    /// Codios slow spells.
    CodiosSlow,
    /// Codios flapping.
    CodiosFlapping,
    /// Codios as a whole (the nodes then run in local mode).
    Codios,
    /// The liveness phase restarts every node, not only those down or broken.
    RestartAll,
    /// The liveness phase leaves a member down for good.
    LeaveDown,
    /// CP↔AP switches (a client operation).
    Switches,
    /// Manual syncs (a client operation).
    Syncs,
    /// Divides of spare nodes (a client operation).
    Divides,
    /// Writes on spare nodes (a client operation).
    SpareWrites,
    /// Reads at an acknowledged write's position (a client operation).
    Reads,
    /// A forging node: blocks signed with the master seed as a member, sent to every node.
    Forgery,
}

impl Class {
    /// Every class, faults first, in the order the shrinker tries them.
    pub const ALL: [Class; 29] = [
        Class::Codios,
        Class::Forgery,
        Class::LeaveDown,
        Class::Swizzle,
        Class::Partitions,
        Class::OneWay,
        Class::Flapping,
        Class::Crashes,
        Class::Pauses,
        Class::Storage,
        Class::DiskFull,
        Class::Loss,
        Class::Dup,
        Class::Reorder,
        Class::KeepTail,
        Class::SlowFsync,
        Class::Drift,
        Class::WallOffset,
        Class::WallSteps,
        Class::RandomOrigin,
        Class::CodiosOutages,
        Class::CodiosSlow,
        Class::CodiosFlapping,
        Class::RestartAll,
        Class::Switches,
        Class::Syncs,
        Class::Divides,
        Class::SpareWrites,
        Class::Reads,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Class::Loss => "loss",
            Class::Dup => "dup",
            Class::Reorder => "reorder",
            Class::Partitions => "partitions",
            Class::OneWay => "one-way",
            Class::Flapping => "flapping",
            Class::Swizzle => "swizzle",
            Class::Crashes => "crashes",
            Class::Pauses => "pauses",
            Class::KeepTail => "keep-tail",
            Class::Storage => "storage",
            Class::DiskFull => "disk-full",
            Class::SlowFsync => "slow-fsync",
            Class::Drift => "drift",
            Class::WallOffset => "wall-offset",
            Class::WallSteps => "wall-steps",
            Class::RandomOrigin => "random-origin",
            Class::CodiosOutages => "codios-outages",
            Class::CodiosSlow => "codios-slow",
            Class::CodiosFlapping => "codios-flapping",
            Class::Codios => "codios",
            Class::RestartAll => "restart-all",
            Class::LeaveDown => "leave-down",
            Class::Switches => "switches",
            Class::Syncs => "syncs",
            Class::Divides => "divides",
            Class::SpareWrites => "spare-writes",
            Class::Reads => "reads",
            Class::Forgery => "forgery",
        }
    }

    /// The class named `name`.
    pub fn parse(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// A fault (`--no-fault`), or else a client operation (`--no-op`).
    pub fn is_fault(self) -> bool {
        !matches!(
            self,
            Class::Switches | Class::Syncs | Class::Divides | Class::SpareWrites | Class::Reads
        )
    }

    /// Whether `cfg` has this class on.
    pub fn is_on(self, cfg: &Config) -> bool {
        let (n, d, c, w) = (&cfg.net, &cfg.nodes, &cfg.clocks, &cfg.workload);
        let codios = cfg.codios.as_ref();
        match self {
            Class::Loss => n.loss > 0.0,
            Class::Dup => n.dup > 0.0,
            Class::Reorder => n.reorder > 0.0,
            Class::Partitions => n.partitions.is_some(),
            Class::OneWay => n.one_way.is_some(),
            Class::Flapping => n.flapping.is_some(),
            Class::Swizzle => n.swizzle.is_some(),
            Class::Crashes => d.crashes.is_some(),
            Class::Pauses => d.pauses.is_some(),
            Class::KeepTail => d.crash_keeps_tail,
            Class::Storage => d.storage_faults.is_some(),
            Class::DiskFull => d.disk_full.is_some(),
            Class::SlowFsync => d.slow_fsync > 0.0,
            Class::Drift => c.drift_ppm > 0,
            Class::WallOffset => c.wall_offset_ms > 0,
            Class::WallSteps => c.wall_steps.is_some(),
            Class::RandomOrigin => c.random_origin,
            Class::CodiosOutages => codios.is_some_and(|a| a.outages.is_some()),
            Class::CodiosSlow => codios.is_some_and(|a| a.slow.is_some()),
            Class::CodiosFlapping => codios.is_some_and(|a| a.flapping.is_some()),
            Class::Codios => codios.is_some(),
            Class::RestartAll => cfg.restart_all,
            Class::LeaveDown => cfg.leave_down.is_some(),
            Class::Switches => w.switches_per_sec.is_some(),
            Class::Syncs => w.syncs_per_sec.is_some(),
            Class::Divides => w.divides_per_sec.is_some(),
            Class::SpareWrites => w.writes_on_spares,
            Class::Reads => w.reads_per_sec.is_some(),
            Class::Forgery => d.forgeries.is_some(),
        }
    }

    /// Switches this class off in `cfg`.
    pub fn switch_off(self, cfg: &mut Config) {
        let (n, d, c, w) = (
            &mut cfg.net,
            &mut cfg.nodes,
            &mut cfg.clocks,
            &mut cfg.workload,
        );
        match self {
            Class::Loss => n.loss = 0.0,
            Class::Dup => n.dup = 0.0,
            Class::Reorder => n.reorder = 0.0,
            Class::Partitions => n.partitions = None,
            Class::OneWay => n.one_way = None,
            Class::Flapping => n.flapping = None,
            Class::Swizzle => n.swizzle = None,
            Class::Crashes => d.crashes = None,
            Class::Pauses => d.pauses = None,
            Class::KeepTail => d.crash_keeps_tail = false,
            Class::Storage => d.storage_faults = None,
            Class::DiskFull => d.disk_full = None,
            Class::SlowFsync => d.slow_fsync = 0.0,
            Class::Drift => c.drift_ppm = 0,
            Class::WallOffset => c.wall_offset_ms = 0,
            Class::WallSteps => c.wall_steps = None,
            Class::RandomOrigin => c.random_origin = false,
            Class::CodiosOutages => {
                if let Some(a) = &mut cfg.codios {
                    a.outages = None;
                }
            }
            Class::CodiosSlow => {
                if let Some(a) = &mut cfg.codios {
                    a.slow = None;
                }
            }
            Class::CodiosFlapping => {
                if let Some(a) = &mut cfg.codios {
                    a.flapping = None;
                }
            }
            Class::Codios => cfg.codios = None,
            Class::RestartAll => cfg.restart_all = false,
            Class::LeaveDown => cfg.leave_down = None,
            Class::Switches => w.switches_per_sec = None,
            Class::Syncs => w.syncs_per_sec = None,
            Class::Divides => w.divides_per_sec = None,
            Class::SpareWrites => w.writes_on_spares = false,
            Class::Reads => w.reads_per_sec = None,
            Class::Forgery => d.forgeries = None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to change in a seed's drawn configuration; the default changes nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Initial members (at least 2, at most as drawn).
    pub members: Option<usize>,
    /// Spare nodes (at most as drawn).
    pub spares: Option<usize>,
    /// Length of the active phase, in whole seconds (at least 1).
    pub active_secs: Option<u64>,
    /// Writes per second across the cluster.
    pub writes_per_sec: Option<f64>,
    /// Classes switched off, in the order given.
    pub off: Vec<Class>,
}

impl Overrides {
    /// Nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// `cfg` with these overrides. Counts only ever shrink what was drawn.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(m) = self.members {
            let m = m.clamp(2, cfg.members.max(2));
            cfg.members = m;
            cfg.workload.initial_ap.truncate(m);
            if cfg.leave_down.is_some_and(|i| i >= m || m < 3) {
                // As drawn: only a cluster of three or more leaves a member down.
                cfg.leave_down = None;
            }
        }
        if let Some(s) = self.spares {
            cfg.spares = s.min(cfg.spares);
            if cfg.spares == 0 {
                // Nobody left to divide in.
                cfg.workload.divides_per_sec = None;
                cfg.workload.writes_on_spares = false;
            }
        }
        if let Some(secs) = self.active_secs {
            cfg.active = secs.max(1) * SECOND;
        }
        if let Some(w) = self.writes_per_sec {
            cfg.workload.writes_per_sec = w;
        }
        for class in &self.off {
            class.switch_off(cfg);
        }
    }

    /// The command-line arguments that give these overrides (with a leading space each).
    pub fn args(&self) -> String {
        let mut s = String::new();
        if let Some(m) = self.members {
            s.push_str(&format!(" --members {m}"));
        }
        if let Some(n) = self.spares {
            s.push_str(&format!(" --spares {n}"));
        }
        if let Some(a) = self.active_secs {
            s.push_str(&format!(" --active {a}"));
        }
        if let Some(w) = self.writes_per_sec {
            s.push_str(&format!(" --writes {w}"));
        }
        for c in &self.off {
            let flag = if c.is_fault() {
                "--no-fault"
            } else {
                "--no-op"
            };
            s.push_str(&format!(" {flag} {c}"));
        }
        s
    }

    /// Takes the command-line option `flag` with `value`; `Ok(false)` if `flag` is not one of
    /// these overrides.
    pub fn parse_arg(&mut self, flag: &str, value: &str) -> Result<bool, String> {
        let count = || value.parse::<u64>().map_err(|_| format!("{flag} {value}?"));
        match flag {
            "--members" => self.members = Some(count()? as usize),
            "--spares" => self.spares = Some(count()? as usize),
            "--active" => self.active_secs = Some(count()?),
            "--writes" => {
                let w: f64 = value.parse().map_err(|_| format!("{flag} {value}?"))?;
                if !(w.is_finite() && w > 0.0) {
                    return Err(format!("{flag} {value}: a rate above 0"));
                }
                self.writes_per_sec = Some(w);
            }
            "--no-fault" | "--no-op" => {
                let c = Class::parse(value).ok_or(format!("unknown class {value}"))?;
                if c.is_fault() != (flag == "--no-fault") {
                    let right = if c.is_fault() {
                        "--no-fault"
                    } else {
                        "--no-op"
                    };
                    return Err(format!("{value} goes with {right}"));
                }
                if !self.off.contains(&c) {
                    self.off.push(c);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The names of every class, for the usage text.
pub fn class_names(faults: bool) -> String {
    let names: Vec<&str> = Class::ALL
        .into_iter()
        .filter(|c| c.is_fault() == faults)
        .map(Class::name)
        .collect();
    names.join(" ")
}
