//! The Codios decision cache: what Codios said about a (token, action, resource), and when.
//!
//! It owns three things: the bounded table of decisions, the single-flight table of Codios
//! calls in progress, and the rules for what may be served when Codios cannot be asked.
//! Invariants: a deny is never overridden by anything but a newer Codios answer, fresh or
//! stale; a permit past its TTL is served only when Codios failed, within `max_stale` (any age
//! while the breaker is open) and never with `require_codios`; at most one Codios call is in
//! flight per key; the table never holds more than `capacity` decisions.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::Credential;
use crate::id::Collection;
use crate::time::Instant;

/// What a request wants to do to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Read records of a collection.
    Read,
    /// Append records to a collection.
    Write,
}

/// Codios's answer for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The principal may do it.
    Permit,
    /// The principal may not.
    Deny,
}

/// The cache key: who (a BLAKE3 hash of the bearer token, never the token), what, and on what.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthKey {
    /// Who asks: BLAKE3 of the bearer token, so the token itself is never kept by the cache.
    pub subject: Credential,
    /// The action asked for.
    pub action: Action,
    /// The collection it is asked on.
    pub resource: Collection,
}

impl AuthKey {
    /// The key for `token` doing `action` on `resource`.
    pub fn new(token: &str, action: Action, resource: &Collection) -> Self {
        AuthKey::of(Credential::of_token(token), action, resource)
    }

    /// The key for `subject` doing `action` on `resource`.
    pub fn of(subject: Credential, action: Action, resource: &Collection) -> Self {
        AuthKey {
            subject,
            action,
            resource: resource.clone(),
        }
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A short hash prefix is enough to tell keys apart in a trace.
        write!(f, "{:?}/{:?}/{}", self.subject, self.action, self.resource)
    }
}

/// How long decisions are believed, and what may be served when Codios fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    /// How long a permit is served without asking again (`SAPIX_AUTH_CACHE_TTL_SECS`, 5 s).
    pub permit_ttl: Duration,
    /// How long a deny is served without asking again; the spec fixes it at 2 s.
    pub deny_ttl: Duration,
    /// How old a permit may be and still be served when Codios fails
    /// (`SAPIX_AUTH_MAX_STALE_SECS`, 300 s). Measured from when it was fetched.
    pub max_stale: Duration,
    /// `SAPIX_REQUIRE_CODIOS`: fail closed, never serve a permit past its TTL.
    pub require_codios: bool,
    /// The most decisions kept; beyond it the least recently used is dropped.
    pub capacity: usize,
}

impl AuthPolicy {
    /// The spec's deny TTL; not configurable.
    pub const DENY_TTL: Duration = Duration::from_secs(2);
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            permit_ttl: Duration::from_secs(5),
            deny_ttl: Self::DENY_TTL,
            max_stale: Duration::from_secs(300),
            require_codios: false,
            capacity: 100_000,
        }
    }
}

/// A cached decision past its TTL: what could be served if Codios fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleEntry {
    /// The decision.
    pub decision: Decision,
    /// When the Codios call that produced it was sent.
    pub fetched_at: Instant,
    /// How old it is at the lookup.
    pub age: Duration,
}

/// The answer of [`AuthCache::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A decision within its TTL: act on it, no Codios call.
    Fresh(Decision),
    /// Codios must be asked; `stale` is what is cached, if anything, past its TTL.
    Miss {
        /// The expired decision, if one is cached.
        stale: Option<StaleEntry>,
    },
}

/// The answer of [`AuthCache::begin_fetch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStart {
    /// First question for this key: the caller sends the Codios call.
    AskCodios,
    /// A call for this key is already out; the waiter is answered when it completes.
    Joined,
}

