//! The node: one state machine that owns every decision about a node's writes and ingests.
//!
//! Drive it like quinn-proto's `Connection`: feed facts with [`Node::handle`] (and
//! [`Node::handle_timeout`] when [`Node::poll_timeout`] says so), then drain
//! [`Node::poll_output`] until `None` and perform each output. Output order is part of the
//! contract: a block is only ever acknowledged after the [`Output::Append`] that stores it
//! has come back as [`Input::Appended`] — persist before acknowledging.
//!
//! Invariants kept here: every block handed out in an `Append` is the next link of its
//! author's chain (so nothing is stored twice and no chain breaks); a response that depends on
//! an append is held until every append up to it is durable.

mod event;

use std::collections::{BTreeMap, VecDeque};

pub use event::{AppendToken, Event, Input, Output, RequestId, Response};

use crate::block::{Block, BlockBody, Hash, Verified};
use crate::chain::{Chains, Position};
use crate::id::AgentId;
use crate::keys::AgentKey;
use crate::status::{ClusterStatus, Consistency, NodeStatus, Role};
use crate::time::{Instant, UnixMillis};

/// What a node is told at start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id.
    pub agent_id: AgentId,
    /// This node's base URL, as peers reach it.
    pub endpoint: String,
    /// Its role.
    pub role: Role,
    /// When it joined the cluster (wall clock).
    pub added_at: UnixMillis,
    /// The persisted gating mode.
    pub consistency: Consistency,
}

/// A response waiting for the durable watermark to reach `token`.
#[derive(Debug)]
struct Waiter {
    token: AppendToken,
    request: RequestId,
    answer: Pending,
}

#[derive(Debug)]
enum Pending {
    Write {
        hash: Hash,
        seq: u64,
        wall: UnixMillis,
    },
    Ingest {
        accepted: u64,
        duplicates: u64,
    },
}

/// One node's sans-IO state machine.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    key: AgentKey,
    chains: Chains,
    outputs: VecDeque<Output>,
    /// Last token issued; tokens start at 1.
    issued: AppendToken,
    /// Everything up to this token is durable.
    durable: AppendToken,
    /// Appends issued and not yet durable, in token order, with their offsets once known.
    in_flight: VecDeque<(AppendToken, Option<Vec<u64>>)>,
    waiters: VecDeque<Waiter>,
    /// Offsets of durable appends whose waiters have not been answered yet.
    offsets: BTreeMap<AppendToken, Vec<u64>>,
    last_now: Instant,
    last_commit: UnixMillis,
    storage_failed: bool,
}

impl Node {
    /// A node with `key` as its signing key and `chains` rebuilt from its durable strand.
    pub fn new(config: NodeConfig, key: AgentKey, chains: Chains) -> Self {
        let last_commit = config.added_at;
        Node {
            config,
            key,
            chains,
            outputs: VecDeque::new(),
            issued: AppendToken(0),
            durable: AppendToken(0),
            in_flight: VecDeque::new(),
            waiters: VecDeque::new(),
            offsets: BTreeMap::new(),
            last_now: Instant::ZERO,
            last_commit,
            storage_failed: false,
        }
    }

    /// This node's id.
    pub fn agent_id(&self) -> &AgentId {
        &self.config.agent_id
    }

    /// The chains this node holds (durable or in flight).
    pub fn chains(&self) -> &Chains {
        &self.chains
    }

