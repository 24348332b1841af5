//! Signed heads: an author's word on its chain's Merkle root at a seq, signed with the node's
//! own head key, and witnesses' cosignatures of them.
//!
//! A head key is the node's alone: generated from the OS's randomness at first start and never
//! derived from the cluster's master seed, so a head signature is evidence even between the
//! nodes of one cluster, which can all derive each other's block keys. Heads and cosignatures
//! sign in their own domains ([`HEAD_DOMAIN`], [`COSIGN_DOMAIN`]), so neither can be passed off
//! as the other or as a block signature, and verify with `verify_strict`.

use core::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::digest::{Hash, Signature};
use crate::id::AgentId;

/// The signature domain of a head.
pub const HEAD_DOMAIN: &[u8] = b"sapixdb/v1/signed-head\0";
/// The signature domain of a witness's cosignature of a head.
pub const COSIGN_DOMAIN: &[u8] = b"sapixdb/v1/cosigned-head\0";

/// What an author states about its chain: the first `seq` blocks have Merkle root `root`, as
/// of wall-clock time `ts_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Whose chain.
    pub author: AgentId,
    /// The tree size: the chain's blocks 1..=seq.
    pub seq: u64,
    /// The Merkle root of those blocks ([`super::merkle`]).
    pub root: Hash,
    /// When it was signed (Unix ms, the signer's clock).
    pub ts_ms: u64,
}

impl Head {
    /// The bytes signed: the domain, then the author (length-prefixed), seq, root and ts, so
    /// no two heads share an encoding.
    pub fn message(&self, domain: &[u8]) -> Vec<u8> {
        let author = self.author.as_str().as_bytes();
        let mut m = Vec::with_capacity(domain.len() + 2 + author.len() + 48);
        m.extend_from_slice(domain);
        m.extend_from_slice(&(author.len() as u16).to_be_bytes());
        m.extend_from_slice(author);
        m.extend_from_slice(&self.seq.to_be_bytes());
        m.extend_from_slice(&self.root.0);
        m.extend_from_slice(&self.ts_ms.to_be_bytes());
        m
    }
}

/// A node's head public key, as 32 bytes. Shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeadPublicKey(pub [u8; 32]);

impl HeadPublicKey {
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(HeadPublicKey(out))
    }

    /// 64 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `sig` is this key's strict signature of `head` in `domain`.
    fn verifies(&self, head: &Head, domain: &[u8], sig: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        key.verify_strict(&head.message(domain), &sig).is_ok()
    }
}

impl fmt::Debug for HeadPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeadPublicKey({})", self.to_hex())
    }
}

impl fmt::Display for HeadPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A node's private head key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct HeadKey {
    key: SigningKey,
    /// Simulator only: see [`HeadKey::sim_mac`].
    #[cfg(feature = "sim")]
    sim_mac: bool,
}

impl HeadKey {
    /// The key with these 32 secret bytes (read from the node's key file, or drawn from the
    /// OS's randomness at first start; a simulation draws them from its seed).
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        HeadKey {
            key: SigningKey::from_bytes(&secret),
            #[cfg(feature = "sim")]
            sim_mac: false,
        }
    }

    /// Simulator only: "signs" heads with a keyed BLAKE3 MAC instead of Ed25519, as
    /// [`crate::keys::AgentKey::sim_mac`] does blocks. Nothing in the simulated nodes verifies
    /// a head signature; head signatures are tested by the ledger tests, the fuzz target and
    /// every layer that runs the real agent.
    #[cfg(feature = "sim")]
    pub fn sim_mac(self) -> HeadKey {
        HeadKey {
            sim_mac: true,
            ..self
        }
    }

    fn signature(&self, message: &[u8]) -> Signature {
        #[cfg(feature = "sim")]
        if self.sim_mac {
            let mut sig = [0u8; 64];
            blake3::Hasher::new_keyed(self.key.as_bytes())
                .update(message)
                .finalize_xof()
                .fill(&mut sig);
            return Signature(sig);
        }
        Signature(self.key.sign(message).to_bytes())
    }

    /// Signs `message` (a rotation, [`super::enrol`]); the caller puts its domain in it.
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Signature {
        self.signature(message)
    }

    /// The secret bytes, for the 0600 key file only.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> HeadPublicKey {
        HeadPublicKey(self.key.verifying_key().to_bytes())
    }

    /// Signs `head` as its author.
    pub fn sign(&self, head: Head) -> SignedHead {
        let signature = self.signature(&head.message(HEAD_DOMAIN));
        SignedHead {
            head,
            key: self.public(),
            signature,
            cosignatures: Vec::new(),
        }
    }

    /// Cosigns `head` as witness `me`.
    pub fn cosign(&self, me: &AgentId, head: &Head) -> Cosignature {
        Cosignature {
            witness: me.clone(),
            key: self.public(),
            signature: self.signature(&head.message(COSIGN_DOMAIN)),
        }
    }
}

impl fmt::Debug for HeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeadKey(pub={})", self.public())
    }
}

/// A witness's cosignature of a head: it checked the head against the last one it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The witnessing node.
    pub witness: AgentId,
    /// Its head key.
    pub key: HeadPublicKey,
    /// Its signature of the head in [`COSIGN_DOMAIN`].
    pub signature: Signature,
}

impl Cosignature {
    /// Whether the signature is the key's, over `head`.
    pub fn verifies(&self, head: &Head) -> bool {
        self.key.verifies(head, COSIGN_DOMAIN, &self.signature)
    }
}

