//! The node actor: one tokio task that owns a [`Node`] and performs what it asks for.
//!
//! The loop waits for the next request, completion or the core's timeout, feeds it to the
//! core, then drains `poll_output` and performs each output: appends go to the strand's
//! group-commit writer, mesh calls run as tasks, state files go to the persister; each
//! completion comes back as an input; Codios calls go to the [`CodiosClient`]. No policy
//! lives here: every decision is the core's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sapix_core::auth::Credential;
use sapix_core::block::Verified;
use sapix_core::chain::Chains;
use sapix_core::node::{
    CallId, Event, Failure, HeadRefusal, Input, Output, Reply, RequestId, Response,
};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::wire::mesh::{MembersBody, PageLimit};
use sapix_core::{AgentId, Block, Collection, Consistency, KeySchedule, Node, Role};
use tokio::sync::{mpsc, oneshot};

use crate::blocking::Blocking;
use crate::clock::Clock;
use crate::codios::CodiosClient;
use crate::disk::Disk;
use crate::mesh::{self, MeshClient};
use crate::metrics::{CallOutcome, Metrics, WriteOutcome};
use crate::persist::{self, Job};
use crate::strand::Strand;

/// What a handler can ask the node.
#[derive(Debug)]
pub enum Request {
    /// Write a record authored by this node, if `credential` may (the node decides: DESIGN §5).
    Write {
        /// Who asks: the hash of the request's bearer token.
        credential: Credential,
        /// Its collection.
        collection: Collection,
        /// Its JSON bytes.
        payload: Vec<u8>,
    },
    /// May `credential` (absent when the request sent no token) read records of
    /// `collection`? The node decides (DESIGN §5); the handler serves the read.
    Read {
        /// Who asks, if anyone says.
        credential: Option<Credential>,
        /// The collection of the records found; `None` when nothing was found.
        collection: Option<Collection>,
    },
    /// Answer once every position is durable here, or when `wait` ends (read-your-writes).
    Positions {
        /// The chain positions a read needs.
        positions: Vec<sapix_core::node::ChainPosition>,
        /// How long the reader waits.
        wait: std::time::Duration,
    },
    /// Heads or a proof (issue 17).
    Ledger(sapix_core::node::LedgerQuery),
    /// Store blocks pushed by a peer.
    Ingest {
        /// Verified blocks, in order.
        blocks: Vec<Verified>,
        /// The pusher's head to witness, its signature checked.
        head: Option<sapix_core::ledger::VerifiedHead>,
    },
    /// Report the cluster status.
    Status,
    /// Answer a peer's probe about `author`'s chain.
    Probe {
        /// The author asked about.
        author: AgentId,
    },
    /// Switch the gating mode.
    Consistency {
        /// The new mode.
        mode: Consistency,
    },
    /// Pull from a peer now.
    Sync {
        /// The peer.
        peer: AgentId,
    },
    /// Bootstrap a new node.
    Divide {
        /// Its id, endpoint and role.
        new: PeerInfo,
        /// The URL the call was addressed to (scheme and `Host`).
        via: Option<String>,
    },
    /// How the divide running here is going.
    DivideProgress,
    /// Apply a membership announcement.
    Members {
        /// The announcer, if it said.
        from: Option<AgentId>,
        /// Members to know.
        members: Vec<PeerInfo>,
        /// This node's role, if assigned.
        your_role: Option<Role>,
        /// Cursor hints.
        cursors: Vec<(AgentId, u64)>,
    },
    /// Remove a member for good.
    Remove {
        /// The member.
        agent_id: AgentId,
    },
    /// Sign `next` in as this node's head key (already written to disk by the caller).
    RotateHeadKey {
        /// The new key.
        next: sapix_core::ledger::HeadKey,
    },
}

/// The node stopped; the process is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the node is shutting down")]
pub struct NodeGone;

/// Where a handler waits for the node's answer to its request.
type Responder = oneshot::Sender<Response>;

/// A cheap handle for talking to the node actor.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    tx: mpsc::Sender<(Request, Responder)>,
}

impl NodeHandle {
    /// Sends `request` and waits for the core's answer.
    pub async fn ask(&self, request: Request) -> Result<Response, NodeGone> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((request, reply)).await.map_err(|_| NodeGone)?;
        rx.await.map_err(|_| NodeGone)
    }
}

