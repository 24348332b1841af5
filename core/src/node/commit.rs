//! Writes and ingest: what is appended, and what each answer released by the commit pipeline
//! ([`super::pipeline`]) means. A response that depends on an append waits there until it is
//! durable; a CP write then waits again, in the consistency gate ([`super::gate`]), until
//! every peer holds it (DESIGN §4).

use super::planted::PlantedBug;
use super::{Failure, Node, Output, OwnChainUnsafe, Pending, Receipt, RequestId, Response};
use crate::block::{Block, BlockBody, Hash, Verified};
use crate::chain::Position;
use crate::id::{AgentId, Collection};
use crate::ledger::{Evidence, VerifiedHead};
use crate::node::{AppendToken, Event};
use crate::time::{Instant, UnixMillis};

/// The outcome of classifying a batch against the chains.
pub(super) enum Batch {
    /// Every block is acceptable: these are new, the rest duplicates.
    Accept { fresh: Vec<Block>, duplicates: u64 },
    /// The block at `index` cannot be stored; nothing of the batch is.
    Refuse {
        index: usize,
        author: AgentId,
        seq: u64,
        position: Position,
    },
}

impl Node {
    pub(super) fn write(
        &mut self,
        _now: Instant,
        request: RequestId,
        collection: Collection,
        payload: Vec<u8>,
        wall: UnixMillis,
    ) {
        if self.refuse_if_failed(request) {
            return;
        }
        if let Some(why) = self.own_chain_unsafe() {
            return self.respond(request, Response::OwnChainUnsafe(why));
        }
        let peers = &self.peers;
        let unreachable = || {
            let down = peers.values().filter(|p| !p.is_reachable());
            down.map(|p| p.info.agent_id.clone()).collect()
        };
        if let Some(refusal) = self.gate.refuses(unreachable) {
            return self.respond(request, refusal);
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
        self.positions_grew();
        if self.bugs.has(PlantedBug::PushBeforeDurable) {
            self.own.durable = seq;
            self.push_all(_now);
        }
        self.wait(
            token,
            Pending::Write {
                request,
                hash,
                seq,
                wall,
            },
        );
    }

    pub(super) fn ingest_request(
        &mut self,
        request: RequestId,
        blocks: Vec<Verified>,
        head: Option<VerifiedHead>,
    ) {
        if self.refuse_if_failed(request) {
            return;
        }
        match self.classify_batch(blocks) {
            Batch::Refuse {
                index,
                author,
                seq,
                position,
            } => self.respond(
                request,
                Response::IngestRefused {
                    index,
                    author,
                    seq,
                    position,
                },
            ),
            Batch::Accept { fresh, duplicates } => {
                let accepted = fresh.len() as u64;
                let token = self.store(fresh);
                if self.bugs.has(PlantedBug::IngestAckBeforeDurable) {
                    let response = Response::Ingested {
                        accepted,
                        duplicates,
                        witnessed: None,
                    };
                    return self.respond(request, response);
                }
                self.wait(
                    token,
                    Pending::Ingest {
                        request,
                        accepted,
                        duplicates,
                        head: head.map(Box::new),
                    },
                );
            }
        }
    }

    /// Classifies the whole batch first; nothing is kept unless every block is acceptable.
    pub(super) fn classify_batch(&mut self, blocks: Vec<Verified>) -> Batch {
        let mut scratch = self.chains.overlay();
        let mut fresh = Vec::new();
        let mut duplicates = 0;
        let me = self.config.agent_id.clone();
        // Own blocks come back only to refill what the last own head vouched for — or, while
        // a lost own tail is being fetched back, what was written after it (a head lags the
        // durable chain by up to `HEAD_EVERY`; there the seed's signature is all there is).
        let vouched = self.heads.latest(&me).map_or(0, |h| h.head.seq);
        let refilling = matches!(
            self.own_chain_unsafe(),
            Some(OwnChainUnsafe::TailMissing { .. })
        );
        for (index, v) in blocks.into_iter().enumerate() {
            let block = v.into_block();
            let mut position = scratch.classify(&block);
            let own = *block.author() == me;
            if position == Position::Next && own && block.seq() > vouched && !refilling {
                self.outputs.push_back(Output::Log(Event::ForgedOwnBlock {
                    seq: block.seq(),
                    hash: block.hash,
                }));
                position = Position::NotSignedHere { vouched };
            }
            match position {
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
                        self.keep_evidence(Evidence::Blocks {
                            held,
                            refused: block.clone(),
                        });
                    }
                    return Batch::Refuse {
                        index,
                        author: block.author().clone(),
                        seq: block.seq(),
                        position,
                    };
                }
            }
        }
        Batch::Accept { fresh, duplicates }
    }

    /// Records accepted blocks in the chains and appends them; returns the token to wait for.
    /// With nothing new, waits for everything issued so far: a duplicate may still be in
    /// flight from an earlier request, and must not be acknowledged before it is durable.
    pub(super) fn store(&mut self, fresh: Vec<Block>) -> AppendToken {
        if fresh.is_empty() {
            return self.commit.issued();
        }
        for b in &fresh {
            self.chains.push(b);
        }
        let token = self.append(fresh);
        self.positions_grew();
        token
    }

    fn refuse_if_failed(&mut self, request: RequestId) -> bool {
        let failed = self.commit.failed();
        if failed {
            self.respond(request, Response::StorageFailed);
        }
        failed
    }

    fn append(&mut self, blocks: Vec<Block>) -> AppendToken {
        let token = self.commit.issue(&blocks);
        self.outputs.push_back(Output::Append { token, blocks });
        token
    }

    pub(super) fn wait(&mut self, token: AppendToken, answer: Pending) {
        self.commit.wait(token, answer);
        self.release(self.last_now);
    }

    pub(super) fn appended(&mut self, now: Instant, token: AppendToken, offsets: Vec<u64>) {
        if self.commit.space_back() {
            self.log(Event::StorageBack);
        }
        self.commit.appended(token, offsets);
        self.release(now);
    }

    pub(super) fn append_failed(&mut self, token: AppendToken, reason: String, full: bool) {
        if full {
            return self.disk_full(token, reason);
        }
        self.log(Event::StorageFailed { reason });
        let waiters = self.commit.fail();
        self.refuse(waiters, Response::StorageFailed, "the strand append failed");
    }

    /// Answers requests whose appends will never be durable with `response`; a pull waiting
    /// on a page fails (it retries from its durable cursor).
    fn refuse(&mut self, waiters: Vec<Pending>, response: Response, why: &str) {
        for answer in waiters {
            match answer {
                Pending::Write { request, .. }
                | Pending::Ingest { request, .. }
                | Pending::Probe { request, .. }
                | Pending::Positions { request } => self.respond(request, response.clone()),
                Pending::Page { peer, .. } => {
                    self.pull_failed(peer, Failure::LocalStorage(why.into()))
                }
            }
        }
    }

    /// The disk was full at the append `token`: it and every append after it are rolled back
    /// (their links leave the chains, so the next write takes the same seq again), their
    /// requests are refused as full, and the strand is told it may take appends again. A
    /// token already rolled back is ignored: the strand refuses what was queued behind it.
    fn disk_full(&mut self, token: AppendToken, reason: String) {
        let already = self.commit.is_full();
        let Some(back) = self.commit.roll_back(token) else {
            return;
        };
        for (author, hash) in &back.links {
            self.chains.pop(author, *hash);
        }
        let rolled_back = back.links.len() as u64;
        if !already {
            self.log(Event::StorageFull {
                reason,
                rolled_back,
            });
        }
        self.outputs.push_back(Output::ResumeAppends);
        self.refuse(back.waiters, Response::StorageFull, "the disk is full");
        self.release(self.last_now);
    }

    /// Answers every waiter whose append is durable, in order, then pushes what became
    /// durable of this node's own chain.
    fn release(&mut self, now: Instant) {
        let own_before = self.own.durable;
        while let Some((answer, offset)) = self.commit.next_ready() {
            match answer {
                Pending::Write {
                    request,
                    hash,
                    seq,
                    wall,
                } => {
                    self.own.committed(seq, wall, now);
                    let receipt = Receipt {
                        hash,
                        author: self.config.agent_id.clone(),
                        seq,
                        offset,
                    };
                    self.written(request, receipt);
                }
                Pending::Ingest {
                    request,
                    accepted,
                    duplicates,
                    head,
                } => {
                    let witnessed = head.and_then(|h| self.witness(*h));
                    let response = Response::Ingested {
                        accepted,
                        duplicates,
                        witnessed,
                    };
                    self.respond(request, response)
                }
                Pending::Page { peer, page } => self.page_stored(peer, page),
                Pending::Positions { request } => self.respond(request, Response::PositionReached),
                Pending::Probe {
                    request,
                    holds,
                    tip,
                } => {
                    let agent_id = self.config.agent_id.clone();
                    let digest = self.membership.digest();
                    let head_key = self.heads.key().public();
                    self.respond(
                        request,
                        Response::ProbeAnswer {
                            agent_id,
                            holds,
                            tip,
                            digest,
                            head_key,
                        },
                    );
                }
            }
        }
        self.tails_progress();
        if self.own.durable > own_before {
            self.own_grew(now);
            self.forget_held_marks();
            self.push_all(now);
        }
    }

    /// A write is durable here: AP (or no peers) answers now; CP waits for every peer.
    fn written(&mut self, request: RequestId, receipt: Receipt) {
        let peers = &self.peers;
        let planted = self.bugs.has(PlantedBug::CpAckBeforePeers);
        let all = || match planted {
            true => Vec::new(),
            false => peers.keys().cloned().collect(),
        };
        if let Some(answer) = self.gate.written(request, receipt, all) {
            self.respond(request, answer);
        }
    }

    /// Answers CP writes that every peer now holds, and, if `failed` names a peer that just
    /// failed, CP writes it did not hold yet (indeterminate: durable here, will replicate).
    pub(super) fn settle_cp(&mut self, failed: Option<&AgentId>) {
        let peers = &self.peers;
        // A peer removed meanwhile no longer counts.
        let holds = |p: &AgentId, seq: u64| {
            peers
                .get(p)
                .is_none_or(|peer| peer.acked().is_some_and(|a| a >= seq))
        };
        for (request, answer) in self.gate.settle(holds, failed) {
            self.respond(request, answer);
        }
    }
}
