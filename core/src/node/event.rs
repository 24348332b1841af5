//! What goes into a [`Node`](super::Node) and what comes out of it.
//!
//! Inputs are facts, named in the past tense; outputs are commands, in the imperative. Every
//! output the shell completes carries an id that comes back in the matching input: an
//! [`AppendToken`] in [`Input::Appended`], a [`RequestId`] is answered by [`Output::Respond`].

use crate::block::{Block, Hash, Verified};
use crate::chain::Position;
use crate::id::{AgentId, Collection};
use crate::status::ClusterStatus;
use crate::time::UnixMillis;

/// Identifies one client or peer request; chosen by the shell, echoed in [`Output::Respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies one [`Output::Append`]; echoed in [`Input::Appended`]. Issued in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppendToken(pub u64);

/// A fact the node learns.
#[derive(Debug)]
pub enum Input {
    /// A client asked to write a record. `wall` is the shell's wall clock, stamped into the
    /// block for information only.
    WriteRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The record's collection.
        collection: Collection,
        /// The record's JSON bytes, already checked by [`crate::block::check_payload`].
        payload: Vec<u8>,
        /// The shell's wall clock now.
        wall: UnixMillis,
    },
    /// A peer pushed blocks (already verified: see [`Verified`]).
    IngestRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The blocks, in the order sent.
        blocks: Vec<Verified>,
    },
    /// An [`Output::Append`] is durable; `offsets` are the local offsets of its blocks.
    Appended {
        /// The append's token.
        token: AppendToken,
        /// One offset per block, in order.
        offsets: Vec<u64>,
    },
    /// An [`Output::Append`] failed. Storage is now unusable: the node refuses all writes.
    AppendFailed {
        /// The append's token.
        token: AppendToken,
        /// What the storage said, for the log.
        reason: String,
    },
    /// Someone asked for the cluster status.
    StatusRequested {
        /// Echoed in the answer.
        request: RequestId,
    },
}

/// A command for the shell.
#[derive(Debug)]
pub enum Output {
    /// Append these blocks to the strand durably (fsync), then report [`Input::Appended`].
    /// Appends must complete in token order.
    Append {
        /// Echo in [`Input::Appended`].
        token: AppendToken,
        /// Verified blocks, in order.
        blocks: Vec<Block>,
    },
    /// Answer a request.
    Respond {
        /// The request.
        request: RequestId,
        /// The answer.
        response: Response,
    },
    /// Something an operator should see in the log.
    Log(Event),
}

/// The node's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The record is durable.
    Written {
        /// The block hash.
        hash: Hash,
        /// This node.
        author: AgentId,
        /// The block's seq in this node's chain.
        seq: u64,
        /// The block's local offset.
        offset: u64,
    },
    /// The blocks are durable here (or were already).
    Ingested {
        /// Blocks newly stored.
        accepted: u64,
        /// Blocks already held.
        duplicates: u64,
    },
    /// The batch was refused whole because of the block at `index`; nothing was stored.
    IngestRefused {
        /// Index of the offending block in the batch.
        index: usize,
        /// Its author.
        author: AgentId,
        /// Its seq.
        seq: u64,
        /// Where it stood.
        position: Position,
    },
    /// The current status.
    Status(ClusterStatus),
    /// Local storage failed; nothing more can be written.
    StorageFailed,
}

/// A log-worthy event. The shell chooses the level and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An author signed two different blocks at one position. Alert.
    Equivocation {
        /// The author.
        author: AgentId,
        /// The position.
        seq: u64,
        /// The block held.
        held: Hash,
        /// The other block, refused.
        refused: Hash,
    },
    /// Storage failed; the node has stopped accepting writes.
    StorageFailed {
        /// What the storage said.
        reason: String,
    },
}
