//! The liveness phase (DESIGN §6.2): faults stop, every link heals, nodes restart, and the
//! members must then converge — same blocks, full mesh, no client left waiting — within the
//! configured bound.

use crate::checkers;
use crate::config::{Micros, MILLI, SECOND};
use crate::world::{Ev, Phase, World};

/// How often convergence is checked in the liveness phase.
const CHECK_EVERY: Micros = 250 * MILLI;

impl World {
    /// Faults stop, links heal, nodes restart; convergence is checked from now on.
    pub(crate) fn liveness(&mut self) {
        self.phase = Phase::Liveness { since: self.now };
        self.net.heal_all();
        self.codios.heal();
        self.trace
            .line(self.now, || "LIVENESS: faults stop, all links heal".into());
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
        let Phase::Liveness { since } = self.phase else {
            return;
        };
        let members: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.hosts[i].member)
            .collect();
        let live: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| self.cfg.leave_down != Some(i))
            .collect();
        let mut result =
            checkers::convergence::same_blocks(&live, &self.stores).map_err(|m| ("convergence", m));
        if result.is_ok() {
            for &m in &live {
                let knows: Vec<usize> = self.hosts[m]
                    .node
                    .as_ref()
                    .map(|n| n.peers().keys().filter_map(|a| self.index_of(a)).collect())
                    .unwrap_or_default();
                let r = checkers::convergence::full_mesh(m, &members, &knows);
                if let Err(e) = r {
                    result = Err(("membership", e));
                    break;
                }
            }
        }
        if result.is_ok() {
            for (i, h) in self.hosts.iter().enumerate() {
                if let Some(m) = checkers::answered::hanging(i, &h.clients) {
                    result = Err(("answered", m));
                    break;
                }
            }
        }
        match result {
            Ok(()) => {
                self.stats.converged_after = Some(self.now - since);
                self.trace.line(self.now, || "CONVERGED".into());
                self.phase = Phase::Done;
            }
            Err((checker, m)) if self.now >= since + self.cfg.liveness => {
                let limit = self.cfg.liveness / SECOND;
                self.fail(
                    checker,
                    format!("not settled {limit} s after faults stopped: {m}"),
                );
            }
            Err(_) => self.schedule(self.now + CHECK_EVERY, Ev::Check),
        }
    }
}
