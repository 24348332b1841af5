//! The group-commit writer: one thread that owns the active segment.
//!
//! Invariant: a request's `done` is called with `Ok` only after every frame it contains (and
//! every blob they reference) has been fsynced, and only after the index shows them, so a
//! caller that is told "durable" can read its blocks back at once. Requests are answered in the
//! order they were queued. The first failed write or fsync poisons the strand for good: after a
//! failed fsync the kernel may have dropped the dirty pages, so retrying could acknowledge data
//! that is not on disk (the "fsyncgate" lesson). Frames of a failed batch may or may not be on
//! disk; if they are, the next open finds them, like any write whose answer was lost.
//!
//! One failure is not for good: a full disk met while writing a batch's frames (before its
//! fsync, within one segment). The segment is cut back to where the batch began and that cut
//! made durable, so none of the batch can surface later; the batch is answered
//! [`StrandError::Full`], and so is every append queued after it until a resume request
//! ([`super::Strand::resume`]) arrives: the node issued those before it heard of the failure,
//! on chains that assumed the failed blocks, so none of them may land.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;

use sapix_core::{AgentId, Collection, Hash};

use super::blobs::BlobWriter;
use super::error::{IoContext, StrandError};
use super::frame::EncodedFrame;
use super::fsio::sync_dir;
use super::segment::{self, SegmentFile};
use super::{write_lock, AppendDone, Shared, StrandOptions};
use crate::disk::{DiskFile, OpenHow};

/// Pending frame bytes are flushed to the file once they reach this size, bounding the copy a
/// large batch holds.
const FLUSH_BYTES: usize = 8 << 20;

/// One queued append.
pub(crate) struct Request {
    /// The encoded blocks, in order.
    pub(crate) frames: Vec<EncodedFrame>,
    /// Called once with the outcome.
    pub(crate) done: AppendDone,
    /// A resume request (no frames): appends queued after it are taken again after a full
    /// disk.
    pub(crate) resume: bool,
}

/// Counters of what the writer has done since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrandStats {
    /// Blocks acknowledged as durable.
    pub appended_blocks: u64,
    /// Append requests acknowledged as durable (each may hold many blocks).
    pub append_requests: u64,
    /// Group commits that wrote at least one block.
    pub batches: u64,
    /// `fdatasync`s of segment files: one per batch, plus one when a batch rolls a segment.
    pub fsyncs: u64,
    /// `fsync`s of the strand directory, made when a batch created a segment.
    pub dir_fsyncs: u64,
    /// Blob files written (a payload already stored is not rewritten).
    pub blobs_written: u64,
    /// fsyncs of blob files and blob directories.
    pub blob_fsyncs: u64,
    /// Frame bytes written to segments.
    pub bytes_written: u64,
    /// Segment files created after open.
    pub segments_created: u64,
}

/// The counters behind [`StrandStats`], updated by the writer and read by anyone.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    appended_blocks: AtomicU64,
    append_requests: AtomicU64,
    batches: AtomicU64,
    fsyncs: AtomicU64,
    dir_fsyncs: AtomicU64,
    blobs_written: AtomicU64,
    blob_fsyncs: AtomicU64,
    bytes_written: AtomicU64,
    segments_created: AtomicU64,
    /// Where group-commit sizes and fsync latencies go, once the node's metrics exist.
    pub(crate) metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl Counters {
    /// A consistent-enough copy for monitoring and tests.
    pub(crate) fn snapshot(&self) -> StrandStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StrandStats {
            appended_blocks: get(&self.appended_blocks),
            append_requests: get(&self.append_requests),
            batches: get(&self.batches),
            fsyncs: get(&self.fsyncs),
            dir_fsyncs: get(&self.dir_fsyncs),
            blobs_written: get(&self.blobs_written),
            blob_fsyncs: get(&self.blob_fsyncs),
            bytes_written: get(&self.bytes_written),
            segments_created: get(&self.segments_created),
        }
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The segment appends go to.
struct Active {
    path: PathBuf,
    file: Box<dyn DiskFile>,
    /// Bytes in the file, not counting the batch buffer.
    len: u64,
}

/// A frame written in the current batch, published to the index after the fsync.
struct Written {
    pos: u64,
    len: u32,
    author: AgentId,
    seq: u64,
    hash: Hash,
    collection: Collection,
}

/// The writer thread's state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    strand_dir: PathBuf,
    segment_bytes: u64,
    active: Active,
    next_offset: u64,
    blobs: BlobWriter,
    /// A batch met a full disk: refuse appends until a resume request.
    refusing: Option<String>,
}

