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
//! The model and what it decides are the same under both drivers: how long a request and its
//! answer travel, whether Codios takes it, what it answers ([`World::codios_decides`]), and
//! its changes over time ([`World::codios_changes`]). Only when things happen is the
//! driver's: Layer 0 puts them on its heap, the madsim driver sleeps until them.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::auth::{Action, AuthKey, Credential, Decision};
use sapix_core::node::{CallId, Failure, Reply};
use sapix_core::Collection;

use crate::config::{poisson_gap, CodiosConfig, Episodes, Micros, SECOND};
use crate::mesh::Asked;
use crate::overrides::Class;
use crate::world::{Ev, Heap, Phase, World};

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

/// The service: its table and its health.
#[derive(Debug)]
pub(crate) struct Codios {
    cfg: Option<CodiosConfig>,
    rng: ChaCha8Rng,
    tokens: Vec<String>,
    policy: BTreeMap<AuthKey, Decision>,
    down_until: Micros,
    slow_until: Micros,
    flapping_down: bool,
    /// Set by the liveness phase: Codios is healthy from then on.
    healed: bool,
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

    fn cfg(&self) -> &CodiosConfig {
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

    fn down(&self, now: Micros) -> bool {
        !self.healed && (now < self.down_until || self.flapping_down)
    }

    fn gap(&mut self, rate: f64) -> Micros {
        poisson_gap(&mut self.rng, rate)
    }

    fn length(&mut self, e: Episodes) -> Micros {
        e.length(&mut self.rng)
    }

    fn latency(&mut self, now: Micros) -> Micros {
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

impl<D> World<D> {
    /// Node `i` sends a Codios call about `key`: the checker notes when (the cache's
    /// `fetched_at`).
    pub(crate) fn codios_asked(&mut self, i: usize, key: &AuthKey) {
        let local = self.hosts[i].clock.local(self.now);
        self.checks.auth.asked(i, key, local);
    }

    /// Node `node`'s request `call` about `key` reaches Codios now: what the node will be told
    /// (a reset if Codios went down meanwhile), and how long that takes to get back.
    pub(crate) fn codios_decides(
        &mut self,
        node: usize,
        call: u64,
        key: AuthKey,
    ) -> (Micros, Result<Reply, Failure>) {
        let d = self.codios.latency(self.now);
        let outcome = if self.codios.down(self.now) {
            Err(crate::mesh::reset())
        } else {
            let decision = self
                .codios
                .policy
                .get(&key)
                .copied()
                .unwrap_or(Decision::Deny);
            Ok(Reply::Decided(decision))
        };
        self.trace
            .line(self.now, || format!("codios answers n{node} #{call}"));
        (d, outcome)
    }

    /// Codios changes as `ev` says (a flip, an outage, a slow spell, a flap); what is due
    /// next, in the order it must be scheduled. Classes stop recurring once faults stop.
    pub(crate) fn codios_changes(&mut self, ev: CodiosEv) -> Vec<(Micros, CodiosEv)> {
        if let CodiosEv::Flap { down, until } = ev {
            let period = self.codios.cfg().flapping.map_or(SECOND, |(_, p)| p);
            let over = self.now >= until || self.codios.healed;
            self.codios.flapping_down = down && !over;
            if over {
                return Vec::new();
            }
            let at = self.now + self.codios.rng.gen_range(period / 10..=period);
            return vec![(at, CodiosEv::Flap { down: !down, until })];
        }
        if self.phase != Phase::Active {
            return Vec::new();
        }
        let cfg = self.codios.cfg().clone();
        let mut due = Vec::new();
        let rate = match ev {
            CodiosEv::FlipTick => {
                let n = self.codios.policy.len();
                if n > 0 {
                    let k = self.codios.rng.gen_range(0..n);
                    let (key, d) = self.codios.policy.iter_mut().nth(k).expect("in range");
                    *d = match d {
                        Decision::Permit => Decision::Deny,
                        Decision::Deny => Decision::Permit,
                    };
                    let (key, d) = (format!("{key:?}"), *d);
                    self.trace
                        .line(self.now, || format!("codios policy: {key} now {d:?}"));
                }
                cfg.flips_per_sec
            }
            CodiosEv::OutageTick => {
                self.coverage.fire(Class::CodiosOutages);
                let e = cfg.outages.expect("outages on");
                let until = self.now + self.codios.length(e);
                self.codios.down_until = self.codios.down_until.max(until);
                self.trace
                    .line(self.now, || format!("codios down until {until}µs"));
                e.per_sec
            }
            CodiosEv::SlowTick => {
                self.coverage.fire(Class::CodiosSlow);
                let (e, _) = cfg.slow.expect("slow on");
                let until = self.now + self.codios.length(e);
                self.codios.slow_until = self.codios.slow_until.max(until);
                self.trace
                    .line(self.now, || format!("codios slow until {until}µs"));
                e.per_sec
            }
            CodiosEv::FlapTick => {
                self.coverage.fire(Class::CodiosFlapping);
                let (e, _) = cfg.flapping.expect("flapping on");
                let until = self.now + self.codios.length(e);
                self.trace
                    .line(self.now, || format!("codios flapping until {until}µs"));
                due.push((self.now, CodiosEv::Flap { down: true, until }));
                e.per_sec
            }
            CodiosEv::Flap { .. } => unreachable!("handled above"),
        };
        due.push((self.now + self.codios.gap(rate), ev));
        due
    }
}

impl World<Heap> {
    /// Node `i` asks Codios about `key`, with the Codios client's timeout.
    pub(crate) fn call_codios(&mut self, i: usize, id: CallId, key: AuthKey) {
        self.codios_asked(i, &key);
        let timeout = self.codios.timeout();
        let asked = Asked {
            codios: Some(key),
            ..Asked::call(id)
        };
        let call = self.register_call(i, asked, timeout);
        let (d, up) = self.codios.send(self.now);
        if up {
            self.schedule(self.now + d, Ev::CodiosDecides { call, node: i });
        } else {
            let input = self.d.calls[&call]
                .kind
                .clone()
                .failed(crate::mesh::refused());
            self.schedule(self.now + d, Ev::Reply { call, input });
        }
    }

    /// The request of call `call` reaches Codios, unless its caller gave up (or restarted).
    pub(crate) fn codios_request_arrives(&mut self, call: u64, node: usize) {
        let Some(c) = self.d.calls.get(&call) else {
            return;
        };
        let asked = c.kind.clone();
        let Some(key) = asked.codios.clone() else {
            return;
        };
        let (d, outcome) = self.codios_decides(node, call, key);
        let input = asked.ended(outcome);
        self.schedule(self.now + d, Ev::Reply { call, input });
    }

    /// Codios changes, and what follows is scheduled.
    pub(crate) fn codios_event(&mut self, ev: CodiosEv) {
        for (at, next) in self.codios_changes(ev) {
            self.schedule(at, Ev::Codios(next));
        }
    }
}
