//! What a peer that falls `behind` blocks behind costs in memory, on real processes: a node
//! whose only peer is down (AP, so it keeps taking writes) and a node with no peer take the
//! same writes at the same time; the difference of their resident sets is what the lagging
//! peer costs. (`core/tests/million_blocks_behind_stays_small.rs` counts the same in bytes
//! allocated, exactly, in the core alone.)

use sapix_tests::Agent;
use tokio::runtime::Runtime;

use crate::cluster;
use crate::load::{self, Until};
use crate::report::{names, Row};
use crate::Settings;

/// The memory scenario; its rate is the lagging node's writes per second.
pub fn run(rt: &Runtime, s: &Settings) -> (Row, Lagging) {
    let lagging = cluster::node("mem-l", &[]);
    let mut peer = cluster::node("mem-p", &[]);
    cluster::form(&[&lagging, &peer]);
    peer.stop();
    cluster::consistency(&lagging.api(), "Ap");
    let solo = cluster::node("mem-s", &[]);

    // Each node takes exactly `behind` writes, from half the clients, at the same time.
    let until = Until {
        time: std::time::Duration::from_secs(3600),
        requests: s.behind,
    };
    let half = (s.clients / 2).max(1);
    let (tl, ts) = ([target(&lagging)], [target(&solo)]);
    let (out, _) = rt.block_on(async {
        tokio::join!(load::drive(&tl, half, until), load::drive(&ts, half, until))
    });
    let (l, o) = (cluster::usage(&lagging), cluster::usage(&solo));
    let (held_l, held_s) = (
        cluster::blocks(&lagging.api()),
        cluster::blocks(&solo.api()),
    );
    let queue = cluster::status(&lagging.api())["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|p| p["agent_id"] == "mem-p"))
        .and_then(|p| p["queue_depth"].as_u64())
        .unwrap_or(0);
    let diff = l.rss as f64 - o.rss as f64;
    let row = Row {
        name: names::MEMORY.into(),
        unit: "writes/s",
        rate: out.rate(),
        peak_rss_mib: vec![l.peak_rss as f64 / 1048576.0, o.peak_rss as f64 / 1048576.0],
        errors: out.error_summary(),
        note: format!(
            "peer queue {queue} blocks behind; RSS with the lagging peer {:.1} MiB, without {:.1} MiB \
             (blocks held {held_l} / {held_s}): the lagging peer costs {:.2} MiB",
            l.rss as f64 / 1048576.0,
            o.rss as f64 / 1048576.0,
            diff / 1048576.0
        ),
        ..Row::default()
    };
    (
        row,
        Lagging {
            rss_diff: diff,
            queue,
        },
    )
}

fn target(a: &Agent) -> load::Target {
    load::Target {
        url: a.url("/v1/records"),
        token: Some(a.root_key()),
        ok_status: 201,
        body: std::sync::Arc::new(load::record),
        get: None,
    }
}

/// The memory row's figures the targets read: the RSS difference (bytes) and the queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lagging {
    /// RSS of the node with the lagging peer minus the node without, bytes.
    pub rss_diff: f64,
    /// The lagging peer's queue depth, blocks.
    pub queue: u64,
}