impl Writer {
    /// A writer appending to `active_path` (currently `active_len` bytes) from `next_offset`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        opts: &StrandOptions,
        active_path: PathBuf,
        active_len: u64,
        next_offset: u64,
    ) -> Result<Self, StrandError> {
        let file = shared
            .disk
            .open(&active_path, OpenHow::Append)
            .ctx("open for append", &active_path)?;
        let blobs = BlobWriter::new(shared.disk.clone(), &opts.blob_dir);
        Ok(Writer {
            shared,
            strand_dir: opts.strand_dir.clone(),
            segment_bytes: opts.segment_bytes,
            active: Active {
                path: active_path,
                file,
                len: active_len,
            },
            next_offset,
            blobs,
            refusing: None,
        })
    }

    /// Starts the thread; it runs until every sender of `rx` is dropped and the queue is empty.
    pub(crate) fn spawn(self, rx: Receiver<Request>) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("strand-writer".into())
            .spawn(move || self.run(rx))
    }

    fn run(mut self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            // Everything queued while the previous fsync ran shares the next one.
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            self.commit(batch);
        }
    }

    pub(crate) fn commit(&mut self, batch: Vec<Request>) {
        let batch = self.admit(batch);
        if batch.is_empty() {
            return;
        }
        if self.shared.is_poisoned() {
            for req in batch {
                answer(req.done, Err(StrandError::Poisoned));
            }
            return;
        }
        let before = (self.active.len, self.next_offset, self.active.path.clone());
        let written = match self.write_batch(&batch) {
            Ok(w) => w,
            Err(e) if e.is_out_of_space_writing() && self.active.path == before.2 => {
                let reason = e.to_string();
                if let Err(undo) = self.cut_back(before.0, before.1) {
                    self.shared.poison();
                    tracing::error!(error = %undo, "cutting a full batch back failed; refusing all further appends");
                    for req in batch {
                        answer(req.done, Err(undo.duplicate()));
                    }
                    return;
                }
                // The node logs the full disk once; the writer only at debug, per batch.
                tracing::debug!(error = %reason, "disk full: batch refused, nothing stored");
                for req in batch {
                    answer(
                        req.done,
                        Err(StrandError::Full {
                            reason: reason.clone(),
                        }),
                    );
                }
                self.refusing = Some(reason);
                return;
            }
            Err(e) => {
                self.shared.poison();
                tracing::error!(error = %e, "strand write failed; refusing all further appends");
                for req in batch {
                    answer(req.done, Err(e.duplicate()));
                }
                return;
            }
        };
        let first = {
            let mut index = write_lock(&self.shared.index);
            let first = index.tip() + 1;
            for w in &written {
                index.push(w.pos, w.len, (&w.author, w.seq, w.hash), &w.collection);
            }
            first
        };
        let stats = &self.shared.stats;
        if !written.is_empty() {
            bump(&stats.batches, 1);
        }
        bump(&stats.appended_blocks, written.len() as u64);
        bump(&stats.append_requests, batch.len() as u64);
        let mut next = first;
        for req in batch {
            let n = req.frames.len() as u64;
            answer(req.done, Ok((next..next + n).collect()));
            next += n;
        }
    }

    /// Drops what must not be written: after a full disk, every append before the next resume
    /// request is refused (the node rolled them back); resume requests themselves write
    /// nothing.
    fn admit(&mut self, batch: Vec<Request>) -> Vec<Request> {
        let mut admitted = Vec::with_capacity(batch.len());
        for req in batch {
            if req.resume {
                self.refusing = None;
                answer(req.done, Ok(Vec::new()));
            } else if let Some(reason) = &self.refusing {
                let reason = reason.clone();
                answer(req.done, Err(StrandError::Full { reason }));
            } else {
                admitted.push(req);
            }
        }
        admitted
    }

    /// Cuts the active segment back to `len` bytes (where a failed batch began) and makes
    /// the cut durable, so no frame of the batch can be found by the next open.
    fn cut_back(&mut self, len: u64, next_offset: u64) -> Result<(), StrandError> {
        let path = self.active.path.clone();
        self.active.file.set_len(len).ctx("truncate", &path)?;
        self.active.file.sync_data().ctx("fdatasync", &path)?;
        self.active.len = len;
        self.next_offset = next_offset;
        Ok(())
    }

    /// Writes every frame of the batch and makes it durable; returns what to index.
    fn write_batch(&mut self, batch: &[Request]) -> Result<Vec<Written>, StrandError> {
        let shared = Arc::clone(&self.shared);
        let stats = &shared.stats;
        let mut buf = Vec::new();
        let mut written = Vec::new();
        let mut created_segment = false;
        for frame in batch.iter().flat_map(|r| &r.frames) {
            // The blob must be durable before the frame naming it can be.
            if let Some(blob) = &frame.blob {
                let cost = self.blobs.put(&blob.hash, &blob.bytes)?;
                bump(&stats.blob_fsyncs, cost.fsyncs);
                bump(&stats.blobs_written, u64::from(cost.written));
            }
            let used = self.active.len + buf.len() as u64;
            if used > 0 && used + frame.bytes.len() as u64 > self.segment_bytes {
                self.roll(&mut buf)?;
                created_segment = true;
            }
            written.push(Written {
                pos: self.active.len + buf.len() as u64,
                len: frame.body_len(),
                author: frame.author.clone(),
                seq: frame.seq,
                hash: frame.hash,
                collection: frame.collection.clone(),
            });
            self.next_offset += 1;
            buf.extend_from_slice(&frame.bytes);
            if buf.len() >= FLUSH_BYTES {
                self.flush(&mut buf)?;
            }
        }
        if !written.is_empty() {
            self.flush(&mut buf)?;
            let started = std::time::Instant::now();
            self.sync_active()?;
            if let Some(m) = stats.metrics.get() {
                m.commit(written.len(), started.elapsed());
            }
        }
        if created_segment {
            sync_dir(&*shared.disk, &self.strand_dir)?;
            bump(&stats.dir_fsyncs, 1);
        }
        Ok(written)
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> Result<(), StrandError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.active
            .file
            .write_all(buf)
            .ctx("write", &self.active.path)?;
        self.active.len += buf.len() as u64;
        bump(&self.shared.stats.bytes_written, buf.len() as u64);
        buf.clear();
        Ok(())
    }

    fn sync_active(&mut self) -> Result<(), StrandError> {
        self.active
            .file
            .sync_data()
            .ctx("fdatasync", &self.active.path)?;
        bump(&self.shared.stats.fsyncs, 1);
        Ok(())
    }

    /// Closes the active segment and starts the one for `next_offset`. The old segment is made
    /// durable first, so only the last segment can ever hold a torn tail.
    fn roll(&mut self, buf: &mut Vec<u8>) -> Result<(), StrandError> {
        self.flush(buf)?;
        self.sync_active()?;
        let path = self.strand_dir.join(segment::file_name(self.next_offset));
        let disk = &*self.shared.disk;
        let file = disk
            .open(&path, OpenHow::CreateNewAppend)
            .ctx("create", &path)?;
        let reader = Arc::new(SegmentFile::open(disk, &path)?);
        write_lock(&self.shared.segments).insert(self.next_offset, reader);
        self.active = Active { path, file, len: 0 };
        bump(&self.shared.stats.segments_created, 1);
        Ok(())
    }
}

/// Calls `done`, keeping the writer alive if the callback panics.
fn answer(done: AppendDone, result: Result<Vec<u64>, StrandError>) {
    if catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
        tracing::error!("a strand append callback panicked");
    }
}
