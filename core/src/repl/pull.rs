//! Pull-sync from one peer: paging its export from a persisted cursor (spec: "Pull").
//!
//! The cursor is the offset in the peer's export already ingested here. A run fetches a page
//! after the cursor, has the node ingest it durably, persists the new cursor, and only then
//! fetches the next page, until it reaches the tip the peer reported. Invariant: the durable
//! cursor never passes a block that is not durable here, so a crash at any point at worst
//! fetches a page again (ingest is idempotent) and never skips one. Each page handed out to
//! store has an id that its "stored" report must carry: a report for any other page (one
//! from a run that has ended, or an answer the run was not waiting for) moves nothing.
//!
//! A failed run is wanted again: it restarts after a delay doubling from 1 s to 60 s (reset by
//! a run that reaches the tip), or at once when the peer heals or an operator asks. Pushes
//! carry only each author's own chain, so without the retry a node that missed a third
//! author's blocks would wait for the peer to flap.

use core::time::Duration;

use crate::repl::backoff::{Backoff, BackoffPolicy};
use crate::time::Instant;

/// First delay before a failed run is retried.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest delay before a failed run is retried.
pub const RETRY_MAX: Duration = Duration::from_secs(60);
/// The schedule of those retries: the node's one backoff, without jitter (see
/// [`Backoff::fail_steady`]).
pub const RETRY: BackoffPolicy = BackoffPolicy {
    initial: RETRY_MIN,
    max: RETRY_MAX,
    jitter: 0.0,
};
/// How long a pull stays idle before an anti-entropy run from the cursor.
///
/// Pushes carry each author's own chain only, so a block that reached one peer from an author
/// who then died spreads further only by pulls; without this, it would wait for a restart,
/// a heal or an operator. An idle run costs one export request that answers an empty page.
pub const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(15);

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No run.
    Idle,
    /// A page after the cursor was asked for.
    Fetching,
    /// A page is being stored; `next` is its cursor, `tip` the peer's tip.
    Storing {
        /// The page's id, as [`Fetched::Store`] handed it out.
        page: u64,
        /// The cursor after this page.
        next: u64,
        /// The peer's tip when it served the page.
        tip: u64,
    },
    /// The page is durable; the new cursor is being persisted.
    Persisting {
        /// The cursor being persisted.
        next: u64,
        /// The peer's tip.
        tip: u64,
    },
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Pages fetched.
    pub pages: u64,
    /// Blocks received.
    pub fetched: u64,
    /// Blocks newly stored.
    pub ingested: u64,
}

/// What to do next after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fetch the page after this cursor.
    Fetch {
        /// The cursor.
        after: u64,
    },
    /// Persist this cursor.
    Persist {
        /// The cursor.
        cursor: u64,
    },
    /// The run reached the peer's tip.
    Done(Totals),
    /// Wait for something else.
    Wait,
}

/// What to do with a fetched page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// Store the page's new blocks, then report [`Pull::stored`] with `page` once they, and
    /// every block of the page already held or in flight, are durable.
    Store {
        /// The page's id.
        page: u64,
    },
    /// Store nothing: the run ended (an empty page), or this is not the page the run asked
    /// for.
    Skip(Step),
}

/// One peer's pull state.
#[derive(Debug, Clone, Default)]
pub struct Pull {
    cursor: u64,
    phase: Option<Phase>,
    wanted: bool,
    totals: Totals,
    /// After a failure: not before then, unless asked again.
    retry_at: Option<Instant>,
    /// The delay the last failure waited (zero after a success).
    backoff: Backoff,
    /// First drain tick seen with nothing running or wanted.
    idle_since: Option<Instant>,
    /// The id of the last page handed out to store; never reused, across runs.
    last_page: u64,
    /// The peer's export tip its last page showed (0 before any).
    seen_tip: u64,
}

impl Pull {
    /// A pull starting from a persisted cursor.
    pub fn new(cursor: u64) -> Self {
        Pull {
            cursor,
            ..Default::default()
        }
    }

    /// The durable cursor.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Blocks the peer's export showed beyond the durable cursor, as of its last page.
    pub fn lag(&self) -> u64 {
        self.seen_tip.saturating_sub(self.cursor)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase.unwrap_or(Phase::Idle)
    }

    /// Whether a run is under way.
    pub fn running(&self) -> bool {
        self.phase.is_some()
    }

