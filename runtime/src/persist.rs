//! The node's small state files beside the strand, and the one task that writes them.
//!
//! `sync_cursors.json` holds each peer's pull cursor (spec: "The cursor is persisted in
//! sync_cursors.json"); `cluster.json` holds the peers, this node's role and the consistency
//! mode. Writes go through one task in order, each atomic (temp, fsync, rename, dir fsync), so
//! an older state can never overwrite a newer one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sapix_core::node::{ClusterState, Input};
use sapix_core::AgentId;
use tokio::sync::mpsc;

use crate::blocking::Blocking;
use crate::disk::Disk;
use crate::state_file;

/// File name of the pull cursors.
pub const CURSORS_FILE: &str = "sync_cursors.json";
/// File name of the cluster view.
pub const CLUSTER_FILE: &str = "cluster.json";

/// Reads the persisted cluster view and cursors from `dir`.
pub fn load(
    disk: &dyn Disk,
    dir: &Path,
) -> io::Result<(Option<ClusterState>, BTreeMap<AgentId, u64>)> {
    let cluster = read(disk, &dir.join(CLUSTER_FILE), parse_cluster)?;
    let cursors = read(disk, &dir.join(CURSORS_FILE), parse_cursors)?.unwrap_or_default();
    Ok((cluster, cursors))
}

/// Parses the bytes of a `cluster.json` read from `path` (named in the error only).
pub fn parse_cluster(bytes: &[u8], path: &Path) -> io::Result<ClusterState> {
    state_file::parse_json(bytes, path)
}

/// Parses the bytes of a `sync_cursors.json` read from `path` (named in the error only).
pub fn parse_cursors(bytes: &[u8], path: &Path) -> io::Result<BTreeMap<AgentId, u64>> {
    state_file::parse_json(bytes, path)
}

fn read<T>(
    disk: &dyn Disk,
    path: &Path,
    parse: fn(&[u8], &Path) -> io::Result<T>,
) -> io::Result<Option<T>> {
    state_file::read_bounded(disk, path)?
        .map(|bytes| parse(&bytes, path))
        .transpose()
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
pub fn spawn(
    done: mpsc::UnboundedSender<Input>,
    blocking: Blocking,
    disk: Arc<dyn Disk>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let Job {
                path,
                bytes,
                done: input,
            } = job;
            let (p, disk) = (path.clone(), disk.clone());
            let result = blocking
                .run(move || state_file::write_atomic(&*disk, &p, &bytes, 0o644))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::OsDisk;
    use sapix_core::{Consistency, Role};

    #[test]
    fn state_files_load_what_the_writer_wrote_and_name_the_file_when_garbled() {
        let dir = tempfile::tempdir().unwrap();
        let state = ClusterState {
            role: Role::Replica,
            consistency: Consistency::Ap,
            peers: Vec::new(),
            me: None,
        };
        let alpha = AgentId::new("alpha").unwrap();
        for job in [
            Job::cluster(dir.path(), &state, Input::ClusterPersisted { version: 1 }),
            Job::cursors(
                dir.path(),
                &[(alpha.clone(), 9)],
                Input::ClusterPersisted { version: 2 },
            ),
        ] {
            state_file::write_atomic(&OsDisk, &job.path, &job.bytes, 0o644).unwrap();
        }
        let (cluster, cursors) = load(&OsDisk, dir.path()).unwrap();
        assert_eq!(cluster, Some(state));
        assert_eq!(cursors, BTreeMap::from([(alpha, 9)]));

        let err = parse_cursors(b"{\"alpha\": -1}", Path::new(CURSORS_FILE)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().starts_with(CURSORS_FILE), "{err}");
        assert!(parse_cluster(b"[]", Path::new(CLUSTER_FILE)).is_err());
    }
}
