//! One node as the world holds it: its identity and key, its process when up, its clocks, the
//! requests it is serving and the client requests waiting for its answer.
//!
//! Booting, crashing, stalling and landing its disk work are the world's (`world/host.rs`): a
//! boot is a new process from exactly the durable state, and completions addressed to an
//! earlier process (by boot count, `inc`) are dropped.

use std::collections::BTreeMap;

use sapix_core::auth::AuthKey;
use sapix_core::keys::AgentKey;
use sapix_core::ledger::HeadKey;
use sapix_core::node::{CallId, Input, RequestId};
use sapix_core::{AgentId, Node, UnixMillis};

use crate::clock::NodeClock;
use crate::config::Micros;

/// One node: its identity, its process (when up), its clocks and its open requests.
pub(crate) struct Host {
    pub(crate) agent: AgentId,
    pub(crate) endpoint: String,
    pub(crate) key: AgentKey,
    /// Its own head key (from its name: deterministic, and never the cluster's).
    pub(crate) head_key: HeadKey,
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
    /// The running process's Codios calls in flight: what each asked about (the checker
    /// notes the answer against it).
    pub(crate) codios_asks: BTreeMap<CallId, AuthKey>,
    /// The forger's requests this process is handling (their answers go nowhere).
    pub(crate) forged: std::collections::BTreeSet<RequestId>,
}

impl Host {
    /// Node `agent`, not started yet.
    pub(crate) fn new(agent: AgentId, key: AgentKey, clock: NodeClock, member: bool) -> Self {
        Host {
            head_key: HeadKey::from_bytes(*blake3::hash(agent.as_str().as_bytes()).as_bytes())
                .sim_mac(),
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
            codios_asks: BTreeMap::new(),
            forged: Default::default(),
        }
    }
}

/// A client request waiting for its answer, with what the checkers need to judge it.
#[derive(Debug)]
pub(crate) enum Client {
    /// `cp`: the node was in CP when the write started; `epoch`: its mode epoch then;
    /// `peers`: its peers then. Filled in when the node is fed the request (a stalled node
    /// takes it later than the client sent it), and again when Codios lets it through (it
    /// waited for the decision). `root`: it bears the root key, which is never refused.
    Write {
        cp: bool,
        epoch: u64,
        peers: Vec<usize>,
        root: bool,
    },
    Switch,
    Sync,
    Divide {
        new: usize,
    },
    Status,
    /// A read naming the position of the write acknowledged as `hash`.
    Read {
        position: sapix_core::node::ChainPosition,
        hash: sapix_core::block::Hash,
    },
}