    /// Asks for a run (now if idle, or again after the current one), cutting short the wait
    /// after a failure.
    pub fn want(&mut self) {
        self.wanted = true;
        self.retry_at = None;
    }

    /// The drain tick at `now`: a pull idle for [`ANTI_ENTROPY_INTERVAL`] wants a run.
    pub fn tick(&mut self, now: Instant) {
        if self.phase.is_some() || self.wanted {
            self.idle_since = None;
            return;
        }
        match self.idle_since {
            None => self.idle_since = Some(now),
            Some(since) if now >= since + ANTI_ENTROPY_INTERVAL => {
                self.wanted = true;
                self.idle_since = None;
            }
            Some(_) => {}
        }
    }

    /// When a failed run may start again, while it waits.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
            .filter(|_| self.wanted && self.phase.is_none())
    }

    /// When an idle pull wants its anti-entropy run (checked at the drain tick).
    pub fn anti_entropy_at(&self) -> Option<Instant> {
        self.idle_since.map(|since| since + ANTI_ENTROPY_INTERVAL)
    }

    /// Whether a run was asked for, none is under way, and no retry delay is pending at `now`.
    pub fn wants_start(&self, now: Instant) -> bool {
        self.wanted && self.phase.is_none() && self.retry_at.is_none_or(|at| now >= at)
    }

    /// Starts a run.
    pub fn start(&mut self) -> Step {
        self.wanted = false;
        self.totals = Totals::default();
        self.phase = Some(Phase::Fetching);
        Step::Fetch { after: self.cursor }
    }

    /// A page arrived with `count` blocks, of which `fresh` are new here.
    pub fn fetched(&mut self, count: u64, fresh: u64, next: u64, tip: u64) -> Fetched {
        if self.phase != Some(Phase::Fetching) {
            return Fetched::Skip(Step::Wait);
        }
        self.seen_tip = tip;
        self.totals.pages += 1;
        self.totals.fetched += count;
        self.totals.ingested += fresh;
        if count == 0 || next <= self.cursor {
            return Fetched::Skip(self.finish());
        }
        self.last_page += 1;
        let page = self.last_page;
        self.phase = Some(Phase::Storing { page, next, tip });
        Fetched::Store { page }
    }

    /// Page `page` is durable. Only the page being stored moves the run on: the report of
    /// any other would let the cursor pass blocks that are not durable yet.
    pub fn stored(&mut self, page: u64) -> Step {
        match self.phase {
            Some(Phase::Storing {
                page: storing,
                next,
                tip,
            }) if storing == page => {
                self.phase = Some(Phase::Persisting { next, tip });
                Step::Persist { cursor: next }
            }
            _ => Step::Wait,
        }
    }

    /// Whether the run waits for `cursor` to be durable.
    pub fn persisting(&self, cursor: u64) -> bool {
        matches!(self.phase, Some(Phase::Persisting { next, .. }) if next == cursor)
    }

    /// The cursor `cursor` is durable.
    pub fn persisted(&mut self, cursor: u64) -> Step {
        match self.phase {
            Some(Phase::Persisting { next, tip }) if next == cursor => {
                self.cursor = cursor;
                if cursor >= tip {
                    self.finish()
                } else {
                    self.phase = Some(Phase::Fetching);
                    Step::Fetch { after: cursor }
                }
            }
            _ => Step::Wait,
        }
    }

    /// The run failed at `now` (fetch error, refused page); the cursor stays where it is and
    /// the run is wanted again after the retry delay.
    pub fn failed(&mut self, now: Instant) -> Totals {
        self.phase = None;
        self.wanted = true;
        self.retry_at = Some(now + self.backoff.fail_steady(&RETRY));
        self.totals
    }

    fn finish(&mut self) -> Step {
        self.phase = None;
        self.backoff.reset();
        self.retry_at = None;
        Step::Done(self.totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_until_the_tip_advancing_the_cursor_only_when_durable() {
        let mut p = Pull::new(10);
        p.want();
        assert!(p.wants_start(Instant::ZERO));
        assert_eq!(p.start(), Step::Fetch { after: 10 });
        assert_eq!(p.fetched(5, 5, 15, 20), Fetched::Store { page: 1 });
        assert_eq!(p.cursor(), 10, "not durable yet");
        assert_eq!(p.lag(), 10, "the export shows 20; the durable cursor is 10");
        assert_eq!(p.stored(1), Step::Persist { cursor: 15 });
        assert_eq!(p.cursor(), 10, "not persisted yet");
        assert_eq!(p.persisted(15), Step::Fetch { after: 15 });
        assert_eq!(p.cursor(), 15);
        assert_eq!(p.lag(), 5);
        assert_eq!(p.fetched(5, 2, 20, 20), Fetched::Store { page: 2 });
        p.stored(2);
        assert_eq!(
            p.persisted(20),
            Step::Done(Totals {
                pages: 2,
                fetched: 10,
                ingested: 7
            })
        );
        assert!(!p.running());
    }

    #[test]
    fn an_empty_page_ends_the_run() {
        let mut p = Pull::new(3);
        p.want();
        p.start();
        assert!(matches!(
            p.fetched(0, 0, 3, 3),
            Fetched::Skip(Step::Done(_))
        ));
        assert_eq!(p.cursor(), 3);
    }

    #[test]
    fn failure_keeps_the_cursor_and_a_new_run_resumes_from_it() {
        let mut p = Pull::new(0);
        p.want();
        p.start();
        p.fetched(4, 4, 4, 9);
        p.failed(Instant::ZERO);
        assert_eq!(p.cursor(), 0);
        p.want();
        assert_eq!(p.start(), Step::Fetch { after: 0 });
    }

    #[test]
    fn a_failed_run_is_retried_after_a_doubling_delay_reset_by_success() {
        let s = |secs: u64| Instant::ZERO + Duration::from_secs(secs);
        let mut p = Pull::new(0);
        p.want();
        let mut now = s(0);
        let mut waits = Vec::new();
        for _ in 0..8 {
            p.start();
            p.failed(now);
            assert!(!p.wants_start(now), "not at once");
            let mut wait = 0;
            while !p.wants_start(now + Duration::from_secs(wait)) {
                wait += 1;
            }
            waits.push(wait);
            now = now + Duration::from_secs(wait);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        p.start();
        p.failed(now);
        p.want();
        assert!(p.wants_start(now), "a heal or an operator does not wait");
        p.start();
        assert!(matches!(
            p.fetched(0, 0, 0, 0),
            Fetched::Skip(Step::Done(_))
        ));
        p.start();
        p.failed(now);
        assert!(p.wants_start(now + RETRY_MIN), "success reset the delay");
    }

    #[test]
    fn an_idle_pull_wants_an_anti_entropy_run_every_interval() {
        let mut p = Pull::new(0);
        let at = |ms: u64| Instant::ZERO + Duration::from_millis(ms);
        let interval = ANTI_ENTROPY_INTERVAL.as_millis() as u64;
        p.tick(at(0));
        p.tick(at(interval - 1));
        assert!(!p.wants_start(at(interval - 1)));
        p.tick(at(interval));
        assert!(p.wants_start(at(interval)));
        p.start();
        p.tick(at(2 * interval));
        assert!(matches!(
            p.fetched(0, 0, 0, 0),
            Fetched::Skip(Step::Done(_))
        ));
        p.tick(at(2 * interval + 1));
        p.tick(at(3 * interval));
        assert!(
            !p.wants_start(at(3 * interval)),
            "idle counts from after the run"
        );
        p.tick(at(3 * interval + 1));
        assert!(p.wants_start(at(3 * interval + 1)));
    }

    #[test]
    fn stale_completions_are_ignored() {
        let mut p = Pull::new(0);
        assert_eq!(p.stored(1), Step::Wait);
        assert_eq!(p.persisted(7), Step::Wait);
        assert_eq!(p.cursor(), 0);
    }

    #[test]
    fn only_the_page_being_stored_moves_the_run_on() {
        let mut p = Pull::new(0);
        p.want();
        p.start();
        assert_eq!(p.fetched(2, 0, 2, 9), Fetched::Store { page: 1 });
        assert_eq!(
            p.fetched(2, 0, 2, 9),
            Fetched::Skip(Step::Wait),
            "a repeated answer is not a second page to store"
        );
        p.failed(Instant::ZERO);
        p.want();
        p.start();
        assert_eq!(p.fetched(3, 0, 3, 9), Fetched::Store { page: 2 });
        assert_eq!(
            p.stored(1),
            Step::Wait,
            "the failed run's page says nothing about this one"
        );
        assert_eq!(
            p.phase(),
            Phase::Storing {
                page: 2,
                next: 3,
                tip: 9
            }
        );
        assert_eq!(p.stored(2), Step::Persist { cursor: 3 });
        assert_eq!(p.stored(2), Step::Wait, "reported once");
    }
}