/// Rebuilds the per-author chains from the durable strand.
pub fn chains_from(strand: &Strand) -> Chains {
    let mut chains = Chains::new();
    for e in strand.entries() {
        chains.push_unchecked(&e.author, e.hash);
    }
    chains
}

/// What the actor needs besides the node.
pub struct Shell {
    /// The durable strand.
    pub strand: Arc<Strand>,
    /// The cluster keys, to verify fetched pages.
    pub keys: Arc<KeySchedule>,
    /// The HTTP client for peers.
    pub mesh: MeshClient,
    /// Where `sync_cursors.json` and `cluster.json` live.
    pub state_dir: PathBuf,
    /// The file system they live on.
    pub disk: Arc<dyn Disk>,
    /// The clocks.
    pub clock: Arc<dyn Clock>,
    /// The Codios client, when `SAPIX_CODIOS_URL` is set.
    pub codios: Option<CodiosClient>,
    /// Where strand reads, verification and state-file writes run.
    pub blocking: Blocking,
    /// What the node did, for `GET /metrics`.
    pub metrics: Arc<Metrics>,
}

/// Starts the actor task for `node`.
pub fn spawn(node: Node, shell: Shell) -> NodeHandle {
    // Bounded so a flood of requests waits in handlers rather than growing a queue here.
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(run(node, shell, rx));
    NodeHandle { tx }
}

struct Ctx {
    shell: Shell,
    me: AgentId,
    done: mpsc::UnboundedSender<Input>,
    persist: mpsc::UnboundedSender<Job>,
    replies: HashMap<RequestId, Responder>,
    /// When each client write arrived, for its latency.
    writes: HashMap<RequestId, std::time::Instant>,
}

async fn run(mut node: Node, shell: Shell, mut requests: mpsc::Receiver<(Request, Responder)>) {
    let (done, mut completions) = mpsc::unbounded_channel::<Input>();
    let persist = persist::spawn(done.clone(), shell.blocking, shell.disk.clone());
    let mut ctx = Ctx {
        me: node.agent_id().clone(),
        shell,
        done,
        persist,
        replies: HashMap::new(),
        writes: HashMap::new(),
    };
    let mut next_id = 0u64;
    // The core may want to act at once (e.g. probe peers after a restart).
    node.handle_timeout(ctx.shell.clock.now());
    drain(&mut node, &mut ctx);
    loop {
        let timeout = node.poll_timeout().map(|at| ctx.shell.clock.deadline(at));
        let input = tokio::select! {
            biased;
            Some(done) = completions.recv() => Some(done),
            req = requests.recv() => match req {
                Some((request, reply)) => {
                    next_id += 1;
                    let id = RequestId(next_id);
                    ctx.replies.insert(id, reply);
                    if matches!(request, Request::Write { .. }) {
                        ctx.writes.insert(id, std::time::Instant::now());
                    }
                    Some(to_input(id, request, ctx.shell.clock.as_ref()))
                }
                None => break,
            },
            _ = sleep_until(timeout) => None,
        };
        let now = ctx.shell.clock.now();
        match input {
            Some(input) => node.handle(now, input),
            None => node.handle_timeout(now),
        }
        drain(&mut node, &mut ctx);
    }
}

