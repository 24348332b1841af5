//! The liveness phase (DESIGN §6.2): faults stop, every link heals, nodes restart, and the
//! members must then converge — same blocks, full mesh, no client left waiting — within the
//! configured bound.

use sapix_core::AgentId;

use super::heap::{Ev, Heap};
use super::{Phase, World};
use crate::checkers::forgery::Forgeries;
use crate::checkers::{self, Verdict};
use crate::config::{Micros, MILLI, SECOND};
use crate::host::Host;
use crate::storage::Store;

/// How often convergence is checked in the liveness phase.
const CHECK_EVERY: Micros = 250 * MILLI;

/// Whether every live member knows every member (one left down for good included).
fn knows_all(hosts: &[Host], left_down: Option<usize>) -> Result<(), String> {
    let index_of = |a: &AgentId| hosts.iter().position(|h| &h.agent == a);
    let members: Vec<usize> = (0..hosts.len()).filter(|&i| hosts[i].member).collect();
    for &m in members.iter().filter(|&&i| left_down != Some(i)) {
        let knows: Vec<usize> = hosts[m]
            .node
            .as_ref()
            .map(|n| n.peers().keys().filter_map(index_of).collect())
            .unwrap_or_default();
        checkers::convergence::full_mesh(m, &members, &knows)?;
    }
    Ok(())
}

/// Whether the cluster has settled: the members hold the same blocks, each knows every other
/// member, and no client is left waiting.
fn settled(
    hosts: &[Host],
    stores: &[Store],
    left_down: Option<usize>,
    forgeries: &Forgeries,
) -> Verdict {
    let live: Vec<usize> = (0..hosts.len())
        .filter(|&i| hosts[i].member && left_down != Some(i))
        .collect();
    let victims = forgeries.victims();
    checkers::convergence::same_blocks(&live, stores, &victims).map_err(|m| ("convergence", m))?;
    // Every node that stores a forged block has detected it, once its author's own block at
    // that seq is durable on a live member (not itself forged there).
    let genuine = |author: &AgentId, seq: u64| {
        live.iter().any(|&m| {
            stores[m]
                .get(author, seq)
                .is_some_and(|(_, v)| !forgeries.is_forged(&v.block().hash))
        })
    };
    forgeries
        .undetected(&live, genuine)
        .map_err(|m| ("forgery", m))?;
    knows_all(hosts, left_down).map_err(|e| ("membership", e))?;
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
        let Err((checker, m)) = settled(
            &self.hosts,
            &self.stores,
            self.cfg.leave_down,
            &self.checks.forgery,
        ) else {
            self.stats.converged_after = Some(self.now - since);
            self.trace.line(self.now, || "CONVERGED".into());
            self.phase = Phase::Done;
            return false;
        };
        // Membership has its own, tighter bound (DESIGN §6.9), counted from the latest of
        // faults stopping, the last member joining and the end of a stall still running when
        // faults stopped (a stalled node cannot tell anyone of the members only it knows).
        let stalls_end = self.hosts.iter().map(|h| h.paused_until).max().unwrap_or(0);
        let from = since.max(self.members_changed_at).max(stalls_end);
        if self.now >= from + self.cfg.membership {
            if let Err(m) = knows_all(&self.hosts, self.cfg.leave_down) {
                let limit = self.cfg.membership / SECOND;
                let m = format!("not every member known {limit} s after faults stopped: {m}");
                self.fail("membership", m);
                return false;
            }
        }
        if self.now >= since + self.cfg.liveness {
            let limit = self.cfg.liveness / SECOND;
            self.fail(
                checker,
                format!("not settled {limit} s after faults stopped: {m}"),
            );
            return false;
        }
        true
    }
}

impl World<Heap> {
    /// Faults stop, links heal, nodes restart; convergence is checked from now on.
    pub(crate) fn liveness(&mut self) {
        self.d.net.heal_all();
        self.faults_stop();
        for i in 0..self.hosts.len() {
            // Space returns; a node whose disk was full must take writes again by itself.
            self.stores[i].full = false;
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
