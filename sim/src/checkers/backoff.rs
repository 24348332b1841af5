//! §4 / §6.7: the push retry schedule. After the `f`-th consecutive failure a peer is retried
//! after `min(1 s · 2^(f-1), 60 s)` with at most ±20 % jitter, and the extended-failure alert
//! fires once per episode (at the first wait that reaches the cap). Checked on every
//! `PushRetry` and `ExtendedFailure` the nodes log.

use std::collections::BTreeSet;

use sapix_core::AgentId;

/// Per node, the peers whose current failure episode has already alerted.
#[derive(Debug)]
pub struct BackoffSchedule {
    alerted: Vec<BTreeSet<AgentId>>,
}

impl BackoffSchedule {
    /// No episodes yet, for `n` nodes.
    pub fn new(n: usize) -> Self {
        BackoffSchedule {
            alerted: vec![BTreeSet::new(); n],
        }
    }

    /// Node `node` logged a retry of `peer` after `failures` failures, waiting `wait_ms`.
    pub fn retry(
        &mut self,
        node: usize,
        peer: &AgentId,
        failures: u32,
        wait_ms: u64,
    ) -> Result<(), String> {
        if failures == 1 {
            self.alerted[node].remove(peer);
        }
        let base = 1000u64
            .saturating_mul(1 << (failures.max(1) - 1).min(20))
            .min(60_000);
        // Jitter is drawn as a float: allow a millisecond of rounding either way.
        let (lo, hi) = (base * 8 / 10 - 1, base * 12 / 10 + 1);
        if failures == 0 || wait_ms < lo || wait_ms > hi {
            return Err(format!(
                "n{node} retries {peer} after {failures} failure(s) in {wait_ms} ms, outside {lo}..={hi} ms"
            ));
        }
        Ok(())
    }

    /// Node `node` logged the extended-failure alert for `peer`.
    pub fn extended(&mut self, node: usize, peer: &AgentId) -> Result<(), String> {
        if !self.alerted[node].insert(peer.clone()) {
            return Err(format!(
                "n{node} alerted an extended failure of {peer} twice in one episode"
            ));
        }
        Ok(())
    }
}
