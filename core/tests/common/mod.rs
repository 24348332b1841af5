//! A hand-driven world of sans-IO nodes for the behaviour stories in `core/tests/`.
//!
//! The world owns 1–3 [`Node`]s, a simulated clock that only moves when a test says so, an
//! in-memory strand per node (a `Vec` of durable blocks, offsets from 1) and a network with
//! zero latency whose links a test can cut and heal. Every output a node emits is performed
//! here exactly as `runtime/src/actor.rs` and `server/src/api/*.rs` perform it, and its
//! completion is fed back as the same input the runtime would feed:
//!
//! - `Push{from,to}` reads the pusher's own blocks by (author, seq) from its strand and hands
//!   them, verified, to the target's `IngestRequested`; `Ingested` comes back as `PushAcked`,
//!   `IngestRefused{Gap}` as `PushGap`, anything else as `PushFailed`.
//! - `Probe` is the target's `ProbeRequested{author: prober}`, answered as `ProbeAnswered`.
//! - `FetchPage{after}` reads the target's strand (offsets after `after`, at most 1000) as the
//!   export endpoint does, without involving the target's core, then `PageFetched`.
//! - `Copy{after}` sends a batch of up to 500 blocks of the divider's strand to the target's
//!   ingest, then `Copied`; `Announce` is the target's `MembersAnnounced`, then `Announced`.
//! - `PersistCursors` / `PersistCluster` are recorded (to restart from) and completed at once.
//! - `Append` is completed at once, or held until the test releases it.
//!
//! A request in flight over a link that is cut fails at once, as an HTTP call whose
//! connection drops. Every output is written to a compact text trace, one line each with the
//! time, for insta.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use sapix_core::auth::Credential;
use sapix_core::block::{Block, Hash, Verified};
use sapix_core::chain::Chains;
use sapix_core::ledger::VerifiedHead;
use sapix_core::node::{
    AppendToken, CallId, ClusterState, Event, Failure, Input, Output, Reply, RequestId, Response,
    Restored,
};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::repl::peer::PeerInfo;
use sapix_core::status::ClusterStatus;
use sapix_core::{
    AgentId, Collection, Consistency, Instant, KeySchedule, MasterSeed, Node, NodeConfig, Role,
    UnixMillis,
};

/// Wall-clock ms at the world's time zero.
pub const WALL0: u64 = 1_700_000_000_000;

pub fn keys() -> KeySchedule {
    KeySchedule::new(MasterSeed::from_bytes([42; 32]))
}

