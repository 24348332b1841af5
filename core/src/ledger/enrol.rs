//! The head keys enrolled for a member: the chain of keys it has signed heads with, carried in
//! its membership entry so it spreads with membership.
//!
//! The first key is enrolled as the divider saw it (the new node's probe answer, or the node's
//! own entry on first start): trust on first enrolment, like every pinning scheme. Each later
//! key is a rotation, signed by the key before it in [`ROTATE_DOMAIN`], so no node can change
//! another's key: a node that holds keys `[k0..kn]` accepts an entry whose keys extend exactly
//! that list with valid links, and nothing else. Two lists where neither extends the other are
//! a fork: the held one is kept and the other refused (an alert, not a merge), which is the one
//! place membership merging is not commutative — by design, since one side is a forgery.

use core::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::head::{HeadKey, HeadPublicKey};
use crate::digest::Signature;
use crate::id::AgentId;

/// The signature domain of a rotation: the old key's word that the new key is the member's.
pub const ROTATE_DOMAIN: &[u8] = b"sapixdb/v1/rotate-head-key\0";

/// The most keys one member's entry carries: its first and 63 rotations. A bound keeps
/// membership entries small and every parse bounded; a rotation past it is refused.
pub const MAX_HEAD_KEYS: usize = 64;

/// One enrolled key and the previous key's signature of it (none for the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLink {
    /// The key.
    pub key: HeadPublicKey,
    /// The previous key's signature of [`rotation_message`], for every link but the first.
    pub signature: Option<Signature>,
}

/// The bytes a rotation signs: the domain, the member (length-prefixed), the new key's
/// position in the list and the key itself, so a link cannot be replayed elsewhere.
pub fn rotation_message(member: &AgentId, index: usize, key: &HeadPublicKey) -> Vec<u8> {
    let id = member.as_str().as_bytes();
    let mut m = Vec::with_capacity(ROTATE_DOMAIN.len() + 2 + id.len() + 8 + 32);
    m.extend_from_slice(ROTATE_DOMAIN);
    m.extend_from_slice(&(id.len() as u16).to_be_bytes());
    m.extend_from_slice(id);
    m.extend_from_slice(&(index as u64).to_be_bytes());
    m.extend_from_slice(&key.0);
    m
}

/// How two key lists of one member relate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// The same list.
    Same,
    /// The offered list extends the held one with valid rotations: take it.
    Extends,
    /// The held list extends the offered one (or the offer carries none): keep the held.
    Behind,
    /// Neither extends the other, or the extension's links do not verify: refused.
    Fork {
        /// The current key of the refused list.
        offered: HeadPublicKey,
    },
}

/// A member's enrolled head keys, oldest first; the last is current. Empty for an entry
/// written before enrolment existed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeadKeys(Vec<KeyLink>);

impl fmt::Debug for HeadKeys {
    /// Short: each key's first 8 hex digits (membership entries are logged and traced often).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short: Vec<String> = self.0.iter().map(|l| l.key.to_hex()[..8].into()).collect();
        write!(f, "HeadKeys[{}]", short.join(","))
    }
}

impl HeadKeys {
    /// A first enrolment of `key`.
    pub fn first(key: HeadPublicKey) -> Self {
        HeadKeys(vec![KeyLink {
            key,
            signature: None,
        }])
    }

    /// No key enrolled.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys were enrolled (1 + rotations).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The current key.
    pub fn current(&self) -> Option<HeadPublicKey> {
        self.0.last().map(|l| l.key)
    }

    /// Every key, oldest first.
    pub fn links(&self) -> &[KeyLink] {
        &self.0
    }

    /// The list after `old` (which must hold the current key) signs `next` in: `None` if
    /// nothing is enrolled, `old` is not the current key, or the list is full.
    pub fn rotated(&self, member: &AgentId, old: &HeadKey, next: HeadPublicKey) -> Option<Self> {
        if self.current()? != old.public() || self.0.len() >= MAX_HEAD_KEYS {
            return None;
        }
        let signature = old.sign_bytes(&rotation_message(member, self.0.len(), &next));
        let mut links = self.0.clone();
        links.push(KeyLink {
            key: next,
            signature: Some(signature),
        });
        Some(HeadKeys(links))
    }

    /// How `offered` (from another member's entry of `member`) relates to this list.
    pub fn join(&self, member: &AgentId, offered: &HeadKeys) -> Join {
        let shared = self.0.len().min(offered.0.len());
        if self.0[..shared] != offered.0[..shared] {
            return fork(offered);
        }
        if offered.0.len() <= self.0.len() {
            return if offered.0.len() == self.0.len() {
                Join::Same
            } else {
                Join::Behind
            };
        }
        if offered.valid_from(member, self.0.len()) {
            Join::Extends
        } else {
            fork(offered)
        }
    }

    /// Whether every link from `start` on is signed by the key before it.
    fn valid_from(&self, member: &AgentId, start: usize) -> bool {
        self.0.len() <= MAX_HEAD_KEYS
            && (start.max(1)..self.0.len()).all(|i| self.link_verifies(member, i))
    }

    /// Whether link `i` (not the first) is signed by link `i - 1`'s key.
    fn link_verifies(&self, member: &AgentId, i: usize) -> bool {
        let (prev, link) = (&self.0[i - 1], &self.0[i]);
        link.signature
            .as_ref()
            .is_some_and(|sig| verify(&prev.key, &rotation_message(member, i, &link.key), sig))
    }

    /// The longest prefix whose links verify: what a node first learning of `member` keeps.
    pub fn valid_prefix(mut self, member: &AgentId) -> Self {
        self.0.truncate(MAX_HEAD_KEYS);
        let good = (1..self.0.len())
            .find(|&i| !self.link_verifies(member, i))
            .unwrap_or(self.0.len());
        self.0.truncate(good);
        self
    }
}

