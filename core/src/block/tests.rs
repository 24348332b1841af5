use super::*;
use crate::keys::MasterSeed;

fn keys() -> KeySchedule {
    KeySchedule::new(
        MasterSeed::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
            .unwrap(),
    )
}

fn body(author: &str, seq: u64, prev: Hash) -> BlockBody {
    BlockBody {
        author: AgentId::new(author).unwrap(),
        seq,
        prev,
        ts: UnixMillis(1_715_000_000_000),
        collection: Collection::new("orders").unwrap(),
        payload: br#"{"amount":42,"currency":"EUR"}"#.to_vec(),
    }
}

fn sealed() -> Block {
    let ks = keys();
    let author = AgentId::new("primary").unwrap();
    body("primary", 1, Hash::ZERO).seal(&ks.signing_key(&author))
}

#[test]
fn encoding_hash_and_signature_are_pinned() {
    let b = sealed();
    let enc = b.encode();
    insta::assert_snapshot!(format!(
        "encoding: {}\nhash: {}\nsig: {}",
        hex::encode(&enc),
        b.hash,
        b.sig.to_hex()
    ));
}

#[test]
fn round_trip_is_identity_and_verifies() {
    let b = sealed();
    let enc = b.encode();
    assert_eq!(enc.len(), b.encoded_len());
    let d = Block::decode(&enc).unwrap();
    assert_eq!(d, b);
    assert_eq!(d.encode(), enc);
    d.verify(&keys()).unwrap();
}

