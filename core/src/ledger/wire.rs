//! The JSON of heads and proofs, typed once for the agent that serves them and the auditor
//! (`sapixctl verify`) that checks them. Parsing is strict and bounded: hex of the exact
//! length, at most [`MAX_PROOF_LEN`] hashes a proof and [`MAX_COSIGNATURES`] cosignatures a head,
//! and a typed error for everything else.

use serde::{Deserialize, Serialize};

use super::head::{Cosignature, Head, HeadPublicKey, SignedHead};
use super::merkle::{verify_consistency, verify_inclusion, ProofError, MAX_PROOF_LEN};
use crate::digest::{Hash, Signature};
use crate::id::AgentId;

/// Cosignatures a head carries, at most (one per witness; clusters are far smaller).
pub const MAX_COSIGNATURES: usize = 64;

/// Why ledger JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadLedger {
    /// Not JSON of the expected shape.
    #[error("not a ledger document: {0}")]
    Shape(String),
    /// A field that is not what it must be.
    #[error("field `{0}` is invalid")]
    Field(&'static str),
    /// Too many hashes or cosignatures.
    #[error("field `{0}` is too long")]
    TooLong(&'static str),
}

/// A signed head as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadJson {
    /// Whose chain.
    pub author: String,
    /// Tree size.
    pub seq: u64,
    /// Merkle root, hex.
    pub root: String,
    /// Signing time, Unix ms.
    pub ts_ms: u64,
    /// The author's head public key, hex.
    pub head_key: String,
    /// The author's signature, hex.
    pub signature: String,
    /// Witnesses' cosignatures.
    #[serde(default)]
    pub cosignatures: Vec<CosignatureJson>,
}

/// A cosignature as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosignatureJson {
    /// The witness.
    pub witness: String,
    /// Its head public key, hex.
    pub head_key: String,
    /// Its signature, hex.
    pub signature: String,
}

fn hash(s: &str, field: &'static str) -> Result<Hash, BadLedger> {
    (s.len() == 64)
        .then(|| Hash::from_hex(s))
        .flatten()
        .ok_or(BadLedger::Field(field))
}

fn key(s: &str, field: &'static str) -> Result<HeadPublicKey, BadLedger> {
    (s.len() == 64)
        .then(|| HeadPublicKey::from_hex(s))
        .flatten()
        .ok_or(BadLedger::Field(field))
}

fn signature(s: &str, field: &'static str) -> Result<Signature, BadLedger> {
    (s.len() == 128)
        .then(|| Signature::from_hex(s))
        .flatten()
        .ok_or(BadLedger::Field(field))
}

fn agent(s: &str, field: &'static str) -> Result<AgentId, BadLedger> {
    AgentId::new(s).map_err(|_| BadLedger::Field(field))
}

fn hashes(v: &[String], field: &'static str) -> Result<Vec<Hash>, BadLedger> {
    if v.len() > MAX_PROOF_LEN {
        return Err(BadLedger::TooLong(field));
    }
    v.iter().map(|h| hash(h, field)).collect()
}

impl From<&SignedHead> for HeadJson {
    fn from(s: &SignedHead) -> Self {
        HeadJson {
            author: s.head.author.to_string(),
            seq: s.head.seq,
            root: s.head.root.to_hex(),
            ts_ms: s.head.ts_ms,
            head_key: s.key.to_hex(),
            signature: s.signature.to_hex(),
            cosignatures: s.cosignatures.iter().map(CosignatureJson::from).collect(),
        }
    }
}

impl TryFrom<&HeadJson> for SignedHead {
    type Error = BadLedger;
    fn try_from(j: &HeadJson) -> Result<Self, BadLedger> {
        if j.cosignatures.len() > MAX_COSIGNATURES {
            return Err(BadLedger::TooLong("cosignatures"));
        }
        Ok(SignedHead {
            head: Head {
                author: agent(&j.author, "author")?,
                seq: j.seq,
                root: hash(&j.root, "root")?,
                ts_ms: j.ts_ms,
            },
            key: key(&j.head_key, "head_key")?,
            signature: signature(&j.signature, "signature")?,
            cosignatures: j
                .cosignatures
                .iter()
                .map(Cosignature::try_from)
                .collect::<Result<_, BadLedger>>()?,
        })
    }
}

impl From<&Cosignature> for CosignatureJson {
    fn from(c: &Cosignature) -> Self {
        CosignatureJson {
            witness: c.witness.to_string(),
            head_key: c.key.to_hex(),
            signature: c.signature.to_hex(),
        }
    }
}

