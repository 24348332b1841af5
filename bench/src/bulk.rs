//! The bulk scenarios, each bound by the verify ceiling: a peer's pushes of `blocks` signed
//! blocks (ingest), a replica that was down pulling them back (pull catch-up), and a new node
//! divided in from the node that holds them (divide). One source node serves all three.

use std::time::{Duration, Instant};

use sapix_core::wire::WireBlock;
use sapix_core::Block;
use sapix_tests::{wait_until, Agent};
use tokio::runtime::Runtime;

use crate::ceiling::PAGE;
use crate::cluster;
use crate::procstat::Usage;
use crate::report::{names, Bound, Row};

/// How long any bulk scenario may take before the benchmark gives up on it.
const BULK_WITHIN: Duration = Duration::from_secs(900);

/// Ingest, pull catch-up and divide of `blocks` (a chain of an author outside the cluster).
pub fn run(rt: &Runtime, blocks: &[Block], verify_ceiling: f64) -> Vec<Row> {
    let total = blocks.len() as u64;
    let source = cluster::node("bulk-a", &[]);
    let mut lagging = cluster::node("bulk-b", &[]);
    // Pushes carry only the pusher's own blocks; these reach `lagging` by pull alone.
    cluster::form(&[&source, &lagging]);
    lagging.stop();

    let mut ingest = ingest(rt, &source, blocks, verify_ceiling);
    ingest.note = format!("{PAGE} blocks per push, one pusher, as a peer pushes");

    let usage = |a: &Agent| cluster::usage(a);
    let (s0, t0) = (usage(&source), Instant::now());
    lagging.restart();
    let l0 = Usage::default();
    wait_blocks(&lagging, total, "the restarted replica pulls every block");
    let secs = t0.elapsed().as_secs_f64();
    let mut pull = caught_up(names::PULL, total, secs, verify_ceiling);
    pull.usage(&[s0, l0], &[usage(&source), usage(&lagging)], total);
    pull.note = "from the replica's restart (start-up included) to holding every block".into();
    drop(lagging);

    let fresh = cluster::node("bulk-c", &[]);
    let (s0, t0) = (usage(&source), Instant::now());
    let f0 = usage(&fresh);
    cluster::divide(&source.api(), "bulk-c", &fresh.base_url());
    let returned = t0.elapsed().as_secs_f64();
    wait_blocks(&fresh, total, "the divided node holds every block");
    let secs = t0.elapsed().as_secs_f64();
    let mut divide = caught_up(names::DIVIDE, total, secs, verify_ceiling);
    divide.usage(&[s0, f0], &[usage(&source), usage(&fresh)], total);
    divide.note = format!("the divide call returned after {returned:.2} s");
    vec![ingest, pull, divide]
}

fn ingest(rt: &Runtime, source: &Agent, blocks: &[Block], ceiling: f64) -> Row {
    let bodies: Vec<Vec<u8>> = blocks
        .chunks(PAGE)
        .map(|page| {
            // Straight to text: through `serde_json::Value` a payload's keys would be
            // re-sorted, and its signed bytes with them.
            let wires: Vec<String> = page
                .iter()
                .map(|b| serde_json::to_string(&WireBlock::from_block(b, None)).expect("JSON"))
                .collect();
            format!(r#"{{"blocks":[{}]}}"#, wires.join(",")).into_bytes()
        })
        .collect();
    let url = source.url("/v1/mesh/ingest");
    let token = source.root_key();
    let before = [cluster::usage(source)];
    let f0 = cluster::fsyncs(&source.api());
    let http = crate::load::http_client(1);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(bodies.len());
    rt.block_on(async {
        for body in bodies {
            let t = Instant::now();
            let resp = http
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("ingest answers");
            let status = resp.status();
            let text = resp.text().await.expect("ingest body");
            assert_eq!(status, 200, "ingest: {text}");
            latencies.push(t.elapsed().as_micros() as u64);
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let total = blocks.len() as u64;
    let mut row = caught_up(names::INGEST, total, secs, ceiling);
    latencies.sort_unstable();
    let pct = |p: f64| {
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1] as f64 / 1000.0
    };
    row.latency_ms = Some([pct(50.0), pct(99.0), pct(99.9)]);
    row.fsyncs_per_item = Some((cluster::fsyncs(&source.api()) - f0) / total as f64);
    row.usage(&before, &[cluster::usage(source)], total);
    row
}

fn caught_up(name: &str, total: u64, secs: f64, ceiling: f64) -> Row {
    let rate = total as f64 / secs;
    Row {
        name: name.into(),
        unit: "blocks/s",
        rate,
        bound: Some((Bound::Verify, rate / ceiling)),
        errors: "none".into(),
        ..Row::default()
    }
}

fn wait_blocks(agent: &Agent, total: u64, what: &str) {
    let api = agent.api();
    wait_until(BULK_WITHIN, what, || cluster::blocks(&api) >= total);
}
