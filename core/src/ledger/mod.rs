//! The tamper-evident ledger over the chains: a Merkle tree per author ([`merkle`]), heads
//! signed with each node's own head key and cosigned by witnesses ([`head`]), and the JSON
//! of heads and proofs ([`wire`]).

pub mod enrol;
pub mod evidence;
pub mod head;
pub mod merkle;
pub mod wire;

pub use enrol::{HeadKeys, Join, MAX_HEAD_KEYS};
pub use evidence::{Evidence, EvidenceId};
pub use head::{
    BadHeadSignature, Cosignature, Head, HeadKey, HeadPublicKey, SignedHead, VerifiedHead,
    Witnessed,
};
pub use merkle::{verify_consistency, verify_inclusion, ProofError, Tree};
