//! Frame encoding and decoding: pure functions from blocks to bytes and back.
//!
//! A frame is `u32 LE body length | u32 LE crc32(body) | body`; the body layouts are in the
//! module doc of [`crate::strand`]. The invariant: [`encode`] only returns bytes that
//! [`decode_body`] accepts again, so a frame we wrote can never be mistaken for a torn tail and
//! cut off by recovery; and no input, however damaged, makes the decoder panic or allocate
//! more than one maximal frame.

use sapix_core::block::{check_payload, DecodeError, MAX_BLOCK_LEN, MAX_PAYLOAD_LEN};
use sapix_core::{AgentId, Block, BlockBody, Collection, Hash};

/// Bytes before the body: length and crc.
pub(crate) const HEADER_LEN: usize = 8;
/// Body kind: the block's full canonical encoding follows.
pub(crate) const KIND_FULL: u8 = 1;
/// Body kind: the payload lives in the blob store; a stub encoding follows.
pub(crate) const KIND_BLOB: u8 = 2;
/// The longest body any valid frame has: kind byte plus a maximal block.
pub(crate) const MAX_BODY_LEN: usize = 1 + MAX_BLOCK_LEN;

/// Hash and signature at the end of every block encoding.
const TRAILER_LEN: usize = 32 + 64;
/// Core's decoder insists on a JSON payload, so a stub (empty payload) is decoded as if its
/// payload were this placeholder; every other structural check of the core decoder still runs.
const STUB_PLACEHOLDER: &[u8] = b"null";

/// A payload that must be stored as a blob before its frame is made durable.
pub(crate) struct BlobPayload {
    /// BLAKE3 of `bytes`: the blob's name.
    pub(crate) hash: [u8; 32],
    /// The payload.
    pub(crate) bytes: Vec<u8>,
}

/// A block turned into frame bytes, with what the index needs to know about it.
pub(crate) struct EncodedFrame {
    /// Header and body, ready to append to a segment.
    pub(crate) bytes: Vec<u8>,
    /// The payload to store first, for a kind-2 frame.
    pub(crate) blob: Option<BlobPayload>,
    /// The block hash.
    pub(crate) hash: Hash,
    /// The block author.
    pub(crate) author: AgentId,
    /// The block's position in its author's chain.
    pub(crate) seq: u64,
    /// The record's collection.
    pub(crate) collection: Collection,
}

impl EncodedFrame {
    /// Length of the body (what the header's length field says).
    pub(crate) fn body_len(&self) -> u32 {
        (self.bytes.len() - HEADER_LEN) as u32
    }
}

/// A decoded frame body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameBody {
    /// The whole block was in the frame.
    Full(Block),
    /// The block without its payload; the payload is the blob named `payload_hash`.
    BlobRef {
        /// The block with an empty payload.
        stub: Block,
        /// BLAKE3 of the payload.
        payload_hash: [u8; 32],
        /// Payload length in bytes.
        payload_len: u32,
    },
}