fn drain(node: &mut Node, ctx: &mut Ctx) {
    while let Some(output) = node.poll_output() {
        perform(output, ctx);
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn to_input(request: RequestId, r: Request, clock: &dyn Clock) -> Input {
    match r {
        Request::Write {
            credential,
            collection,
            payload,
        } => Input::WriteRequested {
            request,
            credential,
            collection,
            payload,
            wall: clock.wall(),
        },
        Request::Read {
            credential,
            collection,
        } => Input::ReadRequested {
            request,
            credential,
            collection,
        },
        Request::Positions { positions, wait } => Input::PositionsWanted {
            request,
            positions,
            wait,
        },
        Request::Ledger(query) => Input::LedgerWanted { request, query },
        Request::Ingest { blocks, head } => Input::IngestRequested {
            request,
            blocks,
            head,
        },
        Request::Status => Input::StatusRequested {
            request,
            wall: clock.wall(),
        },
        Request::Probe { author } => Input::ProbeRequested { request, author },
        Request::Consistency { mode } => Input::ConsistencyRequested { request, mode },
        Request::Sync { peer } => Input::SyncRequested { request, peer },
        Request::Divide { new, via } => Input::DivideRequested { request, new, via },
        Request::DivideProgress => Input::DivideProgressRequested { request },
        Request::Members {
            from,
            members,
            your_role,
            cursors,
        } => Input::MembersAnnounced {
            request,
            from,
            members,
            your_role,
            cursors,
        },
        Request::Remove { agent_id } => Input::RemoveRequested { request, agent_id },
        Request::RotateHeadKey { next } => Input::RotateHeadKey { request, next },
    }
}

fn perform(output: Output, ctx: &mut Ctx) {
    match output {
        Output::AskCodios { call, key } => {
            let (codios, metrics) = (ctx.shell.codios.clone(), ctx.shell.metrics.clone());
            spawn_call(&ctx.done, call, async move {
                let started = std::time::Instant::now();
                let decision = match &codios {
                    Some(c) => c.authorize(&key).await,
                    None => Err(Failure::NotSent(
                        "no Codios endpoint is configured".to_string(),
                    )),
                };
                let outcome = decision.map(Reply::Decided);
                metrics.codios(CallOutcome::of(&outcome), started.elapsed());
                outcome
            });
        }
        Output::Append { token, blocks } => {
            let done = ctx.done.clone();
            ctx.shell.strand.append(
                blocks,
                Box::new(move |result| {
                    let input = match result {
                        Ok(offsets) => Input::Appended { token, offsets },
                        Err(e) => Input::AppendFailed {
                            token,
                            reason: e.to_string(),
                            full: e.is_full(),
                        },
                    };
                    // The actor is gone only at shutdown, when nobody waits for the answer.
                    let _ = done.send(input);
                }),
            );
        }
        Output::ResumeAppends => ctx.shell.strand.resume(),
        Output::Respond { request, response } => {
            if let Some(arrived) = ctx.writes.remove(&request) {
                let outcome = WriteOutcome::of(&response);
                ctx.shell.metrics.write(outcome, arrived.elapsed());
            }
            if let Some(reply) = ctx.replies.remove(&request) {
                // The handler may have given up (client disconnected): nothing to do.
                let _ = reply.send(response);
            }
        }
        Output::Log(event) => log(event),
        Output::Push {
            call,
            peer,
            endpoint,
            from,
            to,
            head,
        } => {
            let (strand, mesh, me) = (
                ctx.shell.strand.clone(),
                ctx.shell.mesh.clone(),
                ctx.me.clone(),
            );
            let blocking = ctx.shell.blocking;
            let metrics = ctx.shell.metrics.clone();
            spawn_call(&ctx.done, call, async move {
                let blocks = read_own(blocking, strand, me, from, to).await?;
                let outcome = mesh.ingest(&endpoint, &blocks, head.as_ref()).await;
                metrics.push(peer.as_str(), CallOutcome::of(&outcome));
                outcome
            });
        }
        Output::Probe { call, endpoint, .. } | Output::ProbeBack { call, endpoint, .. } => {
            probe(ctx, call, endpoint)
        }
        Output::FetchPage {
            call,
            peer,
            endpoint,
            after,
            limit,
        } => {
            let (mesh, keys) = (ctx.shell.mesh.clone(), ctx.shell.keys.clone());
            let (blocking, metrics) = (ctx.shell.blocking, ctx.shell.metrics.clone());
            let strand = ctx.shell.strand.clone();
            spawn_call(&ctx.done, call, async move {
                let page =
                    fetch_verified(blocking, &mesh, &endpoint, (after, limit), keys, strand).await;
                metrics.pull(peer.as_str(), CallOutcome::of(&page));
                page
            });
        }
        Output::PersistCursors { call, cursors, .. } => {
            let job = Job::cursors(&ctx.shell.state_dir, &cursors, call);
            let _ = ctx.persist.send(job);
        }
        Output::PersistCluster { call, state, .. } => {
            let job = Job::cluster(&ctx.shell.state_dir, &state, call);
            let _ = ctx.persist.send(job);
        }
        Output::PersistHead { head } => {
            let _ = ctx.persist.send(Job::head(&ctx.shell.state_dir, &head));
        }
        Output::PersistWitnessed { heads } => {
            let _ = ctx
                .persist
                .send(Job::witnessed(&ctx.shell.state_dir, &heads));
        }
        Output::KeepEvidence { evidence } => {
            let (disk, strand) = (ctx.shell.disk.clone(), ctx.shell.strand.clone());
            let dir = ctx.shell.state_dir.clone();
            let blocking = ctx.shell.blocking;
            tokio::spawn(async move {
                let path = crate::evidence::path(&dir, &evidence);
                let kept = blocking
                    .run(move || crate::evidence::keep(&*disk, &strand, &dir, &evidence))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                match kept {
                    Ok(()) => tracing::warn!(
                        path = %path.display(),
                        "equivocation evidence kept"
                    ),
                    Err(e) => tracing::error!(
                        alert = "evidence_not_kept",
                        path = %path.display(),
                        "equivocation evidence could not be written: {e}"
                    ),
                }
            });
        }
        Output::Copy {
            call,
            endpoint,
            after,
            limit,
            ..
        } => {
            let (strand, mesh) = (ctx.shell.strand.clone(), ctx.shell.mesh.clone());
            let blocking = ctx.shell.blocking;
            spawn_call(&ctx.done, call, async move {
                copy_batch(blocking, strand, &mesh, &endpoint, (after, limit)).await
            });
        }
        Output::Announce {
            call,
            to,
            endpoint,
            members,
            your_role,
            cursors,
        } => {
            let (mesh, me) = (ctx.shell.mesh.clone(), ctx.me.clone());
            spawn_call(&ctx.done, call, async move {
                let body = MembersBody {
                    from: Some(me),
                    members,
                    your_role,
                    cursors,
                };
                let outcome = mesh.announce(&endpoint, &body).await;
                if let Err(reason) = &outcome {
                    tracing::warn!(peer = %to, %reason, "membership announcement failed; will retry");
                }
                outcome.map(|a| Reply::MembersUpdated { members: a.members })
            });
        }
    }
}

/// Reads this node's own blocks `from..=to` from the strand.
async fn read_own(
    blocking: Blocking,
    strand: Arc<Strand>,
    me: AgentId,
    from: u64,
    to: u64,
) -> Result<Vec<Block>, Failure> {
    let own = blocking
        .run(move || {
            (from..=to)
                .map(|seq| match strand.get_by_author_seq(&me, seq) {
                    Ok(Some((_, b))) => Ok(b),
                    Ok(None) => Err(format!("own block {me}/{seq} is not in the strand")),
                    Err(e) => Err(format!("reading own block {me}/{seq}: {e}")),
                })
                .collect::<Result<Vec<Block>, String>>()
        })
        .await;
    // The call is never made when this node cannot read its own blocks.
    own.map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(Failure::NotSent)
}

/// Asks `endpoint` who it is and how much of this node's chain it holds, for `call`.
fn probe(ctx: &Ctx, call: CallId, endpoint: String) {
    let (mesh, me) = (ctx.shell.mesh.clone(), ctx.me.clone());
    spawn_call(&ctx.done, call, async move {
        mesh.probe(&endpoint, &me).await.map(|p| Reply::Probed {
            digest: p.digest(),
            head_key: p.head_key(),
            tip: p.tip(),
            agent_id: p.agent_id,
            holds: p.holds,
        })
    });
}

/// Runs one call on its own task and tells the node how it ended, under its id. Whatever
/// becomes of that task — even a panic in a client library — the node hears: a call that
/// never reports leaves the core waiting for ever (a divide that never answers, a peer never
/// probed again).
fn spawn_call<Fut>(done: &mpsc::UnboundedSender<Input>, call: CallId, run: Fut)
where
    Fut: std::future::Future<Output = Result<Reply, Failure>> + Send + 'static,
{
    let done = done.clone();
    let task = tokio::spawn(run);
    tokio::spawn(async move {
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, %call, "a mesh call's task failed; the call counts as failed");
                Err(Failure::NotSent(format!("the call's task failed: {e}")))
            }
        };
        let _ = done.send(Input::CallEnded { call, outcome });
    });
}

