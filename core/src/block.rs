//! Signed blocks and their canonical binary encoding.
//!
//! A block is one record in one author's hash chain: `(version, author, seq, prev, ts_ms,
//! collection, payload)`. Its `hash` is BLAKE3 over a domain tag and the canonical encoding of
//! those fields; its `sig` is the author's Ed25519 signature over the hash. The binary wire and
//! disk form is the canonical body followed by the hash and the signature:
//!
//! ```text
//! u8  version (= 1)
//! u8  author length, author bytes          (an AgentId)
//! u64 seq, little endian                    (>= 1)
//! [32] prev                                 (hash of the author's block seq-1; zero for seq 1)
//! u64 ts_ms, little endian                  (the author's wall clock; informational only)
//! u8  collection length, collection bytes   (a Collection)
//! u32 payload length, little endian, payload bytes (UTF-8 JSON, at most MAX_PAYLOAD_LEN)
//! [32] hash
//! [64] sig
//! ```
//!
//! Decoding checks structure and bounds only; [`Block::verify`] then checks the carried hash and
//! the signature against the cluster's key schedule. Chain position is checked by
//! [`crate::chain`]. Every way input can be wrong is a variant of [`DecodeError`] or
//! [`VerifyError`]; nothing here panics on any input.

use core::fmt;

use crate::id::{AgentId, Collection, NameError};
use crate::keys::{AgentKey, KeySchedule};

mod payload;

pub use crate::digest::{Hash, Signature};
use crate::time::UnixMillis;
pub use payload::{check_payload, MAX_JSON_DEPTH};

/// The only block format version this code writes and reads.
pub const BLOCK_VERSION: u8 = 1;
/// The largest payload a block may carry, in bytes.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;
/// The largest encoded block, in bytes: the longest header, payload, hash and signature.
pub const MAX_BLOCK_LEN: usize =
    1 + 1 + AgentId::MAX_LEN + 8 + 32 + 8 + 1 + Collection::MAX_LEN + 4 + MAX_PAYLOAD_LEN + 32 + 64;

const HASH_DOMAIN: &[u8] = b"sapixdb/v1/block\0";

/// The signed fields of a block, before hashing and signing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockBody {
    /// The agent that wrote the block.
    pub author: AgentId,
    /// Position in the author's chain, from 1.
    pub seq: u64,
    /// Hash of the author's block `seq - 1`, [`Hash::ZERO`] for seq 1.
    pub prev: Hash,
    /// The author's wall clock when it wrote the block. Never used for ordering.
    pub ts: UnixMillis,
    /// The collection the record belongs to.
    pub collection: Collection,
    /// The record, as UTF-8 JSON bytes.
    pub payload: Vec<u8>,
}

/// A block with its hash and signature. Not necessarily verified: see [`Block::verify`].
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    /// The signed fields.
    pub body: BlockBody,
    /// BLAKE3 of the canonical body, as carried.
    pub hash: Hash,
    /// The author's signature over `hash`, as carried.
    pub sig: Signature,
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{:?}", self.body.author, self.body.seq, self.hash)
    }
}

/// Why bytes are not a well-formed block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More bytes than any block can have; refused before reading them.
    #[error("block is {len} bytes, the maximum is {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The input ends inside the named field.
    #[error("block is truncated in field `{0}`")]
    Truncated(&'static str),
    /// A format version this node does not read.
    #[error("unsupported block version {0}")]
    Version(u8),
    /// The author is not a valid agent id.
    #[error("bad author id: {0}")]
    Author(NameError),
    /// The collection is not a valid collection name.
    #[error("bad collection name: {0}")]
    Collection(NameError),
    /// Sequence numbers start at 1.
    #[error("seq must be at least 1")]
    ZeroSeq,
    /// The payload is over [`MAX_PAYLOAD_LEN`].
    #[error("payload is {len} bytes, the maximum is {max}")]
    PayloadTooLarge {
        /// Bytes declared.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The payload is not UTF-8 JSON.
    #[error("payload is not valid JSON")]
    PayloadNotJson,
    /// The payload nests arrays and objects deeper than [`MAX_JSON_DEPTH`].
    #[error("payload nests arrays and objects deeper than {max} levels")]
    PayloadTooDeep {
        /// The bound.
        max: usize,
    },
    /// Bytes left over after the signature.
    #[error("{0} trailing bytes after the signature")]
    Trailing(usize),
}

/// Why a well-formed block is not authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The carried hash is not the hash of the body.
    #[error("hash mismatch: block carries {carried}, body hashes to {computed}")]
    HashMismatch {
        /// The hash the block carries.
        carried: Hash,
        /// The hash of its body.
        computed: Hash,
    },
    /// The signature is not the author's over the hash.
    #[error("signature is not {0}'s")]
    BadSignature(AgentId),
}

impl BlockBody {
    /// Appends the canonical encoding of the body to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(BLOCK_VERSION);
        put_name(out, self.author.as_str());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.prev.0);
        out.extend_from_slice(&self.ts.0.to_le_bytes());
        put_name(out, self.collection.as_str());
        out.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// The length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        1 + 1
            + self.author.as_str().len()
            + 8
            + 32
            + 8
            + 1
            + self.collection.as_str().len()
            + 4
            + self.payload.len()
    }

    /// BLAKE3 of the domain tag and the canonical encoding.
    pub fn hash(&self) -> Hash {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut buf);
        hash_encoded_body(&buf)
    }

    /// Hashes and signs the body with the author's key.
    pub fn seal(self, key: &AgentKey) -> Block {
        let hash = self.hash();
        let sig = key.sign(&hash);
        Block {
            body: self,
            hash,
            sig,
        }
    }
}

