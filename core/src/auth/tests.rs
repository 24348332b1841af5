//! The cache and the breaker composed as the node will compose them (see the module guide),
//! told as one story through a Codios outage and its recovery.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::*;
use crate::id::Collection;
use crate::time::Instant;

/// A stand-in for the node's auth routing: requests wait in the cache, Codios is a policy map.
struct Story {
    cache: AuthCache<u64>,
    breaker: CircuitBreaker,
    codios_up: bool,
    policy: BTreeMap<&'static str, Decision>,
    names: BTreeMap<AuthKey, &'static str>,
    asks: Vec<AuthKey>,
    trace: String,
}

impl Story {
    fn new() -> Self {
        Story {
            cache: AuthCache::new(AuthPolicy::default()),
            breaker: CircuitBreaker::new(BreakerConfig {
                enabled: true,
                ..BreakerConfig::default()
            }),
            codios_up: true,
            policy: [
                ("alice", Decision::Permit),
                ("carol", Decision::Permit),
                ("mallory", Decision::Deny),
            ]
            .into(),
            names: BTreeMap::new(),
            asks: Vec::new(),
            trace: String::new(),
        }
    }

    fn line(&mut self, ms: u64, what: impl AsRef<str>) {
        writeln!(
            self.trace,
            "{:>3}.{:03}s {}",
            ms / 1000,
            ms % 1000,
            what.as_ref()
        )
        .unwrap();
    }

    fn key(&mut self, token: &'static str) -> AuthKey {
        let k = AuthKey::new(token, Action::Write, &Collection::new("orders").unwrap());
        self.names.insert(k.clone(), token);
        k
    }

    fn write(&mut self, ms: u64, req: u64, token: &'static str) {
        let now = Instant::from_millis(ms);
        let key = self.key(token);
        let what = match self.cache.lookup(now, &key) {
            Lookup::Fresh(d) => format!("hit {d:?}"),
            Lookup::Miss { stale } => {
                let stale = stale.map_or("-".into(), |s| format!("{:?}", s.decision));
                match self.breaker.should_call_codios(now) {
                    Admission::Bypass => {
                        let v = self.cache.on_codios_failure(now, &key, true);
                        format!("miss stale={stale} Bypass -> {v:?}")
                    }
                    admission => match self.cache.begin_fetch(now, key.clone(), req) {
                        FetchStart::AskCodios => {
                            self.asks.push(key);
                            format!("miss stale={stale} {admission:?} -> AskCodios")
                        }
                        FetchStart::Joined => format!("miss stale={stale} -> Joined"),
                    },
                }
            }
        };
        self.line(ms, format!("write #{req} {token}: {what}"));
    }

    /// Codios completes every call in flight, answering or failing as it is now.
    fn codios(&mut self, ms: u64) {
        let now = Instant::from_millis(ms);
        for key in std::mem::take(&mut self.asks) {
            let name = self.names[&key];
            if self.codios_up {
                let d = self.policy[name];
                let waiters = self.cache.record(now, key, d);
                let t = transition(self.breaker.on_success(now));
                self.line(ms, format!("codios {name}: {d:?}{t} -> {waiters:?} {d:?}"));
            } else {
                let t = transition(self.breaker.on_failure(now));
                let waiters = self.cache.fail(&key);
                let v = self
                    .cache
                    .on_codios_failure(now, &key, self.breaker.is_open());
                self.line(ms, format!("codios {name}: failed{t} -> {waiters:?} {v:?}"));
            }
        }
    }

    fn wake(&mut self, ms: u64) {
        assert_eq!(self.breaker.poll_timeout(), Some(Instant::from_millis(ms)));
        if self.breaker.handle_timeout(Instant::from_millis(ms)) {
            let key = self.cache.most_recently_used().unwrap().clone();
            let name = self.names[&key];
            let start = self
                .cache
                .begin_refresh(Instant::from_millis(ms), key.clone());
            assert_eq!(start, FetchStart::AskCodios);
            self.asks.push(key);
            self.line(ms, format!("timer: probe {name} -> AskCodios"));
        }
    }
}

fn transition(t: Option<Transition>) -> String {
    t.map_or(String::new(), |t| format!(", circuit {t:?}"))
}

#[test]
fn codios_outage_serves_stale_opens_the_circuit_and_recovers() {
    let mut s = Story::new();
    s.write(0, 1, "alice");
    s.write(0, 2, "alice");
    s.codios(50);
    s.write(1_000, 3, "alice");
    s.write(1_000, 4, "mallory");
    s.codios(1_050);
    s.write(2_000, 5, "mallory");
    s.trace.push_str("--- Codios goes down\n");
    s.codios_up = false;
    s.write(10_000, 6, "alice");
    s.codios(12_000);
    s.write(20_000, 7, "mallory");
    s.codios(22_000);
    s.write(42_000, 8, "alice");
    s.codios(44_000);
    s.write(45_000, 9, "mallory");
    s.write(45_000, 10, "carol");
    s.wake(49_000);
    s.codios(49_500);
    s.trace.push_str("--- Codios is back\n");
    s.codios_up = true;
    s.write(54_000, 11, "alice");
    s.write(54_000, 12, "alice");
    s.codios(54_100);
    s.write(55_000, 13, "carol");
    s.codios(55_100);
    assert_eq!(s.breaker.state(), BreakerState::Closed);
    insta::assert_snapshot!(s.trace);
}
