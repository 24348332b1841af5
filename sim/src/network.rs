//! The network between nodes: per-link latency, jitter, loss, duplication, reordering, and
//! partitions (symmetric, one-way, flapping).
//!
//! Links are directed, so a one-way cut lets requests through while their answers are lost
//! (the peer acts, the caller times out). Cuts are counted, so overlapping partitions heal
//! independently; [`Network::heal_all`] starts a new generation so heals scheduled before it
//! become no-ops. Whether a message makes it is decided when it is sent.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Micros, NetConfig};

/// The links between `n` nodes.
#[derive(Debug)]
pub struct Network {
    cfg: NetConfig,
    rng: ChaCha8Rng,
    n: usize,
    base: Vec<Micros>,
    cuts: Vec<u32>,
    flap_down: Vec<bool>,
    /// Loss, duplication, reordering and cuts are in force (off in the liveness phase).
    faults_on: bool,
    generation: u32,
    /// Messages lost to the drawn loss rate.
    pub(crate) lost: u64,
    /// Messages held back (reordered).
    pub(crate) held: u64,
}

impl Network {
    /// A network of `n` nodes; each directed link draws its base latency.
    pub fn new(cfg: NetConfig, n: usize, mut rng: ChaCha8Rng) -> Self {
        let base = (0..n * n)
            .map(|_| rng.gen_range(cfg.latency.0..=cfg.latency.1))
            .collect();
        Network {
            cfg,
            rng,
            n,
            base,
            cuts: vec![0; n * n],
            flap_down: vec![false; n * n],
            faults_on: true,
            generation: 0,
            lost: 0,
            held: 0,
        }
    }

    fn idx(&self, a: usize, b: usize) -> usize {
        a * self.n + b
    }

    /// Whether `a` can reach `b` now.
    pub fn up(&self, a: usize, b: usize) -> bool {
        let i = self.idx(a, b);
        self.cuts[i] == 0 && !self.flap_down[i]
    }

    /// The mesh client's call timeout.
    pub fn timeout(&self) -> Micros {
        self.cfg.timeout
    }

    /// The delay of one message from `a` to `b`, or `None` if it is lost.
    pub fn send(&mut self, a: usize, b: usize) -> Option<Micros> {
        if !self.up(a, b) {
            return None;
        }
        let mut delay = self.base[self.idx(a, b)];
        if self.cfg.jitter > 0 {
            delay += self.rng.gen_range(0..=self.cfg.jitter);
        }
        if self.faults_on {
            if self.cfg.loss > 0.0 && self.rng.gen_bool(self.cfg.loss) {
                self.lost += 1;
                return None;
            }
            if self.cfg.reorder > 0.0 && self.rng.gen_bool(self.cfg.reorder) {
                self.held += 1;
                delay += self.rng.gen_range(0..=self.cfg.reorder_delay);
            }
        }
        Some(delay)
    }

    /// Whether a request is delivered a second time.
    pub fn duplicate(&mut self) -> bool {
        self.faults_on && self.cfg.dup > 0.0 && self.rng.gen_bool(self.cfg.dup)
    }

    /// Cuts the directed links.
    pub fn cut(&mut self, links: &[(usize, usize)]) {
        for &(a, b) in links {
            let i = self.idx(a, b);
            self.cuts[i] += 1;
        }
    }

    /// Heals links cut in generation `generation`.
    pub fn heal(&mut self, links: &[(usize, usize)], generation: u32) {
        if generation != self.generation {
            return;
        }
        for &(a, b) in links {
            let i = self.idx(a, b);
            self.cuts[i] = self.cuts[i].saturating_sub(1);
        }
    }

    /// Sets a flapping link's state (both directions), if still in `generation`.
    pub fn flap(&mut self, a: usize, b: usize, down: bool, generation: u32) {
        if generation != self.generation {
            return;
        }
        let (i, j) = (self.idx(a, b), self.idx(b, a));
        self.flap_down[i] = down;
        self.flap_down[j] = down;
    }

    /// The current generation of cuts.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Faults stop: every link heals, nothing is lost, duplicated or held back any more.
    pub fn heal_all(&mut self) {
        self.cuts.iter_mut().for_each(|c| *c = 0);
        self.flap_down.iter_mut().for_each(|d| *d = false);
        self.faults_on = false;
        self.generation += 1;
    }

    /// A one-line picture of the cut links, for the trace.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for a in 0..self.n {
            for b in 0..self.n {
                if a != b && !self.up(a, b) {
                    s.push_str(&format!(" n{a}->n{b}"));
                }
            }
        }
        if s.is_empty() {
            " all links up".into()
        } else {
            s
        }
    }
}
