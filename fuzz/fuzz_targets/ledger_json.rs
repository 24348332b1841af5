//! Any bytes as the ledger's JSON (issue 17): a signed head, an inclusion proof and a
//! consistency proof, as `sapixctl verify` reads them from a node it does not trust, and a
//! member's enrolled head keys, as a membership announcement carries them. Never a
//! panic; whatever parses re-encodes to what parses to the same value, and verifying it (against its own
//! stated roots and against a root made from the input) only ever answers yes or no.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sapix_core::ledger::wire::{ConsistencyProof, HeadJson, InclusionProof};
use sapix_core::ledger::{verify_consistency, verify_inclusion, HeadKeys, SignedHead};
use sapix_core::{AgentId, Hash};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = InclusionProof::from_json(text) {
        let again = serde_json::to_string(&p.to_json()).expect("serializes");
        assert_eq!(InclusionProof::from_json(&again).as_ref(), Ok(&p));
        let _ = p.verify(&p.root);
        if let Some(h) = &p.head {
            let _ = h.verifies();
            let _ = h.witnesses();
        }
    }
    if let Ok(p) = ConsistencyProof::from_json(text) {
        let again = serde_json::to_string(&p.to_json()).expect("serializes");
        assert_eq!(ConsistencyProof::from_json(&again).as_ref(), Ok(&p));
        let _ = p.verify(&p.from_root);
    }
    if let Ok(j) = serde_json::from_str::<HeadJson>(text) {
        if let Ok(h) = SignedHead::try_from(&j) {
            assert_eq!(SignedHead::try_from(&HeadJson::from(&h)).as_ref(), Ok(&h));
            let _ = h.verifies();
        }
    }
    if let Ok(keys) = serde_json::from_str::<HeadKeys>(text) {
        let again = serde_json::to_string(&keys).expect("serializes");
        assert_eq!(
            serde_json::from_str::<HeadKeys>(&again).as_ref().ok(),
            Some(&keys)
        );
        let member = AgentId::new("fuzz").expect("valid id");
        let valid = keys.clone().valid_prefix(&member);
        assert!(valid.len() <= keys.len());
        // Joining never panics, and a list never forks from its own valid prefix.
        let _ = keys.join(&member, &valid);
        assert!(!matches!(
            valid.join(&member, &valid.clone()),
            sapix_core::ledger::Join::Fork { .. }
        ));
    }
    // The verifiers on raw sizes and hashes cut from the input.
    if data.len() >= 16 + 64 {
        let m = u64::from_le_bytes(data[..8].try_into().unwrap());
        let n = u64::from_le_bytes(data[8..16].try_into().unwrap());
        let a = Hash(data[16..48].try_into().unwrap());
        let b = Hash(data[48..80].try_into().unwrap());
        let path: Vec<Hash> = data[80..]
            .chunks_exact(32)
            .map(|c| Hash(c.try_into().unwrap()))
            .collect();
        let _ = verify_inclusion(&a, m, n, &path, &b);
        let _ = verify_consistency(m, n, &a, &b, &path);
    }
});
