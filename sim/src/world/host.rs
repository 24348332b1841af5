//! A node's process on the world: booting it from its durable state, crashing it (what
//! survives on disk and what is lost), stalling it, and landing its appends and state-file
//! writes.
//!
//! A boot is a new process: a fresh monotonic origin, a fresh rng seed, and exactly the
//! `Restored` state the strand and the state files hold; completions addressed to an earlier
//! process (by boot count) are dropped. Every block that lands is checked first — never
//! stored twice, never a second block at a taken position — and every cursor file that lands
//! is checked against what is durable.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::node::{AuthSettings, Failure, Input, NodeConfig, Reply};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{AgentId, Node};

use super::heap::{Ev, Heap};
use super::{Driver, World};
use crate::checkers::{heads_forward, Checkers, Verdict};
use crate::config::{Config, Micros};
use crate::host::Host;
use crate::overrides::Class;
use crate::storage::{Completion, StateWrite, Store};

/// Starts a new process for `host` from what `store` holds, as the agent's startup does: a
/// fresh monotonic origin and rng seed (drawn from `rng`), exactly the durable `Restored`
/// state, and `cfg`'s planted bugs.
fn start(host: &mut Host, store: &mut Store, cfg: &Config, rng: &mut ChaCha8Rng, now: Micros) {
    let origin = if cfg.clocks.random_origin {
        rng.gen_range(0..1u64 << 40)
    } else {
        0
    };
    let rng_seed = rng.gen();
    host.inc += 1;
    host.mode_epoch += 1;
    host.codios_asks.clear();
    host.clock.boot(now, origin);
    store.last_append_done = now;
    store.last_write_done = now;
    let mut node = Node::new(
        NodeConfig {
            agent_id: host.agent.clone(),
            endpoint: host.endpoint.clone(),
            added_at: host.added_at,
            backoff: BackoffPolicy::default(),
            rng_seed,
            root: crate::codios::root_credential(),
            auth: cfg
                .codios
                .as_ref()
                .map(|c| AuthSettings {
                    codios: true,
                    policy: c.policy.clone(),
                    breaker: c.breaker.clone(),
                    reads_open: false,
                })
                .unwrap_or_default(),
            head_key: host.head_key.clone(),
        },
        host.key.clone(),
        store.restored(),
    );
    for &bug in &cfg.bugs {
        node.plant(bug);
    }
    host.node = Some(node);
}

/// What a crash did to a disk.
struct Crashed {
    /// Blocks of appends in flight that reached the disk anyway.
    kept_blocks: usize,
    /// State-file writes in flight that reached the disk anyway.
    kept_writes: usize,
    /// The landing and cursor checks of what survived.
    verdict: Verdict,
}

/// The disk side of node `i`'s process dying: whatever was in flight is lost, except a random
/// surviving prefix when `keep_tail` (drawn from `rng`); what survives is checked as it lands.
fn crash_disk(
    i: usize,
    stores: &mut [Store],
    checks: &mut Checkers,
    keep_tail: bool,
    rng: &mut ChaCha8Rng,
    names: &[AgentId],
) -> Crashed {
    let store = &mut stores[i];
    let (keep_a, keep_w) = if keep_tail {
        (
            rng.gen_range(0..=store.in_flight()),
            rng.gen_range(0..=store.writes_in_flight()),
        )
    } else {
        (0, 0)
    };
    let cursors_before = store.cursors.clone();
    let kept = store.crash(keep_a, keep_w);
    let kept_blocks = kept.len();
    let mut verdict = Ok(());
    for b in kept {
        verdict = verdict.and(checks.landing(i, &names[i], &stores[i], &b));
        stores[i].land(b);
    }
    stores[i].settle_view();
    if stores[i].cursors != cursors_before {
        verdict = verdict.and(cursors_landed(i, stores, checks, names));
    }
    Crashed {
        kept_blocks,
        kept_writes: keep_w,
        verdict,
    }
}

/// The oldest append in flight on node `i` (agent `me`, disk `store`) completes: its blocks
/// are checked as they land, and the input that tells the node.
fn append_landed(
    i: usize,
    me: &AgentId,
    store: &mut Store,
    checks: &mut Checkers,
) -> (Option<Input>, Verdict) {
    let blocks: Vec<sapix_core::Block> = match store.next_append() {
        Some(b) if store.next_lands() => b.to_vec(),
        _ => Vec::new(),
    };
    let mut verdict = Ok(());
    for b in &blocks {
        verdict = verdict.and(checks.landing(i, me, store, b));
    }
    let input = match store.complete_append() {
        Some(Completion::Durable(token, offsets)) => Some(Input::Appended { token, offsets }),
        Some(Completion::Failed(token)) => Some(Input::AppendFailed {
            token,
            reason: "simulated storage failure".into(),
            full: false,
        }),
        Some(Completion::Full(token)) => Some(Input::AppendFailed {
            token,
            reason: "no space left on device (simulated)".into(),
            full: true,
        }),
        None => None,
    };
    (input, verdict)
}

