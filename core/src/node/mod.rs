//! The node: one state machine that owns every decision about a node's writes, ingests and
//! replication (DESIGN §4) and the authorization of client writes (§5).
//!
//! Drive it like quinn-proto's `Connection`: feed facts with [`Node::handle`], call
//! [`Node::handle_timeout`] when [`Node::poll_timeout`] says so, and after each of those drain
//! [`Node::poll_output`] until `None`, performing each output. Output order is part of the
//! contract: nothing is pushed, copied or acknowledged before the [`Output::Append`] that stores
//! it has come back as [`Input::Appended`] — persist before sending or acknowledging.
//!
//! The work is split by concern: [`commit`](self) (appends, writes, ingest, CP waits),
//! `mesh` (the drain tick, pushes, probes, pulls), `admin` (status, consistency, sync, divide,
//! membership), `authz` (whether a client's token may write: the Codios cache and breaker),
//! and `call` (the calls in flight: a shell reports each one's end as [`Input::CallEnded`]
//! with its [`CallId`]).
//! Invariants kept here: every block handed out in an `Append` is the next link of its
//! author's chain; a response that depends on an append is held until every append up
//! to it is durable; a CP write is acknowledged only once every peer holds it.

mod admin;
mod authz;
mod bootstrap;
mod call;
mod cluster_writes;
mod commit;
mod divide;
mod event;
mod failure;
mod gate;
mod heads;
mod input;
mod join;
mod mesh;
mod output;
mod own;
mod pipeline;
#[cfg(feature = "sim")]
pub mod planted;
#[cfg(not(feature = "sim"))]
mod planted;
mod positions;
mod reply;
mod response;
mod rotate;
mod timers;

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use authz::AuthSettings;
pub use call::CallId;
pub use event::Event;
pub use failure::Failure;
pub use heads::{
    HeadRefusal, LedgerAnswer, LedgerQuery, LedgerRefusal, OwnChainUnsafe, WitnessedChainUnsafe,
    HEAD_EVERY,
};
pub use input::{AppendToken, Input, RequestId};
pub use output::{ClusterState, Output};
pub use positions::{BadPosition, ChainPosition, MAX_POSITION_WAIT};
pub use reply::Reply;
pub use response::{Receipt, Response};
pub use timers::{Timer, Wake};

use crate::auth::Credential;
use crate::chain::Chains;
use crate::id::AgentId;
use crate::keys::AgentKey;
use crate::ledger::{HeadKey, SignedHead};
use crate::repl::backoff::BackoffPolicy;
use crate::repl::membership::Membership;
use crate::repl::peer::{Peer, PeerInfo};
use crate::repl::pull::Pull;
use crate::status::{Consistency, DivideProgress, Role};
use crate::time::{Instant, UnixMillis};
use call::Done;
use gate::ConsistencyGate;
use pipeline::{CommitPipeline, Pending};

/// The drain tick: how often the node wakes to retry, probe and pull (spec: 500 ms).
pub const TICK: Duration = Duration::from_millis(500);

/// What a node is told at start that never changes while it runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id.
    pub agent_id: AgentId,
    /// This node's base URL, as peers reach it.
    pub endpoint: String,
    /// When it first started (wall clock), for status.
    pub added_at: UnixMillis,
    /// Push retry schedule.
    pub backoff: BackoffPolicy,
    /// Seed of the node's rng (backoff jitter). Different per node.
    pub rng_seed: u64,
    /// The root key's credential (BLAKE3 of the key): its writes are always permitted and
    /// Codios is never asked about it.
    pub root: Credential,
    /// How other client writes are authorized; the default is local mode (root key only).
    pub auth: AuthSettings,
    /// This node's own head key (never derived from the master seed).
    pub head_key: HeadKey,
}

/// What a node recovers from its durable state at start.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Every author's chain, from the strand.
    pub chains: Chains,
    /// The strand's last durable offset.
    pub local_tip: u64,
    /// The persisted cluster view; `None` on a node's first start.
    pub cluster: Option<ClusterState>,
    /// Persisted pull cursors.
    pub cursors: BTreeMap<AgentId, u64>,
    /// The last head this node signed of its own chain, as persisted.
    pub head: Option<SignedHead>,
    /// The equivocation evidence kept on disk, by author.
    pub evidence: Vec<(AgentId, crate::ledger::EvidenceId)>,
    /// The latest heads of other authors this node witnessed, as persisted (checked by the
    /// shell on reading).
    pub witnessed: Vec<crate::ledger::VerifiedHead>,
}

