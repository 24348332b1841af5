//! `sapix-bench`: the benchmark suite. It starts its own real `sapix-agent` processes on
//! loopback, drives them over HTTP with `--clients` concurrent connections, and measures in
//! the same run the two ceilings no HTTP path can pass (in this process, no HTTP), and etcd
//! with the same client when it is installed. It prints a table, the targets of issue 15 as
//! ratios of figures of this run, writes all of it as JSON (`--json`, default
//! `target/sapix-bench.json`) and ends with a one-line summary.
//!
//! `cargo run --release -p sapix-bench` (full, a few minutes); `--short` runs in under a
//! minute. Nothing here asserts a figure: a scenario fails only if the system misbehaves
//! (a write refused, a block missing).

mod bulk;
mod ceiling;
mod cluster;
mod etcd;
mod load;
mod memory;
mod procstat;
mod reads;
mod report;
mod writes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use report::{names, Row, Target};
use serde_json::json;

const USAGE: &str = "usage: sapix-bench [--short] [--clients N] [--seconds S] [--blocks N] \
                     [--behind N] [--json FILE] [--no-etcd] [--only GROUP,…]";

/// The scenario groups `--only` can pick (for profiling one of them).
const GROUPS: [&str; 7] = [
    "ceilings", "one", "three", "etcd", "bulk", "memory", "reads",
];

/// What a run measures, and for how long.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Concurrent clients of every write scenario.
    pub clients: usize,
    /// How long each write scenario (and the write ceiling) runs.
    pub seconds: Duration,
    /// Blocks of the verify ceiling and the bulk scenarios.
    pub blocks: u64,
    /// How far behind the lagging peer falls in the memory scenario.
    pub behind: u64,
    /// Where the JSON goes.
    pub json: PathBuf,
    /// Whether etcd runs, if installed.
    pub etcd: bool,
    /// `--short`.
    pub short: bool,
    /// The groups to run (all unless `--only`).
    pub only: Vec<String>,
}

