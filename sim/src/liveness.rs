//! The liveness phase (DESIGN §6.2): faults stop, every link heals, nodes restart, and the
//! members must then converge — same blocks, full mesh, no client left waiting — within the
//! configured bound.

use sapix_core::AgentId;

use crate::checkers::{self, Verdict};
use crate::config::{Micros, MILLI, SECOND};
use crate::host::Host;
use crate::storage::Store;
use crate::world::{Ev, Heap, Phase, World};

/// How often convergence is checked in the liveness phase.
const CHECK_EVERY: Micros = 250 * MILLI;

/// Whether the cluster has settled: the members hold the same blocks, each knows every other
/// member, and no client is left waiting.
fn settled(hosts: &[Host], stores: &[Store], left_down: Option<usize>) -> Verdict {
    let index_of = |a: &AgentId| hosts.iter().position(|h| &h.agent == a);
    let members: Vec<usize> = (0..hosts.len()).filter(|&i| hosts[i].member).collect();
    // A member left down for good is still a member the others must know, but has no say.
    let live: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| left_down != Some(i))
        .collect();
    checkers::convergence::same_blocks(&live, stores).map_err(|m| ("convergence", m))?;
    for &m in &live {
        let knows: Vec<usize> = hosts[m]
            .node
            .as_ref()
            .map(|n| n.peers().keys().filter_map(index_of).collect())
            .unwrap_or_default();
        checkers::convergence::full_mesh(m, &members, &knows).map_err(|e| ("membership", e))?;
    }
    for (i, h) in hosts.iter().enumerate() {
        if let Some(m) = checkers::answered::hanging(i, &h.clients) {
            return Err(("answered", m));
        }
    }
    Ok(())
}

impl<D> World<D> {
    /// Faults stop: the liveness phase starts now, and Codios is healthy from now on.
    pub(crate) fn faults_stop(&mut self) {
        self.phase = Phase::Liveness { since: self.now };
        self.codios.heal();
        self.trace
            .line(self.now, || "LIVENESS: faults stop, all links heal".into());
    }

    /// In the liveness phase, checks convergence: done once the cluster has settled, a
    /// violation once the bound has passed without it. Whether to check again later.
    pub(crate) fn settling(&mut self) -> bool {
        let Phase::Liveness { since } = self.phase else {
            return false;
        };
        match settled(&self.hosts, &self.stores, self.cfg.leave_down) {
            Ok(()) => {
                self.stats.converged_after = Some(self.now - since);
                self.trace.line(self.now, || "CONVERGED".into());
                self.phase = Phase::Done;
                false
            }
            Err((checker, m)) if self.now >= since + self.cfg.liveness => {
                let limit = self.cfg.liveness / SECOND;
                self.fail(
                    checker,
                    format!("not settled {limit} s after faults stopped: {m}"),
                );
                false
            }
            Err(_) => true,
        }
    }
}

impl World<Heap> {
    /// Faults stop, links heal, nodes restart; convergence is checked from now on.
    pub(crate) fn liveness(&mut self) {
        self.d.net.heal_all();
        self.faults_stop();
        for i in 0..self.hosts.len() {
            if self.cfg.leave_down == Some(i) {
                self.crash(i);
                self.trace
                    .line(self.now, || format!("n{i} stays down for good"));
            } else if self.cfg.restart_all || !self.up(i) || self.stores[i].broken {
                self.crash(i);
                self.boot(i);
            }
        }
        self.schedule(self.now + CHECK_EVERY, Ev::Check);
    }

    pub(crate) fn check_converged(&mut self) {
        if self.settling() {
            self.schedule(self.now + CHECK_EVERY, Ev::Check);
        }
    }
}
