//! Prometheus metrics (`GET /metrics`): what the node did since start — writes and their
//! latency, pushes, pulls and Codios calls by outcome, fsync latency and group-commit sizes —
//! and, read at scrape time, what it holds now: each peer's reachability, retry queue,
//! backoff, pull cursor and last sync, the gating mode, the auth breaker, the strand.
//!
//! Names follow Prometheus' conventions: `sapix_` prefix, counters end in `_total`, durations
//! are `_seconds` histograms, labels are low-cardinality (a peer's agent id at most). The
//! catalogue and the alert rules to start from are in `docs/metrics.md`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use sapix_core::node::{Failure, Reply, Response};
use sapix_core::status::{BreakerStatus, ClusterStatus, Consistency};

use crate::strand::StrandStats;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a client write was answered.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum WriteOutcome {
    /// 201: durable here (and, in CP, on every peer).
    written,
    /// 202: durable here, a peer failed before it held it (CP).
    indeterminate,
    /// 503: CP with a peer unreachable.
    partitioned,
    /// 403: not authorized.
    denied,
    /// 503: Codios could not be asked and nothing cached may be served.
    auth_unavailable,
    /// 503: the strand failed.
    storage_failed,
    /// 507: the disk is full; nothing was stored.
    storage_full,
    /// Anything else (a bug if it shows).
    other,
}

impl WriteOutcome {
    /// The outcome a write's answer stands for.
    pub fn of(response: &Response) -> Self {
        match response {
            Response::Written(_) => Self::written,
            Response::Indeterminate { .. } => Self::indeterminate,
            Response::Partitioned { .. } => Self::partitioned,
            Response::Denied { .. } => Self::denied,
            Response::AuthUnavailable { .. } => Self::auth_unavailable,
            Response::StorageFailed => Self::storage_failed,
            Response::StorageFull => Self::storage_full,
            _ => Self::other,
        }
    }
}

/// How a call to a peer or to Codios ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CallOutcome {
    /// Answered as asked.
    ok,
    /// The peer lacks earlier blocks (a push).
    gap,
    /// Timed out.
    timeout,
    /// Unreachable, reset, refused, garbled or answered with an error status.
    failed,
}