/// What to do with a write whose Codios call failed (or was bypassed by the open breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Serve the cached permit: the write proceeds. `degraded` (log `auth_degraded`) unless
    /// the permit was still within its TTL.
    Permit {
        /// The permit is past its TTL.
        degraded: bool,
        /// How long ago it was fetched.
        age: Duration,
    },
    /// A cached deny, at any age: the write is denied.
    Deny,
    /// No decision may be served: the write is refused (the server answers 503).
    Refuse,
}

#[derive(Debug, Clone)]
struct Cached {
    decision: Decision,
    fetched_at: Instant,
    /// Position in the recency order; larger is more recent.
    used: u64,
}

#[derive(Debug)]
struct Fetch<W> {
    started: Instant,
    waiters: Vec<W>,
}

/// The bounded, single-flight Codios decision cache; `W` identifies a waiting request.
///
/// Eviction is least-recently-used: a key that is looked up keeps its place, so a flood of
/// one-shot tokens evicts itself and other cold keys, and the hot keys of real clients — the
/// ones whose stale permits keep writes flowing during a Codios blip — survive it.
#[derive(Debug)]
pub struct AuthCache<W = u64> {
    policy: AuthPolicy,
    entries: BTreeMap<AuthKey, Cached>,
    /// Recency order: `used` counter → key. The first entry is the eviction victim.
    recency: BTreeMap<u64, AuthKey>,
    use_counter: u64,
    in_flight: BTreeMap<AuthKey, Fetch<W>>,
    /// Lookups answered fresh, and lookups that had to ask Codios, since start.
    hits: u64,
    misses: u64,
}

