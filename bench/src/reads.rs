//! The read scenarios (issue 16): a node holding the same records read three ways by the same
//! client for the same time — by hash and by collection pages of 100 with the root key, and
//! by hash as a Codios token whose every read is a cache hit — and a node with open reads
//! (`SAPIX_READS_OPEN=true`, no token) read by hash, so the cost of read authorization on a
//! cache hit is a ratio of one run.

use std::sync::Arc;

use sapix_tests::{Agent, CodiosDev};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

use crate::cluster;
use crate::load::{self, record, Target, Until};
use crate::report::{names, Row};
use crate::Settings;

/// Records per page in the page scenario.
const PAGE: u64 = 100;

/// Writes `n` records to `agent` with its root key.
fn fill(rt: &Runtime, agent: &Agent, n: u64) {
    let target = Target {
        url: agent.url("/v1/records"),
        token: Some(agent.root_key()),
        ok_status: 201,
        body: Arc::new(record),
        get: None,
    };
    let until = Until {
        time: std::time::Duration::from_secs(600),
        requests: n,
    };
    let out = rt.block_on(load::drive(&[target], 64, until));
    assert_eq!(out.ok, n, "filling the read node: {}", out.error_summary());
}

/// The collection's hashes and the cursor of every page of `PAGE` after the first.
fn walk(agent: &Agent) -> (Vec<String>, Vec<String>) {
    let api = agent.api();
    let (mut hashes, mut cursors) = (Vec::new(), vec![String::new()]);
    loop {
        let after = cursors.last().expect("one");
        let page: Value = api
            .get(&format!(
                "/v1/records?collection=bench&limit={PAGE}&after={after}"
            ))
            .json();
        for r in page["records"].as_array().expect("a page") {
            hashes.push(r["hash"].as_str().expect("hash").to_string());
        }
        if page["more"] != true {
            return (hashes, cursors);
        }
        cursors.push(page["next"].as_str().expect("next").to_string());
    }
}

fn by_hash(agent: &Agent, token: Option<String>, hashes: &Arc<Vec<String>>) -> Target {
    let hashes = hashes.clone();
    Target {
        url: agent.url("/v1/records/"),
        token,
        ok_status: 200,
        body: Arc::new(|_, _| Vec::new()),
        get: Some(Arc::new(move |c, n| {
            hashes[(n as usize * 7 + c) % hashes.len()].clone()
        })),
    }
}

fn measure(rt: &Runtime, s: &Settings, name: &str, agent: &Agent, target: Target, per: u64) -> Row {
    let before = [cluster::usage(agent)];
    let out = rt.block_on(load::drive(&[target], s.clients, s.until()));
    let after = [cluster::usage(agent)];
    let mut row = Row {
        name: name.into(),
        unit: "records/s",
        rate: out.rate() * per as f64,
        latency_ms: Some([
            out.percentile_ms(50.0),
            out.percentile_ms(99.0),
            out.percentile_ms(99.9),
        ]),
        errors: out.error_summary(),
        ..Row::default()
    };
    row.usage(&before, &after, out.ok * per);
    row
}

/// Every read scenario; `records` is how many each node holds.
pub fn run(rt: &Runtime, s: &Settings, records: u64) -> Vec<Row> {
    let codios = CodiosDev::start(&json!({"tokens": {"bench-reader": {"read": ["*"]}}}));
    let a = cluster::node("bench-reads", &[("SAPIX_CODIOS_URL", &codios.url())]);
    fill(rt, &a, records);
    let (hashes, cursors) = walk(&a);
    let hashes = Arc::new(hashes);
    let by_root = by_hash(&a, Some(a.root_key()), &hashes);
    let root = measure(rt, s, names::READ_HASH, &a, by_root, 1);

    let cursors = Arc::new(cursors);
    let pages = Target {
        url: a.url("/v1/records?collection=bench&limit=100&after="),
        token: Some(a.root_key()),
        ok_status: 200,
        body: Arc::new(|_, _| Vec::new()),
        get: Some(Arc::new(move |c, n| {
            cursors[(n as usize + c) % cursors.len()].clone()
        })),
    };
    let mut pages = measure(rt, s, names::READ_PAGES, &a, pages, PAGE);
    pages.note = format!(
        "pages of {PAGE} from {} cursors across {records} records",
        hashes.len().div_ceil(PAGE as usize)
    );

    let as_token = by_hash(&a, Some("bench-reader".into()), &hashes);
    let mut hits = measure(rt, s, names::READ_CODIOS, &a, as_token, 1);
    hits.note = format!(
        "codios-dev answered {} authorize calls",
        codios.authorize_calls()
    );
    drop(a);

    let o = cluster::node("bench-open", &[("SAPIX_READS_OPEN", "true")]);
    fill(rt, &o, records);
    let (open_hashes, _) = walk(&o);
    let open = by_hash(&o, None, &Arc::new(open_hashes));
    let mut open = measure(rt, s, names::READ_OPEN, &o, open, 1);
    open.note = format!(
        "read authorization on a cache hit costs: Codios cache hits / open reads = {:.3}",
        hits.rate / open.rate
    );
    vec![root, pages, hits, open]
}