/// Fetches `endpoint`'s export page after `after` and verifies its blocks.
async fn fetch_verified(
    blocking: Blocking,
    mesh: &MeshClient,
    endpoint: &str,
    (after, limit): (u64, usize),
    keys: Arc<KeySchedule>,
    strand: Arc<Strand>,
) -> Result<Reply, Failure> {
    let page = mesh.fetch(endpoint, after, limit).await?;
    let (next, tip) = (page.next, page.tip);
    let blocks = blocking
        .run(move || mesh::verify_page(page, &keys, &strand))
        .await
        .map_err(|e| Failure::NotSent(format!("verifying the page: {e}")))??;
    Ok(Reply::Page { blocks, next, tip })
}

/// Sends the batch of local blocks after offset `after` to the new node; returns what the
/// node is told.
async fn copy_batch(
    blocking: Blocking,
    strand: Arc<Strand>,
    mesh: &MeshClient,
    endpoint: &str,
    (after, limit): (u64, PageLimit),
) -> Result<Reply, Failure> {
    let page = blocking
        .run(move || strand.export(after, limit.blocks, limit.bytes))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| format!("reading the strand: {e}")));
    // The call is never made when our own strand cannot be read.
    let page = page.map_err(Failure::NotSent)?;
    let next = page.last().map_or(after, |(o, _)| *o);
    let blocks: Vec<Block> = page.into_iter().map(|(_, b)| b).collect();
    let sent = blocks.len() as u64;
    if blocks.is_empty() {
        // Nothing left to copy: the batch is done without a request.
        return Ok(Reply::Ingested { witnessed: None }.of_copy(next, sent));
    }
    Ok(mesh
        .ingest(endpoint, &blocks, None)
        .await?
        .of_copy(next, sent))
}