impl TryFrom<&CosignatureJson> for Cosignature {
    type Error = BadLedger;
    fn try_from(c: &CosignatureJson) -> Result<Self, BadLedger> {
        Ok(Cosignature {
            witness: agent(&c.witness, "cosignatures.witness")?,
            key: key(&c.head_key, "cosignatures.head_key")?,
            signature: signature(&c.signature, "cosignatures.signature")?,
        })
    }
}

/// `GET /v1/ledger/heads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadsJson {
    /// The latest head of every author held, author order.
    pub heads: Vec<HeadJson>,
}

/// `GET /v1/ledger/proof/inclusion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionJson {
    /// The block's hash.
    pub hash: String,
    /// Its author.
    pub author: String,
    /// Its seq.
    pub seq: u64,
    /// Its leaf index (seq - 1).
    pub leaf_index: u64,
    /// The tree size proved against.
    pub tree_size: u64,
    /// The node's root at `tree_size`, hex (a verifier checks against a root it trusts).
    pub root: String,
    /// The audit path, bottom first, hex.
    pub path: Vec<String>,
    /// The author's signed head at `tree_size`, when the node holds one.
    pub head: Option<HeadJson>,
}

/// A parsed inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The block's hash.
    pub hash: Hash,
    /// Its author.
    pub author: AgentId,
    /// Its seq in its author's chain.
    pub seq: u64,
    /// The tree size proved against.
    pub tree_size: u64,
    /// The root the node states at `tree_size`.
    pub root: Hash,
    /// The audit path.
    pub path: Vec<Hash>,
    /// The signed head at `tree_size`, when the node holds one.
    pub head: Option<SignedHead>,
}

impl InclusionProof {
    /// Parses the JSON, checking that its fields agree with each other.
    pub fn from_json(text: &str) -> Result<Self, BadLedger> {
        let j: InclusionJson =
            serde_json::from_str(text).map_err(|e| BadLedger::Shape(e.to_string()))?;
        if j.seq == 0 || j.leaf_index != j.seq - 1 || j.seq > j.tree_size {
            return Err(BadLedger::Field("leaf_index"));
        }
        let p = InclusionProof {
            hash: hash(&j.hash, "hash")?,
            author: agent(&j.author, "author")?,
            seq: j.seq,
            tree_size: j.tree_size,
            root: hash(&j.root, "root")?,
            path: hashes(&j.path, "path")?,
            head: j.head.as_ref().map(SignedHead::try_from).transpose()?,
        };
        if let Some(h) = &p.head {
            if h.head.author != p.author || h.head.seq != p.tree_size || h.head.root != p.root {
                return Err(BadLedger::Field("head"));
            }
        }
        Ok(p)
    }

    /// The JSON of this proof.
    pub fn to_json(&self) -> InclusionJson {
        InclusionJson {
            hash: self.hash.to_hex(),
            author: self.author.to_string(),
            seq: self.seq,
            leaf_index: self.seq.saturating_sub(1),
            tree_size: self.tree_size,
            root: self.root.to_hex(),
            path: self.path.iter().map(Hash::to_hex).collect(),
            head: self.head.as_ref().map(HeadJson::from),
        }
    }

    /// Whether the path leads from the block to `trusted_root`, the root the verifier trusts
    /// at `tree_size` (a signed head's, checked against the key it trusts).
    pub fn verify(&self, trusted_root: &Hash) -> Result<(), ProofError> {
        let index = self.seq.wrapping_sub(1);
        verify_inclusion(&self.hash, index, self.tree_size, &self.path, trusted_root)
    }
}

/// `GET /v1/ledger/proof/consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyJson {
    /// Whose chain.
    pub author: String,
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// The node's root at `from`, hex (a verifier uses the root it trusts instead).
    pub from_root: String,
    /// The node's root at `to`, hex.
    pub to_root: String,
    /// The proof, hex.
    pub path: Vec<String>,
    /// The author's signed head at `to`, when the node holds one.
    pub head: Option<HeadJson>,
}

/// A parsed consistency proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// Whose chain.
    pub author: AgentId,
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The roots the node states.
    pub from_root: Hash,
    /// The newer root the node states.
    pub to_root: Hash,
    /// The proof.
    pub path: Vec<Hash>,
    /// The signed head at `to`.
    pub head: Option<SignedHead>,
}