/// The oldest state-file write in flight on node `i` completes: a cursor file is checked
/// against what is durable, and the input that tells the node.
fn write_landed(
    i: usize,
    stores: &mut [Store],
    checks: &mut Checkers,
    names: &[AgentId],
) -> (Option<Input>, Verdict) {
    let ended = |call, ok: bool| {
        let outcome = match ok {
            true => Ok(Reply::Stored),
            false => Err(Failure::LocalStorage("the disk failed (simulated)".into())),
        };
        Some(Input::CallEnded { call, outcome })
    };
    let (head, witnessed) = (stores[i].head.clone(), stores[i].witnessed.clone());
    match stores[i].complete_write() {
        Some((StateWrite::Head(new), true)) => {
            let r = heads_forward::own(i, head.as_ref(), &new);
            (None, r.map_err(|m| ("heads_forward", m)))
        }
        Some((StateWrite::Witnessed(new), true)) => {
            let r = heads_forward::witnessed(i, &witnessed, &new);
            (None, r.map_err(|m| ("heads_forward", m)))
        }
        Some((StateWrite::Cursors { call, .. }, true)) => {
            let verdict = cursors_landed(i, stores, checks, names);
            (ended(call, true), verdict)
        }
        Some((StateWrite::Cursors { call, .. } | StateWrite::Cluster { call, .. }, ok)) => {
            (ended(call, ok), Ok(()))
        }
        Some((StateWrite::Head(_) | StateWrite::Witnessed(_), _)) | None => (None, Ok(())),
    }
}

fn cursors_landed(i: usize, stores: &[Store], checks: &mut Checkers, names: &[AgentId]) -> Verdict {
    checks
        .cursors
        .persisted(i, &stores[i].cursors, stores, |a: &AgentId| {
            names.iter().position(|n| n == a)
        })
        .map_err(|m| ("cursors", m))
}

impl<D> World<D>
where
    World<D>: Driver,
{
    /// Starts node `i`'s process from its durable state, as the agent's startup does.
    pub(crate) fn boot(&mut self, i: usize) {
        start(
            &mut self.hosts[i],
            &mut self.stores[i],
            &self.cfg,
            &mut self.node_rng,
            self.now,
        );
        let tip = self.stores[i].tip();
        self.trace
            .line(self.now, || format!("n{i} boots (strand tip {tip})"));
        self.checks.auth.restarted(i);
        let r = self.checks.acked.after_restart(i, &self.stores[i]);
        self.check("acked_writes", r);
        // The runtime wakes the core once at start.
        self.wake(i);
    }

    /// Node `i`'s process is gone: what was in flight on its disk is lost, except a surviving
    /// tail when the configuration says so; the driver tells the callers it was serving.
    pub(crate) fn crash(&mut self, i: usize) {
        if self.hosts[i].node.take().is_none() {
            return;
        }
        self.stats.crashes += 1;
        let host = &mut self.hosts[i];
        host.wake = None;
        host.clients.clear();
        host.forged.clear();
        host.paused_until = 0;
        host.deferred.clear();
        let serving = std::mem::take(&mut host.server);
        self.died(i, serving);
        let names = self.names();
        let c = crash_disk(
            i,
            &mut self.stores,
            &mut self.checks,
            self.cfg.nodes.crash_keeps_tail,
            &mut self.storage_rng,
            &names,
        );
        if c.kept_blocks + c.kept_writes > 0 {
            self.coverage.fire(Class::KeepTail);
        }
        self.trace.line(self.now, || {
            format!(
                "n{i} CRASHES ({} blocks of appends in flight survive, {} state writes)",
                c.kept_blocks, c.kept_writes
            )
        });
        self.verdict(c.verdict);
    }

    /// The oldest append in flight on node `i` lands; the node hears how it went.
    pub(crate) fn append_done(&mut self, i: usize) {
        let me = self.hosts[i].agent.clone();
        let (input, verdict) = append_landed(i, &me, &mut self.stores[i], &mut self.checks);
        self.verdict(verdict);
        if let Some(input) = input {
            self.feed(i, input);
        }
    }

    /// The oldest state-file write in flight on node `i` lands; the node hears of it.
    pub(crate) fn write_done(&mut self, i: usize) {
        let names = self.names();
        let (input, verdict) = write_landed(i, &mut self.stores, &mut self.checks, &names);
        self.verdict(verdict);
        if let Some(input) = input {
            self.feed(i, input);
        }
    }
}

impl World<Heap> {
    /// Stalls node `i`'s actor until `until`.
    pub(crate) fn pause(&mut self, i: usize, until: Micros) {
        if !self.up(i) || until <= self.hosts[i].paused_until {
            return;
        }
        self.hosts[i].paused_until = until;
        let inc = self.hosts[i].inc;
        self.trace
            .line(self.now, || format!("n{i} stalls until {until}µs"));
        self.schedule(until, Ev::Resume { node: i, inc });
    }
}
