//! Each node's own clocks, derived from the one simulated time.
//!
//! A node never sees simulated time: its monotonic [`Instant`] starts at an origin chosen at
//! each boot (a new process) and runs at its own drifting rate, and its wall clock carries its
//! own offset, the same drift, and occasional NTP steps. Timers the node asks for in its own
//! time are converted back so that, when the simulator wakes it, the node's clock has reached
//! the instant it asked for — never earlier (DESIGN §6.8: correctness must not depend on
//! clocks agreeing).

use sapix_core::{Instant, UnixMillis};

use crate::config::{Micros, MILLI};

/// Wall-clock ms of simulated time zero (mid-November 2023).
const EPOCH_MS: i64 = 1_700_000_000_000;
const PPM: u128 = 1_000_000;

/// One node's clocks.
#[derive(Debug, Clone)]
pub struct NodeClock {
    /// Simulated time of the current boot.
    boot: Micros,
    /// Monotonic reading at boot.
    origin: u64,
    /// Local microseconds per 1e6 simulated microseconds.
    rate: u64,
    /// Wall-clock offset in ms, steps included.
    wall_offset_ms: i64,
}

impl NodeClock {
    /// A clock running at `1 + drift_ppm/1e6` with a wall offset.
    pub fn new(drift_ppm: i64, wall_offset_ms: i64) -> Self {
        NodeClock {
            boot: 0,
            origin: 0,
            rate: (1_000_000 + drift_ppm).max(1) as u64,
            wall_offset_ms,
        }
    }

    /// A new process starts at `now`; its monotonic clock reads `origin`.
    pub fn boot(&mut self, now: Micros, origin: u64) {
        self.boot = now;
        self.origin = origin;
    }

    /// The node's monotonic time at simulated `now`.
    pub fn local(&self, now: Micros) -> Instant {
        let elapsed = (now.saturating_sub(self.boot) as u128 * self.rate as u128 / PPM) as u64;
        Instant::from_micros(self.origin.saturating_add(elapsed))
    }

    /// The earliest simulated time at which the node's clock reads at least `at`.
    pub fn global(&self, at: Instant) -> Micros {
        let local = at.as_micros();
        if local <= self.origin {
            return self.boot;
        }
        let d = (local - self.origin) as u128;
        let back = (d * PPM).div_ceil(self.rate as u128);
        self.boot.saturating_add(back.min(u64::MAX as u128) as u64)
    }

    /// The node's wall clock at simulated `now`.
    pub fn wall(&self, now: Micros) -> UnixMillis {
        let ms = (now as u128 * self.rate as u128 / PPM) as i64 / MILLI as i64;
        UnixMillis((EPOCH_MS + self.wall_offset_ms + ms).max(0) as u64)
    }

    /// An NTP step of the wall clock.
    pub fn step_wall(&mut self, delta_ms: i64) {
        self.wall_offset_ms += delta_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_never_fires_before_the_local_instant_it_asked_for() {
        for drift in [-50_000, -1, 0, 7, 49_999] {
            let mut c = NodeClock::new(drift, 0);
            c.boot(3_000_017, 987_654_321);
            for local in [0u64, 987_654_321, 987_654_322, 990_000_000, 1_500_000_003] {
                let at = Instant::from_micros(local);
                let g = c.global(at);
                assert!(c.local(g) >= at, "drift {drift} local {local}");
                if g > 3_000_017 {
                    assert!(c.local(g - 1) < at, "not the earliest: drift {drift}");
                }
            }
        }
    }
}