#[test]
fn every_truncation_is_a_typed_error() {
    let enc = sealed().encode();
    for cut in 0..enc.len() {
        match Block::decode(&enc[..cut]) {
            Err(DecodeError::Truncated(_)) => {}
            // A cut inside the payload that still leaves a parsable prefix cannot happen: the
            // length prefix makes the reader ask for the whole payload first.
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![BLOCK_VERSION; MAX_BLOCK_LEN + 1];
    assert_eq!(
        Block::decode(&big),
        Err(DecodeError::TooLarge {
            len: MAX_BLOCK_LEN + 1,
            max: MAX_BLOCK_LEN
        })
    );
}

#[test]
fn declared_payload_over_the_bound_is_refused() {
    let mut enc = sealed().encode();
    // The payload length sits after version, author, seq, prev, ts and collection.
    let at = 1 + 1 + "primary".len() + 8 + 32 + 8 + 1 + "orders".len();
    enc[at..at + 4].copy_from_slice(&((MAX_PAYLOAD_LEN as u32) + 1).to_le_bytes());
    assert!(matches!(
        Block::decode(&enc),
        Err(DecodeError::PayloadTooLarge { .. })
    ));
}

#[test]
fn bad_version_is_refused() {
    let mut enc = sealed().encode();
    enc[0] = 2;
    assert_eq!(Block::decode(&enc), Err(DecodeError::Version(2)));
}

#[test]
fn bad_names_zero_seq_non_json_and_trailing_bytes_are_refused() {
    let mut enc = sealed().encode();
    enc[2] = b'P';
    assert!(matches!(Block::decode(&enc), Err(DecodeError::Author(_))));

    let mut enc = sealed().encode();
    let seq_at = 1 + 1 + "primary".len();
    enc[seq_at..seq_at + 8].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(Block::decode(&enc), Err(DecodeError::ZeroSeq));

    let mut enc = sealed().encode();
    let coll_at = 1 + 1 + "primary".len() + 8 + 32 + 8 + 1;
    enc[coll_at] = b' ';
    assert!(matches!(
        Block::decode(&enc),
        Err(DecodeError::Collection(_))
    ));

    let ks = keys();
    let mut b = body("primary", 1, Hash::ZERO);
    b.payload = b"{not json".to_vec();
    let enc = b
        .seal(&ks.signing_key(&AgentId::new("primary").unwrap()))
        .encode();
    assert_eq!(Block::decode(&enc), Err(DecodeError::PayloadNotJson));

    let mut enc = sealed().encode();
    enc.push(0);
    assert_eq!(Block::decode(&enc), Err(DecodeError::Trailing(1)));
}

#[test]
fn tampered_body_fails_the_hash_check() {
    let mut b = sealed();
    b.body.payload = br#"{"amount":43,"currency":"EUR"}"#.to_vec();
    assert!(matches!(
        b.verify(&keys()),
        Err(VerifyError::HashMismatch { .. })
    ));
}

#[test]
fn flipped_signature_bit_fails_the_signature_check() {
    let mut b = sealed();
    b.sig.0[10] ^= 1;
    assert_eq!(
        b.verify(&keys()),
        Err(VerifyError::BadSignature(AgentId::new("primary").unwrap()))
    );
}

#[test]
fn a_block_signed_with_another_agents_key_is_refused() {
    let ks = keys();
    let mallory = ks.signing_key(&AgentId::new("replica-eu").unwrap());
    let forged = body("primary", 1, Hash::ZERO).seal(&mallory);
    assert_eq!(
        forged.verify(&ks),
        Err(VerifyError::BadSignature(AgentId::new("primary").unwrap()))
    );
}

#[test]
fn a_block_from_another_cluster_is_refused() {
    let other = KeySchedule::new(MasterSeed::from_bytes([9; 32]));
    let b =
        body("primary", 1, Hash::ZERO).seal(&other.signing_key(&AgentId::new("primary").unwrap()));
    assert!(matches!(
        b.verify(&keys()),
        Err(VerifyError::BadSignature(_))
    ));
}

fn nested(depth: usize) -> Vec<u8> {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

#[test]
fn a_payload_nested_up_to_the_depth_bound_is_json_and_one_level_more_is_not() {
    assert_eq!(check_payload(&nested(MAX_JSON_DEPTH)), Ok(()));
    let over = DecodeError::PayloadTooDeep {
        max: MAX_JSON_DEPTH,
    };
    assert_eq!(
        check_payload(&nested(MAX_JSON_DEPTH + 1)),
        Err(over.clone())
    );
    assert_eq!(check_payload(&nested(100_000)), Err(over.clone()));
    let objects = format!(
        "{}1{}",
        r#"{"a":"#.repeat(MAX_JSON_DEPTH + 1),
        "}".repeat(MAX_JSON_DEPTH + 1)
    );
    assert_eq!(check_payload(objects.as_bytes()), Err(over));
    // Brackets inside strings, escaped quotes included, are not nesting.
    let in_string = format!(r#"{{"s": "\"{}"}}"#, "[".repeat(1000));
    assert_eq!(check_payload(in_string.as_bytes()), Ok(()));
}

#[test]
fn a_block_whose_payload_is_too_deep_does_not_decode() {
    let mut b = body("primary", 1, Hash::ZERO);
    b.payload = nested(MAX_JSON_DEPTH + 1);
    let sealed = b.seal(&keys().signing_key(&AgentId::new("primary").unwrap()));
    assert_eq!(
        Block::decode(&sealed.encode()),
        Err(DecodeError::PayloadTooDeep {
            max: MAX_JSON_DEPTH
        })
    );
}

#[test]
fn an_identical_held_block_skips_only_the_signature_check() {
    let b = sealed();
    let held_sig = b.sig;
    let held_hash = b.hash;
    let holds = |h: &Hash| (*h == held_hash).then_some(held_sig);
    // Keys of another cluster: the signature check would fail, so passing proves it was skipped.
    let other = KeySchedule::new(MasterSeed::from_bytes([9; 32]));
    assert!(b.clone().into_verified(&other).is_err());
    let v = b
        .clone()
        .into_verified_unless_held(&other, holds)
        .expect("an identical held block needs no second signature check");
    assert_eq!(v.block(), &b);

    // Not held: checked in full, as into_verified.
    assert!(b
        .clone()
        .into_verified_unless_held(&other, |_| None)
        .is_err());
    assert!(b
        .clone()
        .into_verified_unless_held(&keys(), |_| None)
        .is_ok());

    // Held, but another signature: checked in full, and a flipped bit is refused.
    let mut flipped = b.clone();
    flipped.sig.0[10] ^= 1;
    assert_eq!(
        flipped.into_verified_unless_held(&keys(), holds),
        Err(VerifyError::BadSignature(AgentId::new("primary").unwrap()))
    );

    // The held hash carried over another body: the hash check still runs first.
    let mut tampered = b;
    tampered.body.payload = br#"{"amount":43,"currency":"EUR"}"#.to_vec();
    assert!(matches!(
        tampered.into_verified_unless_held(&keys(), holds),
        Err(VerifyError::HashMismatch { .. })
    ));
}
