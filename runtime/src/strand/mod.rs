//! The durable strand: the node's local write-ahead log of blocks, in local commit order.
//!
//! Every stored block has an **offset**, a `u64` commit index from 1 (0 means "before
//! everything" and is the starting export cursor). A block is acknowledged only after it is
//! fsynced; concurrent appends share fsyncs (group commit, see [`Strand::append`]); readers only
//! ever see acknowledged blocks. After a crash at any byte, [`Strand::open`] keeps every
//! acknowledged block and cuts the torn tail, with a log line.
//!
//! # Files
//!
//! - `strand_dir/segment-{first_offset:020}.log`: frames, rolled once a segment would exceed
//!   [`StrandOptions::segment_bytes`] (a frame is never split; a lone frame may exceed it).
//!   A segment is fsynced before the next one is created, so only the last can be torn.
//! - `strand_dir/LOCK`: an exclusive `flock` held while the strand is open, so two processes
//!   never append to one strand.
//! - `blob_dir/ab/cdef…`: payloads over [`StrandOptions::blob_threshold`], named by the hex
//!   BLAKE3 of the payload bytes (plain, unkeyed), first two hex digits as a directory.
//! - `graph_dir/strand-index.v2`: a checkpoint of the indexes (layout in `checkpoint.rs`),
//!   written by [`Strand::checkpoint`] and on close; derived data, rebuilt if unusable.
//!
//! # Frame format (integers little endian)
//!
//! ```text
//! u32  body length (1 ..= 1 + MAX_BLOCK_LEN)
//! u32  crc32 (IEEE, crc32fast) of the body
//! body:
//!   u8 kind = 1   then the block's canonical encoding (Block::encode)
//!   u8 kind = 2   then [32] BLAKE3 of the payload
//!                      u32  payload length
//!                      the block's canonical encoding with an empty payload
//!                      (payload length field 0, no payload bytes; hash and sig unchanged)
//! ```
//!
//! A kind-2 frame is rebuilt into the full block on read; the blob's length and BLAKE3 are
//! checked, and a missing or damaged blob is [`StrandError::BlobMissing`] or
//! [`StrandError::BlobCorrupt`]. Blobs are written (temp, fsync, rename, directory fsync)
//! before the frame that names them, and an intact existing blob is never rewritten.
//!
//! The strand stores what it is given: checking hashes, signatures, chains and duplicates is
//! the core's job. When a hash or (author, seq) occurs twice, lookups return the lowest offset.

mod blobs;
mod checkpoint;
mod error;
mod frame;
mod fsio;
mod index;
mod recovery;
mod segment;
#[cfg(test)]
mod test_util;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;

use sapix_core::{AgentId, Block, Collection, Hash, Signature};

use crate::disk::{Disk, OsDisk};

pub use error::StrandError;
pub use index::{CollectionPage, EntryMeta};
pub use recovery::{CheckpointStatus, RecoveryReport, TornTail};
pub use writer::StrandStats;

use frame::FrameBody;
use index::Index;
use segment::SegmentFile;
use writer::{Counters, Request, Writer};

/// Parses index checkpoint bytes (`graph_dir/strand-index.v2`) as [`Strand::open`] does before
/// checking them against the segments: the last offset they cover, or why they are unusable.
/// Public so the parser of these untrusted disk bytes can be fuzzed on its own.
pub fn parse_checkpoint(bytes: &[u8]) -> Result<u64, String> {
    checkpoint::decode(bytes).map(|index| index.tip())
}

/// Default segment size at which a new segment file is started: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Default payload size above which a payload is stored as a blob: 16 KiB.
pub const DEFAULT_BLOB_THRESHOLD: usize = 16 << 10;

/// The callback an append completes with: the offsets assigned, or why nothing was stored.
pub type AppendDone = Box<dyn FnOnce(Result<Vec<u64>, StrandError>) + Send>;

/// Where the strand lives and how it lays out its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrandOptions {
    /// Directory of the segment files (`SAPIX_STRAND_DIR`).
    pub strand_dir: PathBuf,
    /// Directory of derived indexes (`SAPIX_GRAPH_DIR`).
    pub graph_dir: PathBuf,
    /// Directory of payload blobs (`SAPIX_BLOB_DIR`).
    pub blob_dir: PathBuf,
    /// Segment size at which appends move to a new segment file.
    pub segment_bytes: u64,
    /// Payloads longer than this many bytes are stored as blobs.
    pub blob_threshold: usize,
    /// Commit each append on the caller's thread instead of the group-commit writer thread:
    /// for deterministic simulation, where a real thread's timing would escape the seed.
    /// Appends are then durable when [`Strand::append`] returns, one fsync each.
    pub inline_writer: bool,
}

