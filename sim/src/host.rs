//! One node's process: booting it from its durable state, crashing it (what survives on
//! disk and what is lost), stalling it, and landing its appends and state-file writes.
//!
//! A boot is a new process: a fresh monotonic origin, a fresh rng seed, and exactly the
//! `Restored` state the strand and the state files hold; completions addressed to an earlier
//! process (by boot count) are dropped. Every block that lands is checked first — never
//! stored twice, never a second block at a taken position — and every cursor file that lands
//! is checked against what is durable.

use std::collections::BTreeMap;

use rand::Rng;
use sapix_core::keys::AgentKey;
use sapix_core::node::{AuthSettings, Input, NodeConfig, RequestId};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{AgentId, Node, UnixMillis};

use crate::checkers;
use crate::clock::NodeClock;
use crate::config::Micros;
use crate::storage::{Completion, StateWrite};
use crate::workload::Client;
use crate::world::{Ev, World};

/// One node: its identity, its process (when up), its clocks and its open requests.
pub(crate) struct Host {
    pub(crate) agent: AgentId,
    pub(crate) endpoint: String,
    pub(crate) key: AgentKey,
    pub(crate) added_at: UnixMillis,
    pub(crate) node: Option<Node>,
    /// Boot count; completions of an earlier process are ignored.
    pub(crate) inc: u32,
    pub(crate) clock: NodeClock,
    pub(crate) wake: Option<Micros>,
    /// Requests from peers being handled: request → (call, caller).
    pub(crate) server: BTreeMap<RequestId, (u64, usize)>,
    /// Requests from clients being handled.
    pub(crate) clients: BTreeMap<RequestId, Client>,
    /// Bumped whenever the mode may change (a switch, a restart).
    pub(crate) mode_epoch: u64,
    pub(crate) spins: u32,
    /// The actor is stalled until then; inputs wait in `deferred`.
    pub(crate) paused_until: Micros,
    pub(crate) deferred: std::collections::VecDeque<Input>,
    /// An initial member, or divided in with an acknowledged answer.
    pub(crate) member: bool,
}

impl Host {
    /// Node `agent`, not started yet.
    pub(crate) fn new(agent: AgentId, key: AgentKey, clock: NodeClock, member: bool) -> Self {
        Host {
            key,
            endpoint: format!("http://{agent}.sim:7475"),
            agent,
            added_at: clock.wall(0),
            node: None,
            inc: 0,
            clock,
            wake: None,
            server: BTreeMap::new(),
            clients: BTreeMap::new(),
            mode_epoch: 0,
            spins: 0,
            paused_until: 0,
            deferred: Default::default(),
            member,
        }
    }
}

impl World {
    /// Starts node `i`'s process from its durable state, as the agent's startup does.
    pub(crate) fn boot(&mut self, i: usize) {
        let origin = if self.cfg.clocks.random_origin {
            self.node_rng.gen_range(0..1u64 << 40)
        } else {
            0
        };
        let rng_seed = self.node_rng.gen();
        let host = &mut self.hosts[i];
        host.inc += 1;
        host.mode_epoch += 1;
        host.clock.boot(self.now, origin);
        let store = &mut self.stores[i];
        store.last_append_done = self.now;
        store.last_write_done = self.now;
        let mut node = Node::new(
            NodeConfig {
                agent_id: host.agent.clone(),
                endpoint: host.endpoint.clone(),
                added_at: host.added_at,
                backoff: BackoffPolicy::default(),
                rng_seed,
                auth: self
                    .cfg
                    .codios
                    .as_ref()
                    .map(|c| AuthSettings {
                        codios: true,
                        policy: c.policy.clone(),
                        breaker: c.breaker.clone(),
                    })
                    .unwrap_or_default(),
            },
            host.key.clone(),
            store.restored(),
        );
        for &bug in &self.cfg.bugs {
            node.plant(bug);
        }
        host.node = Some(node);
        let tip = store.tip();
        self.trace
            .line(self.now, || format!("n{i} boots (strand tip {tip})"));
        self.checks.auth.restarted(i);
        let r = self.checks.acked.after_restart(i, &self.stores[i]);
        self.check("acked_writes", r);
        // The runtime wakes the core once at start.
        self.wake(i);
    }

