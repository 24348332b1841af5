//! The forging node (issue 17): someone who holds the master seed — so can sign blocks as any
//! author — and sends a forged block of a member to every node. It picks a member and a seq of
//! that member's chain, from the first to one past the member's durable tip: at a held seq the
//! block is equivocation; one past the tip it is a block the member never signed, which peers
//! that hold the tip take as the next link until the member's own block at that seq arrives.
//!
//! This module is the forger's schedule and choices, from its own random stream; what a
//! forgery does to the world is the world's (`world/forger.rs`), and what the honest nodes
//! must do about it is the checkers' (`checkers::forgery`).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::block::{Block, BlockBody, Hash};
use sapix_core::keys::AgentKey;
use sapix_core::{AgentId, Collection, UnixMillis};

use crate::config::{poisson_gap, stream, Config, Micros, Stream};

/// The forger's rate and rng.
#[derive(Debug)]
pub(crate) struct Forger {
    rate: Option<f64>,
    rng: ChaCha8Rng,
    made: u64,
}

impl Forger {
    /// The forger of `cfg`'s seed (idle if the seed drew no forgeries).
    pub(crate) fn new(cfg: &Config) -> Self {
        let mut rng = stream(cfg.seed, Stream::Forgery);
        // Past the draws `Config::draw` made from this stream.
        rng.set_word_pos(1 << 20);
        Forger {
            rate: cfg.nodes.forgeries,
            rng,
            made: 0,
        }
    }

    /// When it acts next, after `now`; `None` if it never does.
    pub(crate) fn next(&mut self, now: Micros) -> Option<Micros> {
        let rate = self.rate?;
        Some(now + poisson_gap(&mut self.rng, rate))
    }

    /// One of `members`, whose chain it forges.
    pub(crate) fn victim(&mut self, members: &[usize]) -> usize {
        members[self.rng.gen_range(0..members.len())]
    }

    /// A seq of a chain durable through `tip`: a held one, or one past it.
    pub(crate) fn seq(&mut self, tip: u64) -> u64 {
        self.rng.gen_range(1..=tip + 1)
    }

    /// `author`'s block `seq` over `prev`, signed with `key` (the seed's key for `author`),
    /// with a payload no honest client writes.
    pub(crate) fn forge(
        &mut self,
        author: &AgentId,
        seq: u64,
        prev: Hash,
        key: &AgentKey,
    ) -> Block {
        self.made += 1;
        BlockBody {
            author: author.clone(),
            seq,
            prev,
            ts: UnixMillis(1_700_000_000_000),
            collection: Collection::new("forged").expect("valid collection"),
            payload: format!(r#"{{"forgery":{}}}"#, self.made).into_bytes(),
        }
        .seal(key)
    }
}