impl StrandOptions {
    /// Options with the default segment size and blob threshold.
    pub fn new(
        strand_dir: impl Into<PathBuf>,
        graph_dir: impl Into<PathBuf>,
        blob_dir: impl Into<PathBuf>,
    ) -> Self {
        StrandOptions {
            strand_dir: strand_dir.into(),
            graph_dir: graph_dir.into(),
            blob_dir: blob_dir.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            blob_threshold: DEFAULT_BLOB_THRESHOLD,
            inline_writer: false,
        }
    }
}

/// The strand's segment files, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Segment files.
    pub segments: u64,
    /// Their bytes on disk.
    pub bytes: u64,
}

/// State shared by the strand's readers and its writer thread.
pub(crate) struct Shared {
    /// The file system the strand lives on.
    disk: Arc<dyn Disk>,
    /// The indexes of durable frames.
    index: RwLock<Index>,
    /// Read handles of every segment, by first offset.
    segments: RwLock<BTreeMap<u64, Arc<SegmentFile>>>,
    /// Writer counters.
    stats: Counters,
    /// Set on the first failed write or fsync; never cleared.
    poisoned: AtomicBool,
}

impl Shared {
    fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }
}

// A panic elsewhere never leaves the index half-updated (pushes are whole), so a poisoned lock
// is still safe to use.
fn read_lock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Where appends are committed.
enum Committer {
    /// The group-commit writer thread, fed through a channel.
    Thread {
        tx: mpsc::Sender<Request>,
        handle: thread::JoinHandle<()>,
    },
    /// On the caller's thread ([`StrandOptions::inline_writer`]).
    Inline(Box<Mutex<Writer>>),
}

/// The durable, append-only block log of one node. Share it through an `Arc`.
pub struct Strand {
    shared: Arc<Shared>,
    opts: StrandOptions,
    committer: Option<Committer>,
    checkpoint_lock: Mutex<()>,
    // Released last, after the writer has stopped and the checkpoint is written.
    _dir_lock: fsio::DirLock,
}

impl std::fmt::Debug for Strand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strand")
            .field("strand_dir", &self.opts.strand_dir)
            .field("tip", &self.tip())
            .finish_non_exhaustive()
    }
}

impl Strand {
    /// Opens (or creates) the strand, recovering from any crash, and starts its writer thread.
    /// Fails with [`StrandError::Corrupt`] if acknowledged data is damaged, and with
    /// [`StrandError::Locked`] if the directory is already open.
    pub fn open(opts: StrandOptions) -> Result<(Strand, RecoveryReport), StrandError> {
        Strand::open_on(OsDisk::shared(), opts)
    }

    /// [`Strand::open`] on the file system `disk` (a simulated one in tests).
    pub fn open_on(
        disk: Arc<dyn Disk>,
        opts: StrandOptions,
    ) -> Result<(Strand, RecoveryReport), StrandError> {
        let rec = recovery::recover(&*disk, &opts)?;
        let mut segments = BTreeMap::new();
        for s in &rec.segments {
            segments.insert(
                s.first_offset,
                Arc::new(SegmentFile::open(&*disk, &s.path)?),
            );
        }
        let next_offset = rec.index.tip() + 1;
        let active = rec.segments[rec.segments.len() - 1].path.clone();
        let shared = Arc::new(Shared {
            disk,
            index: RwLock::new(rec.index),
            segments: RwLock::new(segments),
            stats: Counters::default(),
            poisoned: AtomicBool::new(false),
        });
        let writer = Writer::new(shared.clone(), &opts, active, rec.active_len, next_offset)?;
        let committer = if opts.inline_writer {
            Committer::Inline(Box::new(Mutex::new(writer)))
        } else {
            let (tx, rx) = mpsc::channel();
            let handle = writer
                .spawn(rx)
                .map_err(|e| StrandError::io("spawn writer for", &opts.strand_dir, e))?;
            Committer::Thread { tx, handle }
        };
        let strand = Strand {
            shared,
            opts,
            committer: Some(committer),
            checkpoint_lock: Mutex::new(()),
            _dir_lock: rec.lock,
        };
        Ok((strand, rec.report))
    }

