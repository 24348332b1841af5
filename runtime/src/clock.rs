//! The runtime's clocks: the only place the production agent reads time.
//!
//! The core takes time as a value; this module turns the process's monotonic and wall clocks
//! into those values. Simulators substitute their own [`Clock`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sapix_core::{Instant, UnixMillis};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since this clock's origin.
    fn now(&self) -> Instant;
    /// Wall-clock ms since the Unix epoch.
    fn wall(&self) -> UnixMillis;
    /// The tokio instant at which the core's `at` falls, for `sleep_until`.
    fn deadline(&self, at: Instant) -> tokio::time::Instant;
}

/// The real clocks, with the monotonic origin at construction.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    /// A clock whose [`Instant::ZERO`] is now.
    pub fn new() -> Self {
        SystemClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    fn wall(&self) -> UnixMillis {
        // A clock before 1970 is a broken host; 0 is an honest "unknown".
        UnixMillis(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        )
    }

    fn deadline(&self, at: Instant) -> tokio::time::Instant {
        self.origin + std::time::Duration::from_micros(at.as_micros())
    }
}

/// How far a simulated host's wall clock reads off true time, in ms. Shared by the host's
/// clocks and whoever steps it (an NTP step, an operator setting the date), and kept across
/// restarts of the host's software: the clock belongs to the host.
#[derive(Debug, Clone, Default)]
pub struct WallOffset(Arc<AtomicI64>);

impl WallOffset {
    /// An offset of `ms`.
    pub fn new(ms: i64) -> Self {
        WallOffset(Arc::new(AtomicI64::new(ms)))
    }

    /// Steps the wall clock by `by_ms` (negative: backwards), at once.
    pub fn step(&self, by_ms: i64) {
        self.0.fetch_add(by_ms, Ordering::Relaxed);
    }

    /// The current offset.
    pub fn ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A simulated host's clocks: monotonic time from tokio's clock (simulated under turmoil), and
/// a wall clock that starts at a given reading, is off by a [`WallOffset`] that may be stepped
/// at any time, and drifts at a fixed rate. Nodes of one cluster get different skews:
/// correctness must not depend on clocks agreeing, nor on wall time only moving forward
/// (DESIGN §6.8).
#[derive(Debug, Clone)]
pub struct SkewedClock {
    origin: tokio::time::Instant,
    wall_at_origin: UnixMillis,
    offset: WallOffset,
    drift_ppm: i64,
}

impl SkewedClock {
    /// A clock whose [`Instant::ZERO`] is now, when the true wall clock reads
    /// `wall_at_origin`; it reads `offset` off that, and gains `drift_ppm` millionths of
    /// each elapsed millisecond (negative: loses).
    pub fn new(wall_at_origin: UnixMillis, offset: WallOffset, drift_ppm: i64) -> Self {
        SkewedClock {
            origin: tokio::time::Instant::now(),
            wall_at_origin,
            offset,
            drift_ppm,
        }
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    fn wall(&self) -> UnixMillis {
        let elapsed = self.origin.elapsed().as_millis() as i64;
        let ms = self.wall_at_origin.0 as i64
            + elapsed
            + elapsed * self.drift_ppm / 1_000_000
            + self.offset.ms();
        UnixMillis(ms.max(0) as u64)
    }

    fn deadline(&self, at: Instant) -> tokio::time::Instant {
        self.origin + std::time::Duration::from_micros(at.as_micros())
    }
}
