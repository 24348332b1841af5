//! The cluster key schedule: every key a node needs, derived from one master seed.
//!
//! Every node of a cluster holds the same `SAPIX_MASTER_SEED`. From it, HKDF-SHA256 derives each
//! agent's Ed25519 signing key (salt [`AGENT_KEY_SALT`], info = the agent id's bytes), so any node
//! can derive any peer's public key and verify authorship with no key exchange, and a default
//! root bearer token (salt [`ROOT_KEY_SALT`], info [`ROOT_KEY_INFO`]) on which all nodes agree.
//! The derivation is pinned by test vectors: changing a constant here forks every cluster.

use core::fmt;
use std::collections::BTreeMap;
use std::sync::RwLock;

use ed25519_dalek::{Signer, SigningKey, Verifier as _, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::auth::Credential;
use crate::digest::{Hash, Signature};
use crate::id::AgentId;

/// HKDF salt for agent signing keys.
pub const AGENT_KEY_SALT: &[u8] = b"sapixdb/v1/agent-signing-key";
/// HKDF salt for the default root bearer token.
pub const ROOT_KEY_SALT: &[u8] = b"sapixdb/v1/root-key";
/// HKDF info for the default root bearer token.
pub const ROOT_KEY_INFO: &[u8] = b"root-bearer-token";

/// Why a master seed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// Not 64 hex characters.
    #[error("must be 64 hex characters (32 bytes), got {0} characters")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("must be hex digits only")]
    NotHex,
}

/// The 32-byte secret every node of a cluster shares. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterSeed([u8; 32]);

impl MasterSeed {
    /// A seed from raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterSeed(bytes)
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, SeedError> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(SeedError::Length(s.chars().count()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| SeedError::NotHex)?;
        Ok(MasterSeed(out))
    }

    /// The seed as 64 lower-case hex characters, for writing the generated seed file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn expand(&self, salt: &[u8], info: &[u8]) -> [u8; 32] {
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(salt), &self.0)
            .expand(info, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        okm
    }
}

impl fmt::Debug for MasterSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterSeed(<redacted>)")
    }
}

/// A bearer token. Compared in constant time; its `Debug` never shows it.
#[derive(Clone)]
pub struct RootKey(String);

impl RootKey {
    /// A root key given by the operator.
    pub fn new(token: impl Into<String>) -> Self {
        RootKey(token.into())
    }

    /// The token text, for writing it to the key file the operator reads.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The credential requests bearing this key present: what the node compares a write's
    /// credential to.
    pub fn credential(&self) -> Credential {
        Credential::of_token(&self.0)
    }

    /// Whether `presented` is this key, in time independent of where they differ (only the
    /// length, which is not secret, decides early).
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && all_pairs_equal(a.iter().copied().zip(b.iter().copied()))
    }
}

/// Whether every pair holds equal bytes, having looked at every pair whatever it finds: no
/// early exit, and `black_box` keeps the optimizer from adding one.
fn all_pairs_equal(pairs: impl Iterator<Item = (u8, u8)>) -> bool {
    pairs.fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y))) == 0
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

/// Derives and caches the cluster's keys. Cheap to share behind an `Arc`.
pub struct KeySchedule {
    seed: MasterSeed,
    verifying: RwLock<BTreeMap<AgentId, VerifyingKey>>,
}

impl fmt::Debug for KeySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySchedule").finish_non_exhaustive()
    }
}

/// Upper bound on cached verifying keys: a flood of made-up author ids cannot grow memory.
const MAX_CACHED_KEYS: usize = 4096;

impl KeySchedule {
    /// A key schedule for the cluster that shares `seed`.
    pub fn new(seed: MasterSeed) -> Self {
        KeySchedule {
            seed,
            verifying: RwLock::new(BTreeMap::new()),
        }
    }

    /// The signing key of `agent`. Only a node's own key should ever be asked for.
    pub fn signing_key(&self, agent: &AgentId) -> AgentKey {
        AgentKey {
            key: SigningKey::from_bytes(
                &self.seed.expand(AGENT_KEY_SALT, agent.as_str().as_bytes()),
            ),
            #[cfg(feature = "sim")]
            sim_mac: false,
        }
    }

    /// The public key of `agent`, derived once and then cached.
    pub fn verifying_key(&self, agent: &AgentId) -> VerifyingKey {
        if let Some(k) = self
            .verifying
            .read()
            .ok()
            .and_then(|m| m.get(agent).copied())
        {
            return k;
        }
        let k = self.signing_key(agent).key.verifying_key();
        if let Ok(mut m) = self.verifying.write() {
            if m.len() >= MAX_CACHED_KEYS {
                m.clear();
            }
            m.insert(agent.clone(), k);
        }
        k
    }