/// One node's sans-IO state machine.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    key: AgentKey,
    /// CP or AP, and the CP writes waiting for every peer.
    gate: ConsistencyGate,
    chains: Chains,
    outputs: VecDeque<Output>,
    /// Appends in flight and the answers waiting for them to be durable.
    commit: CommitPipeline,
    /// Every member's entry, this node's and tombstones included; `peers` holds a [`Peer`]
    /// for each live one but this node.
    membership: Membership,
    peers: BTreeMap<AgentId, Peer>,
    pulls: BTreeMap<AgentId, Pull>,
    sync_waiters: BTreeMap<AgentId, Vec<RequestId>>,
    /// Reads waiting for chain positions (read-your-writes).
    reads: positions::PositionWaits,
    /// Mesh and Codios calls in flight.
    calls: call::Calls,
    admin: admin::Admin,
    authz: authz::Authz,
    bugs: planted::Bugs,
    /// This node's own chain: how far it is durable, and when it got there.
    own: own::OwnChain,
    /// Signed heads: this node's, and the latest of each author held.
    heads: heads::Heads,
    rng: ChaCha8Rng,
    tick_at: Option<Instant>,
    /// What the last wake was for (traces).
    last_wake: Option<Wake>,
    last_now: Instant,
}

impl Node {
    /// A node with `key` as its signing key and the state it recovered.
    pub fn new(config: NodeConfig, key: AgentKey, restored: Restored) -> Self {
        let cluster = restored.cluster.unwrap_or(ClusterState {
            role: Role::Primary,
            consistency: Consistency::Cp,
            peers: Vec::new(),
            me: None,
        });
        let me = cluster.me.clone().unwrap_or_else(|| {
            PeerInfo::new(
                config.agent_id.clone(),
                config.endpoint.clone(),
                cluster.role,
                config.added_at.0,
            )
        });
        let mut membership = Membership::new(me, cluster.peers.iter().cloned());
        // A configured endpoint changed since the last run is the new word; a wildcard one
        // (0.0.0.0, [::]) never replaces an endpoint the cluster gave this node.
        if !is_wildcard(&config.endpoint) {
            membership.set_me(Some(&config.endpoint), None);
        }
        let local_key = config.head_key.public();
        let enrolled = membership.enrol_me(local_key).is_some();
        let key_differs = membership
            .me()
            .head_keys
            .current()
            .filter(|k| *k != local_key);
        let own_durable = restored
            .chains
            .tip(&config.agent_id)
            .map_or(0, |(seq, _)| seq);
        let mut node = Node {
            key,
            gate: ConsistencyGate::new(cluster.consistency),
            chains: restored.chains,
            outputs: VecDeque::new(),
            commit: CommitPipeline::new(restored.local_tip),
            membership,
            peers: BTreeMap::new(),
            pulls: BTreeMap::new(),
            reads: positions::PositionWaits::default(),
            sync_waiters: BTreeMap::new(),
            calls: call::Calls::default(),
            admin: admin::Admin::default(),
            authz: authz::Authz::new(&config.auth, config.root),
            bugs: planted::Bugs::default(),
            own: own::OwnChain::new(own_durable, config.added_at),
            heads: heads::Heads::new(
                config.head_key.clone(),
                restored.head,
                restored.evidence,
                restored.witnessed,
            ),
            rng: ChaCha8Rng::seed_from_u64(config.rng_seed),
            tick_at: None,
            last_wake: None,
            last_now: Instant::ZERO,
            config,
        };
        for info in cluster.peers.into_iter().filter(|p| !p.removed) {
            let cursor = restored.cursors.get(&info.agent_id).copied().unwrap_or(0);
            node.add_peer(info, cursor);
        }
        if enrolled && !node.peers.is_empty() {
            // An entry from before enrolment: the cluster learns the key. (A node with no
            // peers keeps it in memory; its probe answers carry it to a divider.)
            node.log(Event::HeadKeyEnrolled {
                member: node.config.agent_id.clone(),
                key: local_key,
                replaced: None,
            });
            node.persist();
        }
        if let Some(enrolled) = key_differs {
            let local = local_key;
            node.log(Event::HeadKeyNotEnrolled { local, enrolled });
        }
        if !node.peers.is_empty() {
            // Probe and pull at once after a restart: CP refuses writes until peers answer.
            node.tick_at = Some(Instant::ZERO);
            // Announcements in flight died with the last process: tell every peer again.
            let known: Vec<PeerInfo> = node.peers.values().map(|p| p.info.clone()).collect();
            node.spread_members(&known);
        }
        node
    }