    /// Queues `blocks` for appending and returns at once. `done` is called on the writer
    /// thread with their offsets (consecutive, in order) after they are fsynced, or with the
    /// error that kept them out; queued requests are answered in queue order. A request
    /// refused before queueing (a block that would not decode again:
    /// [`StrandError::InvalidBlock`]; or a poisoned strand) is answered at once on the
    /// caller's thread. `done` must be quick and must not wait on the strand.
    pub fn append(&self, blocks: Vec<Block>, done: AppendDone) {
        if self.shared.is_poisoned() {
            return done(Err(StrandError::Poisoned));
        }
        // Encoding here, on the caller's thread, keeps the writer's critical path to I/O.
        let mut frames = Vec::with_capacity(blocks.len());
        for (index, block) in blocks.iter().enumerate() {
            match frame::encode(block, self.opts.blob_threshold) {
                Ok(f) => frames.push(f),
                Err(source) => return done(Err(StrandError::InvalidBlock { index, source })),
            }
        }
        let request = Request {
            frames,
            done,
            resume: false,
        };
        match &self.committer {
            None => (request.done)(Err(StrandError::Closed)),
            Some(Committer::Inline(writer)) => writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .commit(vec![request]),
            Some(Committer::Thread { tx, .. }) => {
                if let Err(mpsc::SendError(req)) = tx.send(request) {
                    (req.done)(Err(StrandError::Closed));
                }
            }
        }
    }

    /// After a full disk ([`StrandError::Full`]) the strand refuses every append until this
    /// request, queued behind them, arrives: call it once the appends issued before are
    /// rolled back, and appends queued after it are written again.
    pub fn resume(&self) {
        let request = Request {
            frames: Vec::new(),
            done: Box::new(|_| {}),
            resume: true,
        };
        match &self.committer {
            None => {}
            Some(Committer::Inline(writer)) => writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .commit(vec![request]),
            Some(Committer::Thread { tx, .. }) => {
                let _ = tx.send(request);
            }
        }
    }

    /// Appends `blocks` and waits until they are durable; returns their offsets.
    pub fn append_blocking(&self, blocks: Vec<Block>) -> Result<Vec<u64>, StrandError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.append(
            blocks,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.recv().unwrap_or(Err(StrandError::Closed))
    }

    /// The block at `offset`, if durable.
    pub fn get(&self, offset: u64) -> Result<Option<Block>, StrandError> {
        let Some(entry) = read_lock(&self.shared.index).get(offset).copied() else {
            return Ok(None);
        };
        let segment = read_lock(&self.shared.segments)
            .range(..=offset)
            .next_back()
            .map(|(_, s)| s.clone());
        let Some(segment) = segment else {
            return Err(StrandError::corrupt(
                &self.opts.strand_dir,
                0,
                format!("no segment holds offset {offset}"),
            ));
        };
        let block = match segment.read_frame(entry.pos, entry.len)? {
            FrameBody::Full(block) => block,
            FrameBody::BlobRef {
                mut stub,
                payload_hash,
                payload_len,
            } => {
                stub.body.payload = blobs::read(
                    &*self.shared.disk,
                    &self.opts.blob_dir,
                    &payload_hash,
                    payload_len,
                )?;
                stub
            }
        };
        if block.hash != entry.hash {
            return Err(StrandError::corrupt(
                &segment.path,
                entry.pos,
                format!(
                    "offset {offset} holds {:?}, the index says {:?}",
                    block.hash, entry.hash
                ),
            ));
        }
        Ok(Some(block))
    }

    /// The block with `hash` and its offset.
    pub fn get_by_hash(&self, hash: &Hash) -> Result<Option<(u64, Block)>, StrandError> {
        self.get_at(self.offset_of_hash(hash))
    }

    /// The offset of the block with `hash`.
    pub fn offset_of_hash(&self, hash: &Hash) -> Option<u64> {
        read_lock(&self.shared.index).offset_of_hash(hash)
    }

    /// The signature of the durable block with `hash`, if held (None too if it cannot be
    /// read: the caller then checks the signature itself). Lets a block identical to one held
    /// skip its signature check ([`Block::into_verified_unless_held`]).
    pub fn signature_of(&self, hash: &Hash) -> Option<Signature> {
        let offset = self.offset_of_hash(hash)?;
        self.get(offset).ok().flatten().map(|b| b.sig)
    }

