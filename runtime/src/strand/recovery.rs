//! Opening a strand: find the segments, reuse or rebuild the index, cut a torn tail.
//!
//! Invariant: after recovery, the segments hold exactly the frames `1..=tip`, each complete and
//! valid, and the index describes them. Only the last segment may lose bytes, and only from its
//! first invalid frame on: that is where a crash mid-append leaves a torn tail, and nothing
//! there was acknowledged (acknowledgement waits for fsync). Bad bytes in any earlier segment
//! mean acknowledged data is damaged, so opening fails instead of silently dropping it.
//! Valid frames after a bad one in the last segment are dropped too: page writeback is not
//! ordered, so a crash can persist a later page of an unsynced batch without an earlier one.

use std::path::PathBuf;

use super::checkpoint::{self, Loaded};
use super::error::{IoContext, StrandError};
use super::fsio::{ensure_dir, lock_dir, sync_dir, DirLock};
use super::index::Index;
use super::segment::{self, Scanned, Scanner, SegmentInfo};
use super::StrandOptions;
use crate::disk::{Disk, OpenHow};

/// What [`Strand::open`](super::Strand::open) found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The last durable offset after recovery (0 for an empty strand).
    pub tip: u64,
    /// How many segment files the strand has.
    pub segments: usize,
    /// Whether the index checkpoint was used.
    pub checkpoint: CheckpointStatus,
    /// Frames read from the segments (all of them unless a checkpoint covered a prefix).
    pub scanned_frames: u64,
    /// The torn or corrupt tail that was cut off the last segment, if any.
    pub truncated: Option<TornTail>,
}

/// What became of the index checkpoint at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointStatus {
    /// It was valid and covered offsets `1..=covered`; only later frames were scanned.
    Loaded {
        /// The last offset it covered.
        covered: u64,
    },
    /// There was none; the index was rebuilt by a full scan.
    Missing,
    /// It was unusable; the index was rebuilt by a full scan.
    Rejected {
        /// Why it was unusable.
        why: String,
    },
}

impl std::fmt::Display for CheckpointStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointStatus::Loaded { covered } => write!(f, "loaded (covered 1..={covered})"),
            CheckpointStatus::Missing => write!(f, "missing (index rebuilt by a full scan)"),
            CheckpointStatus::Rejected { why } => {
                write!(f, "rejected: {why} (index rebuilt by a full scan)")
            }
        }
    }
}

/// A tail cut off the last segment at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub file: PathBuf,
    /// The byte position the file was truncated to.
    pub pos: u64,
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
    /// The strand offset the first dropped frame would have had.
    pub at_offset: u64,
    /// What was wrong with the first dropped frame.
    pub why: String,
}

/// The recovered state the strand starts from.
pub(crate) struct Recovered {
    /// The strand directory lock, taken before anything was read or cut.
    pub(crate) lock: DirLock,
    /// The index of frames `1..=tip`.
    pub(crate) index: Index,
    /// Every segment, in offset order; never empty.
    pub(crate) segments: Vec<SegmentInfo>,
    /// The length of the last segment, where appends continue.
    pub(crate) active_len: u64,
    /// What happened.
    pub(crate) report: RecoveryReport,
}