impl Settings {
    fn runs(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Settings, String> {
    let mut s = Settings {
        clients: 64,
        seconds: Duration::from_secs(10),
        blocks: 200_000,
        behind: 1_000_000,
        json: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/sapix-bench.json"
        )),
        etcd: true,
        short: false,
        only: Vec::new(),
    };
    let mut given = Vec::new();
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String, max: u64| match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("{flag}: {v:?} is not a number in 1..={max}")),
        };
        match flag.as_str() {
            "--short" => s.short = true,
            "--clients" => s.clients = number(value()?, 1024)? as usize,
            "--seconds" => s.seconds = Duration::from_secs(number(value()?, 600)?),
            "--blocks" => s.blocks = number(value()?, 10_000_000)?,
            "--behind" => s.behind = number(value()?, 10_000_000)?,
            "--json" => s.json = PathBuf::from(value()?),
            "--no-etcd" => s.etcd = false,
            "--only" => {
                for g in value()?.split(',') {
                    if !GROUPS.contains(&g) {
                        return Err(format!("--only: {g:?} is not one of {GROUPS:?}"));
                    }
                    s.only.push(g.to_owned());
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
        given.push(flag);
    }
    if s.short {
        // Every scenario, scaled down; a flag given explicitly still wins.
        let set = |f: &str| given.iter().any(|g| g == f);
        if !set("--seconds") {
            s.seconds = Duration::from_secs(2);
        }
        if !set("--blocks") {
            s.blocks = 5_000;
        }
        if !set("--behind") {
            s.behind = 5_000;
        }
    }
    Ok(s)
}

fn main() -> ExitCode {
    let s = match parse(std::env::args().skip(1)) {
        Ok(s) => s,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("sapix-bench: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "sapix-bench: {} clients, {:?} per write scenario, {} blocks bulk, {} behind, {cores} cores{}",
        s.clients,
        s.seconds,
        s.blocks,
        s.behind,
        if s.short { " (short)" } else { "" }
    );
    let mut rows: Vec<Row> = Vec::new();
    let step = |name: &str| println!("[{:>6.1} s] {name}", started.elapsed().as_secs_f64());

    // Without the ceilings (`--only`), ratios to them are not printed (NaN).
    let (mut w, mut v) = (ceiling::Ceiling::nan(), ceiling::Ceiling::nan());
    if s.runs("ceilings") {
        step("write ceiling");
        w = rt.block_on(ceiling::writes(s.clients, s.seconds));
        rows.push(ceiling_row(names::WRITE_CEILING, "writes/s", w));
    }
    if s.runs("ceilings") {
        step("crypto, one thread");
        let (seal, verify) = ceiling::crypto(s.blocks.min(20_000));
        let floor = cores as f64 / (1.0 / seal + 2.0 / verify);
        for (name, rate) in [(names::SEAL, seal), (names::VERIFY, verify)] {
            rows.push(Row {
                name: name.into(),
                unit: "blocks/s",
                rate,
                errors: "none".into(),
                ..Row::default()
            });
        }
        rows.last_mut().expect("row").note = format!(
            "a replicated write to 3 nodes is sealed once and verified twice: on {cores} cores \
             crypto alone allows at most {floor:.0} replicated writes/s"
        );
    }
    if s.runs("ceilings") {
        step("ledger: Merkle appends and head signatures, one thread");
        let (append, sign, witness) = ceiling::ledger(s.blocks.max(100_000));
        let per_write = 1e9 / append;
        let share = w.rate / append * 100.0;
        rows.push(Row {
            name: names::MERKLE.into(),
            unit: "blocks/s",
            rate: append,
            errors: "none".into(),
            note: format!(
                "{per_write:.0} ns a stored block: {share:.2}% of one core at the write ceiling's rate"
            ),
            ..Row::default()
        });
        rows.push(Row {
            name: names::HEAD_SIGN.into(),
            unit: "heads/s",
            rate: sign,
            errors: "none".into(),
            note: format!(
                "at most 10 heads/s per node: {:.3}% of one core",
                10.0 / sign * 100.0
            ),
            ..Row::default()
        });
        rows.push(Row {
            name: names::HEAD_WITNESS.into(),
            unit: "rounds/s",
            rate: witness,
            errors: "none".into(),
            note: format!(
                "3 nodes at 10 heads/s each: every node runs 20 rounds/s, {:.3}% of one core",
                20.0 / witness * 100.0
            ),
            ..Row::default()
        });
    }
    let chain = if s.runs("ceilings") || s.runs("bulk") {
        step("signing the bulk chain");
        ceiling::chain("bulk-src", s.blocks)
    } else {
        Vec::new()
    };
    if s.runs("ceilings") {
        step("verify ceiling");
        v = rt.block_on(ceiling::verify(&chain));
        rows.push(ceiling_row(names::VERIFY_CEILING, "blocks/s", v));
    }
    if s.runs("one") {
        step("1 node, Codios cache hits");
        rows.extend(writes::one_node(&rt, &s, w.rate));
    }
    if s.runs("three") {
        step("3 nodes, CP then AP");
        rows.extend(writes::three_nodes(&rt, &s, w.rate));
    }
    let etcd_bin = s.etcd.then(etcd::binary).flatten();
    match &etcd_bin {
        Some(bin) if s.runs("etcd") => {
            step("etcd 1 node, 3 nodes");
            rows.extend(writes::etcd(&rt, &s, bin, 1));
            rows.extend(writes::etcd(&rt, &s, bin, 3));
        }
        Some(_) => {}
        None => println!("etcd not installed (apt-get install etcd-server) or --no-etcd: skipped"),
    }
    if s.runs("bulk") {
        step("ingest, pull catch-up, divide");
        rows.extend(bulk::run(&rt, &chain, v.rate));
    }
    if s.runs("reads") {
        step("reads by hash and by collection page, authorized and open");
        rows.extend(reads::run(&rt, &s, if s.short { 2_000 } else { 20_000 }));
    }
    let mut lagging = None;
    if s.runs("memory") {
        step("memory of a lagging peer");
        let (mem, l) = memory::run(&rt, &s);
        rows.push(mem);
        lagging = Some(l);
    }

    let targets = targets(&rows, lagging.as_ref());
    report::print(&rows, &targets);
    let settings = json!({
        "clients": s.clients,
        "seconds": s.seconds.as_secs(),
        "blocks": s.blocks,
        "behind": s.behind,
        "short": s.short,
        "cores": cores,
        "etcd": etcd_bin.map(|b| b.display().to_string()),
        "elapsed_secs": started.elapsed().as_secs(),
    });
    let doc = report::to_json(&rows, &targets, settings);
    let text = serde_json::to_string_pretty(&doc).expect("JSON");
    if let Err(e) = std::fs::write(&s.json, text + "\n") {
        eprintln!("sapix-bench: writing {}: {e}", s.json.display());
        return ExitCode::FAILURE;
    }
    println!("JSON: {}", s.json.display());
    println!("{}", report::summary(&rows, &targets));
    ExitCode::SUCCESS
}

fn ceiling_row(name: &str, unit: &'static str, c: ceiling::Ceiling) -> Row {
    Row {
        name: name.into(),
        unit,
        rate: c.rate,
        fsyncs_per_item: Some(c.fsyncs_per_item),
        errors: "none".into(),
        ..Row::default()
    }
}

/// The targets, from this run's figures (a missing scenario leaves its targets out).
fn targets(rows: &[Row], lagging: Option<&memory::Lagging>) -> Vec<Target> {
    let get = |name: &str| rows.iter().find(|r| r.name == name);
    let p99 = |r: &Row| r.latency_ms.map_or(f64::NAN, |l| l[1]);
    let mut t = Vec::new();
    let (one, cp, ap) = (get(names::ONE), get(names::CP), get(names::AP));
    if let (Some(one), Some(e)) = (one, get(names::ETCD1)) {
        t.push(Target::at_least(
            "1 node / etcd 1 node (writes/s)",
            one.rate / e.rate,
            4.0,
        ));
        t.push(Target::at_most(
            "1 node p99 / etcd 1 node p99",
            p99(one) / p99(e),
            0.5,
        ));
    }
    if let Some((_, r)) = one.and_then(|o| o.bound) {
        t.push(Target::at_least("1 node / write ceiling", r, 0.6));
    }
    if let (Some(cp), Some(e)) = (cp, get(names::ETCD3)) {
        t.push(Target::at_least(
            "3 nodes CP / etcd 3 nodes (writes/s)",
            cp.rate / e.rate,
            2.5,
        ));
        t.push(Target::at_most(
            "3 nodes CP p99 / etcd 3 nodes p99",
            p99(cp) / p99(e),
            1.0,
        ));
    }
    if let (Some(ap), Some(one), Some(cp)) = (ap, one, cp) {
        t.push(Target::at_least(
            "3 nodes AP / 1 node",
            ap.rate / one.rate,
            0.5,
        ));
        t.push(Target::at_least(
            "3 nodes AP / 3 nodes CP",
            ap.rate / cp.rate,
            1.0,
        ));
        t.push(Target::at_most(
            "3 nodes AP p99 / 1 node p99",
            p99(ap) / p99(one),
            2.0,
        ));
    }
    if let (Some(c), Some(one)) = (get(names::CODIOS), one) {
        t.push(Target::at_least(
            "Codios cache hits / 1 node local",
            c.rate / one.rate,
            0.95,
        ));
    }
    for name in [names::INGEST, names::PULL, names::DIVIDE] {
        if let Some((_, r)) = get(name).and_then(|r| r.bound) {
            t.push(Target::at_least(format!("{name} / verify ceiling"), r, 0.8));
        }
    }
    if let Some(l) = lagging {
        t.push(Target {
            what: format!("MiB per lagging peer {} blocks behind", l.queue),
            value: l.rss_diff / 1048576.0,
            goal: "< 1 (at 1,000,000 behind)".into(),
            met: l.rss_diff < 1048576.0,
        });
    }
    // A ratio to a scenario not run this time (`--only`) is not a figure.
    t.retain(|x| !x.value.is_nan());
    t
}