fn fork(offered: &HeadKeys) -> Join {
    match offered.current() {
        Some(offered) => Join::Fork { offered },
        None => Join::Behind,
    }
}

fn verify(key: &HeadPublicKey, message: &[u8], sig: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .is_ok()
}

impl fmt::Display for HeadKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.current() {
            Some(k) => write!(f, "{k} ({} enrolled)", self.0.len()),
            None => f.write_str("none enrolled"),
        }
    }
}

/// A link as JSON: `{"key": hex, "signature": hex}` (no signature on the first).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkJson {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

impl Serialize for HeadKeys {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let links: Vec<LinkJson> = self
            .0
            .iter()
            .map(|l| LinkJson {
                key: l.key.to_hex(),
                signature: l.signature.map(|s| hex::encode(s.0)),
            })
            .collect();
        links.serialize(s)
    }
}

impl<'de> Deserialize<'de> for HeadKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let links = Vec::<LinkJson>::deserialize(d)?;
        if links.len() > MAX_HEAD_KEYS {
            return Err(D::Error::custom(format!(
                "at most {MAX_HEAD_KEYS} head keys per member"
            )));
        }
        let mut out = Vec::with_capacity(links.len());
        for (i, l) in links.into_iter().enumerate() {
            let key = HeadPublicKey::from_hex(&l.key)
                .ok_or_else(|| D::Error::custom("a head key is 64 hex digits"))?;
            let signature = match (i, l.signature) {
                (0, None) => None,
                (0, Some(_)) => {
                    return Err(D::Error::custom("the first head key carries no signature"))
                }
                (_, None) => return Err(D::Error::custom("a rotated head key is signed")),
                (_, Some(s)) => {
                    let mut sig = [0u8; 64];
                    hex::decode_to_slice(&s, &mut sig)
                        .map_err(|_| D::Error::custom("a signature is 128 hex digits"))?;
                    Some(Signature(sig))
                }
            };
            out.push(KeyLink { key, signature });
        }
        Ok(HeadKeys(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> AgentId {
        AgentId::new("us").unwrap()
    }

    fn key(b: u8) -> HeadKey {
        HeadKey::from_bytes([b; 32])
    }

    #[test]
    fn a_rotation_signed_by_the_current_key_extends_the_list() {
        let first = HeadKeys::first(key(1).public());
        let second = first.rotated(&member(), &key(1), key(2).public()).unwrap();
        let third = second.rotated(&member(), &key(2), key(3).public()).unwrap();
        assert_eq!(third.current(), Some(key(3).public()));
        assert_eq!(first.join(&member(), &third), Join::Extends);
        assert_eq!(third.join(&member(), &first), Join::Behind);
        assert_eq!(second.join(&member(), &second.clone()), Join::Same);
        // Only the current key can rotate.
        assert_eq!(second.rotated(&member(), &key(1), key(9).public()), None);
    }

    #[test]
    fn any_other_change_of_key_is_a_fork() {
        let held = HeadKeys::first(key(1).public());
        // Another first key (someone re-enrolling the member).
        let other = HeadKeys::first(key(7).public());
        assert_eq!(
            held.join(&member(), &other),
            Join::Fork {
                offered: key(7).public()
            }
        );
        // A rotation signed by a key that is not the held one.
        let forged = other.rotated(&member(), &key(7), key(8).public()).unwrap();
        let mut spliced = held.clone();
        spliced.0.push(forged.0[1].clone());
        assert!(matches!(held.join(&member(), &spliced), Join::Fork { .. }));
        // A real rotation replayed for another member.
        let real = held.rotated(&member(), &key(1), key(2).public()).unwrap();
        let eu = AgentId::new("eu").unwrap();
        assert!(matches!(held.join(&eu, &real), Join::Fork { .. }));
        // An entry with no keys never removes the held ones.
        assert_eq!(held.join(&member(), &HeadKeys::default()), Join::Behind);
    }

    #[test]
    fn the_valid_prefix_drops_every_link_after_a_bad_one() {
        let good = HeadKeys::first(key(1).public())
            .rotated(&member(), &key(1), key(2).public())
            .unwrap();
        let mut bad = good.clone();
        bad.0.push(KeyLink {
            key: key(3).public(),
            signature: Some(Signature([0; 64])),
        });
        bad.0.push(good.0[1].clone());
        assert_eq!(bad.valid_prefix(&member()), good);
    }

    #[test]
    fn the_list_is_bounded_and_round_trips_as_json() {
        let mut keys = HeadKeys::first(key(0).public());
        for b in 1..MAX_HEAD_KEYS as u8 {
            keys = keys
                .rotated(&member(), &key(b - 1), key(b).public())
                .unwrap();
        }
        assert_eq!(keys.len(), MAX_HEAD_KEYS);
        let last = key(MAX_HEAD_KEYS as u8 - 1);
        assert_eq!(keys.rotated(&member(), &last, key(200).public()), None);
        let json = serde_json::to_string(&keys).unwrap();
        let back: HeadKeys = serde_json::from_str(&json).unwrap();
        assert_eq!(back, keys);
        let mut long: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        long.push(long[1].clone());
        assert!(serde_json::from_value::<HeadKeys>(long.into()).is_err());
        for bad in [
            r#"[{"key":"zz"}]"#,
            r#"[{"key":"0000000000000000000000000000000000000000000000000000000000000000","signature":"00"}]"#,
        ] {
            assert!(serde_json::from_str::<HeadKeys>(bad).is_err(), "{bad}");
        }
    }
}
