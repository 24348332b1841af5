//! Pull-sync from one peer: paging its export from a persisted cursor (spec: "Pull").
//!
//! The cursor is the offset in the peer's export already ingested here. A run fetches a page
//! after the cursor, has the node ingest it durably, persists the new cursor, and only then
//! fetches the next page, until it reaches the tip the peer reported. Invariant: the durable
//! cursor never passes a block that is not durable here, so a crash at any point at worst
//! fetches a page again (ingest is idempotent) and never skips one.

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No run.
    Idle,
    /// A page after the cursor was asked for.
    Fetching,
    /// A page is being stored; `next` is its cursor, `tip` the peer's tip.
    Storing {
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

/// One peer's pull state.
#[derive(Debug, Clone, Default)]
pub struct Pull {
    cursor: u64,
    phase: Option<Phase>,
    wanted: bool,
    totals: Totals,
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

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase.unwrap_or(Phase::Idle)
    }

    /// Whether a run is under way.
    pub fn running(&self) -> bool {
        self.phase.is_some()
    }

    /// Asks for a run (now if idle, or again after the current one).
    pub fn want(&mut self) {
        self.wanted = true;
    }

    /// Whether a run was asked for and none is under way.
    pub fn wants_start(&self) -> bool {
        self.wanted && self.phase.is_none()
    }

    /// Starts a run.
    pub fn start(&mut self) -> Step {
        self.wanted = false;
        self.totals = Totals::default();
        self.phase = Some(Phase::Fetching);
        Step::Fetch { after: self.cursor }
    }

    /// A page arrived with `count` blocks, of which `fresh` are new here.
    pub fn fetched(&mut self, count: u64, fresh: u64, next: u64, tip: u64) -> Step {
        if self.phase != Some(Phase::Fetching) {
            return Step::Wait;
        }
        self.totals.pages += 1;
        self.totals.fetched += count;
        self.totals.ingested += fresh;
        if count == 0 || next <= self.cursor {
            return self.finish();
        }
        self.phase = Some(Phase::Storing { next, tip });
        Step::Wait
    }

    /// The page being stored is durable.
    pub fn stored(&mut self) -> Step {
        match self.phase {
            Some(Phase::Storing { next, tip }) => {
                self.phase = Some(Phase::Persisting { next, tip });
                Step::Persist { cursor: next }
            }
            _ => Step::Wait,
        }
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

    /// The run failed (fetch error, refused page); the cursor stays where it is.
    pub fn failed(&mut self) -> Totals {
        self.phase = None;
        self.totals
    }

    fn finish(&mut self) -> Step {
        self.phase = None;
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
        assert!(p.wants_start());
        assert_eq!(p.start(), Step::Fetch { after: 10 });
        assert_eq!(p.fetched(5, 5, 15, 20), Step::Wait);
        assert_eq!(p.cursor(), 10, "not durable yet");
        assert_eq!(p.stored(), Step::Persist { cursor: 15 });
        assert_eq!(p.cursor(), 10, "not persisted yet");
        assert_eq!(p.persisted(15), Step::Fetch { after: 15 });
        assert_eq!(p.cursor(), 15);
        p.fetched(5, 2, 20, 20);
        p.stored();
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
        assert!(matches!(p.fetched(0, 0, 3, 3), Step::Done(_)));
        assert_eq!(p.cursor(), 3);
    }

    #[test]
    fn failure_keeps_the_cursor_and_a_new_run_resumes_from_it() {
        let mut p = Pull::new(0);
        p.want();
        p.start();
        p.fetched(4, 4, 4, 9);
        p.failed();
        assert_eq!(p.cursor(), 0);
        p.want();
        assert_eq!(p.start(), Step::Fetch { after: 0 });
    }

    #[test]
    fn stale_completions_are_ignored() {
        let mut p = Pull::new(0);
        assert_eq!(p.stored(), Step::Wait);
        assert_eq!(p.persisted(7), Step::Wait);
        assert_eq!(p.cursor(), 0);
    }
}
