//! §6.6: a fresh Codios deny is never overridden, and a permit is served past its TTL only as
//! DESIGN §5 allows.
//!
//! The checker keeps, per node process and key, the last decision Codios gave that process and
//! when the call for it was sent (the cache's `fetched_at`). Single flight means at most one
//! call per key is out, so every answer a node is fed is the one its cache holds — unless the
//! cache evicted it, and then the node can serve nothing. Judged at each authorization:
//! - any permit: the last decision must be a permit (a deny, fresh or stale, always wins);
//! - not degraded: that permit is younger than the permit TTL, or it is being handed to the
//!   writes that waited for it (a slow answer may arrive past the TTL counted from the send);
//! - degraded: never with `require_codios`, and within `max_stale` unless the breaker may be
//!   open (it serves at any age then).

use std::collections::BTreeMap;

use sapix_core::auth::{AuthKey, AuthPolicy, BreakerConfig, Decision};
use sapix_core::time::Instant;

/// Per node: what Codios told the current process, and calls out.
#[derive(Debug)]
pub struct AuthDecisions {
    /// Key → (decision, when its call was sent, when it was delivered).
    known: Vec<BTreeMap<AuthKey, (Decision, Instant, Instant)>>,
    asked: Vec<BTreeMap<AuthKey, Instant>>,
}

impl AuthDecisions {
    /// Nothing known, for `n` nodes.
    pub fn new(n: usize) -> Self {
        AuthDecisions {
            known: vec![BTreeMap::new(); n],
            asked: vec![BTreeMap::new(); n],
        }
    }

    /// Node `node` started a process: its cache is empty.
    pub fn restarted(&mut self, node: usize) {
        self.known[node].clear();
        self.asked[node].clear();
    }

    /// Node `node` sent a Codios call for `key` at its local `at`.
    pub fn asked(&mut self, node: usize, key: &AuthKey, at: Instant) {
        self.asked[node].insert(key.clone(), at);
    }

    /// Node `node` is fed Codios's `decision` for `key` at its local `now`.
    pub fn answered(&mut self, node: usize, key: &AuthKey, decision: Decision, now: Instant) {
        if let Some(at) = self.asked[node].remove(key) {
            self.known[node].insert(key.clone(), (decision, at, now));
        }
    }

    /// Node `node` authorized a write on `key` at its local `now`.
    pub fn authorized(
        &self,
        node: usize,
        key: &AuthKey,
        degraded: bool,
        now: Instant,
        policy: &AuthPolicy,
        breaker: &BreakerConfig,
    ) -> Result<(), String> {
        let Some(&(decision, fetched, delivered)) = self.known[node].get(key) else {
            return Err(format!(
                "n{node} authorized {key:?} with no Codios decision in this process"
            ));
        };
        let age = now.saturating_since(fetched);
        if decision == Decision::Deny {
            return Err(format!(
                "n{node} authorized {key:?} (degraded {degraded}) although Codios's last word \
                 was deny, {age:?} ago"
            ));
        }
        if !degraded && age >= policy.permit_ttl && now != delivered {
            return Err(format!(
                "n{node} authorized {key:?} as fresh with a permit {age:?} old (TTL {:?})",
                policy.permit_ttl
            ));
        }
        if degraded && policy.require_codios {
            return Err(format!(
                "n{node} served a stale permit for {key:?} with SAPIX_REQUIRE_CODIOS"
            ));
        }
        if degraded && !breaker.enabled && age > policy.max_stale {
            return Err(format!(
                "n{node} served a permit for {key:?} {age:?} old, past max_stale {:?}",
                policy.max_stale
            ));
        }
        Ok(())
    }
}