impl ConsistencyProof {
    /// Parses the JSON, checking that its fields agree with each other.
    pub fn from_json(text: &str) -> Result<Self, BadLedger> {
        let j: ConsistencyJson =
            serde_json::from_str(text).map_err(|e| BadLedger::Shape(e.to_string()))?;
        let p = ConsistencyProof {
            author: agent(&j.author, "author")?,
            from: j.from,
            to: j.to,
            from_root: hash(&j.from_root, "from_root")?,
            to_root: hash(&j.to_root, "to_root")?,
            path: hashes(&j.path, "path")?,
            head: j.head.as_ref().map(SignedHead::try_from).transpose()?,
        };
        if let Some(h) = &p.head {
            if h.head.author != p.author || h.head.seq != p.to || h.head.root != p.to_root {
                return Err(BadLedger::Field("head"));
            }
        }
        Ok(p)
    }

    /// The JSON of this proof.
    pub fn to_json(&self) -> ConsistencyJson {
        ConsistencyJson {
            author: self.author.to_string(),
            from: self.from,
            to: self.to,
            from_root: self.from_root.to_hex(),
            to_root: self.to_root.to_hex(),
            path: self.path.iter().map(Hash::to_hex).collect(),
            head: self.head.as_ref().map(HeadJson::from),
        }
    }

    /// Whether the proof shows `to_root` extends `trusted_from` (the root the verifier saw at
    /// `from`, never the one this document states).
    pub fn verify(&self, trusted_from: &Hash) -> Result<(), ProofError> {
        verify_consistency(self.from, self.to, trusted_from, &self.to_root, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HeadKey, Tree};
    use super::*;

    fn chain(n: u64) -> (Vec<Hash>, Tree) {
        let d: Vec<Hash> = (0..n).map(|i| Hash([i as u8 + 1; 32])).collect();
        let t = Tree::from_blocks(&d);
        (d, t)
    }

    #[test]
    fn an_inclusion_proof_round_trips_and_verifies() {
        let (d, t) = chain(11);
        let key = HeadKey::from_bytes([5; 32]);
        let author = AgentId::new("eu").unwrap();
        let head = key.sign(Head {
            author,
            seq: 11,
            root: t.root(11).unwrap(),
            ts_ms: 7,
        });
        let root = t.root(11).unwrap();
        let p = InclusionProof {
            hash: d[4],
            author: head.head.author.clone(),
            seq: 5,
            tree_size: 11,
            root,
            path: t.inclusion(4, 11).unwrap(),
            head: Some(head),
        };
        let text = serde_json::to_string(&p.to_json()).unwrap();
        let back = InclusionProof::from_json(&text).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.verify(&root), Ok(()));
        assert!(back.head.as_ref().unwrap().verifies());
        let mut wrong = back.clone();
        wrong.seq = 6;
        assert!(wrong.verify(&root).is_err());
        let mut j = p.to_json();
        j.seq = 12;
        j.leaf_index = 11;
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(
            InclusionProof::from_json(&text),
            Err(BadLedger::Field("leaf_index"))
        );
    }

    #[test]
    fn fields_that_disagree_are_refused() {
        let (_, t) = chain(4);
        let key = HeadKey::from_bytes([5; 32]);
        let head = key.sign(Head {
            author: AgentId::new("eu").unwrap(),
            seq: 4,
            root: t.root(4).unwrap(),
            ts_ms: 7,
        });
        let good = ConsistencyProof {
            author: AgentId::new("eu").unwrap(),
            from: 2,
            to: 4,
            from_root: t.root(2).unwrap(),
            to_root: t.root(4).unwrap(),
            path: t.consistency(2, 4).unwrap(),
            head: Some(head),
        };
        let json = good.to_json();
        let parse =
            |j: &ConsistencyJson| ConsistencyProof::from_json(&serde_json::to_string(j).unwrap());
        assert_eq!(parse(&json).unwrap().verify(&t.root(2).unwrap()), Ok(()));
        let mut j = json.clone();
        j.to = 3;
        assert_eq!(parse(&j), Err(BadLedger::Field("head")));
        let mut j = json.clone();
        j.path = vec![t.root(1).unwrap().to_hex(); MAX_PROOF_LEN + 1];
        assert_eq!(parse(&j), Err(BadLedger::TooLong("path")));
        let mut j = json.clone();
        j.from_root = "zz".repeat(32);
        assert_eq!(parse(&j), Err(BadLedger::Field("from_root")));
        let mut j = json;
        j.head.as_mut().unwrap().signature = "00".into();
        assert_eq!(parse(&j), Err(BadLedger::Field("signature")));
        assert!(matches!(
            ConsistencyProof::from_json("{\"author\":1}"),
            Err(BadLedger::Shape(_))
        ));
    }
}
