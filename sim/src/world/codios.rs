//! Codios on the world: a node's call is noted by the `auth` checker, Codios decides when the
//! request reaches it (from the table as it is at that instant), and its policy and health
//! change over time. What it decides is the same under both drivers; Layer 0 carries the call
//! and the changes on its heap.

use rand::Rng;
use sapix_core::auth::{AuthKey, Decision};
use sapix_core::node::{CallId, Failure, Reply};

use super::heap::{Ev, Heap};
use super::{Phase, World};
use crate::codios::CodiosEv;
use crate::config::{Micros, SECOND};
use crate::mesh::Asked;
use crate::overrides::Class;

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