    /// Whether `sig` is `agent`'s signature over `hash`.
    pub fn verify(&self, agent: &AgentId, hash: &Hash, sig: &Signature) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.verifying_key(agent).verify(&hash.0, &sig).is_ok()
    }

    /// The root bearer token all nodes of this cluster agree on when none is configured.
    pub fn default_root_key(&self) -> RootKey {
        RootKey(format!(
            "sapix_rk_{}",
            hex::encode(self.seed.expand(ROOT_KEY_SALT, ROOT_KEY_INFO))
        ))
    }
}

/// One agent's Ed25519 signing key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct AgentKey {
    key: SigningKey,
    /// Simulator only: see [`AgentKey::sim_mac`].
    #[cfg(feature = "sim")]
    sim_mac: bool,
}

impl AgentKey {
    /// Signs a block hash.
    pub fn sign(&self, hash: &Hash) -> Signature {
        #[cfg(feature = "sim")]
        if self.sim_mac {
            let mut sig = [0u8; 64];
            blake3::Hasher::new_keyed(self.key.as_bytes())
                .update(&hash.0)
                .finalize_xof()
                .fill(&mut sig);
            return Signature(sig);
        }
        Signature(self.key.sign(&hash.0).to_bytes())
    }

    /// Simulator only: this key "signs" with a keyed BLAKE3 MAC instead of Ed25519, about
    /// 50 times cheaper. The simulator hands blocks between nodes already verified and never
    /// checks a signature, so what it tests (replication, retry, CP/AP, pull, auth) is
    /// unchanged, while signing stops being most of its run time. Signatures themselves are
    /// tested by the block tests, the fuzz targets and every layer that runs the real agent.
    #[cfg(feature = "sim")]
    pub fn sim_mac(self) -> AgentKey {
        AgentKey {
            sim_mac: true,
            ..self
        }
    }

    /// The public half, as 32 bytes.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentKey(pub={})", hex::encode(self.public_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_key_comparison_looks_at_every_byte_wherever_they_differ() {
        let key = "k".repeat(64);
        for differ_at in [0, 1, 31, 63] {
            let mut other = key.clone().into_bytes();
            other[differ_at] = b'x';
            let looked = std::cell::Cell::new(0);
            let pairs = key.bytes().zip(other.iter().copied()).inspect(|_| {
                looked.set(looked.get() + 1);
            });
            assert!(!all_pairs_equal(pairs));
            assert_eq!(
                looked.get(),
                64,
                "differing at {differ_at}: every byte compared"
            );
        }
        let root = RootKey::new(key.clone());
        assert!(root.matches(&key));
        assert!(!root.matches(&key[..63]), "a truncated key");
        assert!(!root.matches(&format!("{key}k")), "a longer key");
        assert!(
            !root.matches(&"K".repeat(64)),
            "same length, every byte wrong"
        );
    }

    fn seed() -> MasterSeed {
        MasterSeed::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
            .unwrap()
    }

    #[test]
    fn derived_public_keys_are_pinned() {
        let ks = KeySchedule::new(seed());
        let lines: Vec<String> = ["primary", "replica-eu", "replica-us"]
            .iter()
            .map(|id| {
                let id = AgentId::new(*id).unwrap();
                format!("{id}: {}", hex::encode(ks.verifying_key(&id).to_bytes()))
            })
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn default_root_key_is_pinned_and_differs_per_seed() {
        let a = KeySchedule::new(seed()).default_root_key();
        insta::assert_snapshot!(a.expose());
        let b = KeySchedule::new(MasterSeed::from_bytes([7; 32])).default_root_key();
        assert!(!a.matches(b.expose()));
    }

    #[test]
    fn each_agent_gets_its_own_key() {
        let ks = KeySchedule::new(seed());
        let p = ks.signing_key(&AgentId::new("primary").unwrap());
        let r = ks.signing_key(&AgentId::new("replica-eu").unwrap());
        assert_ne!(p.public_bytes(), r.public_bytes());
    }

    #[test]
    fn seed_parsing_names_the_problem() {
        assert_eq!(MasterSeed::from_hex("abc"), Err(SeedError::Length(3)));
        assert_eq!(
            MasterSeed::from_hex(&"zz".repeat(32)),
            Err(SeedError::NotHex)
        );
        let s = seed();
        assert_eq!(MasterSeed::from_hex(&s.to_hex()).unwrap(), s);
        assert!(!format!("{s:?}").contains("0001"));
    }

    #[test]
    fn root_key_compares_whole_tokens() {
        let k = RootKey::new("secret");
        assert!(k.matches("secret"));
        assert!(!k.matches("secreT"));
        assert!(!k.matches("secret "));
        assert!(!k.matches(""));
        assert!(!format!("{k:?}").contains("secret"));
    }
}
