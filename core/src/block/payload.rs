//! What a valid payload is: UTF-8 JSON within the size and nesting bounds. Checked when a
//! client writes and when a block is decoded, so no node authors, stores or forwards one that
//! is not.

use serde::de::IgnoredAny;

use super::{DecodeError, MAX_PAYLOAD_LEN};

/// Deepest nesting of arrays and objects a payload may have. Part of what a valid payload is,
/// so no node authors, stores or forwards a block that a client's recursive JSON parser would
/// have to descend without bound to read.
pub const MAX_JSON_DEPTH: usize = 128;

/// Checks that a payload is valid UTF-8 JSON, within the size and depth bounds.
pub fn check_payload(payload: &[u8]) -> Result<(), DecodeError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(DecodeError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    // UTF-8 first: serde_json skips over string contents it ignores without validating them,
    // and a payload must be text so its JSON wire form carries exactly the signed bytes.
    let text = core::str::from_utf8(payload).map_err(|_| DecodeError::PayloadNotJson)?;
    // Depth before parsing: serde_json skips ignored values without its recursion limit.
    if nests_deeper_than(payload, MAX_JSON_DEPTH) {
        return Err(DecodeError::PayloadTooDeep {
            max: MAX_JSON_DEPTH,
        });
    }
    serde_json::from_str::<IgnoredAny>(text).map_err(|_| DecodeError::PayloadNotJson)?;
    Ok(())
}

/// Whether `text` opens more than `limit` arrays or objects inside one another (brackets inside
/// strings do not count). One pass, no recursion, so any input is safe to measure.
fn nests_deeper_than(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}
