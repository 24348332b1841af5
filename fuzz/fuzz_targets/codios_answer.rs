//! Any bytes as the body of a 2xx Codios answer: never a panic, memory linear in the body, and
//! a permit only for an answer whose `decision` really is `"permit"` (a garbled answer must
//! never become a permit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapix_core::auth::Decision;
use sapix_fuzz::{assert_within, json_bound, peak_during};
use sapix_runtime::codios::parse_answer;

fuzz_target!(|data: &[u8]| {
    let (answer, peak) = peak_during(|| parse_answer(data));
    // Over 16 KiB the body is refused before parsing, so the bound is on at most that much.
    assert_within(
        "parse_answer",
        data.len(),
        peak,
        json_bound(data.len().min(16 * 1024)),
    );
    if let Ok(decision) = answer {
        // An independent reading of the same bytes must agree on the decision. (It may fail
        // where the answer parser does not: a `Value` rejects numbers out of f64 range that the
        // answer's ignored fields may hold.)
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
            return;
        };
        let said = v.get("decision").and_then(|d| d.as_str());
        match decision {
            Decision::Permit => assert_eq!(said, Some("permit")),
            Decision::Deny => assert_eq!(said, Some("deny")),
        }
    }
});
