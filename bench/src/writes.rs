//! The write scenarios: real agents (one node, three CP, three AP, Codios cache hits) and
//! etcd, each written by the same client for the same time.

use std::sync::Arc;

use sapix_tests::{Agent, CodiosDev};
use serde_json::json;
use tokio::runtime::Runtime;

use crate::cluster;
use crate::etcd::Etcd;
use crate::load::{self, record, Target, Until};
use crate::report::{names, Bound, Row};
use crate::Settings;

/// The write target of `agent` with `token`.
fn records(agent: &Agent, token: String) -> Target {
    Target {
        url: agent.url("/v1/records"),
        token: Some(token),
        ok_status: 201,
        body: Arc::new(record),
        get: None,
    }
}

/// Loads `target` and reads every node's CPU, memory and fsyncs around it.
fn measure(rt: &Runtime, s: &Settings, name: &str, nodes: &[&Agent], target: Target) -> Row {
    let before: Vec<_> = nodes.iter().map(|a| cluster::usage(a)).collect();
    let fsyncs = || -> f64 { nodes.iter().map(|a| cluster::fsyncs(&a.api())).sum() };
    let f0 = fsyncs();
    let out = rt.block_on(load::drive(&[target], s.clients, s.until()));
    let f1 = fsyncs();
    let after: Vec<_> = nodes.iter().map(|a| cluster::usage(a)).collect();
    let mut row = row(name, &out);
    row.fsyncs_per_item = Some((f1 - f0) / out.ok.max(1) as f64);
    row.usage(&before, &after, out.ok);
    row
}

fn row(name: &str, out: &load::Outcome) -> Row {
    Row {
        name: name.into(),
        unit: "writes/s",
        rate: out.rate(),
        latency_ms: Some([
            out.percentile_ms(50.0),
            out.percentile_ms(99.0),
            out.percentile_ms(99.9),
        ]),
        errors: out.error_summary(),
        ..Row::default()
    }
}

/// One node in local mode, and one in Codios mode whose every authorization after the first
/// is a cache hit.
pub fn one_node(rt: &Runtime, s: &Settings, ceiling: f64) -> Vec<Row> {
    let a = cluster::node("bench-one", &[]);
    let mut one = measure(rt, s, names::ONE, &[&a], records(&a, a.root_key()));
    one.bound = Some((Bound::Write, one.rate / ceiling));
    drop(a);

    let codios = CodiosDev::start(&json!({"tokens": {"bench-token": {"write": ["*"]}}}));
    let c = cluster::node("bench-codios", &[("SAPIX_CODIOS_URL", &codios.url())]);
    let mut hits = measure(
        rt,
        s,
        names::CODIOS,
        &[&c],
        records(&c, "bench-token".into()),
    );
    hits.bound = Some((Bound::Write, hits.rate / ceiling));
    hits.note = format!(
        "codios-dev answered {} authorize calls",
        codios.authorize_calls()
    );
    vec![one, hits]
}

/// Three nodes divided from the first, written on the first: CP, then AP.
pub fn three_nodes(rt: &Runtime, s: &Settings, ceiling: f64) -> Vec<Row> {
    let nodes = [
        cluster::node("bench-r1", &[]),
        cluster::node("bench-r2", &[]),
        cluster::node("bench-r3", &[]),
    ];
    let all: Vec<&Agent> = nodes.iter().collect();
    cluster::form(&all);
    let target = records(&nodes[0], nodes[0].root_key());
    let mut cp = measure(rt, s, names::CP, &all, target.clone());
    cp.bound = Some((Bound::Write, cp.rate / ceiling));
    cluster::consistency(&nodes[0].api(), "Ap");
    let mut ap = measure(rt, s, names::AP, &all, target);
    ap.bound = Some((Bound::Write, ap.rate / ceiling));
    vec![cp, ap]
}

/// etcd with `members` members, written on the first; `None` when it cannot start.
pub fn etcd(rt: &Runtime, s: &Settings, bin: &std::path::PathBuf, members: usize) -> Option<Row> {
    let name = if members == 1 {
        names::ETCD1
    } else {
        names::ETCD3
    };
    let e = match Etcd::start(bin, members) {
        Ok(e) => e,
        Err(why) => {
            eprintln!("sapix-bench: {name} skipped: {why}");
            return None;
        }
    };
    let before = e.usage();
    let out = rt.block_on(load::drive(&[e.target(0)], s.clients, s.until()));
    let mut r = row(name, &out);
    r.usage(&before, &e.usage(), out.ok);
    Some(r)
}

impl Settings {
    /// When each write scenario's clients stop.
    pub fn until(&self) -> Until {
        Until {
            time: self.seconds,
            requests: u64::MAX,
        }
    }
}