    /// Plants a deliberate bug, for the simulator's "it bites" tests (feature `sim`).
    #[cfg(feature = "sim")]
    pub fn plant(&mut self, bug: planted::PlantedBug) {
        self.bugs.on.push(bug);
    }

    /// This node's id.
    pub fn agent_id(&self) -> &AgentId {
        &self.config.agent_id
    }

    /// The chains this node holds (durable or in flight).
    pub fn chains(&self) -> &Chains {
        &self.chains
    }

    /// The current gating mode.
    pub fn consistency(&self) -> Consistency {
        self.gate.mode()
    }

    /// The peers, by id.
    pub fn peers(&self) -> &BTreeMap<AgentId, Peer> {
        &self.peers
    }

    /// Feeds one fact observed at `now`. Time that goes backwards is clamped.
    pub fn handle(&mut self, now: Instant, input: Input) {
        let now = self.clamp(now);
        match input {
            Input::WriteRequested {
                request,
                credential,
                collection,
                payload,
                wall,
            } => {
                let write = authz::ParkedWrite {
                    collection,
                    payload,
                    wall,
                };
                self.write_requested(now, request, credential, write)
            }
            Input::ReadRequested {
                request,
                credential,
                collection,
            } => self.read_requested(now, request, credential, collection.as_ref()),
            Input::PositionsWanted {
                request,
                positions,
                wait,
            } => self.positions_wanted(now, request, positions, wait),
            Input::LedgerWanted { request, query } => self.ledger_wanted(now, request, query),
            Input::RotateHeadKey { request, next } => self.rotate_head_key(now, request, next),
            Input::IngestRequested {
                request,
                blocks,
                head,
            } => self.ingest_request(request, blocks, head),
            Input::Appended { token, offsets } => self.appended(now, token, offsets),
            Input::AppendFailed {
                token,
                reason,
                full,
            } => self.append_failed(token, reason, full),
            Input::StatusRequested { request, wall } => self.status(now, request, wall),
            Input::ProbeRequested { request, author } => {
                // The prober counts the answer as held (it may settle a CP write on it), so
                // answer only once every block counted here is durable.
                let tip = self.chains.tip(&author);
                let holds = tip.map_or(0, |(seq, _)| seq);
                let tip = tip.map(|(_, hash)| hash);
                let answer = Pending::Probe {
                    request,
                    holds,
                    tip,
                };
                self.wait(self.commit.issued(), answer);
            }
            Input::ConsistencyRequested { request, mode } => self.set_consistency(request, mode),
            Input::SyncRequested { request, peer } => self.sync_requested(now, request, peer),
            Input::DivideRequested { request, new, via } => {
                self.divide_requested(request, new, via)
            }
            Input::MembersAnnounced {
                request,
                from,
                members,
                your_role,
                cursors,
            } => self.members_announced(now, request, from, members, your_role, cursors),
            Input::DivideProgressRequested { request } => {
                let total = self.commit.local_tip();
                let divide = self.admin.divide.as_ref();
                let progress = divide.map_or_else(DivideProgress::idle, |d| d.progress(total));
                self.respond(request, Response::DivideProgress(progress));
            }
            Input::RemoveRequested { request, agent_id } => {
                self.remove_requested(request, agent_id)
            }
            Input::CallEnded { call, outcome } => {
                // A call that already ended (a shell reporting twice) changes nothing.
                if let Some(asked) = self.calls.close(call) {
                    self.call_ended(now, asked.ended(outcome));
                }
            }
        }
        self.arm_tick(now);
    }

