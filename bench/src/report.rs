//! What a run prints: one row per scenario, the targets of issue 15 as ratios of figures
//! measured in this run, a JSON file with all of it, and a one-line summary.

use serde_json::{json, Value};

use crate::procstat::Usage;

/// Which ceiling bounds a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The in-process write ceiling.
    Write,
    /// The in-process verify ceiling.
    Verify,
}

/// One scenario's figures.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// The scenario's name, as printed.
    pub name: String,
    /// What `rate` counts per second.
    pub unit: &'static str,
    /// Items per second.
    pub rate: f64,
    /// Latency percentiles p50, p99, p99.9 (ms), where requests were timed.
    pub latency_ms: Option<[f64; 3]>,
    /// Strand fdatasyncs per item, summed over the nodes.
    pub fsyncs_per_item: Option<f64>,
    /// CPU seconds per 1,000 items, per node.
    pub cpu_per_1000: Vec<f64>,
    /// Peak resident set per node, MiB.
    pub peak_rss_mib: Vec<f64>,
    /// The ceiling it is bound by, and its ratio to it.
    pub bound: Option<(Bound, f64)>,
    /// Errors seen, or "none".
    pub errors: String,
    /// Anything else worth printing.
    pub note: String,
}

impl Row {
    /// Fills the per-node CPU and memory columns from usage before and after.
    pub fn usage(&mut self, before: &[Usage], after: &[Usage], items: u64) {
        self.cpu_per_1000 = before
            .iter()
            .zip(after)
            .map(|(b, a)| (a.cpu_secs - b.cpu_secs) * 1000.0 / items.max(1) as f64)
            .collect();
        self.peak_rss_mib = after
            .iter()
            .map(|a| a.peak_rss as f64 / 1048576.0)
            .collect();
    }

    fn json(&self) -> Value {
        json!({
            "scenario": self.name,
            "unit": self.unit,
            "rate": round(self.rate, 1),
            "p50_ms": self.latency_ms.map(|l| round(l[0], 3)),
            "p99_ms": self.latency_ms.map(|l| round(l[1], 3)),
            "p999_ms": self.latency_ms.map(|l| round(l[2], 3)),
            "fsyncs_per_item": self.fsyncs_per_item.map(|f| round(f, 4)),
            "cpu_secs_per_1000": self.cpu_per_1000.iter().map(|c| round(*c, 4)).collect::<Vec<_>>(),
            "peak_rss_mib": self.peak_rss_mib.iter().map(|m| round(*m, 1)).collect::<Vec<_>>(),
            "ceiling": self.bound.map(|(b, _)| format!("{b:?}").to_lowercase()),
            "of_ceiling": self.bound.map(|(_, r)| round(r, 3)),
            "errors": self.errors,
            "note": self.note,
        })
    }
}

/// One of the targets: a ratio of two figures of this run, and its goal.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is compared.
    pub what: String,
    /// The measured ratio (or value).
    pub value: f64,
    /// The goal, as printed (`≥ 4`, `< 1 MiB`).
    pub goal: String,
    /// Whether the goal is met.
    pub met: bool,
}

impl Target {
    /// `value ≥ min`.
    pub fn at_least(what: impl Into<String>, value: f64, min: f64) -> Target {
        Target {
            what: what.into(),
            value,
            goal: format!("≥ {min}"),
            met: value >= min,
        }
    }

    /// `value ≤ max`.
    pub fn at_most(what: impl Into<String>, value: f64, max: f64) -> Target {
        Target {
            what: what.into(),
            value,
            goal: format!("≤ {max}"),
            met: value <= max,
        }
    }
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

fn list(v: &[f64], places: usize) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.places$}")).collect();
    parts.join("/")
}