    /// A page of `collection`'s records after the per-author positions `after`, in commit
    /// order, at most `limit` ([`CollectionPage`] says where the next page starts), with the
    /// blocks read.
    pub fn collection_page(
        &self,
        collection: &Collection,
        after: &std::collections::BTreeMap<AgentId, u64>,
        limit: usize,
    ) -> Result<(Vec<(u64, Block)>, CollectionPage), StrandError> {
        let page = read_lock(&self.shared.index).collection_page(collection, after, limit);
        let mut blocks = Vec::with_capacity(page.offsets.len());
        for &offset in &page.offsets {
            if let Some(block) = self.get(offset)? {
                blocks.push((offset, block));
            }
        }
        Ok((blocks, page))
    }

    /// Every author's chain held here: its last seq and that block's hash, by author.
    pub fn chain_tips(&self) -> Vec<(AgentId, u64, Hash)> {
        let index = read_lock(&self.shared.index);
        let mut tips: Vec<(AgentId, u64, Hash)> = index
            .tips()
            .into_iter()
            .filter_map(|(a, seq, offset)| Some((a, seq, index.get(offset)?.hash)))
            .collect();
        tips.sort_by(|x, y| x.0.cmp(&y.0));
        tips
    }

    /// `author`'s block number `seq` and its offset.
    pub fn get_by_author_seq(
        &self,
        author: &AgentId,
        seq: u64,
    ) -> Result<Option<(u64, Block)>, StrandError> {
        let offset = read_lock(&self.shared.index).offset_of_author_seq(author, seq);
        self.get_at(offset)
    }

    fn get_at(&self, offset: Option<u64>) -> Result<Option<(u64, Block)>, StrandError> {
        let Some(offset) = offset else {
            return Ok(None);
        };
        Ok(self.get(offset)?.map(|b| (offset, b)))
    }

    /// A page of blocks with offsets after `after`, in order: at most `limit` blocks, and no
    /// more than `max_bytes` of encoded blocks in total, except that the first block is always
    /// included however large it is, so a page is never empty while blocks remain.
    pub fn export(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Block)>, StrandError> {
        let tip = self.tip();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut offset = after.saturating_add(1);
        while out.len() < limit && offset <= tip {
            let Some(block) = self.get(offset)? else {
                break;
            };
            let len = block.encoded_len();
            if !out.is_empty() && bytes.saturating_add(len) > max_bytes {
                break;
            }
            bytes += len;
            out.push((offset, block));
            offset += 1;
        }
        Ok(out)
    }

    /// The last durable offset; 0 when the strand is empty.
    pub fn tip(&self) -> u64 {
        read_lock(&self.shared.index).tip()
    }

    /// Offset, author, seq and hash of every durable block, in offset order.
    pub fn entries(&self) -> Vec<EntryMeta> {
        read_lock(&self.shared.index).metas()
    }

    /// What the writer has done since open.
    pub fn stats(&self) -> StrandStats {
        self.shared.stats.snapshot()
    }

    /// From now on, each group commit's size and fsync latency go to `metrics` (the first
    /// call wins).
    pub fn observe(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.shared.stats.metrics.set(metrics);
    }

    /// Its segment files now: how many, and their bytes (a segment that cannot be stat'ed
    /// counts 0; this is for monitoring).
    pub fn footprint(&self) -> Footprint {
        let segments = read_lock(&self.shared.segments);
        Footprint {
            segments: segments.len() as u64,
            bytes: segments.values().map(|s| s.size().unwrap_or(0)).sum(),
        }
    }

    /// The options the strand was opened with.
    pub fn options(&self) -> &StrandOptions {
        &self.opts
    }

    /// Writes the index checkpoint to the graph directory (atomically), so the next open
    /// scans only frames appended after this point.
    pub fn checkpoint(&self) -> Result<(), StrandError> {
        let _one_at_a_time = self
            .checkpoint_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let bytes = checkpoint::encode(&read_lock(&self.shared.index));
        checkpoint::store(&*self.shared.disk, &self.opts.graph_dir, &bytes)
    }

    /// Stops the writer after it has answered every queued append, then writes the checkpoint.
    /// Dropping the strand does the same but can only log a checkpoint failure.
    pub fn close(mut self) -> Result<(), StrandError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StrandError> {
        let handle = match self.committer.take() {
            None => return Ok(()),
            Some(Committer::Inline(_)) => return self.checkpoint(),
            Some(Committer::Thread { tx, handle }) => {
                drop(tx);
                handle
            }
        };
        // Dropped from inside an append callback: the writer exits on its own once the
        // channel is closed; joining here would deadlock.
        if handle.thread().id() != thread::current().id() && handle.join().is_err() {
            tracing::error!("strand writer thread panicked");
        }
        self.checkpoint()
    }
}

impl Drop for Strand {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "strand: could not write the index checkpoint at close");
        }
    }
}
