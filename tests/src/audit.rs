//! Running the auditor, `sapixctl verify`, against an [`Agent`], and tampering with a killed
//! agent's strand on disk the ways an attacker with the disk (and perhaps the master seed)
//! could: a flipped byte, a block dropped at the tail, a chain replaced from a seq on.

use std::path::Path;
use std::process::{Command, Output};

use sapix_core::Block;
use sapix_runtime::strand::{Strand, StrandOptions};

use crate::locate::cargo_bin;
use crate::Agent;

/// `sapixctl verify --state <state> [--hash h]... <extra>` against `agent`, with its root key.
pub fn verify(agent: &Agent, state: &Path, hashes: &[&str], extra: &[&str]) -> Output {
    let mut cmd = Command::new(cargo_bin("sapix-ctl", "sapixctl"));
    cmd.arg("--url")
        .arg(agent.base_url())
        .arg("--root-key-file")
        .arg(agent.data_dir().join("root_key"))
        .arg("verify")
        .arg("--state")
        .arg(state)
        .env_remove("SAPIX_ROOT_KEY")
        .env_remove("SAPIX_URL")
        .env_remove("SAPIX_TOKEN");
    for h in hashes {
        cmd.arg("--hash").arg(h);
    }
    cmd.args(extra);
    cmd.output().expect("run sapixctl")
}

/// A command's stdout and stderr, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn options(data_dir: &Path) -> StrandOptions {
    StrandOptions::new(
        data_dir.join("strand"),
        data_dir.join("graph"),
        data_dir.join("blobs"),
    )
}

/// The blocks of the (stopped) agent's strand at `data_dir`, in offset order.
pub fn strand_blocks(data_dir: &Path) -> Vec<Block> {
    let (strand, _) = Strand::open(options(data_dir)).expect("open the strand");
    let blocks = (1..=strand.tip())
        .map(|o| {
            strand
                .get(o)
                .expect("read")
                .expect("a block at each offset")
        })
        .collect();
    strand.close().expect("close the strand");
    blocks
}

/// The segment files of the strand at `data_dir`, in order.
pub fn segments(data_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(data_dir.join("strand"))
        .expect("strand dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("segment-"))
        })
        .collect();
    segs.sort();
    segs
}

/// Replaces the (stopped) agent's strand by its first `keep` blocks followed by `then`,
/// written as the strand writes them — frames whose checksums hold, so only what the blocks
/// say can give the change away. The index checkpoint goes too, so the start-up scans the
/// frames. Every other file of the strand directory (head, witnessed heads, evidence) stays.
pub fn rewrite_strand(data_dir: &Path, keep: usize, then: Vec<Block>) {
    let mut blocks = strand_blocks(data_dir);
    blocks.truncate(keep);
    blocks.extend(then);
    let scratch = tempfile::tempdir().expect("tempdir");
    let (fresh, _) = Strand::open(options(scratch.path())).expect("open a scratch strand");
    fresh.append_blocking(blocks).expect("append");
    fresh.close().expect("close");
    for seg in segments(data_dir) {
        std::fs::remove_file(seg).expect("remove segment");
    }
    for seg in segments(scratch.path()) {
        let name = seg.file_name().expect("name");
        std::fs::copy(&seg, data_dir.join("strand").join(name)).expect("copy segment");
    }
    let _ = std::fs::remove_dir_all(data_dir.join("graph"));
}