/// The table of rows, then the targets.
pub fn print(rows: &[Row], targets: &[Target]) {
    println!(
        "\n{:<34} {:>12} {:<9} {:>8} {:>8} {:>8} {:>9} {:>18} {:>16} {:>10}",
        "scenario",
        "rate",
        "unit",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "fsync/it",
        "cpu s/1000 (node)",
        "peak RSS MiB",
        "of ceiling"
    );
    for r in rows {
        let l = |i: usize| r.latency_ms.map_or("-".into(), |l| format!("{:.2}", l[i]));
        println!(
            "{:<34} {:>12.0} {:<9} {:>8} {:>8} {:>8} {:>9} {:>18} {:>16} {:>10}",
            r.name,
            r.rate,
            r.unit,
            l(0),
            l(1),
            l(2),
            r.fsyncs_per_item.map_or("-".into(), |f| format!("{f:.3}")),
            list(&r.cpu_per_1000, 3),
            list(&r.peak_rss_mib, 0),
            r.bound.map_or("-".into(), |(b, x)| format!(
                "{:.0}% {}",
                x * 100.0,
                match b {
                    Bound::Write => "w",
                    Bound::Verify => "v",
                }
            )),
        );
        if r.errors != "none" || !r.note.is_empty() {
            println!("    errors: {}; {}", r.errors, r.note);
        }
    }
    println!("\ntargets (ratios of figures of this run; printed, never asserted):");
    for t in targets {
        println!(
            "  [{}] {:<58} {:>10.3}  goal {}",
            if t.met { "met" } else { "   " },
            t.what,
            t.value,
            t.goal
        );
    }
}

/// The whole run as JSON.
pub fn to_json(rows: &[Row], targets: &[Target], settings: Value) -> Value {
    json!({
        "settings": settings,
        "scenarios": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "targets": targets.iter().map(|t| json!({
            "what": t.what, "value": round(t.value, 4), "goal": t.goal, "met": t.met,
        })).collect::<Vec<_>>(),
    })
}

/// The last line: the headline figures and how many targets are met.
pub fn summary(rows: &[Row], targets: &[Target]) -> String {
    let rate = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map_or("-".into(), |r| format!("{:.0}", r.rate))
    };
    format!(
        "sapix-bench: {} scenarios; 1 node {} w/s, 3 nodes CP {} w/s, AP {} w/s, ingest {} blocks/s; targets met {}/{}",
        rows.len(),
        rate(names::ONE),
        rate(names::CP),
        rate(names::AP),
        rate(names::INGEST),
        targets.iter().filter(|t| t.met).count(),
        targets.len()
    )
}

/// The scenarios' names, shared by the runner and the summary.
pub mod names {
    /// The write ceiling.
    pub const WRITE_CEILING: &str = "ceiling: writes (in process)";
    /// The verify ceiling.
    pub const VERIFY_CEILING: &str = "ceiling: verify (in process)";
    /// Sealing (hash and sign), one thread.
    pub const SEAL: &str = "crypto: seal (1 thread)";
    /// Verifying (hash and signature check), one thread.
    pub const VERIFY: &str = "crypto: verify (1 thread)";
    /// Merkle tree appends, one thread.
    pub const MERKLE: &str = "ledger: Merkle append (1 thread)";
    /// Head signatures, one thread.
    pub const HEAD_SIGN: &str = "ledger: sign a head (1 thread)";
    /// Checking a pushed head, cosigning it, and checking the cosignature back.
    pub const HEAD_WITNESS: &str = "ledger: witness a head (1 thread)";
    /// One node.
    pub const ONE: &str = "1 node";
    /// One node in Codios mode, every authorization a cache hit.
    pub const CODIOS: &str = "1 node, Codios cache hits";
    /// Three nodes CP.
    pub const CP: &str = "3 nodes CP";
    /// Three nodes AP.
    pub const AP: &str = "3 nodes AP";
    /// etcd one node.
    pub const ETCD1: &str = "etcd 1 node";
    /// etcd three nodes.
    pub const ETCD3: &str = "etcd 3 nodes";
    /// Ingest.
    pub const INGEST: &str = "ingest (push pages)";
    /// Pull catch-up.
    pub const PULL: &str = "pull catch-up";
    /// Divide.
    pub const DIVIDE: &str = "divide";
    /// Memory of a lagging peer.
    pub const MEMORY: &str = "memory of a lagging peer";
    /// Reads by hash with the root key.
    pub const READ_HASH: &str = "reads by hash";
    /// Collection pages with the root key.
    pub const READ_PAGES: &str = "reads: collection pages";
    /// Reads by hash as a Codios token, every authorization a cache hit.
    pub const READ_CODIOS: &str = "reads by hash, Codios cache hits";
    /// Reads by hash with open reads (no token).
    pub const READ_OPEN: &str = "reads by hash, open reads";
}