/// Recovers the strand described by `opts`, creating directories and the first segment if
/// missing.
pub(crate) fn recover(disk: &dyn Disk, opts: &StrandOptions) -> Result<Recovered, StrandError> {
    for dir in [&opts.strand_dir, &opts.graph_dir, &opts.blob_dir] {
        ensure_dir(disk, dir)?;
    }
    let lock = lock_dir(disk, &opts.strand_dir)?;
    let mut segments = segment::list(disk, &opts.strand_dir)?;
    let loaded = checkpoint::load(disk, &opts.graph_dir);
    let (mut index, start_seg, start_pos, checkpoint) = match loaded {
        Loaded::Missing => (Index::default(), 0, 0, CheckpointStatus::Missing),
        Loaded::Invalid(why) => (Index::default(), 0, 0, CheckpointStatus::Rejected { why }),
        Loaded::Index(loaded) => match checkpoint::resume_point(disk, &loaded, &segments) {
            Ok((seg, pos)) => {
                let covered = loaded.tip();
                (*loaded, seg, pos, CheckpointStatus::Loaded { covered })
            }
            Err(why) => (Index::default(), 0, 0, CheckpointStatus::Rejected { why }),
        },
    };
    match &checkpoint {
        CheckpointStatus::Rejected { why } => tracing::warn!(
            checkpoint = %checkpoint::path(&opts.graph_dir).display(),
            %why,
            "strand index checkpoint unusable; rebuilding the index by a full scan"
        ),
        CheckpointStatus::Missing if !segments.is_empty() => tracing::warn!(
            checkpoint = %checkpoint::path(&opts.graph_dir).display(),
            "no strand index checkpoint; rebuilding the index by a full scan"
        ),
        _ => {}
    }

    let mut scanned_frames = 0;
    let mut truncated = None;
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate().skip(start_seg) {
        let pos = if i == start_seg { start_pos } else { 0 };
        if pos == 0 && seg.first_offset != index.tip() + 1 {
            return Err(StrandError::corrupt(
                &seg.path,
                0,
                format!(
                    "segment starts at offset {} but the strand before it ends at offset {}",
                    seg.first_offset,
                    index.tip()
                ),
            ));
        }
        let mut scanner = Scanner::new(disk, &seg.path, pos)?;
        loop {
            match scanner.next_frame()? {
                Scanned::Frame(f) => {
                    index.push(f.pos, f.len, (&f.author, f.seq, f.hash), &f.collection);
                    scanned_frames += 1;
                }
                Scanned::End => break,
                Scanned::Bad { pos, err } if i == last => {
                    let torn = truncate_tail(disk, seg, pos, index.tip() + 1, err.to_string())?;
                    truncated = Some(torn);
                    break;
                }
                Scanned::Bad { pos, err } => {
                    return Err(StrandError::corrupt(
                        &seg.path,
                        pos,
                        format!("{err} (not the last segment, so this is not a torn tail)"),
                    ));
                }
            }
        }
    }

    if segments.is_empty() {
        let path = opts.strand_dir.join(segment::file_name(1));
        disk.open(&path, OpenHow::CreateNewAppend)
            .ctx("create", &path)?;
        sync_dir(disk, &opts.strand_dir)?;
        segments.push(SegmentInfo {
            first_offset: 1,
            path,
        });
    }
    let active = &segments[segments.len() - 1];
    let active_len = disk.size(&active.path).ctx("stat", &active.path)?;
    let report = RecoveryReport {
        tip: index.tip(),
        segments: segments.len(),
        checkpoint,
        scanned_frames,
        truncated,
    };
    Ok(Recovered {
        lock,
        index,
        segments,
        active_len,
        report,
    })
}

/// Cuts the last segment at `pos`, durably, and logs what was lost.
fn truncate_tail(
    disk: &dyn Disk,
    seg: &SegmentInfo,
    pos: u64,
    at_offset: u64,
    why: String,
) -> Result<TornTail, StrandError> {
    let file = disk
        .open(&seg.path, OpenHow::ReadWrite)
        .ctx("open for truncation", &seg.path)?;
    let len = file.size().ctx("stat", &seg.path)?;
    file.set_len(pos).ctx("truncate", &seg.path)?;
    // The new length is metadata: sync_all, not sync_data, so the cut itself is durable.
    file.sync_all().ctx("fsync", &seg.path)?;
    let dropped_bytes = len.saturating_sub(pos);
    tracing::warn!(
        file = %seg.path.display(),
        pos,
        dropped_bytes,
        at_offset,
        %why,
        "strand: dropped a torn tail of {dropped_bytes} bytes at byte {pos} (offset {at_offset})"
    );
    Ok(TornTail {
        file: seg.path.clone(),
        pos,
        dropped_bytes,
        at_offset,
        why,
    })
}