impl CallOutcome {
    /// The outcome of a call that ended with `outcome`.
    pub fn of(outcome: &Result<Reply, Failure>) -> Self {
        match outcome {
            Ok(Reply::Gap { .. }) => Self::gap,
            Ok(_) => Self::ok,
            Err(Failure::TimedOut) => Self::timeout,
            Err(_) => Self::failed,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabel {
    outcome: WriteOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabel {
    outcome: CallOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerOutcome {
    peer: String,
    outcome: CallOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthorLabel {
    author: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    agent_id: String,
}

/// A gauge of seconds.
type FGauge = Gauge<f64, AtomicU64>;

/// Latency buckets from 100 µs to ~52 s.
fn seconds_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// The node's live metrics: counters and histograms updated where things happen; cheap
/// clones share them.
#[derive(Debug, Clone)]
pub struct Metrics {
    agent_id: String,
    writes: Family<WriteLabel, Counter>,
    write_seconds: Histogram,
    pushes: Family<PeerOutcome, Counter>,
    pulls: Family<PeerOutcome, Counter>,
    codios: Family<CallLabel, Counter>,
    codios_seconds: Histogram,
    fsync_seconds: Histogram,
    batch_blocks: Histogram,
}

impl Metrics {
    /// Fresh metrics for node `agent_id`.
    pub fn new(agent_id: &str) -> Arc<Self> {
        Arc::new(Metrics {
            agent_id: agent_id.to_string(),
            writes: Family::default(),
            write_seconds: seconds_buckets(),
            pushes: Family::default(),
            pulls: Family::default(),
            codios: Family::default(),
            codios_seconds: seconds_buckets(),
            fsync_seconds: seconds_buckets(),
            batch_blocks: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
        })
    }

    /// A client write was answered `outcome` after `took`.
    pub fn write(&self, outcome: WriteOutcome, took: Duration) {
        self.writes.get_or_create(&WriteLabel { outcome }).inc();
        self.write_seconds.observe(took.as_secs_f64());
    }

    /// A push to `peer` ended.
    pub fn push(&self, peer: &str, outcome: CallOutcome) {
        let peer = peer.to_string();
        self.pushes
            .get_or_create(&PeerOutcome { peer, outcome })
            .inc();
    }

    /// A page fetch from `peer` ended.
    pub fn pull(&self, peer: &str, outcome: CallOutcome) {
        let peer = peer.to_string();
        self.pulls
            .get_or_create(&PeerOutcome { peer, outcome })
            .inc();
    }

    /// A Codios call ended after `took`.
    pub fn codios(&self, outcome: CallOutcome, took: Duration) {
        self.codios.get_or_create(&CallLabel { outcome }).inc();
        self.codios_seconds.observe(took.as_secs_f64());
    }

    /// A group commit made `blocks` durable with an fsync that took `took`.
    pub fn commit(&self, blocks: usize, took: Duration) {
        self.batch_blocks.observe(blocks as f64);
        self.fsync_seconds.observe(took.as_secs_f64());
    }

    /// The text a scrape gets: the live metrics, and `status` and `strand` as they are now.
    pub fn render(&self, status: &ClusterStatus, strand: &Strand) -> String {
        let mut r = Registry::with_prefix("sapix");
        self.register_live(&mut r);
        register_status(&mut r, status);
        register_strand(&mut r, strand);
        let info = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
            agent_id: self.agent_id.clone(),
        });
        r.register("build", "The agent's version and id", info);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r)
            .expect("writing to a String cannot fail");
        text
    }

    fn register_live(&self, r: &mut Registry) {
        r.register(
            "writes",
            "Client writes answered, by outcome",
            self.writes.clone(),
        );
        r.register_with_unit(
            "write_duration",
            "Time from a client write's arrival at the node to its answer",
            Unit::Seconds,
            self.write_seconds.clone(),
        );
        let pushes = "Pushes of this node's blocks to a peer, by outcome";
        r.register("pushes", pushes, self.pushes.clone());
        let pulls = "Export pages fetched from a peer, by outcome";
        r.register("pull_pages", pulls, self.pulls.clone());
        r.register(
            "codios_calls",
            "Codios calls, by outcome",
            self.codios.clone(),
        );
        r.register_with_unit(
            "codios_duration",
            "Codios call latency",
            Unit::Seconds,
            self.codios_seconds.clone(),
        );
        r.register_with_unit(
            "fsync_duration",
            "Strand group-commit fdatasync latency",
            Unit::Seconds,
            self.fsync_seconds.clone(),
        );
        r.register(
            "commit_batch_blocks",
            "Blocks made durable by one group commit",
            self.batch_blocks.clone(),
        );
    }
}

/// What a scrape reads of the strand.
#[derive(Debug, Clone, Copy)]
pub struct Strand {
    /// The last durable offset (blocks held).
    pub tip: u64,
    /// What the writer did since start.
    pub stats: StrandStats,
    /// Its segment files now.
    pub footprint: crate::strand::Footprint,
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

/// Per author (this node and every peer): the latest signed head held here and how many
/// members witnessed it.
fn register_heads(r: &mut Registry, s: &ClusterStatus) {
    let seq = Family::<AuthorLabel, Gauge>::default();
    let witnesses = Family::<AuthorLabel, Gauge>::default();
    let equivocations = Family::<AuthorLabel, Gauge>::default();
    for n in &s.nodes {
        let author = AuthorLabel {
            author: n.agent_id.to_string(),
        };
        if let Some(h) = n.head_seq {
            seq.get_or_create(&author).set(h as i64);
        }
        if let Some(w) = n.head_witnesses {
            witnesses.get_or_create(&author).set(w as i64);
        }
        equivocations
            .get_or_create(&author)
            .set(n.equivocations.unwrap_or(0) as i64);
    }
    r.register(
        "head_seq",
        "The seq of the author's latest signed head held here",
        seq,
    );
    r.register(
        "head_witnesses",
        "Members that cosigned the author's latest head held here",
        witnesses,
    );
    r.register(
        "equivocations",
        "Pieces of equivocation evidence of the author kept here (two blocks or heads at one seq)",
        equivocations,
    );
}

fn register_status(r: &mut Registry, s: &ClusterStatus) {
    let reachable = Family::<PeerLabel, Gauge>::default();
    let queue = Family::<PeerLabel, Gauge>::default();
    let backoff = Family::<PeerLabel, FGauge>::default();
    let cursor = Family::<PeerLabel, Gauge>::default();
    let last_sync = Family::<PeerLabel, FGauge>::default();
    let push_lag = Family::<PeerLabel, FGauge>::default();
    let pull_lag = Family::<PeerLabel, Gauge>::default();
    // The first entry is this node itself.
    for n in s.nodes.iter().skip(1) {
        let peer = PeerLabel {
            peer: n.agent_id.to_string(),
        };
        reachable.get_or_create(&peer).set(i64::from(n.reachable));
        if let Some(q) = n.queue_depth {
            queue.get_or_create(&peer).set(q as i64);
        }
        if let Some(b) = n.backoff_ms {
            backoff.get_or_create(&peer).set(b as f64 / 1000.0);
        }
        if let Some(c) = n.pull_cursor {
            cursor.get_or_create(&peer).set(c as i64);
        }
        last_sync
            .get_or_create(&peer)
            .set(n.last_sync_ms as f64 / 1000.0);
        if let Some(l) = n.lag_ms {
            push_lag.get_or_create(&peer).set(l as f64 / 1000.0);
        }
        if let Some(l) = n.pull_lag_blocks {
            pull_lag.get_or_create(&peer).set(l as i64);
        }
    }
    r.register(
        "peer_reachable",
        "1 if the last exchange with the peer succeeded",
        reachable,
    );
    r.register(
        "peer_queue_blocks",
        "This node's blocks the peer still lacks (its retry queue)",
        queue,
    );
    r.register_with_unit(
        "peer_backoff",
        "The peer's current push backoff (0 when healthy)",
        Unit::Seconds,
        backoff,
    );
    r.register(
        "peer_pull_cursor",
        "The persisted pull cursor into the peer's export",
        cursor,
    );
    r.register_with_unit(
        "peer_last_sync_timestamp",
        "Wall-clock time of the last successful exchange with the peer",
        Unit::Seconds,
        last_sync,
    );
    r.register_with_unit(
        "peer_push_lag",
        "Age, by this node's clock, of the oldest of its blocks the peer lacks (0 if none)",
        Unit::Seconds,
        push_lag,
    );
    r.register(
        "peer_pull_lag_blocks",
        "Blocks the peer's export showed beyond the pull cursor at the last page fetched",
        pull_lag,
    );
    register_heads(r, s);
    let partitioned = "1 if any peer is unreachable (CP refuses writes)";
    r.register("partitioned", partitioned, gauge(i64::from(s.partitioned)));
    let mode = Family::<ModeLabel, Gauge>::default();
    mode.get_or_create(&ModeLabel {
        mode: match s.consistency {
            Consistency::Cp => "cp",
            Consistency::Ap => "ap",
        }
        .to_string(),
    })
    .set(1);
    r.register(
        "consistency",
        "The write gating mode (1 on the current one)",
        mode,
    );
    if let Some(auth) = &s.auth {
        let state = Family::<StateLabel, Gauge>::default();
        let name = match auth.breaker {
            BreakerStatus::Disabled => "disabled",
            BreakerStatus::Closed => "closed",
            BreakerStatus::Open => "open",
            BreakerStatus::HalfOpen => "half_open",
        };
        state
            .get_or_create(&StateLabel {
                state: name.to_string(),
            })
            .set(1);
        r.register(
            "auth_breaker",
            "The Codios circuit breaker's state (1 on the current one)",
            state,
        );
        r.register(
            "auth_degraded_writes",
            "Writes let through on a stale or bypassed Codios decision",
            counter(auth.degraded_total),
        );
        r.register(
            "auth_cache_entries",
            "Decisions held in the auth cache",
            gauge(auth.cache_entries as i64),
        );
        r.register(
            "codios_in_flight",
            "Codios calls in flight",
            gauge(auth.codios_in_flight as i64),
        );
        let lookups = Family::<ResultLabel, Counter>::default();
        for (result, n) in [("hit", auth.cache_hits), ("miss", auth.cache_misses)] {
            let label = ResultLabel {
                result: result.to_string(),
            };
            lookups.get_or_create(&label).inc_by(n);
        }
        let help = "Auth cache lookups: hit = a fresh decision, miss = Codios asked";
        r.register("auth_cache_lookups", help, lookups);
    }
}

fn register_strand(r: &mut Registry, s: &Strand) {
    r.register(
        "strand_tip",
        "The strand's last durable offset (blocks held)",
        gauge(s.tip as i64),
    );
    r.register(
        "strand_segments",
        "Segment files of the strand now",
        gauge(s.footprint.segments as i64),
    );
    r.register_with_unit(
        "strand_size",
        "Bytes of the strand's segment files now",
        Unit::Bytes,
        gauge(s.footprint.bytes as i64),
    );
    let st = &s.stats;
    r.register(
        "strand_appended_blocks",
        "Blocks made durable since start",
        counter(st.appended_blocks),
    );
    r.register(
        "strand_group_commits",
        "Group commits since start",
        counter(st.batches),
    );
    r.register(
        "strand_fsyncs",
        "fdatasyncs of segment files since start",
        counter(st.fsyncs),
    );
    r.register_with_unit(
        "strand_written",
        "Frame bytes written to segments since start",
        Unit::Bytes,
        counter(st.bytes_written),
    );
    r.register(
        "strand_segments_created",
        "Segment files created since start",
        counter(st.segments_created),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_the_answer() {
        assert_eq!(
            WriteOutcome::of(&Response::Partitioned {
                unreachable: Vec::new()
            }),
            WriteOutcome::partitioned
        );
        assert_eq!(
            CallOutcome::of(&Ok(Reply::Gap { expected: 3 })),
            CallOutcome::gap
        );
        assert_eq!(
            CallOutcome::of(&Err(Failure::TimedOut)),
            CallOutcome::timeout
        );
        assert_eq!(
            CallOutcome::of(&Err(Failure::Refused("no".into()))),
            CallOutcome::failed
        );
    }

    #[test]
    fn a_write_shows_in_its_counter_and_histogram() {
        let m = Metrics::new("a");
        m.write(WriteOutcome::written, Duration::from_millis(3));
        m.write(WriteOutcome::denied, Duration::from_millis(1));
        m.push("b", CallOutcome::ok);
        let status = ClusterStatus {
            partitioned: false,
            nodes: Vec::new(),
            consistency: sapix_core::Consistency::Cp,
            auth: None,
        };
        let strand = Strand {
            tip: 7,
            stats: StrandStats::default(),
            footprint: crate::strand::Footprint {
                segments: 2,
                bytes: 4096,
            },
        };
        let text = m.render(&status, &strand);
        assert!(
            text.contains("sapix_writes_total{outcome=\"written\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sapix_writes_total{outcome=\"denied\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sapix_write_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("sapix_pushes_total{peer=\"b\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("sapix_strand_tip 7"), "{text}");
        assert!(text.contains("sapix_strand_segments 2"), "{text}");
        assert!(text.contains("sapix_strand_size_bytes 4096"), "{text}");
        assert!(text.contains("sapix_consistency{mode=\"cp\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
