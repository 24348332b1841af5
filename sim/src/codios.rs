//! Codios, the authorization service (DESIGN §5): a policy table of permit/deny per
//! (token, collection) that changes while the run goes on, behind a link that can be down
//! (outages, flapping) or slow (answers that outlast the node's timeout).
//!
//! A node's `AskCodios` is a call like a mesh call: it carries the Codios client's timeout, and
//! whichever of the answer and the timeout reaches the node first is its outcome. Codios
//! decides when the request reaches it, from the table as it is at that instant, so a flip
//! racing a call is seen or not exactly as in production. The nodes' decisions are judged by
//! the `auth` checker.
//!
//! This module is the model: its table, its health and its rng. What it answers and how it
//! changes over time are the world's (`world/codios.rs`), the same under both drivers; only
//! when things happen is the driver's: Layer 0 puts them on its heap, the madsim driver sleeps
//! until them.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::auth::{Action, AuthKey, Credential, Decision};
use sapix_core::Collection;

use crate::config::{poisson_gap, CodiosConfig, Episodes, Micros};

/// The collections the clients write to.
pub(crate) const COLLECTIONS: [&str; 2] = ["orders", "events"];

/// A change to Codios due at a simulated time.
#[derive(Debug)]
pub(crate) enum CodiosEv {
    /// A policy flip is due.
    FlipTick,
    /// An outage is due.
    OutageTick,
    /// A slow spell is due.
    SlowTick,
    /// A flapping episode is due.
    FlapTick,
    /// Codios goes down or comes back within a flapping episode.
    Flap { down: bool, until: Micros },
}

/// The service: its table and its health. What the world's glue (`world/codios.rs`) reads
/// and changes as Codios decides and changes is `pub(crate)`.
#[derive(Debug)]
pub(crate) struct Codios {
    cfg: Option<CodiosConfig>,
    pub(crate) rng: ChaCha8Rng,
    tokens: Vec<String>,
    pub(crate) policy: BTreeMap<AuthKey, Decision>,
    pub(crate) down_until: Micros,
    pub(crate) slow_until: Micros,
    pub(crate) flapping_down: bool,
    /// Set by the liveness phase: Codios is healthy from then on.
    pub(crate) healed: bool,
}

fn token_name(t: usize) -> String {
    format!("client-token-{t}")
}

impl Codios {
    /// Codios for `cfg` (off when `None`), drawing from `rng`.
    pub(crate) fn new(cfg: Option<CodiosConfig>, mut rng: ChaCha8Rng) -> Self {
        let tokens: Vec<String> = (0..cfg.as_ref().map_or(0, |c| c.tokens))
            .map(token_name)
            .collect();
        let mut policy = BTreeMap::new();
        for t in &tokens {
            for c in COLLECTIONS {
                let key = write_key(t, c);
                let d = if rng.gen_bool(0.7) {
                    Decision::Permit
                } else {
                    Decision::Deny
                };
                policy.insert(key, d);
            }
        }
        Codios {
            cfg,
            rng,
            tokens,
            policy,
            down_until: 0,
            slow_until: 0,
            flapping_down: false,
            healed: false,
        }
    }

    /// Whether the nodes use Codios at all.
    pub(crate) fn on(&self) -> bool {
        self.cfg.is_some()
    }

    pub(crate) fn cfg(&self) -> &CodiosConfig {
        self.cfg.as_ref().expect("codios on")
    }

    /// The node's Codios call timeout.
    pub(crate) fn timeout(&self) -> Micros {
        self.cfg().timeout
    }

    /// A node sends a request at `now`: how long it travels, and whether Codios is there to
    /// take it (if not, the connection is refused after that long).
    pub(crate) fn send(&mut self, now: Micros) -> (Micros, bool) {
        let d = self.latency(now);
        (d, !self.down(now))
    }

    pub(crate) fn down(&self, now: Micros) -> bool {
        !self.healed && (now < self.down_until || self.flapping_down)
    }

    pub(crate) fn gap(&mut self, rate: f64) -> Micros {
        poisson_gap(&mut self.rng, rate)
    }

    pub(crate) fn length(&mut self, e: Episodes) -> Micros {
        e.length(&mut self.rng)
    }

    pub(crate) fn latency(&mut self, now: Micros) -> Micros {
        let (lo, hi) = self.cfg().latency;
        let mut d = self.rng.gen_range(lo..=hi);
        if let Some((_, extra)) = self.cfg().slow {
            if !self.healed && now < self.slow_until {
                d += self.rng.gen_range(0..=extra);
            }
        }
        d
    }

    /// The credential of a client write: the root key with the configured share, else one of
    /// the client tokens; and whether it is the root key.
    pub(crate) fn client_credential(&mut self) -> (Credential, bool) {
        let root = self.tokens.is_empty() || self.rng.gen_bool(self.cfg().root_share);
        if root {
            return (root_credential(), true);
        }
        let t = self.rng.gen_range(0..self.tokens.len());
        (Credential::of_token(&self.tokens[t]), false)
    }

    /// The first occurrence of every enabled class of change.
    pub(crate) fn first(&mut self) -> Vec<(Micros, CodiosEv)> {
        let Some(cfg) = self.cfg.clone() else {
            return Vec::new();
        };
        let mut out = vec![(self.gap(cfg.flips_per_sec), CodiosEv::FlipTick)];
        if let Some(e) = cfg.outages {
            out.push((self.gap(e.per_sec), CodiosEv::OutageTick));
        }
        if let Some((e, _)) = cfg.slow {
            out.push((self.gap(e.per_sec), CodiosEv::SlowTick));
        }
        if let Some((e, _)) = cfg.flapping {
            out.push((self.gap(e.per_sec), CodiosEv::FlapTick));
        }
        out
    }

    /// The liveness phase: Codios is up and fast from now on.
    pub(crate) fn heal(&mut self) {
        self.healed = true;
        self.flapping_down = false;
    }
}

/// The root key every simulated node is configured with.
pub(crate) fn root_credential() -> Credential {
    Credential::of_token(ROOT_TOKEN)
}

const ROOT_TOKEN: &str = "root-key";

/// The cache key of a write by `token` on `collection`.
fn write_key(token: &str, collection: &str) -> AuthKey {
    let c = Collection::new(collection).expect("valid collection");
    AuthKey::new(token, Action::Write, &c)
}
