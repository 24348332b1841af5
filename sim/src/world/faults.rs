//! Faults on Layer 0's world: a crash and its restart, a stall, a partition and its heal, a
//! flapping link, a swizzle-clog, a failing disk, a wall-clock step — and the next occurrence
//! of each class, while the active phase lasts.

use rand::Rng;

use super::heap::{Ev, Heap};
use super::{Phase, World};
use crate::config::{Episodes, SECOND};
use crate::faults::{rate_of, Fault};
use crate::overrides::Class;

impl World<Heap> {
    /// A fault is due.
    pub(crate) fn fault(&mut self, f: Fault) {
        let n = self.hosts.len();
        let f = match f {
            Fault::ForgeTick => {
                if self.phase == Phase::Active {
                    self.forge();
                    if let Some(at) = self.d.forger.next(self.now) {
                        self.schedule(at, Ev::Fault(Fault::ForgeTick));
                    }
                }
                return;
            }
            Fault::Restart { node, inc } => {
                if !self.up(node) && self.hosts[node].inc == inc {
                    self.boot(node);
                }
                return;
            }
            Fault::Heal { links, generation } => {
                self.d.net.heal(&links, generation);
                let now = self.d.net.describe();
                self.trace.line(self.now, || format!("heal:{now}"));
                return;
            }
            Fault::Flap {
                a,
                b,
                down,
                until,
                generation,
            } => {
                let period = self.cfg.net.flapping.map_or(SECOND, |(_, p)| p);
                let over = self.now >= until;
                self.d.net.flap(a, b, down && !over, generation);
                if !over {
                    let at = self.now + self.d.faults.rng.gen_range(period / 10..=period);
                    let next = Fault::Flap {
                        a,
                        b,
                        down: !down,
                        until,
                        generation,
                    };
                    self.schedule(at, Ev::Fault(next));
                }
                return;
            }
            Fault::SpaceBack { node } => {
                self.stores[node].full = false;
                self.trace
                    .line(self.now, || format!("n{node} disk has space again"));
                return;
            }
            Fault::Clog { node, generation } | Fault::Unclog { node, generation } => {
                let links = node_links(node, n);
                if matches!(f, Fault::Clog { .. }) {
                    if generation == self.d.net.generation() {
                        self.d.net.cut(&links);
                    }
                } else {
                    self.d.net.heal(&links, generation);
                }
                let now = self.d.net.describe();
                self.trace.line(self.now, || format!("swizzle:{now}"));
                return;
            }
            other => other,
        };
        if self.phase != Phase::Active {
            return;
        }
        match &f {
            Fault::CrashTick => {
                let i = self.d.faults.rng.gen_range(0..n);
                if self.up(i) {
                    self.coverage.fire(Class::Crashes);
                    self.crash(i);
                    let e = self.cfg.nodes.crashes.expect("crashes on");
                    let at = self.now + self.d.faults.length(e);
                    let inc = self.hosts[i].inc;
                    self.schedule(at, Ev::Fault(Fault::Restart { node: i, inc }));
                }
            }
            Fault::PauseTick => {
                let i = self.d.faults.rng.gen_range(0..n);
                let e = self.cfg.nodes.pauses.expect("pauses on");
                let until = self.now + self.d.faults.length(e);
                if self.up(i) {
                    self.coverage.fire(Class::Pauses);
                }
                self.pause(i, until);
            }
            Fault::PartitionTick => {
                let side: Vec<bool> = loop {
                    let s: Vec<bool> = (0..n).map(|_| self.d.faults.rng.gen_bool(0.5)).collect();
                    if s.iter().any(|x| *x) && s.iter().any(|x| !*x) {
                        break s;
                    }
                };
                let links: Vec<(usize, usize)> = (0..n)
                    .flat_map(|a| (0..n).map(move |b| (a, b)))
                    .filter(|&(a, b)| side[a] != side[b])
                    .collect();
                self.coverage.fire(Class::Partitions);
                let e = self.cfg.net.partitions.expect("partitions on");
                self.cut(links, e);
            }
            Fault::OneWayTick => {
                let (a, b) = self.d.faults.pair(n);
                self.coverage.fire(Class::OneWay);
                let e = self.cfg.net.one_way.expect("one-way on");
                self.cut(vec![(a, b)], e);
            }
            Fault::FlapTick => {
                let (a, b) = self.d.faults.pair(n);
                self.coverage.fire(Class::Flapping);
                let (e, _) = self.cfg.net.flapping.expect("flapping on");
                let until = self.now + self.d.faults.length(e);
                let generation = self.d.net.generation();
                self.trace
                    .line(self.now, || format!("flapping n{a}<->n{b} until {until}µs"));
                let first = Fault::Flap {
                    a,
                    b,
                    down: true,
                    until,
                    generation,
                };
                self.schedule(self.now, Ev::Fault(first));
            }
            Fault::StorageTick => {
                let i = self.d.faults.rng.gen_range(0..n);
                if self.up(i) {
                    self.coverage.fire(Class::Storage);
                    self.stores[i].broken = true;
                    self.trace.line(self.now, || format!("n{i} storage fails"));
                }
            }
            Fault::DiskFullTick => {
                let i = self.d.faults.rng.gen_range(0..n);
                let e = self.cfg.nodes.disk_full.expect("disk-full on");
                let until = self.now + self.d.faults.length(e);
                if self.up(i) && !self.stores[i].full {
                    self.coverage.fire(Class::DiskFull);
                    self.stores[i].full = true;
                    self.stores[i].was_full = true;
                    self.trace
                        .line(self.now, || format!("n{i} disk full until {until}µs"));
                    self.schedule(until, Ev::Fault(Fault::SpaceBack { node: i }));
                }
            }
            Fault::WallStepTick => {
                let i = self.d.faults.rng.gen_range(0..n);
                let delta = self.d.faults.rng.gen_range(-60_000..=60_000);
                self.coverage.fire(Class::WallSteps);
                self.hosts[i].clock.step_wall(delta);
                self.trace
                    .line(self.now, || format!("n{i} wall clock steps {delta} ms"));
            }
            Fault::SwizzleTick => {
                self.coverage.fire(Class::Swizzle);
                let (_, step_max) = self.cfg.net.swizzle.expect("swizzle on");
                let step = self.d.faults.rng.gen_range(step_max / 10..=step_max);
                let generation = self.d.net.generation();
                let clog = self.d.faults.permutation(n);
                let unclog = self.d.faults.permutation(n);
                let mut at = self.now;
                for node in clog {
                    self.schedule(at, Ev::Fault(Fault::Clog { node, generation }));
                    at += step;
                }
                for node in unclog {
                    at += step;
                    self.schedule(at, Ev::Fault(Fault::Unclog { node, generation }));
                }
            }
            _ => unreachable!("handled above"),
        }
        if let Some(rate) = rate_of(&self.cfg, &f) {
            let at = self.now + self.d.faults.gap(rate);
            self.schedule(at, Ev::Fault(f));
        }
    }

    fn cut(&mut self, links: Vec<(usize, usize)>, e: Episodes) {
        self.d.net.cut(&links);
        let now = self.d.net.describe();
        self.trace.line(self.now, || format!("cut:{now}"));
        let at = self.now + self.d.faults.length(e);
        let generation = self.d.net.generation();
        self.schedule(at, Ev::Fault(Fault::Heal { links, generation }));
    }
}

/// Every directed link to and from `node`.
fn node_links(node: usize, n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .filter(|&o| o != node)
        .flat_map(|o| [(node, o), (o, node)])
        .collect()
}
