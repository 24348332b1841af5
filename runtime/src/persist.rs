//! The node's small state files beside the strand, and the one task that writes them.
//!
//! `sync_cursors.json` holds each peer's pull cursor (spec: "The cursor is persisted in
//! sync_cursors.json"); `cluster.json` holds the peers, this node's role and the consistency
//! mode; `head.json` the last head the node signed of its own chain (issue 17). Writes go through one task in order, each atomic (temp, fsync, rename, dir fsync), so
//! an older state can never overwrite a newer one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sapix_core::ledger::wire::{HeadJson, HeadsJson};
use sapix_core::ledger::SignedHead;
use sapix_core::node::{CallId, ClusterState, Failure, Input, Reply};
use sapix_core::AgentId;
use tokio::sync::mpsc;

use crate::blocking::Blocking;
use crate::disk::Disk;
use crate::state_file;

/// File name of the pull cursors.
pub const CURSORS_FILE: &str = "sync_cursors.json";
/// File name of the cluster view.
pub const CLUSTER_FILE: &str = "cluster.json";
/// File name of the own chain's latest signed head.
pub const HEAD_FILE: &str = "head.json";
/// File name of the latest heads of other authors this node witnessed.
pub const WITNESSED_FILE: &str = "witnessed_heads.json";

/// Reads the persisted cluster view and cursors from `dir`.
pub fn load(
    disk: &dyn Disk,
    dir: &Path,
) -> io::Result<(Option<ClusterState>, BTreeMap<AgentId, u64>)> {
    let cluster = read(disk, &dir.join(CLUSTER_FILE), parse_cluster)?;
    let cursors = read(disk, &dir.join(CURSORS_FILE), parse_cursors)?.unwrap_or_default();
    Ok((cluster, cursors))
}

/// Reads the own head persisted in `dir`, if any.
pub fn load_head(disk: &dyn Disk, dir: &Path) -> io::Result<Option<SignedHead>> {
    read(disk, &dir.join(HEAD_FILE), parse_head)
}

/// Reads the heads of other authors persisted in `dir` (signatures not yet checked).
pub fn load_witnessed(disk: &dyn Disk, dir: &Path) -> io::Result<Vec<SignedHead>> {
    Ok(read(disk, &dir.join(WITNESSED_FILE), parse_witnessed)?.unwrap_or_default())
}

/// Parses the bytes of a `witnessed_heads.json` read from `path` (named in the error only).
pub fn parse_witnessed(bytes: &[u8], path: &Path) -> io::Result<Vec<SignedHead>> {
    let json: HeadsJson = state_file::parse_json(bytes, path)?;
    json.heads
        .iter()
        .map(|h| {
            SignedHead::try_from(h).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })
        })
        .collect()
}

