//! The cluster status answer, in the exact shape of the spec's "Cluster status response".
//!
//! Field names and value spellings are part of the public API (operators' cron jobs parse
//! them): `role` is `"Primary"`/`"Replica"`, `consistency` is lower-case. Extra fields may be
//! added; none may be renamed.

use serde::{Deserialize, Serialize};

use crate::id::AgentId;

/// A node's role as reported in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The node the cluster was started from.
    Primary,
    /// A node added by `POST /v1/cluster/divide`.
    Replica,
}

/// The write gating mode (DESIGN §4). Accepted as `"Cp"`/`"Ap"` (any case), shown lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Writes are refused while any peer is unreachable, and acknowledged once every peer has
    /// the block.
    #[default]
    Cp,
    /// Writes are acknowledged after the local fsync; divergence reconciles on heal.
    Ap,
}

impl<'de> Deserialize<'de> for Consistency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "cp" => Ok(Consistency::Cp),
            "ap" => Ok(Consistency::Ap),
            _ => Err(serde::de::Error::custom(format!(
                "unknown consistency mode {s:?}: expected \"Cp\" or \"Ap\""
            ))),
        }
    }
}

/// One node's line in the status answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's agent id.
    pub agent_id: AgentId,
    /// Its base URL.
    pub endpoint: String,
    /// Its role.
    pub role: Role,
    /// Wall-clock ms when it joined the cluster.
    pub added_at_ms: u64,
    /// Wall-clock ms of the last successful exchange with it (for self: the last local commit).
    pub last_sync_ms: u64,
    /// Whether the last exchange with it succeeded.
    pub reachable: bool,
    /// Blocks held in this node's strand (self only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u64>,
    /// Own blocks this node still owes the peer (peers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
    /// The peer's current un-jittered push backoff, 0 when healthy (peers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    /// The persisted pull cursor into the peer's export (peers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_cursor: Option<u64>,
    /// Wall-clock ms stamped in the newest own block durable here (self only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_commit_ms: Option<u64>,
    /// Push lag in time: how long ago, by this node's clock, the oldest of its blocks the peer
    /// lacks was committed here; 0 when it lacks none (peers only; absent until the peer's
    /// holdings are known). Within a second of the truth, never under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// Pull lag: blocks the peer's export showed beyond the pull cursor at the last page
    /// fetched (peers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_lag_blocks: Option<u64>,
    /// Its enrolled head key, 64 hex digits (absent if none is enrolled yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_key: Option<String>,
    /// How many head keys it has enrolled: 1 + rotations (absent if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_keys_enrolled: Option<usize>,
    /// Every head key it has enrolled, oldest first, each rotation signed by the key before
    /// it: what an auditor follows from a key it pinned to the current one (absent if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_keys: Option<crate::ledger::HeadKeys>,
    /// The seq of its latest signed head held here (absent if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_seq: Option<u64>,
    /// How many other members cosigned that head, as held here (absent if no head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_witnesses: Option<usize>,
    /// Pieces of equivocation evidence of it kept here (absent if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equivocations: Option<u64>,
}

/// Where a divide stands, for `GET /v1/cluster/divide/progress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivideProgress {
    /// Whether a divide is running on this node; the other fields are absent when not.
    pub in_progress: bool,
    /// The node being added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_agent_id: Option<AgentId>,
    /// `verifying`, `copying`, `telling` (the new node records the membership) or
    /// `informing` (the other members are told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Blocks copied so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_copied: Option<u64>,
    /// Blocks this node holds: what the copy sends in all (it grows with writes meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_total: Option<u64>,
}

impl DivideProgress {
    /// No divide is running.
    pub fn idle() -> Self {
        DivideProgress {
            in_progress: false,
            new_agent_id: None,
            stage: None,
            blocks_copied: None,
            blocks_total: None,
        }
    }
}

/// The whole status answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This node first, then every peer in agent-id order.
    pub nodes: Vec<NodeStatus>,
    /// Whether any peer is unreachable.
    pub partitioned: bool,
    /// This node's write gating mode.
    pub consistency: Consistency,
    /// How this node authorizes writes (an addition to the spec's shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

/// Where client writes are authorized, as reported in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No `SAPIX_CODIOS_URL`: only the root key may write.
    Local,
    /// Writes are authorized by Codios, through the decision cache.
    Codios,
}

/// The Codios circuit breaker's state, as reported in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerStatus {
    /// `SAPIX_AUTH_CIRCUIT_BREAKER` is off (or the node is in local mode).
    Disabled,
    /// Codios is asked on every cache miss.
    Closed,
    /// Codios is bypassed; cached decisions are served and logged `auth_degraded`.
    Open,
    /// Open, with one probe out to find out whether Codios is back.
    HalfOpen,
}

/// The auth part of the status answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStatus {
    /// Local or Codios mode.
    pub mode: AuthMode,
    /// The circuit breaker.
    pub breaker: BreakerStatus,
    /// `SAPIX_REQUIRE_CODIOS`: stale permits are never served.
    pub require_codios: bool,
    /// Writes let through on a stale or bypassed decision since start (`auth_degraded`).
    pub degraded_total: u64,
    /// Decisions held in the cache.
    pub cache_entries: u64,
    /// Codios calls in flight.
    pub codios_in_flight: u64,
    /// Cache lookups answered by a fresh decision since start.
    #[serde(default)]
    pub cache_hits: u64,
    /// Cache lookups that needed Codios (nothing cached, or past its TTL) since start.
    #[serde(default)]
    pub cache_misses: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_parses_any_case_and_prints_lower_case() {
        let ap: Consistency = serde_json::from_str("\"Ap\"").unwrap();
        assert_eq!(ap, Consistency::Ap);
        assert_eq!(
            serde_json::from_str::<Consistency>("\"CP\"").unwrap(),
            Consistency::Cp
        );
        assert!(serde_json::from_str::<Consistency>("\"eventual\"").is_err());
        assert_eq!(serde_json::to_string(&ap).unwrap(), "\"ap\"");
    }

    #[test]
    fn status_serializes_in_the_spec_shape() {
        let s = ClusterStatus {
            nodes: vec![NodeStatus {
                agent_id: AgentId::new("primary").unwrap(),
                endpoint: "http://primary-region-a:7475".into(),
                role: Role::Primary,
                added_at_ms: 1715000000000,
                last_sync_ms: 1715001234567,
                reachable: true,
                blocks: None,
                queue_depth: None,
                backoff_ms: None,
                pull_cursor: None,
                last_commit_ms: None,
                lag_ms: None,
                pull_lag_blocks: None,
                head_key: None,
                head_keys_enrolled: None,
                head_keys: None,
                head_seq: None,
                head_witnesses: None,
                equivocations: None,
            }],
            partitioned: false,
            consistency: Consistency::Ap,
            auth: None,
        };
        insta::assert_snapshot!(serde_json::to_string_pretty(&s).unwrap());
    }
}
