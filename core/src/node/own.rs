//! This node's own chain as it becomes durable: the last durable seq, the newest commit's wall
//! time, and sparse marks of when seqs were committed, so a peer's push lag can be told in
//! time as well as in blocks — by this node's monotonic clock only (no clock is compared
//! across nodes).
//!
//! A mark `(seq, at)` is taken when a commit comes at least [`MARK_EVERY`] after the last mark:
//! every seq from a mark's up to the next mark's was committed within `MARK_EVERY` after the
//! mark's `at`. The age of a peer's oldest missing block is read from the last mark at or
//! before it, so it is over-estimated by less than `MARK_EVERY`, and memory grows with the
//! seconds a peer has been behind, not with its blocks (a million blocks behind over ten
//! minutes is ~600 marks).

use core::time::Duration;
use std::collections::VecDeque;

use crate::time::{Instant, UnixMillis};

/// The spacing of commit marks, and so the resolution of a push lag in time.
pub(super) const MARK_EVERY: Duration = Duration::from_secs(1);

/// This node's own chain's durable progress.
#[derive(Debug)]
pub(super) struct OwnChain {
    /// The last own seq that is durable.
    pub(super) durable: u64,
    /// The wall time stamped in the newest own block that is durable.
    pub(super) last_commit: UnixMillis,
    /// `(first seq committed at or after at, at)`, oldest first.
    marks: VecDeque<(u64, Instant)>,
    /// When this process first saw the time: blocks written before count from there.
    start: Option<Instant>,
}

impl OwnChain {
    /// Own blocks through `durable` were written before this process started: their age is
    /// counted from the first instant it sees ([`OwnChain::start`]).
    pub(super) fn new(durable: u64, last_commit: UnixMillis) -> Self {
        OwnChain {
            durable,
            last_commit,
            marks: VecDeque::new(),
            start: None,
        }
    }

    /// The process sees the time `now` (only the first call counts).
    pub(super) fn start(&mut self, now: Instant) {
        self.start.get_or_insert(now);
    }

    /// Own block `seq`, stamped `wall`, is durable at `now`.
    pub(super) fn committed(&mut self, seq: u64, wall: UnixMillis, now: Instant) {
        self.last_commit = self.last_commit.max(wall);
        if seq <= self.durable {
            return;
        }
        self.durable = seq;
        let due = self
            .marks
            .back()
            .is_none_or(|(_, last)| now.saturating_since(*last) >= MARK_EVERY);
        if due {
            self.marks.push_back((seq, now));
        }
    }

    /// How long ago, at `now`, own block `seq` was committed (at most [`MARK_EVERY`] more than
    /// the truth); `None` if it is not durable.
    pub(super) fn age(&self, seq: u64, now: Instant) -> Option<Duration> {
        if seq == 0 || seq > self.durable {
            return None;
        }
        let mark = self.marks.iter().rev().find(|(s, _)| *s <= seq);
        let at = mark.map(|(_, at)| *at).or(self.start)?;
        Some(now.saturating_since(at))
    }

    /// Every peer holds own blocks through `held`: marks before the one covering `held + 1`
    /// are no longer needed.
    pub(super) fn forget_through(&mut self, held: u64) {
        while self.marks.len() > 1 && self.marks[1].0 <= held + 1 {
            self.marks.pop_front();
        }
    }

    /// Marks kept.
    #[cfg(test)]
    fn marks(&self) -> usize {
        self.marks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn a_blocks_age_is_told_within_one_mark_spacing() {
        let mut own = OwnChain::new(0, UnixMillis(0));
        own.start(ms(0));
        // 100 blocks a second for 10 s.
        for i in 0..1_000u64 {
            own.committed(i + 1, UnixMillis(i), ms(i * 10));
        }
        let now = ms(20_000);
        for seq in [1, 250, 500, 999, 1_000] {
            let truth = now.saturating_since(ms((seq - 1) * 10));
            let told = own.age(seq, now).expect("durable");
            assert!(
                told >= truth && told < truth + MARK_EVERY,
                "{seq}: {told:?} {truth:?}"
            );
        }
        assert_eq!(own.age(1_001, now), None);
        assert_eq!(own.last_commit, UnixMillis(999));
    }

    #[test]
    fn blocks_from_before_the_start_are_as_old_as_the_process() {
        let mut own = OwnChain::new(50, UnixMillis(7));
        own.start(ms(1_000));
        own.start(ms(5_000));
        assert_eq!(own.age(10, ms(61_000)), Some(secs(60)));
    }

    #[test]
    fn marks_grow_with_seconds_behind_and_are_forgotten_once_held() {
        let mut own = OwnChain::new(0, UnixMillis(0));
        // A million blocks in ten minutes.
        for i in 0..1_000_000u64 {
            own.committed(i + 1, UnixMillis(i), ms(i * 600 / 1_000));
        }
        assert!(own.marks() <= 601, "{} marks", own.marks());
        own.forget_through(999_000);
        assert!(own.marks() <= 2, "{} marks", own.marks());
        let age = own.age(999_001, ms(600_000)).expect("durable");
        assert!(age <= secs(2), "{age:?}");
    }
}
