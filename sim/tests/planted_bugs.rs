//! It bites: each planted bug (core feature `sim`, `Node::plant`) is found by the checker that
//! owns its property within a stated number of seeds, counting from seed 0.

use sapix_core::node::planted::PlantedBug;
use sapix_sim::runner;
use sapix_sim::trace::Trace;

/// Runs seeds 0.. with `bug` planted; returns the first failing seed and its checker.
fn first_failure(bug: PlantedBug, within: u64) -> Option<(u64, &'static str)> {
    (0..within).find_map(|seed| {
        let r = runner::run_seed(seed, &[bug], Trace::quiet());
        r.violation.map(|v| (seed, v.checker))
    })
}

fn bites(bug: PlantedBug, within: u64, checker: &str) {
    let found = first_failure(bug, within);
    println!("{bug:?}: found at {found:?} (bound {within} seeds)");
    let (seed, by) = found.unwrap_or_else(|| panic!("{bug:?} not found in {within} seeds"));
    assert_eq!(
        by,
        checker,
        "{bug:?} was found by the wrong checker; replay: {}",
        runner::replay_command(seed, &[bug])
    );
}

#[test]
fn cp_ack_before_peers_is_found_within_5_seeds() {
    bites(PlantedBug::CpAckBeforePeers, 5, "cp_replicated");
}

#[test]
fn ingest_ack_before_durable_is_found_within_10_seeds() {
    bites(PlantedBug::IngestAckBeforeDurable, 10, "peer_acks");
}

#[test]
fn push_before_durable_is_found_within_3_seeds() {
    bites(PlantedBug::PushBeforeDurable, 3, "durable_sends");
}

#[test]
fn cursor_before_durable_is_found_within_10_seeds() {
    bites(PlantedBug::CursorBeforeDurable, 10, "cursors");
}

#[test]
fn failed_push_counted_as_delivered_is_found_within_10_seeds() {
    bites(PlantedBug::FailedPushCountsAsDelivered, 10, "peer_acks");
}

#[test]
fn stale_permit_past_deny_is_found_within_60_seeds() {
    bites(PlantedBug::StalePermitPastDeny, 60, "auth");
}

#[test]
fn queue_overflow_drops_is_found_within_30_seeds() {
    bites(PlantedBug::QueueOverflowDrops, 30, "peer_acks");
}
