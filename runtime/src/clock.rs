//! The runtime's clocks: the only place the production agent reads time.
//!
//! The core takes time as a value; this module turns the process's monotonic and wall clocks
//! into those values. Simulators substitute their own [`Clock`].

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

/// A simulated host's clocks: monotonic time from tokio's clock (simulated under turmoil), and
/// a wall clock that starts at a given reading, is off by a fixed offset and drifts at a fixed
/// rate. Nodes of one cluster get different skews: correctness must not depend on clocks
/// agreeing (DESIGN §6.8).
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock {
    origin: tokio::time::Instant,
    wall_at_origin: UnixMillis,
    offset_ms: i64,
    drift_ppm: i64,
}

impl SkewedClock {
    /// A clock whose [`Instant::ZERO`] is now, when the true wall clock reads
    /// `wall_at_origin`; it reads `offset_ms` off that, and gains `drift_ppm` millionths of
    /// each elapsed millisecond (negative: loses).
    pub fn new(wall_at_origin: UnixMillis, offset_ms: i64, drift_ppm: i64) -> Self {
        SkewedClock {
            origin: tokio::time::Instant::now(),
            wall_at_origin,
            offset_ms,
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
            + self.offset_ms;
        UnixMillis(ms.max(0) as u64)
    }

    fn deadline(&self, at: Instant) -> tokio::time::Instant {
        self.origin + std::time::Duration::from_micros(at.as_micros())
    }
}
