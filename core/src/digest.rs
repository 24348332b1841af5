//! The two fixed-size values blocks and keys are named by: a BLAKE3 [`Hash`](struct@Hash)
//! and an Ed25519 [`Signature`]. Their own module, so that blocks and keys both use them and
//! neither depends on the other for them.

use core::fmt;

/// A 32-byte BLAKE3 digest. Shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash, the `prev` of every author's first block.
    pub const ZERO: Hash = Hash([0; 32]);

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash(out))
    }

    /// 64 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits are enough to tell blocks apart in traces and keep snapshots short.
        write!(f, "#{}", &self.to_hex()[..8])
    }
}

/// A 64-byte Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// 128 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 128 hex characters.
    pub fn from_hex(s: &str) -> Option<Signature> {
        let mut out = [0u8; 64];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Signature(out))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &self.to_hex()[..8])
    }
}