/// Parses the bytes of a `head.json` read from `path` (named in the error only).
pub fn parse_head(bytes: &[u8], path: &Path) -> io::Result<SignedHead> {
    let json: HeadJson = state_file::parse_json(bytes, path)?;
    SignedHead::try_from(&json).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
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

/// One write to perform, and the call of the node's it completes (none for a head).
#[derive(Debug)]
pub struct Job {
    path: PathBuf,
    bytes: Vec<u8>,
    call: Option<CallId>,
}

impl Job {
    /// Persist the cursors, for the node's call `call`.
    pub fn cursors(dir: &Path, cursors: &[(AgentId, u64)], call: CallId) -> Self {
        let map: BTreeMap<&AgentId, u64> = cursors.iter().map(|(p, c)| (p, *c)).collect();
        Job::json(dir.join(CURSORS_FILE), &map, Some(call))
    }

    /// Persist the cluster view, for the node's call `call`.
    pub fn cluster(dir: &Path, state: &ClusterState, call: CallId) -> Self {
        Job::json(dir.join(CLUSTER_FILE), state, Some(call))
    }

    /// Persist the own chain's latest head; nothing is reported back (a failure is logged,
    /// and the next head replaces the file anyway).
    pub fn head(dir: &Path, head: &SignedHead) -> Self {
        Job::json(dir.join(HEAD_FILE), &HeadJson::from(head), None)
    }

    /// Persist the latest heads of other authors witnessed; nothing is reported back.
    pub fn witnessed(dir: &Path, heads: &[SignedHead]) -> Self {
        let json = HeadsJson {
            heads: heads.iter().map(HeadJson::from).collect(),
        };
        Job::json(dir.join(WITNESSED_FILE), &json, None)
    }

    fn json<T: serde::Serialize>(path: PathBuf, value: &T, call: Option<CallId>) -> Self {
        let mut bytes = serde_json::to_vec_pretty(value).expect("state serializes");
        bytes.push(b'\n');
        Job { path, bytes, call }
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
            let Job { path, bytes, call } = job;
            let (p, disk) = (path.clone(), disk.clone());
            let result = blocking
                .run(move || state_file::write_atomic(&*disk, &p, &bytes, 0o644))
                .await;
            // Never report a write done that is not; a failure is the node's to handle.
            let outcome = match result {
                Ok(Ok(())) => Ok(Reply::Stored),
                Ok(Err(e)) => Err(format!("{}: {e}", path.display())),
                Err(e) => Err(format!("{}: the writer task failed: {e}", path.display())),
            };
            let Some(call) = call else {
                if let Err(reason) = outcome {
                    tracing::warn!(%reason, "could not persist the latest signed head");
                }
                continue;
            };
            let outcome = outcome.map_err(Failure::LocalStorage);
            let _ = done.send(Input::CallEnded { call, outcome });
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::OsDisk;
    use sapix_core::{Consistency, Role};

    /// A cluster view with no peers.
    fn alone(role: Role, consistency: Consistency) -> ClusterState {
        ClusterState {
            role,
            consistency,
            peers: Vec::new(),
            me: None,
        }
    }

    #[test]
    fn state_files_load_what_the_writer_wrote_and_name_the_file_when_garbled() {
        let dir = tempfile::tempdir().unwrap();
        let state = alone(Role::Replica, Consistency::Ap);
        let alpha = AgentId::new("alpha").unwrap();
        for job in [
            Job::cluster(dir.path(), &state, CallId(1)),
            Job::cursors(dir.path(), &[(alpha.clone(), 9)], CallId(2)),
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

    /// A write that fails is reported to the node as failed, naming the file and the cause;
    /// the writer goes on, and the next write that can succeed is reported durable.
    #[tokio::test]
    async fn a_failed_write_is_an_input_for_the_node_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-yet");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let jobs = spawn(tx, Blocking::Inline, OsDisk::shared());
        let state = alone(Role::Primary, Consistency::Cp);
        let alpha = AgentId::new("alpha").unwrap();
        jobs.send(Job::cluster(&missing, &state, CallId(4)))
            .unwrap();
        jobs.send(Job::cursors(&missing, &[(alpha.clone(), 3)], CallId(5)))
            .unwrap();
        let failed = |input: Input, want: u64| match input {
            Input::CallEnded {
                call,
                outcome: Err(Failure::LocalStorage(reason)),
            } if call == CallId(want) => reason,
            other => panic!("want call {want} failed, got {other:?}"),
        };
        let reason = failed(rx.recv().await.unwrap(), 4);
        assert!(
            reason.contains("not-yet") && reason.contains(CLUSTER_FILE),
            "{reason}"
        );
        let reason = failed(rx.recv().await.unwrap(), 5);
        assert!(reason.contains(CURSORS_FILE), "{reason}");
        std::fs::create_dir(&missing).unwrap();
        jobs.send(Job::cluster(&missing, &state, CallId(6)))
            .unwrap();
        assert!(matches!(
            rx.recv().await.unwrap(),
            Input::CallEnded {
                call: CallId(6),
                outcome: Ok(Reply::Stored)
            }
        ));
        let (cluster, _) = load(&OsDisk, &missing).unwrap();
        assert_eq!(cluster, Some(state));
    }
}
