//! Bugs planted on purpose so the simulator can prove it finds them (feature `sim` only).
//!
//! Each variant re-creates one classic replication mistake at one place in the node. Without
//! the feature [`Bugs::has`] is a constant `false`, so the agent compiles to exactly the code
//! it would have without this module.
#![cfg_attr(not(feature = "sim"), allow(unreachable_pub, dead_code))]

/// A deliberate mistake the simulator's "it bites" tests switch on with `Node::plant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlantedBug {
    /// CP: acknowledge a write once it is durable locally, before any peer holds it.
    CpAckBeforePeers,
    /// Ingest: answer a peer's push before the blocks are durable here.
    IngestAckBeforeDurable,
    /// Push an own block as soon as it is handed to the strand, before it is durable.
    PushBeforeDurable,
    /// Pull: persist the cursor past a page before the page is durable.
    CursorBeforeDurable,
    /// Forget a dropped push: count the blocks of a failed push as delivered.
    FailedPushCountsAsDelivered,
    /// Auth: when Codios fails, serve a permit this key once had even though Codios has
    /// denied it since (the deny is overridden by an older, stale permit).
    StalePermitPastDeny,
    /// Retry queue: on overflow, drop the oldest queued blocks (counted as delivered) instead
    /// of holding positions in the strand. The cap is 8 blocks so the simulator reaches it.
    QueueOverflowDrops,
    /// Read-your-writes: answer a read's positions as reached once the blocks are in the
    /// chains, before they are durable here.
    PositionBeforeDurable,
}

/// The queue cap of [`PlantedBug::QueueOverflowDrops`].
pub const PLANTED_QUEUE_CAP: u64 = 8;

/// The planted bugs of one node; empty (and zero-sized) unless the `sim` feature is on.
#[derive(Debug, Default)]
pub(crate) struct Bugs {
    #[cfg(feature = "sim")]
    pub(crate) on: Vec<PlantedBug>,
}

impl Bugs {
    /// Whether `bug` is planted.
    #[inline]
    pub(crate) fn has(&self, bug: PlantedBug) -> bool {
        #[cfg(feature = "sim")]
        return self.on.contains(&bug);
        #[cfg(not(feature = "sim"))]
        {
            let _ = bug;
            false
        }
    }
}
