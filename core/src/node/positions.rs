//! Read-your-writes (issue 16): a read may name chain positions, `author:seq` (a write's
//! answer carries its author and seq), and is served only once this node durably holds every
//! named chain through that seq. A read that names a position not held yet waits, for at most
//! the wait it asked (up to [`MAX_POSITION_WAIT`]), while the node pulls from the author at
//! once; when the wait ends first it is refused with what the node holds.
//!
//! The waiting reads are released as blocks enter the chains (a write, a push, a pull page)
//! and then, like a probe's answer, once every append issued so far is durable.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::planted::PlantedBug;
use super::{Node, Pending, RequestId, Response};
use crate::id::AgentId;
use crate::time::Instant;

/// The longest a read may wait for its positions (`wait_ms` ≤ 10,000).
pub const MAX_POSITION_WAIT: Duration = Duration::from_secs(10);

/// `author`'s chain through block `seq`: where a write landed, or how far a chain is held.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChainPosition {
    /// The chain's author.
    pub author: AgentId,
    /// A block number in it, from 1 (0: nothing of it).
    pub seq: u64,
}

/// Why text is not a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a position is <author>:<seq>, e.g. eu-west-1:42 ({0})")]
pub struct BadPosition(&'static str);

impl ChainPosition {
    /// Parses `author:seq` (the last `:` splits: agent ids have none).
    pub fn parse(text: &str) -> Result<ChainPosition, BadPosition> {
        let (author, seq) = text.rsplit_once(':').ok_or(BadPosition("no `:`"))?;
        let author = AgentId::new(author).map_err(|_| BadPosition("bad author"))?;
        let seq = crate::wire::decimal(seq).ok_or(BadPosition("seq must be a whole number"))?;
        Ok(ChainPosition { author, seq })
    }
}

impl fmt::Display for ChainPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.author, self.seq)
    }
}

/// The reads waiting for their positions, and when each stops waiting.
#[derive(Debug, Default)]
pub(super) struct PositionWaits {
    waiting: BTreeMap<RequestId, (Vec<ChainPosition>, Instant)>,
}

impl PositionWaits {
    /// When the first waiting read gives up.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.waiting.values().map(|(_, at)| *at).min()
    }
}

impl Node {
    /// `PositionsWanted`: held (durably, once what is in flight lands) → reached; else wait
    /// up to `wait` and pull from each author behind now; no wait → refused at once.
    pub(super) fn positions_wanted(
        &mut self,
        now: Instant,
        request: RequestId,
        positions: Vec<ChainPosition>,
        wait: Duration,
    ) {
        if self.holds_all(&positions) {
            return self.reached(request);
        }
        let wait = wait.min(MAX_POSITION_WAIT);
        if wait.is_zero() {
            return self.respond(request, self.not_reached(&positions));
        }
        for p in &positions {
            if !self.holds(p) && self.pulls.contains_key(&p.author) {
                self.pulls.get_mut(&p.author).expect("checked").want();
                self.maybe_pull(&p.author);
            }
        }
        self.reads.waiting.insert(request, (positions, now + wait));
    }

    /// Blocks entered the chains: the waiting reads now held wait for durability only.
    pub(super) fn positions_grew(&mut self) {
        if self.reads.waiting.is_empty() {
            return;
        }
        let chains = &self.chains;
        let held = |ps: &[ChainPosition]| {
            ps.iter()
                .all(|p| chains.tip(&p.author).is_some_and(|(s, _)| s >= p.seq))
        };
        let ready: Vec<RequestId> = (self.reads.waiting.iter())
            .filter(|(_, (ps, _))| held(ps))
            .map(|(r, _)| *r)
            .collect();
        for request in ready {
            self.reads.waiting.remove(&request);
            self.reached(request);
        }
    }

    /// The read's positions are in the chains: answer once everything issued is durable.
    fn reached(&mut self, request: RequestId) {
        if self.bugs.has(PlantedBug::PositionBeforeDurable) {
            return self.respond(request, Response::PositionReached);
        }
        self.wait(self.commit.issued(), Pending::Positions { request });
    }

    /// Refuses the reads whose wait ended by `now`.
    pub(super) fn positions_timeout(&mut self, now: Instant) {
        let expired: Vec<RequestId> = (self.reads.waiting.iter())
            .filter(|(_, (_, at))| now >= *at)
            .map(|(r, _)| *r)
            .collect();
        for request in expired {
            if let Some((positions, _)) = self.reads.waiting.remove(&request) {
                let refusal = self.not_reached(&positions);
                self.respond(request, refusal);
            }
        }
    }

    fn holds(&self, p: &ChainPosition) -> bool {
        self.chains
            .tip(&p.author)
            .is_some_and(|(seq, _)| seq >= p.seq)
    }

    fn holds_all(&self, positions: &[ChainPosition]) -> bool {
        positions.iter().all(|p| self.holds(p))
    }

    /// The refusal: how far each named chain is held here.
    fn not_reached(&self, positions: &[ChainPosition]) -> Response {
        let mut holds: Vec<ChainPosition> = positions
            .iter()
            .map(|p| ChainPosition {
                author: p.author.clone(),
                seq: self.chains.tip(&p.author).map_or(0, |(seq, _)| seq),
            })
            .collect();
        holds.sort();
        holds.dedup();
        Response::PositionNotReached { holds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_author_colon_seq_and_nothing_else() {
        let p = ChainPosition::parse("eu-west-1:42").unwrap();
        assert_eq!((p.author.as_str(), p.seq), ("eu-west-1", 42));
        assert_eq!(p.to_string(), "eu-west-1:42");
        for bad in [
            "",
            ":",
            "a:",
            ":1",
            "a",
            "a:-1",
            "a:+1",
            "a:1.0",
            "a: 1",
            "a:0x1",
            "Bad!:1",
            "a:99999999999999999999",
            "a:000000000000000000001",
        ] {
            assert!(ChainPosition::parse(bad).is_err(), "{bad:?}");
        }
    }
}