    /// Kills node `i`'s process: what was in flight is lost, except a surviving tail when
    /// the configuration says so; callers waiting on it see their connections reset.
    pub(crate) fn crash(&mut self, i: usize) {
        if self.hosts[i].node.take().is_none() {
            return;
        }
        self.stats.crashes += 1;
        let host = &mut self.hosts[i];
        host.wake = None;
        host.clients.clear();
        host.paused_until = 0;
        host.deferred.clear();
        let server = std::mem::take(&mut host.server);
        for (_, (call, from)) in server {
            if let Some(c) = self.calls.get(&call) {
                let input = c.kind.failure("connection reset".into());
                if let Some(d) = self.net.send(i, from) {
                    self.schedule(self.now + d, Ev::Reply { call, input });
                }
            }
        }
        let store = &mut self.stores[i];
        let (keep_a, keep_w) = if self.cfg.nodes.crash_keeps_tail {
            (
                self.storage_rng.gen_range(0..=store.in_flight()),
                self.storage_rng.gen_range(0..=store.writes_in_flight()),
            )
        } else {
            (0, 0)
        };
        let cursors_before = store.cursors.clone();
        let kept = store.crash(keep_a, keep_w);
        self.trace.line(self.now, || {
            format!(
                "n{i} CRASHES ({} blocks of appends in flight survive, {keep_w} state writes)",
                kept.len()
            )
        });
        for b in kept {
            self.land(i, &b);
            self.stores[i].land(b);
        }
        self.stores[i].settle_view();
        if self.stores[i].cursors != cursors_before {
            self.cursors_landed(i);
        }
    }

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

    /// Checks a block about to become durable on node `i`.
    pub(crate) fn land(&mut self, i: usize, b: &sapix_core::Block) {
        let r = checkers::stored_once::check_landing(&self.stores[i], b);
        self.check("stored_once", r);
        let r = self.checks.equivocation.landed(b);
        self.check("no_equivocation", r);
    }

    pub(crate) fn append_done(&mut self, i: usize, inc: u32) {
        if self.hosts[i].inc != inc || !self.up(i) {
            return;
        }
        let blocks: Vec<sapix_core::Block> = match self.stores[i].next_append() {
            Some(b) if !self.stores[i].broken => b.to_vec(),
            _ => Vec::new(),
        };
        for b in &blocks {
            self.land(i, b);
        }
        match self.stores[i].complete_append() {
            Some(Completion::Durable(token, offsets)) => {
                self.feed(i, Input::Appended { token, offsets })
            }
            Some(Completion::Failed(token)) => self.feed(
                i,
                Input::AppendFailed {
                    token,
                    reason: "simulated storage failure".into(),
                },
            ),
            None => {}
        }
    }

    pub(crate) fn write_done(&mut self, i: usize, inc: u32) {
        if self.hosts[i].inc != inc || !self.up(i) {
            return;
        }
        match self.stores[i].complete_write() {
            Some(StateWrite::Cursors { peer, cursor, .. }) => {
                self.cursors_landed(i);
                self.feed(i, Input::CursorPersisted { peer, cursor });
            }
            Some(StateWrite::Cluster { version, .. }) => {
                self.feed(i, Input::ClusterPersisted { version })
            }
            None => {}
        }
    }

    fn cursors_landed(&mut self, i: usize) {
        let names: Vec<AgentId> = self.hosts.iter().map(|h| h.agent.clone()).collect();
        let r = self.checks.cursors.persisted(
            i,
            &self.stores[i].cursors,
            &self.stores,
            |a: &AgentId| names.iter().position(|n| n == a),
        );
        self.check("cursors", r);
    }
}
