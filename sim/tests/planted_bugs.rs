//! It bites: each planted bug (core feature `sim`, `Node::plant`) is found by the checker that
//! owns its property within a stated number of seeds, counting from seed 0.

mod common;

use common::LAYER_0;
use sapix_core::node::planted::PlantedBug;

fn bites(bug: PlantedBug, within: u64, checker: &str) {
    LAYER_0.bites(bug, within, checker);
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

#[test]
fn position_before_durable_is_found_within_30_seeds() {
    bites(PlantedBug::PositionBeforeDurable, 30, "read_your_writes");
}
