//! Equivocation evidence on disk (issue 17): one JSON file per piece under
//! `<SAPIX_STRAND_DIR>/evidence/`, named by [`Evidence::file_name`], written atomically and
//! synced. A block piece holds both blocks as the wire carries them (the held one read from
//! the strand), so anyone with the cluster's keys can check both signatures; a head piece holds
//! the refused signed head and the root of the author's blocks held here.

use std::io;
use std::path::{Path, PathBuf};

use sapix_core::ledger::wire::HeadJson;
use sapix_core::ledger::{Evidence, EvidenceId};
use sapix_core::wire::WireBlock;
use sapix_core::AgentId;
use serde_json::json;

use crate::disk::Disk;
use crate::state_file;
use crate::strand::Strand;

/// The directory, under the state directory.
pub const DIR: &str = "evidence";

/// Where `evidence` is kept under `state_dir`.
pub fn path(state_dir: &Path, evidence: &Evidence) -> PathBuf {
    state_dir.join(DIR).join(evidence.file_name())
}

/// Writes `evidence` (blocking: call off the async threads).
pub fn keep(
    disk: &dyn Disk,
    strand: &Strand,
    state_dir: &Path,
    evidence: &Evidence,
) -> io::Result<()> {
    let author = evidence.author().as_str();
    let body = match evidence {
        Evidence::Blocks { held, refused } => {
            let seq = refused.seq();
            let held_block = strand
                .get_by_author_seq(refused.author(), seq)
                .map_err(|e| io::Error::other(e.to_string()))?
                .map(|(_, b)| b)
                .filter(|b| b.hash == *held);
            json!({
                "kind": "blocks",
                "author": author,
                "seq": seq,
                "held": held_block.as_ref().map(|b| WireBlock::from_block(b, None)),
                "held_hash": held.to_hex(),
                "refused": WireBlock::from_block(refused, None),
            })
        }
        Evidence::Head { held_root, refused } => json!({
            "kind": "head",
            "author": author,
            "seq": refused.head.seq,
            "held_root": held_root.to_hex(),
            "refused": HeadJson::from(refused),
        }),
    };
    let mut bytes = serde_json::to_vec_pretty(&body).expect("evidence serializes");
    bytes.push(b'\n');
    if !disk.create_dir_all(&state_dir.join(DIR))?.is_empty() {
        // The new directory's own entry must survive a crash too.
        disk.sync_dir(state_dir)?;
    }
    state_file::write_atomic(disk, &path(state_dir, evidence), &bytes, 0o644)
}

/// The evidence kept under `state_dir`, by the names of its files (others are ignored).
pub fn list(disk: &dyn Disk, state_dir: &Path) -> io::Result<Vec<(AgentId, EvidenceId)>> {
    let dir = state_dir.join(DIR);
    let names = match disk.list(&dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(names
        .iter()
        .filter_map(|n| EvidenceId::from_file_name(&n.to_string_lossy()))
        .collect())
}