/// `author`'s blocks `from..=to` chained on `prev`, validly signed with the seed's key for
/// `author`: what anyone holding the master seed can forge.
pub fn forged_chain(author: &str, from: u64, to: u64, prev: Hash) -> Vec<Block> {
    let key = keys().signing_key(&id(author));
    let mut prev = prev;
    (from..=to)
        .map(|seq| {
            let b = sapix_core::block::BlockBody {
                author: id(author),
                seq,
                prev,
                ts: UnixMillis(0),
                collection: sapix_core::Collection::new("orders").unwrap(),
                payload: format!(r#"{{"forged":{seq}}}"#).into_bytes(),
            }
            .seal(&key);
            prev = b.hash;
            b
        })
        .collect()
}

pub fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

pub fn endpoint(s: &str) -> String {
    format!("http://{s}:7475")
}

pub fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub fn ms(i: Instant) -> u64 {
    i.as_micros() / 1000
}

/// `s`'s entry as the cluster holds it after enrolment: with its head key.
pub fn info(s: &str, role: Role) -> PeerInfo {
    PeerInfo {
        head_keys: sapix_core::ledger::HeadKeys::first(head_key(s).public()),
        ..PeerInfo::new(id(s), endpoint(s), role, WALL0)
    }
}

/// The config every node in these stories gets, but for the backoff policy and rng seed.
/// The credential of the harness's root key: every harness write presents it.
pub fn root() -> Credential {
    Credential::of_token("harness-root-key")
}

pub fn config(name: &str, backoff: BackoffPolicy, rng_seed: u64) -> NodeConfig {
    NodeConfig {
        agent_id: id(name),
        endpoint: endpoint(name),
        added_at: UnixMillis(WALL0),
        backoff,
        rng_seed,
        root: root(),
        auth: Default::default(),
        head_key: head_key(name),
    }
}

/// `name`'s own head key: its own, like a real node's, never shared.
pub fn head_key(name: &str) -> sapix_core::ledger::HeadKey {
    sapix_core::ledger::HeadKey::from_bytes(*blake3::hash(name.as_bytes()).as_bytes())
}

/// One node and everything the shell keeps for it.
pub struct Host {
    /// `None` while crashed.
    pub node: Option<Node>,
    pub config: NodeConfig,
    /// The durable strand: `store[i]` is at offset `i + 1`.
    pub store: Vec<Block>,
    by_author_seq: BTreeMap<(AgentId, u64), usize>,
    /// Appends handed out and not yet durable, in token order.
    pending: VecDeque<(AppendToken, Vec<Block>)>,
    /// While true, appends wait for [`World::complete_appends`].
    pub hold_appends: bool,
    /// The next this many export fetches of this node fail as an HTTP 500 would.
    pub fail_fetches: u32,
    /// The next this many `sync_cursors.json` writes of this node fail, as a full disk would.
    pub fail_cursor_writes: u32,
    /// The next this many `cluster.json` writes of this node fail, as a full disk would.
    pub fail_cluster_writes: u32,
    /// The last `sync_cursors.json` written.
    pub persisted_cursors: Vec<(AgentId, u64)>,
    /// The last cluster state written.
    pub persisted_cluster: Option<ClusterState>,
    /// The last own head written.
    pub persisted_head: Option<sapix_core::ledger::SignedHead>,
    /// The latest heads of other authors witnessed, as last written.
    pub persisted_witnessed: Vec<sapix_core::ledger::SignedHead>,
    /// The equivocation evidence kept, by file name.
    pub evidence: BTreeMap<String, sapix_core::ledger::Evidence>,
}

impl Host {
    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node is running")
    }

    fn store_block(&mut self, b: Block) -> u64 {
        self.by_author_seq
            .insert((b.author().clone(), b.seq()), self.store.len());
        self.store.push(b);
        self.store.len() as u64
    }

    /// The disk lost its last `n` blocks (a damaged tail cut off at recovery), or had them
    /// replaced by `instead`: for a crashed host only.
    pub fn rewrite_tail(&mut self, n: usize, instead: Vec<Block>) {
        assert!(self.node.is_none(), "crash the host first");
        let keep = self.store.len() - n;
        for b in self.store.drain(keep..) {
            self.by_author_seq.remove(&(b.author().clone(), b.seq()));
        }
        for b in instead {
            self.store_block(b);
        }
    }

    /// The durable block `author/seq`, if held.
    pub fn block(&self, author: &AgentId, seq: u64) -> Option<&Block> {
        let i = *self.by_author_seq.get(&(author.clone(), seq))?;
        Some(&self.store[i])
    }

    /// What a restart recovers: chains and tip from the strand, the last persisted state.
    pub fn restored(&self) -> Restored {
        let mut chains = Chains::new();
        for b in &self.store {
            chains.push_unchecked(b.author(), b.hash);
        }
        Restored {
            chains,
            local_tip: self.store.len() as u64,
            cluster: self.persisted_cluster.clone(),
            cursors: self.persisted_cursors.iter().cloned().collect(),
            head: self.persisted_head.clone(),
            evidence: self
                .evidence
                .values()
                .map(|e| (e.author().clone(), e.id()))
                .collect(),
            // The shell checks them as it reads them.
            witnessed: self
                .persisted_witnessed
                .iter()
                .map(|h| VerifiedHead::check(h.clone()).expect("persisted heads verify"))
                .collect(),
        }
    }
}

/// A call in flight to `target`, to be turned into an input for `origin` when it ends.
#[derive(Debug)]
struct Rpc {
    origin: AgentId,
    call: CallId,
    /// A copy batch's last offset and size, which its ingest answer stands for.
    copy: Option<(u64, u64)>,
}

impl Rpc {
    fn new(origin: &AgentId, call: CallId) -> Self {
        Rpc {
            origin: origin.clone(),
            call,
            copy: None,
        }
    }

    /// The input the origin gets when the call ends with `outcome`.
    fn ended(self, outcome: Result<Reply, Failure>) -> (AgentId, Input) {
        let outcome = match self.copy {
            Some((next, sent)) => outcome.map(|r| r.of_copy(next, sent)),
            None => outcome,
        };
        let call = self.call;
        (self.origin, Input::CallEnded { call, outcome })
    }

    /// The input the origin gets when the call fails without an answer.
    fn failed(self, reason: Failure) -> (AgentId, Input) {
        self.ended(Err(reason))
    }

    /// The input the origin gets for the target's answer, mapped as the mesh client maps
    /// HTTP answers.
    fn answered(self, response: Response) -> (AgentId, Input) {
        self.ended(Reply::from_response(response))
    }
}

