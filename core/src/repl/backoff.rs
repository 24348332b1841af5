//! Exponential backoff: the one schedule for every retry the node makes — a peer's push
//! retries (spec: "Automatic push retry"), a failed pull run, a failed `cluster.json` write.
//!
//! The first retry waits 1 s, each further failure doubles the wait up to 60 s, and each wait
//! carries up to ±20 % jitter drawn from the node's seeded rng so peers that recover together
//! do not stampede. Reaching the cap starts an "extended failure" episode, reported once; any
//! success resets everything. Invariant: the un-jittered delay is always
//! `min(initial * 2^(failures-1), max)`.

use core::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The schedule's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// Wait after the first failure (spec: 1 s).
    pub initial: Duration,
    /// Longest wait (spec: 60 s).
    pub max: Duration,
    /// Jitter as a fraction of the wait, applied as ±`jitter` (DESIGN: 0.2).
    pub jitter: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

/// What a failure did to the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// How long to wait before the next try, jitter included.
    pub wait: Duration,
    /// The un-jittered wait.
    pub base: Duration,
    /// True exactly once per episode: the wait just reached the cap.
    pub reached_cap: bool,
}

/// One peer's backoff state.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
    alerted: bool,
}

impl Backoff {
    /// Records a failure and returns how long to wait before retrying.
    pub fn fail(&mut self, policy: &BackoffPolicy, rng: &mut ChaCha8Rng) -> Delay {
        self.failures = self.failures.saturating_add(1);
        let base = self.base(policy);
        let reached_cap = base >= policy.max && !self.alerted;
        self.alerted |= reached_cap;
        let wait = if policy.jitter > 0.0 {
            let f = rng.gen_range(-policy.jitter..=policy.jitter);
            base.mul_f64(1.0 + f)
        } else {
            base
        };
        Delay {
            wait,
            base,
            reached_cap,
        }
    }

    /// Records a failure and returns the un-jittered wait, drawing nothing: for retries of
    /// this node's own work (a pull run, a state-file write), where no peers recover together
    /// and there is no stampede to spread.
    pub fn fail_steady(&mut self, policy: &BackoffPolicy) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.base(policy)
    }

    /// Any success from the peer: the next failure starts again at the initial wait.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The un-jittered wait after the current number of failures (zero if none).
    pub fn base(&self, policy: &BackoffPolicy) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (self.failures - 1).min(32);
        policy
            .initial
            .checked_mul(1u32 << doublings.min(31))
            .map_or(policy.max, |d| d.min(policy.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn doubles_from_one_second_to_the_sixty_second_cap_and_alerts_once() {
        let p = BackoffPolicy {
            jitter: 0.0,
            ..Default::default()
        };
        let mut b = Backoff::default();
        let mut r = rng();
        let waits: Vec<(u64, bool)> = (0..10)
            .map(|_| {
                let d = b.fail(&p, &mut r);
                (d.wait.as_secs(), d.reached_cap)
            })
            .collect();
        assert_eq!(
            waits,
            [
                (1, false),
                (2, false),
                (4, false),
                (8, false),
                (16, false),
                (32, false),
                (60, true),
                (60, false),
                (60, false),
                (60, false)
            ]
        );
    }

    #[test]
    fn reset_starts_a_new_episode() {
        let p = BackoffPolicy {
            jitter: 0.0,
            ..Default::default()
        };
        let mut b = Backoff::default();
        let mut r = rng();
        for _ in 0..8 {
            b.fail(&p, &mut r);
        }
        b.reset();
        let d = b.fail(&p, &mut r);
        assert_eq!((d.wait, d.reached_cap), (Duration::from_secs(1), false));
        for _ in 0..5 {
            b.fail(&p, &mut r);
        }
        assert!(b.fail(&p, &mut r).reached_cap, "a new episode alerts again");
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_varies() {
        let p = BackoffPolicy::default();
        let mut r = rng();
        let mut seen = std::collections::BTreeSet::new();
        for failures in 1..=12 {
            let mut b = Backoff::default();
            for _ in 0..failures - 1 {
                b.fail(&p, &mut r);
            }
            let d = b.fail(&p, &mut r);
            let lo = d.base.mul_f64(0.8);
            let hi = d.base.mul_f64(1.2);
            assert!(d.wait >= lo && d.wait <= hi, "{d:?}");
            seen.insert(d.wait.as_micros());
        }
        assert!(seen.len() > 6, "jitter must actually vary the waits");
    }

    #[test]
    fn many_failures_never_overflow() {
        let p = BackoffPolicy::default();
        let mut b = Backoff {
            failures: u32::MAX - 1,
            alerted: true,
        };
        let d = b.fail(&p, &mut rng());
        assert_eq!(d.base, p.max);
    }

    #[test]
    fn the_steady_schedule_is_the_jittered_one_without_its_jitter() {
        let p = BackoffPolicy::default();
        let (mut steady, mut drawn) = (Backoff::default(), Backoff::default());
        let mut r = rng();
        for _ in 0..9 {
            let wait = steady.fail_steady(&p);
            assert_eq!(wait, drawn.fail(&p, &mut r).base);
        }
        assert_eq!(steady.base(&p), p.max);
        steady.reset();
        assert_eq!(steady.fail_steady(&p), p.initial);
    }
}
