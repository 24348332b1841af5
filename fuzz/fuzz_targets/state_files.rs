//! Any bytes as one of the node's persisted state files, read at start: `sync_cursors.json`,
//! `cluster.json`, the index checkpoint `strand-index.v1`, the generated `master_seed` and
//! `witnessed_heads.json`.
//! The first input byte picks the file. Never a panic, memory linear in the file, and whatever
//! parses writes back to bytes that parse to the same value.
//!
//! The checkpoint is guarded by a BLAKE3 checksum that random bytes never match, so one kind
//! appends the right checksum to the fuzzer's bytes: that is what reaches the parser proper.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sapix_core::MasterSeed;
use sapix_fuzz::{assert_within, json_bound, peak_during};
use sapix_runtime::persist::{
    parse_cluster, parse_cursors, parse_witnessed, CLUSTER_FILE, CURSORS_FILE, WITNESSED_FILE,
};
use sapix_runtime::strand::parse_checkpoint;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, file)) = data.split_first() else {
        return;
    };
    match kind % 6 {
        0 => {
            let path = Path::new(CURSORS_FILE);
            let (parsed, peak) = peak_during(|| parse_cursors(file, path));
            assert_within(CURSORS_FILE, file.len(), peak, json_bound(file.len()));
            if let Ok(cursors) = parsed {
                let again = serde_json::to_vec_pretty(&cursors).expect("cursors serialize");
                assert_eq!(
                    parse_cursors(&again, path).expect("written cursors parse"),
                    cursors
                );
            }
        }
        1 => {
            let path = Path::new(CLUSTER_FILE);
            let (parsed, peak) = peak_during(|| parse_cluster(file, path));
            assert_within(CLUSTER_FILE, file.len(), peak, json_bound(file.len()));
            if let Ok(cluster) = parsed {
                let again = serde_json::to_vec_pretty(&cluster).expect("cluster serializes");
                assert_eq!(
                    parse_cluster(&again, path).expect("written cluster parses"),
                    cluster
                );
            }
        }
        2 | 3 => {
            let mut bytes = file.to_vec();
            if kind % 6 == 2 {
                bytes.extend_from_slice(blake3::hash(file).as_bytes());
            }
            let (parsed, peak) = peak_during(|| parse_checkpoint(&bytes));
            assert_within(
                "strand-index.v1",
                bytes.len(),
                peak,
                json_bound(bytes.len()),
            );
            if let Ok(tip) = parsed {
                // Entries are 56 bytes each after the header, so a tip can never claim more.
                assert!(
                    tip <= bytes.len() as u64 / 56,
                    "tip {tip} from {} bytes",
                    bytes.len()
                );
            }
        }
        5 => {
            let path = Path::new(WITNESSED_FILE);
            let (parsed, peak) = peak_during(|| parse_witnessed(file, path));
            assert_within(WITNESSED_FILE, file.len(), peak, json_bound(file.len()));
            if let Ok(heads) = parsed {
                let json = sapix_core::ledger::wire::HeadsJson {
                    heads: heads
                        .iter()
                        .map(sapix_core::ledger::wire::HeadJson::from)
                        .collect(),
                };
                let again = serde_json::to_vec_pretty(&json).expect("heads serialize");
                assert_eq!(
                    parse_witnessed(&again, path).expect("written heads parse"),
                    heads
                );
                for h in heads {
                    let _ = sapix_core::ledger::VerifiedHead::check(h);
                }
            }
        }
        _ => {
            let text = String::from_utf8_lossy(file);
            if let Ok(seed) = MasterSeed::from_hex(&text) {
                assert_eq!(seed.to_hex(), text.trim().to_ascii_lowercase());
            }
        }
    }
});
