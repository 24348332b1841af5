//! The mesh's wire contract beyond blocks: how much one page carries, why an ingest was
//! refused, what a probe answers, and the membership announcement. The server writes these
//! types and the mesh client reads them, so neither matches the other's strings: an error
//! code is [`RefusalCode`] on both sides, a bound is a constant here.

use serde::{Deserialize, Serialize};

use crate::block::Hash;
use crate::chain::Position;
use crate::id::AgentId;
use crate::ledger::HeadPublicKey;
use crate::repl::peer::PeerInfo;
use crate::status::Role;

use super::MAX_BATCH;

/// Blocks per bootstrap copy request.
pub const COPY_BATCH: usize = 500;
/// Bytes of blocks per bootstrap copy request, at most (always at least one block).
pub const COPY_BYTES: usize = 4 << 20;
/// Blocks per export page when the caller names no `limit`.
pub const DEFAULT_EXPORT_LIMIT: usize = 100;
/// Export pages stop growing past this many bytes of blocks (always at least one block).
pub const EXPORT_PAGE_BYTES: usize = 4 << 20;
/// Blocks a pull asks for per page (the exporter's byte bound may give fewer).
pub const PULL_PAGE: usize = MAX_BATCH;

/// How much one page of blocks read from a strand may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    /// Blocks, at most.
    pub blocks: usize,
    /// Bytes of blocks, at most, but always at least one block.
    pub bytes: usize,
}

impl PageLimit {
    /// One bootstrap copy request.
    pub const COPY: PageLimit = PageLimit {
        blocks: COPY_BATCH,
        bytes: COPY_BYTES,
    };
}

/// Why an ingest batch was refused (HTTP 409), as its `error` field says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The receiver lacks the author's chain before this block: send from `expected_seq`.
    OutOfOrder,
    /// The block's `prev` is not the hash of the block held before it.
    BrokenChain,
    /// A different block is held at this author and seq.
    Equivocation,
    /// Refused for another reason.
    Conflict,
}

impl RefusalCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::OutOfOrder => "out_of_order",
            RefusalCode::BrokenChain => "broken_chain",
            RefusalCode::Equivocation => "equivocation",
            RefusalCode::Conflict => "conflict",
        }
    }
}

/// The body of a refused ingest: nothing in the batch was stored because of block `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestRefusal {
    /// Why.
    pub error: RefusalCode,
    /// For a human.
    pub message: String,
    /// The offending block's index in the batch.
    pub index: usize,
    /// Its author.
    pub author: AgentId,
    /// Its seq.
    pub seq: u64,
    /// With [`RefusalCode::OutOfOrder`]: the first seq of the author's chain the receiver lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u64>,
}

impl IngestRefusal {
    /// The refusal of block `index` (`author`/`seq`) that stood at `position`.
    pub fn new(index: usize, author: AgentId, seq: u64, position: Position) -> Self {
        let at = format!("block {index} ({author}/{seq})");
        let (error, why, expected_seq) = match position {
            Position::Gap { expected } => (
                RefusalCode::OutOfOrder,
                format!("predecessors missing, expected seq {expected} first"),
                Some(expected),
            ),
            Position::BrokenLink { expected_prev } => (
                RefusalCode::BrokenChain,
                format!("prev does not match the held block {expected_prev}"),
                None,
            ),
            Position::Equivocation { held } => (
                RefusalCode::Equivocation,
                format!("a different block {held} is held at this position"),
                None,
            ),
            Position::NotSignedHere { vouched } => (
                RefusalCode::Conflict,
                format!("the receiver never signed a block of its own chain past seq {vouched}"),
                None,
            ),
            Position::Next | Position::Duplicate => (RefusalCode::Conflict, "refused".into(), None),
        };
        IngestRefusal {
            error,
            message: format!("{at}: {why}; nothing in this batch was stored"),
            index,
            author,
            seq,
            expected_seq,
        }
    }

    /// The first seq the receiver lacks, if this refusal is a gap the sender can fill.
    pub fn gap(&self) -> Option<u64> {
        match self.error {
            RefusalCode::OutOfOrder => self.expected_seq,
            _ => None,
        }
    }
}

