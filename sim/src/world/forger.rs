//! The forging node on Layer 0's world: it forges a block of a member (`crate::forger` picks
//! which) over that member's own durable chain, and sends it to every node that is up, as a
//! push of one block no peer made. Nobody is told which block is forged but the checkers.

use sapix_core::block::{Hash, Verified};
use sapix_core::node::Input;

use super::heap::Heap;
use super::{Driver, World};
use crate::overrides::Class;

impl World<Heap> {
    /// The forger acts.
    pub(crate) fn forge(&mut self) {
        let members: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.hosts[i].member)
            .collect();
        let v = self.d.forger.victim(&members);
        let author = self.hosts[v].agent.clone();
        let tip = self.stores[v].tips().get(&author).map_or(0, |(s, _)| *s);
        let seq = self.d.forger.seq(tip);
        let prev = match seq {
            1 => Hash::ZERO,
            s => {
                self.stores[v]
                    .get(&author, s - 1)
                    .expect("durable")
                    .1
                    .block()
                    .hash
            }
        };
        let key = self.hosts[v].key.clone();
        let block = self.d.forger.forge(&author, seq, prev, &key);
        self.checks.forgery.planted(&block);
        self.coverage.fire(Class::Forgery);
        let hash = block.hash;
        self.trace.line(self.now, || {
            format!("FORGER signs {author}/{seq} {hash:?} with the seed and sends it to all")
        });
        for u in 0..self.hosts.len() {
            if !self.up(u) {
                continue;
            }
            let request = self.new_request();
            self.hosts[u].forged.insert(request);
            let blocks = vec![Verified::trusted(block.clone())];
            self.feed(
                u,
                Input::IngestRequested {
                    request,
                    blocks,
                    head: None,
                },
            );
        }
    }
}