/// The simulated cluster.
pub struct World {
    pub now: Instant,
    pub keys: KeySchedule,
    pub hosts: BTreeMap<AgentId, Host>,
    /// Inputs waiting to be handled, in order.
    queue: VecDeque<(AgentId, Input)>,
    /// Calls in flight, by (target, request id at the target).
    rpcs: BTreeMap<(AgentId, RequestId), Rpc>,
    /// Cut links, as (lower id, higher id).
    down: BTreeSet<(AgentId, AgentId)>,
    next_request: u64,
    /// Answers to requests the test made, by request id.
    pub answers: BTreeMap<RequestId, Response>,
    pub trace: String,
    /// Whether outputs are written to the trace.
    pub tracing: bool,
    /// Output kinds left out of the trace: the first word of the line ("Probe"), or
    /// "ProbeAnswer" for the answers to probes.
    pub hide: Vec<&'static str>,
    /// Every output performed, counted by kind, whether traced or not.
    pub counts: BTreeMap<&'static str, u64>,
    /// The backoff policy new nodes get.
    pub backoff: BackoffPolicy,
    /// Every logged event, with when and who.
    pub events: Vec<(Instant, AgentId, Event)>,
    /// Every push: when, pusher, peer, first and last seq.
    pub pushes: Vec<(Instant, AgentId, AgentId, u64, u64)>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        World {
            now: Instant::ZERO,
            keys: keys(),
            hosts: BTreeMap::new(),
            queue: VecDeque::new(),
            rpcs: BTreeMap::new(),
            down: BTreeSet::new(),
            next_request: 0,
            answers: BTreeMap::new(),
            trace: String::new(),
            tracing: true,
            hide: Vec::new(),
            counts: BTreeMap::new(),
            backoff: BackoffPolicy::default(),
            events: Vec::new(),
            pushes: Vec::new(),
        }
    }

    /// A full mesh of `names` (the first is the primary), every node in `mode`, each
    /// starting from a persisted cluster view that lists the others, as after a divide and a
    /// restart.
    pub fn cluster(names: &[&str], mode: Consistency, backoff: BackoffPolicy) -> Self {
        let mut w = World::new();
        w.backoff = backoff;
        for (i, name) in names.iter().enumerate() {
            let role = |j: usize| if j == 0 { Role::Primary } else { Role::Replica };
            let peers = names
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, n)| info(n, role(j)))
                .collect();
            let state = ClusterState {
                role: role(i),
                consistency: mode,
                peers,
                me: Some(info(name, role(i))),
            };
            w.add(name, Some(state));
        }
        w
    }

    /// Adds a node that starts from `cluster` (or, with `None`, a node's very first start).
    pub fn add(&mut self, name: &str, cluster: Option<ClusterState>) {
        self.add_at(name, &endpoint(name), cluster);
    }

    /// [`World::add`] with `configured` as the node's endpoint setting (e.g. the wildcard
    /// `http://0.0.0.0:7475` of a node bound to 0.0.0.0 with no SAPIX_ENDPOINT).
    pub fn add_at(&mut self, name: &str, configured: &str, cluster: Option<ClusterState>) {
        let seed = self.hosts.len() as u64 + 1;
        let mut config = config(name, self.backoff, seed);
        config.endpoint = configured.to_string();
        let mut host = Host {
            node: None,
            config,
            store: Vec::new(),
            by_author_seq: BTreeMap::new(),
            pending: VecDeque::new(),
            hold_appends: false,
            fail_fetches: 0,
            fail_cursor_writes: 0,
            fail_cluster_writes: 0,
            persisted_cursors: Vec::new(),
            persisted_cluster: cluster,
            persisted_head: None,
            evidence: BTreeMap::new(),
            persisted_witnessed: Vec::new(),
        };
        host.node = Some(self.boot(&host));
        self.hosts.insert(id(name), host);
    }

    fn boot(&self, host: &Host) -> Node {
        let key = self.keys.signing_key(&host.config.agent_id);
        Node::new(host.config.clone(), key, host.restored())
    }

    pub fn host(&self, name: &str) -> &Host {
        &self.hosts[&id(name)]
    }

    pub fn host_mut(&mut self, name: &str) -> &mut Host {
        self.hosts.get_mut(&id(name)).expect("known node")
    }

    pub fn node(&self, name: &str) -> &Node {
        self.host(name).node()
    }

    /// Writes a line of story into the trace.
    pub fn note(&mut self, text: &str) {
        if self.tracing {
            let _ = writeln!(self.trace, "{} -- {text}", stamp(self.now));
        }
    }

    // ---- the test's actions --------------------------------------------------------------

    /// Sends a request to `name` as a client or operator would, and runs the world until
    /// quiet. Returns the request id; its answer, if any yet, is in [`World::answers`].
    pub fn ask(&mut self, name: &str, make: impl FnOnce(RequestId) -> Input) -> RequestId {
        let request = self.send(name, make);
        self.settle();
        request
    }

    /// Queues a request to `name` without running the world, so that several requests
    /// arrive before any of them is answered; [`World::settle`] delivers them in order.
    pub fn send(&mut self, name: &str, make: impl FnOnce(RequestId) -> Input) -> RequestId {
        let request = self.request_id();
        let input = make(request);
        if self.tracing {
            let _ = writeln!(
                self.trace,
                "{} {name}< {}",
                stamp(self.now),
                fmt_request(&input)
            );
        }
        self.queue.push_back((id(name), input));
        request
    }

    /// A client writes `payload` (JSON) to `name`.
    pub fn write(&mut self, name: &str, payload: &str) -> RequestId {
        let wall = self.wall();
        self.ask(name, |request| Input::WriteRequested {
            request,
            credential: root(),
            collection: Collection::new("orders").unwrap(),
            payload: payload.as_bytes().to_vec(),
            wall,
        })
    }

    /// Asks `name` for its status and returns it (not traced).
    pub fn status(&mut self, name: &str) -> ClusterStatus {
        let was = std::mem::replace(&mut self.tracing, false);
        let wall = self.wall();
        let req = self.ask(name, |request| Input::StatusRequested { request, wall });
        self.tracing = was;
        match self.answers.remove(&req) {
            Some(Response::Status(s)) => s,
            other => panic!("status answered {other:?}"),
        }
    }

    pub fn answer(&self, req: RequestId) -> Option<&Response> {
        self.answers.get(&req)
    }

    /// The wall clock now.
    pub fn wall(&self) -> UnixMillis {
        UnixMillis(WALL0 + ms(self.now))
    }

    /// Cuts the link between `a` and `b`; calls in flight over it fail now.
    pub fn cut(&mut self, a: &str, b: &str) {
        self.note(&format!("link {a}-{b} cut"));
        self.down.insert(pair(&id(a), &id(b)));
        let broken: Vec<(AgentId, RequestId)> = self
            .rpcs
            .iter()
            .filter(|((target, _), rpc)| pair(target, &rpc.origin) == pair(&id(a), &id(b)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in broken {
            let rpc = self.rpcs.remove(&k).expect("listed");
            let (origin, input) = rpc.failed(Failure::Broken("connection reset".into()));
            self.queue.push_back((origin, input));
        }
        self.settle();
    }

    /// Heals the link between `a` and `b`.
    pub fn heal(&mut self, a: &str, b: &str) {
        self.note(&format!("link {a}-{b} healed"));
        self.down.remove(&pair(&id(a), &id(b)));
    }

    pub fn link_up(&self, a: &AgentId, b: &AgentId) -> bool {
        !self.down.contains(&pair(a, b))
            && [a, b]
                .iter()
                .all(|n| self.hosts.get(*n).is_some_and(|h| h.node.is_some()))
    }

    /// Completes the oldest `n` appends `name` holds, in token order, and runs until quiet.
    pub fn complete_appends(&mut self, name: &str, n: usize) {
        for _ in 0..n {
            self.complete_one(&id(name));
        }
        self.settle();
    }

    pub fn pending_appends(&self, name: &str) -> usize {
        self.host(name).pending.len()
    }

    /// Stops `name` as a crash would: appends not yet durable are lost, its calls in flight
    /// fail at the other end, nothing it was asked is answered.
    pub fn crash(&mut self, name: &str) {
        self.note(&format!("{name} crashes"));
        let me = id(name);
        let host = self.hosts.get_mut(&me).expect("known");
        host.node = None;
        host.pending.clear();
        self.queue.retain(|(n, _)| *n != me);
        let mine: Vec<(AgentId, RequestId)> = self
            .rpcs
            .iter()
            .filter(|((target, _), rpc)| *target == me || rpc.origin == me)
            .map(|(k, _)| k.clone())
            .collect();
        for k in mine {
            let rpc = self.rpcs.remove(&k).expect("listed");
            if rpc.origin != me {
                let (origin, input) = rpc.failed(Failure::Broken("connection reset".into()));
                self.queue.push_back((origin, input));
            }
        }
        self.settle();
    }

    /// Starts `name` again from its durable strand and its last persisted state.
    pub fn restart(&mut self, name: &str) {
        self.note(&format!(
            "{name} restarts from its strand and persisted state"
        ));
        let node = self.boot(self.host(name));
        self.host_mut(name).node = Some(node);
        self.fire_due();
    }

    // ---- time ----------------------------------------------------------------------------

    /// Moves time forward to `until`, waking each node whenever its `poll_timeout` is due.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next = self
                .hosts
                .values()
                .filter_map(|h| h.node.as_ref()?.poll_timeout())
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.fire_due();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs what the nodes do at start (probes, announcements, first pulls) at the current
    /// time without tracing it, for stories about what comes after.
    pub fn start_quietly(&mut self) {
        let was = std::mem::replace(&mut self.tracing, false);
        self.run_until(self.now);
        self.tracing = was;
        self.note("the nodes started: probed, announced to and pulled from each other");
    }

    /// Moves time forward by `d_ms`.
    pub fn advance(&mut self, d_ms: u64) {
        self.run_until(self.now + core::time::Duration::from_millis(d_ms));
    }

    /// Calls `handle_timeout` on every node whose timeout is due now.
    fn fire_due(&mut self) {
        let now = self.now;
        let due: Vec<AgentId> = self
            .hosts
            .iter()
            .filter(|(_, h)| {
                h.node
                    .as_ref()
                    .and_then(Node::poll_timeout)
                    .is_some_and(|at| at <= now)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for n in due {
            let node = self.hosts.get_mut(&n).unwrap().node.as_mut().unwrap();
            node.handle_timeout(now);
            let again = node.poll_timeout();
            assert_eq!(
                again,
                node.next_wake().map(|w| w.at),
                "{n}: poll_timeout is not the timer table's next wake"
            );
            assert!(
                again.is_none_or(|at| at > now),
                "{n}: poll_timeout {again:?} is not after now {now:?} after handle_timeout: \
                 the shell would busy-loop"
            );
            self.settle();
        }
    }

    // ---- the shell -------------------------------------------------------------------------

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Performs outputs and handles inputs until nothing is left to do at this instant.
    pub fn settle(&mut self) {
        loop {
            let names: Vec<AgentId> = self.hosts.keys().cloned().collect();
            let mut progressed = false;
            for n in &names {
                while let Some(out) = self
                    .hosts
                    .get_mut(n)
                    .and_then(|h| h.node.as_mut())
                    .and_then(Node::poll_output)
                {
                    progressed = true;
                    self.perform(n, out);
                }
            }
            if let Some((n, input)) = self.queue.pop_front() {
                if let Some(node) = self.hosts.get_mut(&n).and_then(|h| h.node.as_mut()) {
                    node.handle(self.now, input);
                }
                continue;
            }
            if !progressed {
                break;
            }
        }
    }

    fn trace_output(&mut self, from: &AgentId, out: &Output) {
        let line = fmt_output(out);
        let kind = kind_of(out);
        *self.counts.entry(kind).or_default() += 1;
        if self.tracing && !self.hide.contains(&kind) {
            let _ = writeln!(self.trace, "{} {from}> {line}", stamp(self.now));
        }
    }

    /// Who answers a call to `endpoint`: every node is reachable at its configured endpoint
    /// and at its name (`http://name:7475`, as a container is by DNS); a wildcard address
    /// (`http://0.0.0.0:7475`) reaches the caller itself, as on a real machine.
    fn target_at(&self, origin: &AgentId, endpoint: &str) -> Option<AgentId> {
        if endpoint.starts_with("http://0.0.0.0") {
            return Some(origin.clone());
        }
        self.hosts
            .iter()
            .find(|(n, h)| h.config.endpoint == endpoint || self::endpoint(n.as_str()) == endpoint)
            .map(|(n, _)| n.clone())
    }

    /// Asks the node at `endpoint` who it is, for `call`.
    fn probe(&mut self, me: &AgentId, endpoint: &str, call: CallId) {
        let rpc = Rpc::new(me, call);
        let author = me.clone();
        self.call(me, endpoint, rpc, |request| Input::ProbeRequested {
            request,
            author,
        });
    }

    /// Sends `input` to the node at `endpoint` as a call from `origin`, or fails the call.
    fn call(
        &mut self,
        origin: &AgentId,
        endpoint: &str,
        rpc: Rpc,
        input: impl FnOnce(RequestId) -> Input,
    ) {
        let target = self
            .target_at(origin, endpoint)
            .filter(|target| self.link_up(origin, target));
        let Some(target) = target else {
            let (o, failure) = rpc.failed(Failure::Unreachable("connection refused".into()));
            self.queue.push_back((o, failure));
            return;
        };
        let request = self.request_id();
        self.rpcs.insert((target.clone(), request), rpc);
        self.queue.push_back((target, input(request)));
    }

    fn verified(&self, blocks: Vec<Block>) -> Vec<Verified> {
        blocks
            .into_iter()
            .map(|b| b.into_verified(&self.keys).expect("stored blocks verify"))
            .collect()
    }

    fn complete_one(&mut self, n: &AgentId) {
        let host = self.hosts.get_mut(n).expect("known");
        let Some((token, blocks)) = host.pending.pop_front() else {
            return;
        };
        let offsets = blocks.into_iter().map(|b| host.store_block(b)).collect();
        self.queue
            .push_back((n.clone(), Input::Appended { token, offsets }));
    }

    fn perform(&mut self, from: &AgentId, out: Output) {
        self.trace_output(from, &out);
        let me = from.clone();
        match out {
            Output::Append { token, blocks } => {
                let host = self.hosts.get_mut(&me).expect("known");
                host.pending.push_back((token, blocks));
                if !host.hold_appends {
                    self.complete_one(&me);
                }
            }
            // This harness's disks never fill (the node's unit tests and Layer 0 cover it).
            Output::ResumeAppends => {}
            Output::Respond { request, response } => {
                match self.rpcs.remove(&(me.clone(), request)) {
                    Some(rpc) => {
                        let (origin, input) = rpc.answered(response);
                        self.queue.push_back((origin, input));
                    }
                    None => {
                        self.answers.insert(request, response);
                    }
                }
            }
            Output::Log(e) => self.events.push((self.now, me, e)),
            // These stories write with the root key or in local mode: Codios is never asked.
            Output::AskCodios { key, .. } => panic!("{me} asked Codios about {key:?}"),
            Output::Push {
                call,
                peer,
                endpoint,
                from,
                to,
                head,
            } => {
                self.pushes
                    .push((self.now, me.clone(), peer.clone(), from, to));
                let host = &self.hosts[&me];
                let blocks: Option<Vec<Block>> =
                    (from..=to).map(|s| host.block(&me, s).cloned()).collect();
                let rpc = Rpc::new(&me, call);
                match blocks {
                    None => {
                        let reason = format!("own blocks {from}..={to} not in the strand");
                        self.queue.push_back(rpc.failed(Failure::NotSent(reason)));
                    }
                    Some(blocks) => {
                        let blocks = self.verified(blocks);
                        // The shell checks the head's signature as it does the blocks'.
                        let head = head.map(|h| VerifiedHead::check(h).expect("heads verify"));
                        self.call(&me, &endpoint, rpc, |request| Input::IngestRequested {
                            request,
                            blocks,
                            head,
                        });
                    }
                }
            }
            Output::Probe { call, endpoint, .. } | Output::ProbeBack { call, endpoint, .. } => {
                self.probe(&me, &endpoint, call)
            }
            Output::FetchPage {
                call,
                endpoint,
                after,
                limit,
                ..
            } => {
                let target = self
                    .target_at(&me, &endpoint)
                    .filter(|target| self.link_up(&me, target));
                let failing = self.hosts.get_mut(&me).is_some_and(|h| {
                    let fail = h.fail_fetches > 0;
                    h.fail_fetches = h.fail_fetches.saturating_sub(1);
                    fail
                });
                let outcome = match target {
                    _ if failing => Err(Failure::Status {
                        call: "export",
                        code: 500,
                        message: String::new(),
                    }),
                    None => Err(Failure::Unreachable("connection refused".into())),
                    Some(target) => {
                        let store = &self.hosts[&target].store;
                        let start = (after as usize).min(store.len());
                        let end = (start + limit).min(store.len());
                        let blocks = store[start..end].to_vec();
                        let next = if end > start { end as u64 } else { after };
                        let tip = (store.len() as u64).max(next);
                        Ok(Reply::Page {
                            blocks: self.verified(blocks),
                            next,
                            tip,
                        })
                    }
                };
                self.queue
                    .push_back((me, Input::CallEnded { call, outcome }));
            }
            Output::PersistCursors { call, cursors, .. } => {
                let host = self.hosts.get_mut(&me).unwrap();
                let outcome = if take_one(&mut host.fail_cursor_writes) {
                    Err(Failure::LocalStorage(DISK_FULL.into()))
                } else {
                    host.persisted_cursors = cursors;
                    Ok(Reply::Stored)
                };
                self.queue
                    .push_back((me, Input::CallEnded { call, outcome }));
            }
            Output::PersistCluster { call, state, .. } => {
                let host = self.hosts.get_mut(&me).unwrap();
                let outcome = if take_one(&mut host.fail_cluster_writes) {
                    Err(Failure::LocalStorage(DISK_FULL.into()))
                } else {
                    host.persisted_cluster = Some(state);
                    Ok(Reply::Stored)
                };
                self.queue
                    .push_back((me, Input::CallEnded { call, outcome }));
            }
            Output::PersistHead { head } => {
                self.hosts.get_mut(&me).unwrap().persisted_head = Some(head);
            }
            Output::PersistWitnessed { heads } => {
                self.hosts.get_mut(&me).unwrap().persisted_witnessed = heads;
            }
            Output::KeepEvidence { evidence } => {
                let host = self.hosts.get_mut(&me).unwrap();
                host.evidence.insert(evidence.file_name(), evidence);
            }
            Output::Copy {
                call,
                endpoint,
                after,
                limit,
                ..
            } => {
                let store = &self.hosts[&me].store;
                let start = (after as usize).min(store.len());
                let end = (start + limit.blocks).min(store.len());
                let blocks = store[start..end].to_vec();
                if blocks.is_empty() {
                    let outcome = Ok(Reply::Ingested { witnessed: None }.of_copy(after, 0));
                    self.queue
                        .push_back((me, Input::CallEnded { call, outcome }));
                    return;
                }
                let rpc = Rpc {
                    copy: Some((end as u64, blocks.len() as u64)),
                    ..Rpc::new(&me, call)
                };
                let blocks = self.verified(blocks);
                self.call(&me, &endpoint, rpc, |request| Input::IngestRequested {
                    request,
                    blocks,
                    head: None,
                });
            }
            Output::Announce {
                call,
                endpoint,
                members,
                your_role,
                cursors,
                ..
            } => {
                let rpc = Rpc::new(&me, call);
                let from = Some(me.clone());
                self.call(&me, &endpoint, rpc, |request| Input::MembersAnnounced {
                    request,
                    from,
                    members,
                    your_role,
                    cursors,
                });
            }
        }
    }

    // ---- what the nodes hold ----------------------------------------------------------------

    /// Every author's chain of hashes as `name`'s core holds it.
    pub fn chain_view(&self, name: &str) -> Vec<(AgentId, Vec<Hash>)> {
        chain_view(self.node(name).chains())
    }

    /// Checks `name`'s durable strand: every block once, each author's chain complete from
    /// seq 1 with every `prev` the hash before it, and the same as its core's chains.
    /// Returns the number of blocks per author.
    pub fn assert_strand_intact(&self, name: &str) -> BTreeMap<AgentId, u64> {
        let host = self.host(name);
        let mut by_author: BTreeMap<AgentId, Vec<&Block>> = BTreeMap::new();
        for b in &host.store {
            by_author.entry(b.author().clone()).or_default().push(b);
        }
        let mut lengths = BTreeMap::new();
        for (author, mut blocks) in by_author {
            blocks.sort_by_key(|b| b.seq());
            let mut prev = Hash::ZERO;
            for (i, b) in blocks.iter().enumerate() {
                assert_eq!(
                    b.seq(),
                    i as u64 + 1,
                    "{name}: {author}'s chain has a gap or a duplicate"
                );
                assert_eq!(
                    b.body.prev,
                    prev,
                    "{name}: {author}/{} does not link",
                    b.seq()
                );
                b.verify(&self.keys).expect("stored blocks verify");
                prev = b.hash;
            }
            lengths.insert(author, blocks.len() as u64);
        }
        if let Some(node) = &host.node {
            let core: BTreeMap<AgentId, u64> = node
                .chains()
                .lengths()
                .map(|(a, n)| (a.clone(), n))
                .collect();
            assert_eq!(
                core, lengths,
                "{name}: core chains differ from the durable strand"
            );
        }
        lengths
    }
}

pub fn chain_view(chains: &Chains) -> Vec<(AgentId, Vec<Hash>)> {
    chains
        .lengths()
        .map(|(a, n)| {
            (
                a.clone(),
                (1..=n).map(|s| chains.get(a, s).unwrap()).collect(),
            )
        })
        .collect()
}

fn pair(a: &AgentId, b: &AgentId) -> (AgentId, AgentId) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

/// `  12.500` — seconds and milliseconds.
pub fn stamp(i: Instant) -> String {
    let m = ms(i);
    format!("{:>4}.{:03}", m / 1000, m % 1000)
}

/// `[a/1..=256, b/1..=2]`: blocks as runs of consecutive seqs per author.
pub fn runs(blocks: &[Block]) -> String {
    let mut out: Vec<(AgentId, u64, u64)> = Vec::new();
    for b in blocks {
        match out.last_mut() {
            Some((a, _, last)) if a == b.author() && *last + 1 == b.seq() => *last = b.seq(),
            _ => out.push((b.author().clone(), b.seq(), b.seq())),
        }
    }
    if out.len() > 8 {
        // Interleaved authors (a pulled page): per-author ranges read better than 100 runs.
        let mut per: BTreeMap<&AgentId, (u64, u64)> = BTreeMap::new();
        for (a, f, l) in &out {
            let e = per.entry(a).or_insert((*f, *l));
            e.0 = e.0.min(*f);
            e.1 = e.1.max(*l);
        }
        let parts: Vec<String> = per
            .iter()
            .map(|(a, (f, l))| format!("{a}/{f}..={l}"))
            .collect();
        return format!(
            "[{} interleaved, {} blocks]",
            parts.join(", "),
            blocks.len()
        );
    }
    let parts: Vec<String> = out
        .iter()
        .map(|(a, f, l)| {
            if f == l {
                format!("{a}/{f}")
            } else {
                format!("{a}/{f}..={l}")
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn kind_of(out: &Output) -> &'static str {
    match out {
        Output::Append { .. } => "Append",
        Output::ResumeAppends => "ResumeAppends",
        Output::Push { .. } => "Push",
        Output::Probe { .. } => "Probe",
        Output::ProbeBack { .. } => "ProbeBack",
        Output::FetchPage { .. } => "FetchPage",
        Output::PersistCursors { .. } => "PersistCursors",
        Output::PersistCluster { .. } => "PersistCluster",
        Output::PersistHead { .. } => "PersistHead",
        Output::KeepEvidence { .. } => "KeepEvidence",
        Output::PersistWitnessed { .. } => "PersistWitnessed",
        Output::Copy { .. } => "Copy",
        Output::Announce { .. } => "Announce",
        Output::Respond {
            response: Response::ProbeAnswer { .. },
            ..
        } => "ProbeAnswer",
        Output::Respond { .. } => "Respond",
        Output::Log(_) => "Log",
        Output::AskCodios { .. } => "AskCodios",
    }
}

fn names(infos: &[PeerInfo]) -> String {
    let v: Vec<String> = infos.iter().map(|p| p.agent_id.to_string()).collect();
    format!("[{}]", v.join(", "))
}

pub fn fmt_output(out: &Output) -> String {
    match out {
        Output::Append { token, blocks } => format!("Append #{} {}", token.0, runs(blocks)),
        Output::ResumeAppends => "ResumeAppends".into(),
        Output::Push { peer, from, to, .. } => format!("Push {peer} {from}..={to}"),
        Output::Probe { peer, .. } => format!("Probe {peer}"),
        Output::ProbeBack { divider, .. } => format!("ProbeBack {divider}"),
        Output::FetchPage { peer, after, .. } => format!("FetchPage {peer} after={after}"),
        Output::PersistCursors {
            cursors,
            peer,
            cursor,
            ..
        } => format!("PersistCursors {peer}={cursor} all={cursors:?}"),
        Output::PersistCluster { version, state, .. } => format!(
            "PersistCluster v{version} {:?} {:?} peers={}",
            state.role,
            state.consistency,
            names(&state.peers)
        ),
        Output::PersistHead { head } => {
            format!("PersistHead {}:{}", head.head.author, head.head.seq)
        }
        Output::KeepEvidence { evidence } => format!("KeepEvidence {}", evidence.file_name()),
        Output::PersistWitnessed { heads } => {
            let heads: Vec<String> = heads
                .iter()
                .map(|h| format!("{}:{}", h.head.author, h.head.seq))
                .collect();
            format!("PersistWitnessed [{}]", heads.join(", "))
        }
        Output::Copy { to, after, .. } => format!("Copy {to} after={after}"),
        Output::Announce {
            to,
            members,
            your_role,
            cursors,
            ..
        } => format!(
            "Announce {to} members={} your_role={your_role:?} cursors={cursors:?}",
            names(members)
        ),
        Output::Respond { request, response } => {
            format!("Respond req={} {}", request.0, fmt_response(response))
        }
        Output::Log(e) => format!("Log {e:?}"),
        Output::AskCodios { key, .. } => format!("AskCodios {key:?}"),
    }
}

pub fn fmt_response(r: &Response) -> String {
    match r {
        Response::Written(rc) => format!("Written {}/{} @{}", rc.author, rc.seq, rc.offset),
        Response::Indeterminate { receipt: rc, peer } => format!(
            "Indeterminate {}/{} @{} peer={peer}",
            rc.author, rc.seq, rc.offset
        ),
        Response::Status(s) => {
            let nodes: Vec<String> = s
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} reachable={} queue={:?} backoff={:?}",
                        n.agent_id, n.reachable, n.queue_depth, n.backoff_ms
                    )
                })
                .collect();
            format!(
                "Status partitioned={} [{}]",
                s.partitioned,
                nodes.join("; ")
            )
        }
        Response::Ingested {
            accepted,
            duplicates,
            witnessed,
        } => {
            let cosigned = witnessed.as_ref().map_or(String::new(), |w| {
                let h = &w.head;
                format!(
                    " cosigned {}:{} as {}",
                    h.author, h.seq, w.cosignature.witness
                )
            });
            format!("Ingested {{ accepted: {accepted}, duplicates: {duplicates} }}{cosigned}")
        }
        other => format!("{other:?}"),
    }
}

/// What a failed state-file write says in these stories.
pub const DISK_FULL: &str = "No space left on device (os error 28)";

/// Counts one down from a countdown knob; true if it was above zero.
fn take_one(n: &mut u32) -> bool {
    let was = *n > 0;
    *n = n.saturating_sub(1);
    was
}

fn fmt_request(input: &Input) -> String {
    match input {
        Input::WriteRequested {
            request, payload, ..
        } => format!(
            "WriteRequested req={} {}",
            request.0,
            String::from_utf8_lossy(payload)
        ),
        Input::StatusRequested { request, .. } => format!("StatusRequested req={}", request.0),
        Input::ConsistencyRequested { request, mode } => {
            format!("ConsistencyRequested req={} {mode:?}", request.0)
        }
        Input::SyncRequested { request, peer } => {
            format!("SyncRequested req={} {peer}", request.0)
        }
        Input::DivideRequested { request, new, .. } => format!(
            "DivideRequested req={} {} at {} as {:?}",
            request.0, new.agent_id, new.endpoint, new.role
        ),
        other => format!("{other:?}"),
    }
}