/// A head with its author's signature and the cosignatures collected so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// What is signed.
    pub head: Head,
    /// The author's head key (checked against the enrolled or pinned key by whoever verifies).
    pub key: HeadPublicKey,
    /// The author's signature in [`HEAD_DOMAIN`].
    pub signature: Signature,
    /// Witnesses' cosignatures, one per witness.
    pub cosignatures: Vec<Cosignature>,
}

impl SignedHead {
    /// Whether the author's signature is the carried key's, over the head.
    pub fn verifies(&self) -> bool {
        self.key.verifies(&self.head, HEAD_DOMAIN, &self.signature)
    }

    /// The witnesses whose cosignatures verify, each once.
    pub fn witnesses(&self) -> Vec<&AgentId> {
        let mut seen: Vec<&AgentId> = Vec::new();
        for c in &self.cosignatures {
            if c.witness != self.head.author
                && c.verifies(&self.head)
                && !seen.contains(&&c.witness)
            {
                seen.push(&c.witness);
            }
        }
        seen
    }
}

/// A head whose author signature verified, carrying only cosignatures that verify (one per
/// witness, none by the author): what the shell hands the core, which never checks a
/// signature itself (the simulator's heads are MACs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHead(SignedHead);

/// Why a received head was refused before the core saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the head's signature is not its head key's")]
pub struct BadHeadSignature;

impl VerifiedHead {
    /// Checks the author's signature (strict) and keeps the cosignatures that verify.
    pub fn check(mut signed: SignedHead) -> Result<VerifiedHead, BadHeadSignature> {
        if !signed.verifies() {
            return Err(BadHeadSignature);
        }
        // One signature check per cosignature: the first valid one of each witness is kept.
        let mut kept: Vec<Cosignature> = Vec::with_capacity(signed.cosignatures.len());
        for c in std::mem::take(&mut signed.cosignatures) {
            let fresh =
                c.witness != signed.head.author && !kept.iter().any(|k| k.witness == c.witness);
            if fresh && c.verifies(&signed.head) {
                kept.push(c);
            }
        }
        signed.cosignatures = kept;
        Ok(VerifiedHead(signed))
    }

    /// Wraps a head without checking it. Only for the deterministic simulator (feature
    /// `sim`), whose heads are honest nodes' MACs moved by value (see [`HeadKey::sim_mac`]).
    #[cfg(feature = "sim")]
    pub fn trusted(signed: SignedHead) -> VerifiedHead {
        VerifiedHead(signed)
    }

    /// The checked head.
    pub fn get(&self) -> &SignedHead {
        &self.0
    }

    /// The head, giving up the proof.
    pub fn into_signed(self) -> SignedHead {
        self.0
    }
}

/// A witness's answer to a head it was sent: the head and its cosignature of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// The head cosigned.
    pub head: Head,
    /// The witness's cosignature.
    pub cosignature: Cosignature,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64) -> Head {
        Head {
            author: AgentId::new("eu").unwrap(),
            seq,
            root: Hash([seq as u8; 32]),
            ts_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_head_verifies_only_as_signed() {
        let key = HeadKey::from_bytes([1; 32]);
        let signed = key.sign(head(4));
        assert!(signed.verifies());
        for change in [
            |h: &mut Head| h.seq += 1,
            |h: &mut Head| h.root.0[0] ^= 1,
            |h: &mut Head| h.ts_ms += 1,
            |h: &mut Head| h.author = AgentId::new("us").unwrap(),
        ] {
            let mut other = signed.clone();
            change(&mut other.head);
            assert!(!other.verifies());
        }
        let mut other_key = signed.clone();
        other_key.key = HeadKey::from_bytes([2; 32]).public();
        assert!(!other_key.verifies());
    }

    #[test]
    fn a_cosignature_is_not_a_head_signature_and_back() {
        let author = HeadKey::from_bytes([1; 32]);
        let witness = HeadKey::from_bytes([3; 32]);
        let me = AgentId::new("us").unwrap();
        let mut signed = author.sign(head(9));
        let co = witness.cosign(&me, &signed.head);
        assert!(co.verifies(&signed.head));
        // The witness's cosignature passed off as the author's head signature fails.
        let forged = SignedHead {
            key: witness.public(),
            signature: co.signature,
            ..signed.clone()
        };
        assert!(!forged.verifies());
        // And the author's head signature is no cosignature.
        let fake = Cosignature {
            witness: me.clone(),
            key: author.public(),
            signature: signed.signature,
        };
        assert!(!fake.verifies(&signed.head));
        signed.cosignatures = vec![co.clone(), co, fake];
        assert_eq!(signed.witnesses(), vec![&me]);
    }

    #[test]
    fn a_verified_head_keeps_one_valid_cosignature_per_witness() {
        let author = HeadKey::from_bytes([1; 32]);
        let us = AgentId::new("us").unwrap();
        let ap = AgentId::new("ap").unwrap();
        let mut signed = author.sign(head(3));
        let good = HeadKey::from_bytes([3; 32]).cosign(&us, &signed.head);
        let mut bad = HeadKey::from_bytes([4; 32]).cosign(&ap, &signed.head);
        bad.signature.0[0] ^= 1;
        let by_author = author.cosign(&signed.head.author, &signed.head);
        signed.cosignatures = vec![bad, good.clone(), good.clone(), by_author];
        let checked = VerifiedHead::check(signed.clone()).unwrap();
        assert_eq!(checked.get().cosignatures, vec![good]);
        signed.signature.0[1] ^= 1;
        assert_eq!(VerifiedHead::check(signed), Err(BadHeadSignature));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = HeadKey::from_bytes([0xab; 32]);
        assert!(!format!("{key:?}").contains(&hex::encode([0xab; 32])));
    }
}
