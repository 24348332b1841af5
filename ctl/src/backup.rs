//! `sapixctl backup --out DIR`: a consistent copy of a running node, over its HTTP API.
//!
//! The copy is the node's strand up to the tip it reported when the backup began, read page by
//! page from `GET /v1/mesh/export` — a read of durable blocks, so writes never wait for it —
//! and written into a fresh strand in DIR by the agent's own strand code, block for block at
//! the same offsets (peers' pull cursors on this node stay valid against a restored copy).
//! Every block's hash and its author's chain links are checked before it is written.
//! `DIR/backup.json` records what was copied and the cluster the node saw then.
//!
//! DIR is laid out as a data directory (`strand/`, `graph/`, `blobs/`): `SAPIX_DATA_DIR=DIR`
//! starts a node on it (see docs/runbook.md for the new-id and cold-standby cases).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use sapix_core::digest::Hash;
use sapix_core::wire::{ExportPage, MAX_BATCH};
use sapix_core::AgentId;
use sapix_runtime::strand::{Strand, StrandOptions};
use serde_json::{json, Value};

use crate::client::{Client, Failed};

/// What a backup copied.
pub struct Copied {
    /// `backup.json`'s content.
    pub manifest: Value,
}

/// Copies the node behind `client` into `out`, which must not exist or be empty.
pub async fn backup(client: &Client, out: &Path, show_progress: bool) -> Result<Copied, Failed> {
    refuse_if_used(out)?;
    let (code, status) = client.get("/v1/cluster/status").await?;
    if !code.is_success() {
        return Err(Failed(format!("status answered {code}: {status}")));
    }
    let opts = StrandOptions::new(out.join("strand"), out.join("graph"), out.join("blobs"));
    let (strand, _) = Strand::open(opts)
        .map_err(|e| Failed(format!("cannot create a strand in {}: {e}", out.display())))?;
    let bar = progress(show_progress);
    let mut chains: BTreeMap<AgentId, (u64, Hash)> = BTreeMap::new();
    let (mut copied, mut cut) = (0u64, None::<u64>);
    loop {
        let path = format!("/v1/mesh/export?after={copied}&limit={MAX_BATCH}");
        let page = ExportPage::parse(&client.admin_bytes(&path).await?)
            .map_err(|e| Failed(format!("the export page after {copied} is malformed: {e}")))?;
        // The tip when the backup began is the cut: everything up to it, nothing after.
        let cut = *cut.get_or_insert(page.tip);
        bar.set_length(cut);
        let mut blocks = Vec::new();
        for (offset, block) in page.blocks.into_iter().filter(|(o, _)| *o <= cut) {
            if offset != copied + blocks.len() as u64 + 1 {
                return Err(Failed(format!(
                    "the export skipped from offset {} to {offset}; nothing usable was copied",
                    copied + blocks.len() as u64
                )));
            }
            check_link(&mut chains, &block)?;
            blocks.push(block);
        }
        if blocks.is_empty() {
            break;
        }
        // A CLI with nothing else to run: waiting here for the fsync is fine.
        let offsets = strand
            .append_blocking(blocks)
            .map_err(|e| Failed(format!("writing the copy failed: {e}")))?;
        copied = offsets.last().copied().unwrap_or(copied);
        bar.set_position(copied);
        if copied >= cut {
            break;
        }
    }
    bar.finish_and_clear();
    strand
        .checkpoint()
        .and_then(|()| strand.close())
        .map_err(|e| Failed(format!("closing the copy failed: {e}")))?;
    let manifest = json!({
        "source": status["nodes"][0].clone(),
        "taken_at_ms": crate::now_ms(),
        "tip": copied,
        "chains": chains.iter().map(|(a, (seq, _))| (a.to_string(), *seq)).collect::<BTreeMap<_, _>>(),
        "consistency": status["consistency"].clone(),
        "members": status["nodes"].clone(),
    });
    write_durably(&out.join("backup.json"), &manifest)?;
    Ok(Copied { manifest })
}

/// A block's hash is its body's, and it extends its author's chain by one.
fn check_link(
    chains: &mut BTreeMap<AgentId, (u64, Hash)>,
    block: &sapix_core::Block,
) -> Result<(), Failed> {
    let body = &block.body;
    if body.hash() != block.hash {
        return Err(Failed(format!(
            "block {}/{} does not hash to its hash: the source strand is damaged",
            body.author, body.seq
        )));
    }
    let (seq, prev) = chains.get(&body.author).copied().unwrap_or((0, Hash::ZERO));
    if body.seq != seq + 1 || body.prev != prev {
        return Err(Failed(format!(
            "block {}/{} does not follow {}/{seq} in the export",
            body.author, body.seq, body.author
        )));
    }
    chains.insert(body.author.clone(), (body.seq, block.hash));
    Ok(())
}

fn refuse_if_used(out: &Path) -> Result<(), Failed> {
    match std::fs::read_dir(out).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(Failed(format!(
            "{} is not empty: back up into a new directory",
            out.display()
        ))),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(out)
            .map_err(|e| Failed(format!("cannot create {}: {e}", out.display()))),
        Err(e) => Err(Failed(format!("cannot read {}: {e}", out.display()))),
    }
}

/// Writes `value` to `path` and fsyncs the file and its directory.
fn write_durably(path: &Path, value: &Value) -> Result<(), Failed> {
    let fail = |e: std::io::Error| Failed(format!("cannot write {}: {e}", path.display()));
    let mut f = std::fs::File::create(path).map_err(fail)?;
    f.write_all(format!("{value:#}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

fn progress(show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    let style = "{spinner} backing up [{bar:30}] {pos}/{len} blocks ({elapsed})";
    if let Ok(style) = indicatif::ProgressStyle::with_template(style) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