impl<W> AuthCache<W> {
    /// An empty cache under `policy`. A capacity of zero caches nothing (every write asks).
    pub fn new(policy: AuthPolicy) -> Self {
        AuthCache {
            policy,
            entries: BTreeMap::new(),
            recency: BTreeMap::new(),
            use_counter: 0,
            in_flight: BTreeMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// Lookups since start: (answered fresh from the cache, needing Codios).
    pub fn lookups(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// The policy in force.
    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    /// How many decisions are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no decision is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many keys have a Codios call in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The key looked up or recorded last: what a breaker probe asks about.
    pub fn most_recently_used(&self) -> Option<&AuthKey> {
        self.recency.last_key_value().map(|(_, k)| k)
    }

    /// What is known about `key` at `now`. Counts as a use for eviction.
    ///
    /// Fresh means younger than the TTL: a permit fetched at `t` is fresh until just before
    /// `t + permit_ttl`, and a miss from that instant on.
    pub fn lookup(&mut self, now: Instant, key: &AuthKey) -> Lookup {
        let Some(cached) = self.entries.get(key) else {
            self.misses += 1;
            return Lookup::Miss { stale: None };
        };
        let (decision, fetched_at) = (cached.decision, cached.fetched_at);
        self.touch(key);
        let age = now.saturating_since(fetched_at);
        if age < self.ttl(decision) {
            self.hits += 1;
            Lookup::Fresh(decision)
        } else {
            self.misses += 1;
            Lookup::Miss {
                stale: Some(StaleEntry {
                    decision,
                    fetched_at,
                    age,
                }),
            }
        }
    }

    /// Registers `waiter` as needing Codios's answer for `key`. Only the first waiter of a key
    /// gets [`FetchStart::AskCodios`]; the rest join the call already out.
    ///
    /// Waiters are bounded by the requests the server admits, not by this cache.
    pub fn begin_fetch(&mut self, now: Instant, key: AuthKey, waiter: W) -> FetchStart {
        match self.in_flight.entry(key) {
            MapEntry::Occupied(mut o) => {
                o.get_mut().waiters.push(waiter);
                FetchStart::Joined
            }
            MapEntry::Vacant(v) => {
                v.insert(Fetch {
                    started: now,
                    waiters: vec![waiter],
                });
                FetchStart::AskCodios
            }
        }
    }

    /// Like [`AuthCache::begin_fetch`] with nobody waiting: a breaker probe or a refresh.
    pub fn begin_refresh(&mut self, now: Instant, key: AuthKey) -> FetchStart {
        match self.in_flight.entry(key) {
            MapEntry::Occupied(_) => FetchStart::Joined,
            MapEntry::Vacant(v) => {
                v.insert(Fetch {
                    started: now,
                    waiters: Vec::new(),
                });
                FetchStart::AskCodios
            }
        }
    }

    /// Codios answered `decision` for `key`: cache it and return the waiters to answer, in
    /// arrival order.
    ///
    /// The TTL counts from when the call was sent, not from `now`: Codios decided somewhere in
    /// between, and counting from the earlier end never believes a decision longer than the TTL.
    /// An answer with no call in flight (one already given up by [`AuthCache::fail`]) is
    /// dropped, since it may be older than what is cached; the node likewise drops answers to
    /// calls it has failed, by request id, before a new call for the key goes out.
    pub fn record(&mut self, now: Instant, key: AuthKey, decision: Decision) -> Vec<W> {
        let Some(fetch) = self.in_flight.remove(&key) else {
            return Vec::new();
        };
        let fetched_at = fetch.started.min(now);
        if let Some(cached) = self.entries.get_mut(&key) {
            cached.decision = decision;
            cached.fetched_at = fetched_at;
            self.touch(&key);
        } else if self.policy.capacity > 0 {
            while self.entries.len() >= self.policy.capacity {
                self.evict_least_recent();
            }
            self.use_counter += 1;
            self.recency.insert(self.use_counter, key.clone());
            self.entries.insert(
                key,
                Cached {
                    decision,
                    fetched_at,
                    used: self.use_counter,
                },
            );
        }
        fetch.waiters
    }

    /// The Codios call for `key` failed or timed out: return its waiters, in arrival order, to
    /// be answered with [`AuthCache::on_codios_failure`].
    pub fn fail(&mut self, key: &AuthKey) -> Vec<W> {
        self.in_flight
            .remove(key)
            .map(|f| f.waiters)
            .unwrap_or_default()
    }

    /// What a write on `key` gets at `now` when Codios could not answer, either because the
    /// call failed or because the open breaker bypassed it (`breaker_open`).
    ///
    /// A cached deny denies at any age. A permit within its TTL is served as usual. Past it, a
    /// permit is served, degraded, if fetched at most `max_stale` ago, or at any age while the
    /// breaker is open — never with `require_codios`, which wins even over an open breaker
    /// (that combination is refused at config time; this is the second line of defence).
    pub fn on_codios_failure(
        &self,
        now: Instant,
        key: &AuthKey,
        breaker_open: bool,
    ) -> FailureVerdict {
        let Some(cached) = self.entries.get(key) else {
            return FailureVerdict::Refuse;
        };
        let age = now.saturating_since(cached.fetched_at);
        match cached.decision {
            Decision::Deny => FailureVerdict::Deny,
            Decision::Permit if age < self.policy.permit_ttl => FailureVerdict::Permit {
                degraded: false,
                age,
            },
            Decision::Permit if self.policy.require_codios => FailureVerdict::Refuse,
            Decision::Permit if breaker_open || age <= self.policy.max_stale => {
                FailureVerdict::Permit {
                    degraded: true,
                    age,
                }
            }
            Decision::Permit => FailureVerdict::Refuse,
        }
    }

    fn ttl(&self, decision: Decision) -> Duration {
        match decision {
            Decision::Permit => self.policy.permit_ttl,
            Decision::Deny => self.policy.deny_ttl,
        }
    }

    fn touch(&mut self, key: &AuthKey) {
        if let Some(cached) = self.entries.get_mut(key) {
            self.recency.remove(&cached.used);
            self.use_counter += 1;
            cached.used = self.use_counter;
            self.recency.insert(self.use_counter, key.clone());
        }
    }

    fn evict_least_recent(&mut self) {
        if let Some((_, key)) = self.recency.pop_first() {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests;