impl FrameBody {
    /// The block, with an empty payload for a blob reference: enough for indexing.
    pub(crate) fn block(&self) -> &Block {
        match self {
            FrameBody::Full(b) => b,
            FrameBody::BlobRef { stub, .. } => stub,
        }
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// Fewer than 8 header bytes.
    #[error("short frame header: {have} of 8 bytes")]
    ShortHeader {
        /// Bytes present.
        have: usize,
    },
    /// A body length no valid frame has.
    #[error("impossible frame length {len}")]
    BadLength {
        /// The length field.
        len: u32,
    },
    /// The body ends early.
    #[error("short frame body: {have} of {want} bytes")]
    ShortBody {
        /// Bytes present.
        have: usize,
        /// Bytes the header promises.
        want: usize,
    },
    /// The body does not match its checksum.
    #[error("frame crc mismatch: stored {stored:08x}, computed {computed:08x}")]
    BadCrc {
        /// The header's crc.
        stored: u32,
        /// crc32 of the body as read.
        computed: u32,
    },
    /// A body kind this code does not write.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A kind-2 body that is not a well-formed blob reference.
    #[error("bad blob reference: {0}")]
    BadBlobRef(&'static str),
    /// The block inside does not decode.
    #[error("undecodable block: {0}")]
    Block(DecodeError),
}

/// Encodes `block` as a frame; payloads longer than `blob_threshold` go to a blob.
/// Refuses any block whose frame would not decode again.
pub(crate) fn encode(block: &Block, blob_threshold: usize) -> Result<EncodedFrame, DecodeError> {
    let payload = &block.body.payload;
    let mut bytes = Vec::with_capacity(HEADER_LEN + 1 + block.encoded_len());
    bytes.extend_from_slice(&[0; HEADER_LEN]);
    let blob = if payload.len() > blob_threshold {
        // The payload skips core's decoder, so check it here the way the decoder would.
        check_payload(payload)?;
        let hash = *blake3::hash(payload).as_bytes();
        bytes.push(KIND_BLOB);
        bytes.extend_from_slice(&hash);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let stub = BlockBody {
            author: block.body.author.clone(),
            seq: block.body.seq,
            prev: block.body.prev,
            ts: block.body.ts,
            collection: block.body.collection.clone(),
            payload: Vec::new(),
        };
        stub.encode_into(&mut bytes);
        Some(BlobPayload {
            hash,
            bytes: payload.clone(),
        })
    } else {
        bytes.push(KIND_FULL);
        block.body.encode_into(&mut bytes);
        None
    };
    bytes.extend_from_slice(&block.hash.0);
    bytes.extend_from_slice(&block.sig.0);
    let body = &bytes[HEADER_LEN..];
    if body.len() > MAX_BODY_LEN {
        return Err(DecodeError::TooLarge {
            len: body.len() - 1,
            max: MAX_BLOCK_LEN,
        });
    }
    match decode_body(body) {
        Ok(_) => {}
        Err(FrameError::Block(e)) => return Err(e),
        // Our own encoder cannot produce a bad kind or blob reference; if it ever did, refusing
        // the block is still the safe answer.
        Err(_) => return Err(DecodeError::Truncated("frame")),
    }
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    bytes[4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(EncodedFrame {
        bytes,
        blob,
        hash: block.hash,
        author: block.body.author.clone(),
        seq: block.body.seq,
        collection: block.body.collection.clone(),
    })
}

/// Parses a header: returns `(body length, crc)`. Refuses lengths no frame can have, so a
/// garbage length never causes a large allocation.
pub(crate) fn parse_header(header: &[u8]) -> Result<(usize, u32), FrameError> {
    if header.len() < HEADER_LEN {
        return Err(FrameError::ShortHeader { have: header.len() });
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len as usize > MAX_BODY_LEN {
        return Err(FrameError::BadLength { len });
    }
    Ok((len as usize, crc))
}

/// Checks a body against the crc from its header.
pub(crate) fn check_crc(body: &[u8], stored: u32) -> Result<(), FrameError> {
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(FrameError::BadCrc { stored, computed });
    }
    Ok(())
}

/// Decodes a body whose crc has been checked.
pub(crate) fn decode_body(body: &[u8]) -> Result<FrameBody, FrameError> {
    let (&kind, rest) = body.split_first().ok_or(FrameError::BadLength { len: 0 })?;
    match kind {
        KIND_FULL => Block::decode(rest)
            .map(FrameBody::Full)
            .map_err(FrameError::Block),
        KIND_BLOB => {
            if rest.len() < 36 {
                return Err(FrameError::BadBlobRef("shorter than its hash and length"));
            }
            let mut payload_hash = [0u8; 32];
            payload_hash.copy_from_slice(&rest[..32]);
            let payload_len = u32::from_le_bytes([rest[32], rest[33], rest[34], rest[35]]);
            if payload_len as usize > MAX_PAYLOAD_LEN {
                return Err(FrameError::BadBlobRef("payload length over the maximum"));
            }
            let stub = decode_stub(&rest[36..])?;
            Ok(FrameBody::BlobRef {
                stub,
                payload_hash,
                payload_len,
            })
        }
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// Decodes one whole frame at the start of `buf`; returns it and the bytes it spans.
pub(crate) fn decode(buf: &[u8]) -> Result<(FrameBody, usize), FrameError> {
    let (len, crc) = parse_header(buf)?;
    let body = &buf[HEADER_LEN..];
    if body.len() < len {
        return Err(FrameError::ShortBody {
            have: body.len(),
            want: len,
        });
    }
    let body = &body[..len];
    check_crc(body, crc)?;
    Ok((decode_body(body)?, HEADER_LEN + len))
}

/// Decodes a block encoding whose payload length field is 0 and payload absent.
fn decode_stub(stub: &[u8]) -> Result<Block, FrameError> {
    let Some(at) = stub.len().checked_sub(TRAILER_LEN + 4) else {
        return Err(FrameError::BadBlobRef("stub shorter than a block trailer"));
    };
    if stub[at..at + 4] != [0; 4] {
        return Err(FrameError::BadBlobRef("stub carries a payload"));
    }
    let mut patched = Vec::with_capacity(stub.len() + STUB_PLACEHOLDER.len());
    patched.extend_from_slice(&stub[..at]);
    patched.extend_from_slice(&(STUB_PLACEHOLDER.len() as u32).to_le_bytes());
    patched.extend_from_slice(STUB_PLACEHOLDER);
    patched.extend_from_slice(&stub[at + 4..]);
    let mut block = Block::decode(&patched).map_err(FrameError::Block)?;
    block.body.payload.clear();
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strand::test_util::block_with_payload;

    #[test]
    fn small_payload_round_trips_as_full_frame() {
        let b = block_with_payload(1, br#"{"a":1}"#.to_vec());
        let f = encode(&b, 16).unwrap();
        assert!(f.blob.is_none());
        assert_eq!(f.bytes[HEADER_LEN], KIND_FULL);
        let (body, used) = decode(&f.bytes).unwrap();
        assert_eq!(used, f.bytes.len());
        assert_eq!(body, FrameBody::Full(b));
    }

    #[test]
    fn payload_at_threshold_stays_inline_and_above_goes_to_blob() {
        let payload = br#""0123456789""#.to_vec();
        let b = block_with_payload(1, payload.clone());
        assert!(encode(&b, payload.len()).unwrap().blob.is_none());
        let f = encode(&b, payload.len() - 1).unwrap();
        let blob = f.blob.as_ref().unwrap();
        assert_eq!(blob.bytes, payload);
        assert_eq!(&blob.hash, blake3::hash(&payload).as_bytes());
        let (body, _) = decode(&f.bytes).unwrap();
        let FrameBody::BlobRef {
            stub,
            payload_hash,
            payload_len,
        } = body
        else {
            panic!("expected a blob reference");
        };
        assert_eq!(payload_hash, blob.hash);
        assert_eq!(payload_len as usize, payload.len());
        assert!(stub.body.payload.is_empty());
        let mut rebuilt = stub;
        rebuilt.body.payload = payload;
        assert_eq!(rebuilt, b);
    }

    #[test]
    fn every_truncation_is_short_and_every_bit_flip_is_caught() {
        for threshold in [usize::MAX, 4] {
            let f = encode(
                &block_with_payload(3, br#"{"k":"value"}"#.to_vec()),
                threshold,
            )
            .unwrap()
            .bytes;
            for cut in 0..f.len() {
                match decode(&f[..cut]) {
                    Err(FrameError::ShortHeader { .. } | FrameError::ShortBody { .. }) => {}
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
            for i in 0..f.len() {
                for bit in 0..8 {
                    let mut g = f.clone();
                    g[i] ^= 1 << bit;
                    assert!(
                        decode(&g).is_err(),
                        "flip byte {i} bit {bit} went unnoticed"
                    );
                }
            }
        }
    }

    #[test]
    fn blocks_that_would_not_decode_are_refused_at_encode() {
        let mut b = block_with_payload(1, b"not json".to_vec());
        assert_eq!(encode(&b, 1 << 20).err(), Some(DecodeError::PayloadNotJson));
        assert_eq!(encode(&b, 1).err(), Some(DecodeError::PayloadNotJson));
        b.body.payload = b"{}".to_vec();
        b.body.seq = 0;
        assert_eq!(encode(&b, 1 << 20).err(), Some(DecodeError::ZeroSeq));
        assert_eq!(encode(&b, 1).err(), Some(DecodeError::ZeroSeq));
    }

    #[test]
    fn garbage_headers_are_refused_without_allocating() {
        assert_eq!(
            parse_header(&[0xff; 8]),
            Err(FrameError::BadLength { len: u32::MAX })
        );
        assert_eq!(parse_header(&[0; 8]), Err(FrameError::BadLength { len: 0 }));
        let mut unknown = vec![1, 0, 0, 0];
        unknown.extend_from_slice(&crc32fast::hash(&[9]).to_le_bytes());
        unknown.push(9);
        assert_eq!(decode(&unknown), Err(FrameError::UnknownKind(9)));
    }
}
