//! The node's small state files beside the strand, and the one task that writes them.
//!
//! `sync_cursors.json` holds each peer's pull cursor (spec: "The cursor is persisted in
//! sync_cursors.json"); `cluster.json` holds the peers, this node's role and the consistency
//! mode. Writes go through one task in order, each atomic (temp, fsync, rename, dir fsync), so
//! an older state can never overwrite a newer one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use sapix_core::node::{ClusterState, Input};
use sapix_core::AgentId;
use tokio::sync::mpsc;

use crate::blocking::Blocking;
use crate::state_file;

/// File name of the pull cursors.
pub const CURSORS_FILE: &str = "sync_cursors.json";
/// File name of the cluster view.
pub const CLUSTER_FILE: &str = "cluster.json";

/// Reads the persisted cluster view and cursors from `dir`.
pub fn load(dir: &Path) -> io::Result<(Option<ClusterState>, BTreeMap<AgentId, u64>)> {
    let cluster = state_file::read_json(&dir.join(CLUSTER_FILE))?;
    let cursors = state_file::read_json(&dir.join(CURSORS_FILE))?.unwrap_or_default();
    Ok((cluster, cursors))
}

/// One write to perform, and the input that reports it done.
#[derive(Debug)]
pub struct Job {
    path: PathBuf,
    bytes: Vec<u8>,
    done: Input,
}

impl Job {
    /// Persist the cursors, then report `done`.
    pub fn cursors(dir: &Path, cursors: &[(AgentId, u64)], done: Input) -> Self {
        let map: BTreeMap<&AgentId, u64> = cursors.iter().map(|(p, c)| (p, *c)).collect();
        Job::json(dir.join(CURSORS_FILE), &map, done)
    }

    /// Persist the cluster view, then report `done`.
    pub fn cluster(dir: &Path, state: &ClusterState, done: Input) -> Self {
        Job::json(dir.join(CLUSTER_FILE), state, done)
    }

    fn json<T: serde::Serialize>(path: PathBuf, value: &T, done: Input) -> Self {
        let mut bytes = serde_json::to_vec_pretty(value).expect("state serializes");
        bytes.push(b'\n');
        Job { path, bytes, done }
    }
}

/// Starts the writer task; completions are sent to `done`.
pub fn spawn(done: mpsc::UnboundedSender<Input>, blocking: Blocking) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let Job {
                path,
                bytes,
                done: input,
            } = job;
            let p = path.clone();
            let result = blocking
                .run(move || state_file::write_atomic(&p, &bytes, 0o644))
                .await;
            match result {
                Ok(Ok(())) => {
                    let _ = done.send(input);
                }
                // Never report a write done that is not: the answer waiting on it stays
                // pending, and the error is loud.
                Ok(Err(e)) => {
                    tracing::error!(path = %path.display(), error = %e, "state file write failed")
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "state file writer panicked")
                }
            }
        }
    });
    tx
}
