//! `GET /metrics` on real `sapix-agent` processes (issue 14): Prometheus text that a scraper
//! parses, every documented family present, and values that follow what the nodes do — writes
//! by outcome, pushes to a peer, the peer's queue growing while it is down and draining after.

use std::collections::BTreeMap;
use std::time::Duration;

use sapix_tests::{cluster_agent, wait_until, Api, Auth};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(30);

/// Every family `docs/metrics.md` documents, as a scrape names its samples.
const FAMILIES: &[&str] = &[
    "sapix_writes_total",
    "sapix_write_duration_seconds_bucket",
    "sapix_pushes_total",
    "sapix_pull_pages_total",
    "sapix_codios_duration_seconds_count",
    "sapix_fsync_duration_seconds_bucket",
    "sapix_commit_batch_blocks_bucket",
    "sapix_peer_reachable",
    "sapix_peer_queue_blocks",
    "sapix_peer_backoff_seconds",
    "sapix_peer_pull_cursor",
    "sapix_peer_last_sync_timestamp_seconds",
    "sapix_peer_push_lag_seconds",
    "sapix_peer_pull_lag_blocks",
    "sapix_partitioned",
    "sapix_consistency",
    "sapix_auth_breaker",
    "sapix_auth_degraded_writes_total",
    "sapix_auth_cache_entries",
    "sapix_auth_cache_lookups_total",
    "sapix_codios_in_flight",
    "sapix_strand_tip",
    "sapix_strand_segments",
    "sapix_strand_size_bytes",
    "sapix_strand_appended_blocks_total",
    "sapix_strand_group_commits_total",
    "sapix_strand_fsyncs_total",
    "sapix_strand_written_bytes_total",
    "sapix_strand_segments_created_total",
    "sapix_build_info",
];

/// One scrape, parsed: sample name with its labels → value. Fails on anything a Prometheus
/// text parser would refuse (a sample line that is not `name{labels} value`).
fn scrape(api: &Api) -> BTreeMap<String, f64> {
    let reply = api.get("/metrics");
    reply.assert_status(200);
    let text = &reply.text;
    assert!(
        text.ends_with("# EOF\n"),
        "an OpenMetrics scrape ends with # EOF"
    );
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (name.to_string(), value)
        })
        .collect()
}

fn value(m: &BTreeMap<String, f64>, sample: &str) -> f64 {
    m.get(sample).copied().unwrap_or(0.0)
}

#[test]
fn metrics_follow_writes_pushes_and_a_peer_going_down_and_back() {
    let a = cluster_agent("primary");
    let mut b = cluster_agent("replica-eu");
    let (api_a, api_b) = (a.api(), b.api());
    let first = scrape(&api_a);
    assert_eq!(
        value(&first, "sapix_writes_total{outcome=\"written\"}"),
        0.0
    );
    assert_eq!(value(&first, "sapix_consistency{mode=\"cp\"}"), 1.0);

    for i in 0..5 {
        api_a.write("orders", &json!({ "n": i }));
    }
    let denied = api_a.post_with(
        "/v1/records",
        Auth::Bearer("not-the-root-key-0123456789"),
        Api::record_body("orders", &json!(1)),
    );
    denied.assert_status(403);
    let body = json!({ "new_agent_id": "replica-eu", "endpoint": b.base_url() });
    api_a
        .post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    wait_until(WITHIN, "a CP write is accepted on the new pair", || {
        api_a
            .try_write("orders", &json!("pair"))
            .is_ok_and(|r| r.status == 201)
    });
    // The replica pulls from the primary as it joins: its scrape has the pull families.
    wait_until(
        WITHIN,
        "the replica fetched a page from the primary",
        || {
            value(
                &scrape(&api_b),
                "sapix_pull_pages_total{peer=\"primary\",outcome=\"ok\"}",
            ) >= 1.0
        },
    );
    let m = scrape(&api_a);
    let both: Vec<String> = m.keys().chain(scrape(&api_b).keys()).cloned().collect();
    for family in FAMILIES {
        assert!(
            both.iter().any(|k| k.starts_with(family)),
            "{family} missing from the scrapes: {both:?}"
        );
    }
    assert_eq!(value(&m, "sapix_writes_total{outcome=\"written\"}"), 6.0);
    assert_eq!(value(&m, "sapix_writes_total{outcome=\"denied\"}"), 1.0);
    assert_eq!(value(&m, "sapix_write_duration_seconds_count"), 7.0);
    assert_eq!(value(&m, "sapix_strand_tip"), 6.0);
    assert_eq!(value(&m, "sapix_strand_segments"), 1.0);
    assert!(value(&m, "sapix_strand_size_bytes") >= value(&m, "sapix_strand_written_bytes_total"));
    assert!(value(&m, "sapix_strand_size_bytes") > 0.0);
    assert!(value(&m, "sapix_fsync_duration_seconds_count") >= 6.0);
    assert!(value(&m, "sapix_pushes_total{peer=\"replica-eu\",outcome=\"ok\"}") >= 1.0);
    assert_eq!(value(&m, "sapix_peer_reachable{peer=\"replica-eu\"}"), 1.0);
    assert_eq!(value(&m, "sapix_partitioned"), 0.0);

    // The peer goes down: AP keeps writing, its queue grows and the scrape says so.
    b.stop();
    api_a
        .post_with(
            "/v1/cluster/consistency",
            Auth::Root,
            json!({"mode": "AP"}).to_string(),
        )
        .assert_status(200);
    for i in 0..4 {
        api_a.write("orders", &json!({ "down": i }));
    }
    wait_until(
        WITHIN,
        "the scrape shows the peer down with 4 blocks queued",
        || {
            let m = scrape(&api_a);
            value(&m, "sapix_peer_reachable{peer=\"replica-eu\"}") == 0.0
                && value(&m, "sapix_peer_queue_blocks{peer=\"replica-eu\"}") == 4.0
                && value(&m, "sapix_peer_push_lag_seconds{peer=\"replica-eu\"}") > 0.0
                && value(&m, "sapix_partitioned") == 1.0
                && value(&m, "sapix_consistency{mode=\"ap\"}") == 1.0
        },
    );
    let m = scrape(&api_a);
    assert!(
        value(
            &m,
            "sapix_pushes_total{peer=\"replica-eu\",outcome=\"failed\"}"
        ) >= 1.0
    );

    b.restart();
    wait_until(WITHIN, "the queue drains once the peer is back", || {
        let m = scrape(&api_a);
        value(&m, "sapix_peer_reachable{peer=\"replica-eu\"}") == 1.0
            && value(&m, "sapix_peer_queue_blocks{peer=\"replica-eu\"}") == 0.0
            && value(&m, "sapix_peer_push_lag_seconds{peer=\"replica-eu\"}") == 0.0
    });
    // The replica pulled from the primary: its pull counter and cursor moved.
    let mb = scrape(&api_b);
    assert!(value(&mb, "sapix_peer_pull_cursor{peer=\"primary\"}") >= 1.0);
}