    /// Acts on how a call this node asked for ended.
    fn call_ended(&mut self, now: Instant, done: Done) {
        match done {
            Done::CursorPersisted { peer, cursor } => self.cursor_persisted(now, peer, cursor),
            Done::CursorPersistFailed {
                peer,
                cursor,
                reason,
            } => self.cursor_persist_failed(peer, cursor, reason),
            Done::ClusterPersisted { version } => self.cluster_persisted(version),
            Done::ClusterPersistFailed { version, reason } => {
                self.cluster_persist_failed(now, version, reason)
            }
            Done::Verified {
                new,
                answered_as,
                head_key,
            } => self.divide_verified(new, answered_as, head_key),
            Done::VerifyFailed { new, reason } => self.divide_verify_failed(new, reason),
            Done::Told { new, members } => self.divide_told(now, new, members),
            Done::TellFailed { new, reason } => self.divide_tell_failed(new, reason),
            Done::PushAcked {
                peer,
                through,
                head,
                witnessed,
            } => {
                self.push_witnessed(&peer, head, witnessed);
                self.push_acked(now, peer, through)
            }
            Done::PushGap { peer, expected } => self.push_gap(now, peer, expected),
            Done::PushFailed { peer, reason } => self.push_failed(now, peer, reason),
            Done::ProbeAnswered {
                peer,
                agent_id,
                holds,
                tip,
                digest,
            } => self.probe_answered(now, peer, agent_id, (holds, tip), digest),
            Done::ProbeFailed { peer, reason } => self.probe_failed(now, peer, reason),
            Done::PageFetched {
                peer,
                blocks,
                next,
                tip,
            } => self.page_fetched(peer, blocks, next, tip),
            Done::FetchFailed { peer, reason } => self.pull_failed(peer, reason),
            Done::Copied { to, next, sent } => self.copied(to, next, sent),
            Done::CopyFailed { to, reason } => self.copy_failed(to, reason),
            Done::Announced { to, members } => self.announced(to, members),
            Done::AnnounceFailed { to, reason } => self.announce_failed(to, reason),
            Done::ProbedBack {
                divider,
                answered_as,
                holds,
                digest,
            } => self.probed_back(now, divider, Ok((answered_as, holds, digest))),
            Done::ProbeBackFailed { divider, reason } => {
                self.probed_back(now, divider, Err(reason))
            }
            Done::CodiosAnswered { key, decision } => self.codios_answered(now, key, decision),
            Done::CodiosFailed { key, reason } => self.codios_failed(now, key, reason),
        }
    }

    /// Handles every timer due at `now`: the drain tick, the auth circuit breaker's half-open
    /// probe and the reads whose wait for positions ended. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        if let Some(wake) = self.next_wake().filter(|w| now >= w.at) {
            self.last_wake = Some(wake);
        }
        if self.tick_at.is_some_and(|at| now >= at) {
            self.tick_at = None;
            self.tick(now);
        }
        self.auth_timeout(now);
        self.positions_timeout(now);
        self.heads_timeout(now);
        self.arm_tick(now);
    }

    /// The next instant the node wants [`Node::handle_timeout`] called: the earliest of the
    /// drain tick (every [`TICK`] while there are peers or announcements to send) and, while
    /// the auth circuit is open, the next half-open probe, and the end of the first read
    /// waiting for its positions. Always in the future of the last
    /// `now` seen after a `handle_timeout`, so the shell never busy-loops. Changed by
    /// [`Node::handle`] too (a new peer arms the tick; a Codios failure may open the circuit).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.tick_at,
            self.authz.poll_timeout(),
            self.reads.deadline(),
            self.heads.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next command for the shell. Call until `None` after every `handle`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn clamp(&mut self, now: Instant) -> Instant {
        self.own.start(now);
        self.check_tails();
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn arm_tick(&mut self, now: Instant) {
        let wanted = !self.peers.is_empty() || self.admin.busy();
        match (wanted, self.tick_at) {
            (true, None) => self.tick_at = Some(now + TICK),
            (false, Some(_)) => self.tick_at = None,
            _ => {}
        }
    }

    fn respond(&mut self, request: RequestId, response: Response) {
        self.outputs
            .push_back(Output::Respond { request, response });
    }

    fn log(&mut self, event: Event) {
        self.outputs.push_back(Output::Log(event));
    }

    fn cluster_state(&self) -> ClusterState {
        ClusterState {
            role: self.membership.me().role,
            consistency: self.gate.mode(),
            peers: self.membership.others(),
            me: Some(self.membership.me().clone()),
        }
    }

    fn add_peer(&mut self, info: PeerInfo, cursor: u64) {
        let id = info.agent_id.clone();
        self.peers.insert(id.clone(), Peer::new(info));
        let mut pull = Pull::new(cursor);
        // Catch up from every peer at start and when it is first learned.
        pull.want();
        self.pulls.insert(id, pull);
    }
}

/// Whether `endpoint` names a wildcard address, which no peer can reach.
fn is_wildcard(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    host.starts_with("0.0.0.0") || host.starts_with("[::]")
}

#[cfg(test)]
mod tests;