    /// Feeds one fact observed at `now`. Time that goes backwards is clamped.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.last_now = self.last_now.max(now);
        match input {
            Input::WriteRequested {
                request,
                collection,
                payload,
                wall,
            } => {
                if self.refuse_if_failed(request) {
                    return;
                }
                let (seq, prev) = self
                    .chains
                    .tip(&self.config.agent_id)
                    .map_or((1, Hash::ZERO), |(s, h)| (s + 1, h));
                let body = BlockBody {
                    author: self.config.agent_id.clone(),
                    seq,
                    prev,
                    ts: wall,
                    collection,
                    payload,
                };
                let block = Verified::seal(body, &self.key).into_block();
                let hash = block.hash;
                self.chains.push(&block);
                let token = self.append(vec![block]);
                self.wait(token, request, Pending::Write { hash, seq, wall });
            }
            Input::IngestRequested { request, blocks } => {
                if self.refuse_if_failed(request) {
                    return;
                }
                self.ingest(request, blocks);
            }
            Input::Appended { token, offsets } => self.appended(token, offsets),
            Input::AppendFailed { token: _, reason } => {
                self.storage_failed = true;
                self.outputs
                    .push_back(Output::Log(Event::StorageFailed { reason }));
                for w in std::mem::take(&mut self.waiters) {
                    self.respond(w.request, Response::StorageFailed);
                }
            }
            Input::StatusRequested { request } => {
                let status = self.status();
                self.respond(request, Response::Status(status));
            }
        }
    }

    /// Handles timers that are due at `now`. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    /// The next instant the node wants [`Node::handle_timeout`] called, if any. Changes after
    /// every `handle`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The next command for the shell. Call until `None` after every `handle`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn refuse_if_failed(&mut self, request: RequestId) -> bool {
        if self.storage_failed {
            self.respond(request, Response::StorageFailed);
        }
        self.storage_failed
    }

    /// Classifies the whole batch first and stores nothing unless every block is acceptable.
    fn ingest(&mut self, request: RequestId, blocks: Vec<Verified>) {
        let mut scratch = self.chains.overlay();
        let mut fresh = Vec::new();
        let mut duplicates = 0;
        for (index, v) in blocks.into_iter().enumerate() {
            let block = v.into_block();
            match scratch.classify(&block) {
                Position::Next => {
                    scratch.push(&block);
                    fresh.push(block);
                }
                Position::Duplicate => duplicates += 1,
                position => {
                    if let Position::Equivocation { held } = position {
                        self.outputs.push_back(Output::Log(Event::Equivocation {
                            author: block.author().clone(),
                            seq: block.seq(),
                            held,
                            refused: block.hash,
                        }));
                    }
                    let response = Response::IngestRefused {
                        index,
                        author: block.author().clone(),
                        seq: block.seq(),
                        position,
                    };
                    self.respond(request, response);
                    return;
                }
            }
        }
        drop(scratch);
        let accepted = fresh.len() as u64;
        for b in &fresh {
            self.chains.push(b);
        }
        // Duplicates may still be in flight from an earlier request: answer only once
        // everything issued so far is durable.
        let token = if fresh.is_empty() {
            self.issued
        } else {
            self.append(fresh)
        };
        self.wait(
            token,
            request,
            Pending::Ingest {
                accepted,
                duplicates,
            },
        );
    }

    fn append(&mut self, blocks: Vec<Block>) -> AppendToken {
        self.issued = AppendToken(self.issued.0 + 1);
        let token = self.issued;
        self.in_flight.push_back((token, None));
        self.outputs.push_back(Output::Append { token, blocks });
        token
    }

    fn wait(&mut self, token: AppendToken, request: RequestId, answer: Pending) {
        self.waiters.push_back(Waiter {
            token,
            request,
            answer,
        });
        self.release();
    }

    fn appended(&mut self, token: AppendToken, offsets: Vec<u64>) {
        if let Some(slot) = self.in_flight.iter_mut().find(|(t, _)| *t == token) {
            slot.1 = Some(offsets);
        }
        while let Some((t, Some(_))) = self.in_flight.front() {
            let t = *t;
            let (_, offs) = self.in_flight.pop_front().expect("front exists");
            self.durable = t;
            self.offsets.insert(t, offs.unwrap_or_default());
        }
        self.release();
    }

    /// Answers every waiter whose append is durable, in order.
    fn release(&mut self) {
        while self
            .waiters
            .front()
            .is_some_and(|w| w.token <= self.durable)
        {
            let w = self.waiters.pop_front().expect("front exists");
            let response = match w.answer {
                Pending::Write { hash, seq, wall } => {
                    self.last_commit = self.last_commit.max(wall);
                    let offset = self
                        .offsets
                        .get(&w.token)
                        .and_then(|o| o.first().copied())
                        .unwrap_or(0);
                    Response::Written {
                        hash,
                        author: self.config.agent_id.clone(),
                        seq,
                        offset,
                    }
                }
                Pending::Ingest {
                    accepted,
                    duplicates,
                } => Response::Ingested {
                    accepted,
                    duplicates,
                },
            };
            self.respond(w.request, response);
        }
        // Offsets are only needed until the waiters of their append are answered.
        let oldest = self
            .waiters
            .front()
            .map_or(AppendToken(u64::MAX), |w| w.token);
        self.offsets.retain(|t, _| *t >= oldest);
        if self.waiters.is_empty() {
            self.offsets.clear();
        }
    }

    fn respond(&mut self, request: RequestId, response: Response) {
        self.outputs
            .push_back(Output::Respond { request, response });
    }

    fn status(&self) -> ClusterStatus {
        let me = NodeStatus {
            agent_id: self.config.agent_id.clone(),
            endpoint: self.config.endpoint.clone(),
            role: self.config.role,
            added_at_ms: self.config.added_at.0,
            last_sync_ms: self.last_commit.0,
            reachable: !self.storage_failed,
            blocks: Some(self.chains.total()),
        };
        ClusterStatus {
            nodes: vec![me],
            partitioned: false,
            consistency: self.config.consistency,
        }
    }
}

#[cfg(test)]
mod tests;