fn hash_encoded_body(encoded: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(HASH_DOMAIN);
    h.update(encoded);
    Hash(*h.finalize().as_bytes())
}

fn put_name(out: &mut Vec<u8>, s: &str) {
    // Names are at most 128 bytes, validated on construction.
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

impl Block {
    /// The canonical binary form: body, hash, signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.body.encode_into(&mut out);
        out.extend_from_slice(&self.hash.0);
        out.extend_from_slice(&self.sig.0);
        out
    }

    /// The length of [`Block::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        self.body.encoded_len() + 32 + 64
    }

    /// Parses the canonical binary form. Checks structure and bounds, not authenticity.
    pub fn decode(bytes: &[u8]) -> Result<Block, DecodeError> {
        if bytes.len() > MAX_BLOCK_LEN {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_BLOCK_LEN,
            });
        }
        let mut r = Reader(bytes);
        let version = r.u8("version")?;
        if version != BLOCK_VERSION {
            return Err(DecodeError::Version(version));
        }
        let author = AgentId::new(r.name("author")?).map_err(DecodeError::Author)?;
        let seq = r.u64("seq")?;
        if seq == 0 {
            return Err(DecodeError::ZeroSeq);
        }
        let prev = Hash(r.array("prev")?);
        let ts = UnixMillis(r.u64("ts_ms")?);
        let collection = Collection::new(r.name("collection")?).map_err(DecodeError::Collection)?;
        let len = r.u32("payload length")? as usize;
        if len > MAX_PAYLOAD_LEN {
            return Err(DecodeError::PayloadTooLarge {
                len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        let payload = r.take(len, "payload")?.to_vec();
        check_payload(&payload)?;
        let hash = Hash(r.array("hash")?);
        let sig = Signature(r.array("sig")?);
        if !r.0.is_empty() {
            return Err(DecodeError::Trailing(r.0.len()));
        }
        Ok(Block {
            body: BlockBody {
                author,
                seq,
                prev,
                ts,
                collection,
                payload,
            },
            hash,
            sig,
        })
    }

    /// Checks that the carried hash is the body's and the signature is the author's.
    /// Cheapest first: hashing before the signature check.
    pub fn verify(&self, keys: &KeySchedule) -> Result<(), VerifyError> {
        let computed = self.body.hash();
        if computed != self.hash {
            return Err(VerifyError::HashMismatch {
                carried: self.hash,
                computed,
            });
        }
        if !keys.verify(&self.body.author, &self.hash, &self.sig) {
            return Err(VerifyError::BadSignature(self.body.author.clone()));
        }
        Ok(())
    }

    /// Verifies the block and wraps it as [`Verified`], the only form the node will store.
    pub fn into_verified(self, keys: &KeySchedule) -> Result<Verified, VerifyError> {
        self.verify(keys)?;
        Ok(Verified(self))
    }

    /// Verifies the block like [`Block::into_verified`], except that the signature check is
    /// skipped when `held` gives, for the body's hash, the same signature this node already
    /// stores: an identical block, whose signature was checked when it was stored. The node
    /// takes it as a duplicate and stores nothing of it. Pushes and pull pages overlap while a
    /// peer is behind; this keeps the overlap from costing a second Ed25519 verification per
    /// block. A block that differs in any byte (body, hash or signature) is checked in full.
    pub fn into_verified_unless_held(
        self,
        keys: &KeySchedule,
        held: impl Fn(&Hash) -> Option<Signature>,
    ) -> Result<Verified, VerifyError> {
        let computed = self.body.hash();
        if computed != self.hash {
            return Err(VerifyError::HashMismatch {
                carried: self.hash,
                computed,
            });
        }
        if held(&self.hash).as_ref() != Some(&self.sig)
            && !keys.verify(&self.body.author, &self.hash, &self.sig)
        {
            return Err(VerifyError::BadSignature(self.body.author.clone()));
        }
        Ok(Verified(self))
    }

    /// The author.
    pub fn author(&self) -> &AgentId {
        &self.body.author
    }

    /// The position in the author's chain.
    pub fn seq(&self) -> u64 {
        self.body.seq
    }
}

/// A block whose hash and signature have been checked (or that this node sealed itself).
/// The node accepts nothing else for storage, so an unverified block cannot be stored by
/// mistake (DESIGN §6.4).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Verified(Block);

impl Verified {
    /// Seals `body` with `key`: a block this node authored is authentic by construction.
    pub fn seal(body: BlockBody, key: &AgentKey) -> Verified {
        Verified(body.seal(key))
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.0
    }

    /// The block, giving up the proof.
    pub fn into_block(self) -> Block {
        self.0
    }

    /// Wraps a block without checking it. Only for the deterministic simulator (feature
    /// `sim`): its blocks are clones of blocks honest nodes sealed, moved by value, never
    /// bytes, so the shell's check (which the simulator replaces) could only ever pass.
    #[cfg(feature = "sim")]
    pub fn trusted(block: Block) -> Verified {
        Verified(block)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn name(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = self.u8(field)? as usize;
        let bytes = self.take(len, field)?;
        // Invalid UTF-8 becomes U+FFFD, which the name check then refuses with a clear error.
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests;