fn log(event: Event) {
    match event {
        Event::Equivocation {
            author,
            seq,
            held,
            refused,
        } => tracing::error!(
            alert = "equivocation",
            %author, seq, held = %held, refused = %refused,
            "author signed two different blocks at one position; the second was refused"
        ),
        Event::ForgedOwnBlock { seq, hash } => tracing::error!(
            alert = "forged_own_block",
            seq, hash = %hash,
            "a peer sent a block of this node's own chain that it never signed (valid under the \
             master seed's key for it): refused; someone other than this node holds the seed"
        ),
        Event::PeerHoldsForgedBlock { peer, seq } => tracing::error!(
            alert = "peer_holds_forged_block",
            %peer, seq,
            "a peer holds a block of this node's chain at this seq that this node never signed \
             (valid under the master seed's key for it): someone else holds the seed; nothing \
             it holds of this chain is counted as delivered"
        ),
        Event::OwnChainUnsafe(why) => tracing::error!(
            alert = "own_chain_unsafe",
            reason = %why,
            "this node's strand does not hold what it signed a head over; its own writes are refused"
        ),
        Event::HeadKeyEnrolled {
            member,
            key,
            replaced: None,
        } => tracing::info!(%member, head_key = %key, "head key enrolled"),
        Event::HeadKeyEnrolled {
            member,
            key,
            replaced: Some(old),
        } => tracing::warn!(
            alert = "head_key_rotated",
            %member, head_key = %key, replaced = %old,
            "head key rotated: signed in by the key it replaces"
        ),
        Event::HeadKeyRefused {
            member,
            enrolled,
            offered,
        } => tracing::error!(
            alert = "head_key_refused",
            %member,
            enrolled = %enrolled.map_or("none".into(), |k| k.to_hex()),
            offered = %offered,
            "a membership entry offered another head key than the one enrolled, not signed \
             in by it: refused, the enrolled key kept"
        ),
        Event::HeadKeyNotEnrolled { local, enrolled } => tracing::error!(
            alert = "head_key_not_enrolled",
            local = %local, %enrolled,
            "this node's head_key file holds another key than the cluster enrolled for it: \
             its heads will not verify; restore the key file, or rotate from the enrolled key"
        ),
        Event::HeadRefused {
            author,
            seq,
            why: why @ HeadRefusal::Diverged { .. },
        } => tracing::error!(
            alert = "head_refused",
            %author, seq,
            "a pushed head was not cosigned: {why}"
        ),
        Event::HeadRefused { author, seq, why } => tracing::info!(
            %author, seq,
            "a pushed head was not cosigned: {why} (a rotation not yet heard of, or a node \
             outside the membership)"
        ),
        Event::WitnessedChainUnsafe(why) => tracing::error!(
            alert = "witnessed_chain_unsafe",
            reason = %why,
            "this node's strand does not hold a chain it witnessed a head over"
        ),
        Event::WitnessedChainRecovered { author, seq } => tracing::info!(
            alert = "witnessed_chain_recovered",
            %author, seq,
            "this node's copy of the chain holds the head it witnessed again"
        ),
        Event::OwnChainRecovered { seq } => tracing::info!(
            alert = "own_chain_recovered",
            seq,
            "this node's own chain holds its last signed head again: its own writes resume"
        ),
        Event::StorageFull {
            reason,
            rolled_back,
        } => tracing::warn!(
            alert = "storage_full",
            %reason, rolled_back,
            "disk full: the writes in flight were refused and nothing of them stored; \
             writes are tried again as they come and succeed once space is freed"
        ),
        Event::StorageBack => tracing::info!(
            alert = "storage_back",
            "the disk has space again: writes are taken again"
        ),
        Event::StorageFailed { reason } => tracing::error!(
            alert = "storage_failed",
            %reason,
            "the strand failed; this node refuses all writes until restarted"
        ),
        Event::PeerUnreachable { peer, reason } => {
            tracing::warn!(%peer, %reason, "peer unreachable")
        }
        Event::PeerReachable { peer } => tracing::info!(%peer, "peer reachable"),
        Event::PushRetry {
            peer,
            failures,
            retry_in_ms,
            queued,
            reason,
        } => {
            tracing::warn!(%peer, failures, retry_in_ms, queued, %reason, "push failed; will retry")
        }
        Event::ExtendedFailure { peer, queued } => tracing::error!(
            alert = "extended_failure",
            %peer, queued,
            "push backoff reached 60 s: peer down for an extended time; blocks stay queued in the strand"
        ),
        Event::Pulled {
            peer,
            totals,
            cursor,
        } => tracing::info!(
            %peer, pages = totals.pages, fetched = totals.fetched, ingested = totals.ingested, cursor,
            "pull-sync caught up"
        ),
        Event::PullFailed { peer, reason } => tracing::warn!(%peer, %reason, "pull-sync failed"),
        Event::ClusterPersistFailed {
            version,
            answered,
            retry_in_ms,
            reason,
        } => tracing::error!(
            alert = "state_write_failed",
            version, answered, retry_in_ms, %reason,
            "writing cluster.json failed; changes are in effect but not durable until a retry succeeds"
        ),
        Event::DivideProgress { to, copied, tip } => {
            tracing::info!(%to, copied, tip, "bootstrap copy progress")
        }
        Event::EndpointLearned { endpoint, from } => tracing::info!(
            %endpoint, from,
            "endpoint learned (wildcard bind, no SAPIX_ENDPOINT); advertised from now on"
        ),
        Event::PeerAdded { peer } => tracing::info!(
            peer = %peer.agent_id, endpoint = %peer.endpoint, role = ?peer.role,
            "peer added"
        ),
        Event::PeerRemoved { peer } => {
            tracing::warn!(%peer, "member removed from the cluster; its blocks stay")
        }
        Event::RemovedFromCluster => tracing::error!(
            alert = "removed_from_cluster",
            "this node was removed from the cluster by an operator; peers no longer replicate \
             to it: shut it down"
        ),
        Event::WriteAuthorized {
            request,
            key,
            degraded,
        } => tracing::debug!(request = request.0, key = ?key, degraded, "write authorized"),
        Event::AuthDegraded {
            key,
            age_ms,
            circuit_open,
            reason,
        } => tracing::warn!(
            auth_degraded = true,
            key = ?key, age_ms, circuit_open, %reason,
            "write authorized from a cached decision without a fresh Codios answer"
        ),
        Event::CodiosFailed {
            key,
            waiting,
            reason,
        } => tracing::warn!(key = ?key, waiting, %reason, "Codios call failed"),
        Event::AuthCircuitOpened { failing_for_ms } => tracing::error!(
            alert = "auth_circuit_open",
            failing_for_ms,
            "Codios circuit opened: writes proceed on cached decisions without real-time \
             authorization until Codios answers again"
        ),
        Event::AuthCircuitClosed { open_for_ms } => tracing::warn!(
            open_for_ms,
            "Codios circuit closed: Codios answers again, normal enforcement resumes"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_whose_task_panics_is_reported_as_failed() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        spawn_call(&tx, CallId(7), async { panic!("a client library's bug") });
        let input = rx.recv().await.expect("the node hears of the call");
        let Input::CallEnded {
            call: CallId(7),
            outcome: Err(reason),
        } = input
        else {
            panic!("want call 7 failed, got {input:?}");
        };
        assert!(
            matches!(&reason, Failure::NotSent(why) if why.contains("panicked")),
            "{reason:?}"
        );
    }
}