/// The probe endpoint's answer (`GET /v1/mesh/probe?author=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// Who answered.
    pub agent_id: AgentId,
    /// The last seq of the asked author's chain held there.
    pub holds: u64,
    /// The hash held at that seq, 64 hex digits (absent at 0, and from agents before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<String>,
    /// The digest of its membership, 16 hex digits (absent from agents before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_digest: Option<String>,
    /// Its head key, 64 hex digits: what a divider enrols (absent from agents before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_key: Option<String>,
}

impl ProbeAnswer {
    /// The answer of `agent_id`, holding `holds` (`tip` at that seq), whose membership
    /// digest is `digest` and head key `head_key`.
    pub fn new(
        agent_id: AgentId,
        (holds, tip): (u64, Option<Hash>),
        digest: u64,
        head_key: HeadPublicKey,
    ) -> Self {
        ProbeAnswer {
            agent_id,
            holds,
            tip: tip.map(|h| h.to_hex()),
            members_digest: Some(format!("{digest:016x}")),
            head_key: Some(head_key.to_hex()),
        }
    }

    /// The hash held at `holds`, if sent and well-formed.
    pub fn tip(&self) -> Option<Hash> {
        self.tip.as_deref().and_then(Hash::from_hex)
    }

    /// The head key, if sent and well-formed.
    pub fn head_key(&self) -> Option<HeadPublicKey> {
        self.head_key.as_deref().and_then(HeadPublicKey::from_hex)
    }

    /// The membership digest, if sent and well-formed.
    pub fn digest(&self) -> Option<u64> {
        self.members_digest
            .as_deref()
            .and_then(|d| u64::from_str_radix(d, 16).ok())
    }
}

/// The membership announcement body (`POST /v1/cluster/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    /// The announcer (absent from agents before the new node probed its divider back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<AgentId>,
    /// Members to know.
    pub members: Vec<PeerInfo>,
    /// The receiver's role, if assigned.
    #[serde(default)]
    pub your_role: Option<Role>,
    /// Cursor hints, per peer.
    #[serde(default)]
    pub cursors: Vec<(AgentId, u64)>,
}

/// The answer to a membership announcement: every entry the receiver holds after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersAnswer {
    /// Peers the receiver knows.
    pub peers: usize,
    /// Its entries (absent from agents before push-pull existed).
    #[serde(default)]
    pub members: Vec<PeerInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Hash;

    fn author() -> AgentId {
        AgentId::new("primary").expect("valid id")
    }

    #[test]
    fn only_an_out_of_order_refusal_is_a_gap() {
        let gap = IngestRefusal::new(2, author(), 9, Position::Gap { expected: 4 });
        let json = serde_json::to_value(&gap).expect("serializes");
        assert_eq!(json["error"], "out_of_order");
        assert_eq!(json["expected_seq"], 4);
        let back: IngestRefusal = serde_json::from_value(json).expect("parses");
        assert_eq!(back.gap(), Some(4));
        let held = Hash([7; 32]);
        let eq = IngestRefusal::new(0, author(), 1, Position::Equivocation { held });
        assert_eq!(eq.error.as_str(), "equivocation");
        assert_eq!(eq.gap(), None);
        assert!(eq.message.contains("nothing in this batch was stored"));
    }

    #[test]
    fn every_code_says_on_the_wire_what_as_str_says() {
        for code in [
            RefusalCode::OutOfOrder,
            RefusalCode::BrokenChain,
            RefusalCode::Equivocation,
            RefusalCode::Conflict,
        ] {
            let json = serde_json::to_value(code).expect("serializes");
            assert_eq!(json, code.as_str());
        }
    }

    #[test]
    fn a_probe_answer_round_trips_its_digest_and_tip() {
        let key = HeadPublicKey([9; 32]);
        let tip = Hash([7; 32]);
        let a = ProbeAnswer::new(author(), (3, Some(tip)), 0xdead_beef, key);
        let back: ProbeAnswer =
            serde_json::from_slice(&serde_json::to_vec(&a).expect("serializes")).expect("parses");
        assert_eq!(back.digest(), Some(0xdead_beef));
        assert_eq!(back.head_key(), Some(key));
        assert_eq!((back.holds, back.tip()), (3, Some(tip)));
        let old: ProbeAnswer =
            serde_json::from_str(r#"{"agent_id":"primary","holds":1}"#).expect("parses");
        assert_eq!(old.digest(), None);
        assert_eq!(old.head_key(), None);
        assert_eq!(old.tip(), None);
    }
}
