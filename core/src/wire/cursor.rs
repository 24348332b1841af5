//! The cursor of a collection page (`GET /v1/records?collection=…&after=<cursor>`): opaque to
//! clients, it names per-author positions (`author → the last seq read`), never local offsets,
//! so it means the same on every node (commit order differs between nodes). Encoded as
//! URL-safe base64 (no padding) of `c1` then `author:seq` pairs joined by `,`, authors sorted.
//! Parsing is strict and bounded: a cursor that was not made here is a typed error.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::id::AgentId;

/// The most authors one cursor names (a cursor must fit in a request head with room to
/// spare: the agent takes heads up to 64 KiB).
pub const MAX_CURSOR_AUTHORS: usize = 128;
/// The longest cursor text accepted.
pub const MAX_CURSOR_LEN: usize = 16 * 1_024;

const PREFIX: &str = "c1";

/// Why text is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("after: not a cursor this agent gave out ({0})")]
pub struct BadCursor(&'static str);

/// Encodes per-author positions as a cursor (`""` for none).
pub fn encode(positions: &BTreeMap<AgentId, u64>) -> String {
    if positions.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = positions.iter().map(|(a, s)| format!("{a}:{s}")).collect();
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{}", pairs.join(",")))
}

/// Parses a cursor (`""`: from the start).
pub fn decode(text: &str) -> Result<BTreeMap<AgentId, u64>, BadCursor> {
    let mut out = BTreeMap::new();
    if text.is_empty() {
        return Ok(out);
    }
    if text.len() > MAX_CURSOR_LEN {
        return Err(BadCursor("too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| BadCursor("not base64url"))?;
    let body = std::str::from_utf8(&bytes).map_err(|_| BadCursor("not text"))?;
    let pairs = body
        .strip_prefix(PREFIX)
        .ok_or(BadCursor("unknown version"))?;
    for pair in pairs.split(',') {
        if out.len() == MAX_CURSOR_AUTHORS {
            return Err(BadCursor("too many authors"));
        }
        let (author, seq) = pair.rsplit_once(':').ok_or(BadCursor("no `:`"))?;
        let author = AgentId::new(author).map_err(|_| BadCursor("bad author"))?;
        let seq = super::decimal(seq).ok_or(BadCursor("bad seq"))?;
        if out.insert(author, seq).is_some() {
            return Err(BadCursor("an author twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let p = BTreeMap::from([(id("eu-west-1"), 42), (id("us-east-1"), 7)]);
        let c = encode(&p);
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(decode(&c), Ok(p));
        assert_eq!(decode(""), Ok(BTreeMap::new()));
        assert_eq!(encode(&BTreeMap::new()), "");
        let forged = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for bad in [
            "!!!".to_string(),
            forged("c2a:1"),
            forged("c1"),
            forged("c1a"),
            forged("c1a:"),
            forged("c1a:x"),
            forged("c1Bad!:1"),
            forged("c1a:1,a:2"),
            forged("c1a:1,"),
            forged("c1a:99999999999999999999"),
            "A".repeat(MAX_CURSOR_LEN + 1),
        ] {
            assert!(decode(&bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_CURSOR_AUTHORS)
            .map(|i| format!("a{i}:1"))
            .collect();
        assert!(decode(&forged(&format!("c1{}", many.join(",")))).is_err());
    }
}
