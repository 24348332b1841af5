//! Time as a value. The core never reads a clock: the shell passes `now` in.
//!
//! Two kinds of time, never mixed: [`Instant`] is monotonic and local to one process (timers,
//! TTLs, backoff), [`UnixMillis`] is a wall-clock fact that is written into blocks and status.
//! Correctness never depends on wall clocks agreeing across nodes (DESIGN §6.8).

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A monotonic point in time: microseconds since an arbitrary, per-process origin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The origin of this clock.
    pub const ZERO: Instant = Instant(0);

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(d.as_micros().min(u64::MAX as u128) as u64),
        )
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_sub(d.as_micros().min(u64::MAX as u128) as u64),
        )
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Milliseconds with three decimals read best in snapshot traces.
        write!(f, "t={}.{:03}ms", self.0 / 1000, self.0 % 1000)
    }
}

/// Wall-clock milliseconds since the Unix epoch, as reported by some node's clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct UnixMillis(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Instant::from_millis(5);
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(
            Instant::from_micros(u64::MAX) + Duration::from_secs(1),
            Instant::from_micros(u64::MAX)
        );
        assert_eq!(
            Instant::from_millis(7).saturating_since(t),
            Duration::from_millis(2)
        );
        assert_eq!(t.saturating_since(Instant::from_millis(7)), Duration::ZERO);
    }
}
