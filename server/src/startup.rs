//! Start-up: secrets, node identity, strand recovery, then serve until a signal.
//!
//! With no environment at all this gives the embedded single node the README promises: data
//! under `./sapix-data`, a master seed generated once and kept there (mode 0600), and the root
//! key written beside it for the operator to read. Secrets are never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rand::RngCore;
use sapix_core::ledger::VerifiedHead;
use sapix_core::node::{NodeConfig, Restored};
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{AgentId, KeySchedule, MasterSeed, Node, RootKey};
use sapix_runtime::actor::{NodeHandle, Shell};
use sapix_runtime::blocking::Blocking;
use sapix_runtime::clock::{Clock, SystemClock};
use sapix_runtime::codios::CodiosClient;
use sapix_runtime::disk::{ensure_dir, Disk, OsDisk};
use sapix_runtime::http::Connector;
use sapix_runtime::mesh::MeshClient;
use sapix_runtime::metrics::Metrics;
use sapix_runtime::strand::{Strand, StrandOptions};
use sapix_runtime::tls::Tls;
use sapix_runtime::{persist, state_file};
use serde::{Deserialize, Serialize};

use crate::api::{self, AppState};
use crate::config::Config;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A file or directory could not be used.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The strand could not be opened or recovered.
    #[error("strand: {0}")]
    Strand(#[from] sapix_runtime::strand::StrandError),
    /// The strand belongs to another agent.
    #[error("{path} belongs to agent `{found}`, but SAPIX_AGENT_ID is `{configured}`; refusing to author into another agent's strand")]
    WrongAgent {
        /// The identity file.
        path: PathBuf,
        /// The id recorded there.
        found: AgentId,
        /// The id configured.
        configured: AgentId,
    },
    /// A TLS file could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The address could not be bound.
    #[error("SAPIX_BIND_ADDR {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StartError + 'a {
    move |source| StartError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The other authors' heads this node witnessed before, each checked again: one whose
/// signature fails (the file was edited) is dropped with a warning, never served.
fn witnessed_heads(disk: &dyn Disk, dir: &Path) -> Result<Vec<VerifiedHead>, StartError> {
    let path = dir.join(persist::WITNESSED_FILE);
    let heads = persist::load_witnessed(disk, dir).map_err(io("reading", &path))?;
    Ok(heads
        .into_iter()
        .filter_map(|h| {
            let (author, seq) = (h.head.author.clone(), h.head.seq);
            VerifiedHead::check(h)
                .inspect_err(|e| {
                    tracing::warn!(%author, seq, "a witnessed head in {}: {e}; dropped", path.display())
                })
                .ok()
        })
        .collect())
}

/// The node's persisted identity, kept in the strand dir beside the blocks it authored.
#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    agent_id: AgentId,
    added_at_ms: u64,
}

/// What differs between the production process and a simulated host: the clocks, how
/// connections to peers and Codios are made, the node's rng seed, and where blocking work runs.
#[derive(Clone)]
pub struct Environment {
    /// The clocks.
    pub clock: Arc<dyn Clock>,
    /// How the mesh and Codios clients connect.
    pub connector: Connector,
    /// The seed of the node's rng (retry jitter).
    pub rng_seed: u64,
    /// Where strand reads, verification and state-file writes run; [`Blocking::Inline`] also
    /// commits appends on the actor's task instead of the writer thread.
    pub blocking: Blocking,
    /// The file system the strand and state files live on.
    pub disk: Arc<dyn Disk>,
    /// Where the node's head keys are drawn from.
    pub head_keys: crate::head_key::KeySource,
}

impl Environment {
    /// The real process: system clocks, TCP (and TLS), a random seed, the blocking pool.
    pub fn production() -> Self {
        Environment {
            clock: Arc::new(SystemClock::new()),
            connector: Connector::tcp(),
            rng_seed: rand::rngs::OsRng.next_u64(),
            blocking: Blocking::Pool,
            disk: OsDisk::shared(),
            head_keys: crate::head_key::KeySource::Os,
        }
    }
}

/// A node that runs: its actor is started and its router is ready to serve.
pub struct Started {
    /// The whole HTTP API, to serve on any listener.
    pub app: Router,
    /// The durable strand, for the shutdown checkpoint.
    pub strand: Arc<Strand>,
    /// Set when shutdown begins, so readiness turns false while connections drain.
    pub shutting_down: Arc<AtomicBool>,
    /// The node actor, for callers in the same process (the benchmark's ceilings).
    pub node: NodeHandle,
}

/// Runs the agent until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), StartError> {
    raise_fd_limit(config.http.max_connections);
    let listener = tokio::net::TcpListener::bind(config.bind_addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind_addr,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind_addr,
        source,
    })?;
    // Any TLS file configured (a listener cert, a CA for peers, a client cert) loads them all.
    let tls = if config.tls == Default::default() {
        None
    } else {
        Some(Tls::load(config.tls.clone()).map_err(StartError::Tls)?)
    };
    let mut env = Environment::production();
    if let Some(tls) = &tls {
        env.connector = Connector::tcp_with_tls(tls.clone());
        spawn_tls_reload(tls.clone());
    }
    let Started {
        app,
        strand,
        shutting_down,
        ..
    } = start(&config, bound, env).await?;
    spawn_checkpoints(strand.clone(), Blocking::Pool);
    let scheme = config.scheme();
    tracing::info!(agent_id = %config.agent_id, %bound, scheme, blocks = strand.tip(), "serving");
    // The one line on stdout: scripts and tests wait for it to learn the bound address.
    println!("sapix-agent listening on {scheme}://{bound}");
    let signal = async {
        shutdown_signal().await;
        shutting_down.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: no new connections; draining the open ones");
    };
    crate::serve::serve(listener, app, config.http, tls, signal).await;
    if let Err(e) = strand.checkpoint() {
        tracing::warn!(error = %e, "index checkpoint at shutdown failed; it will be rebuilt");
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// How often the TLS files are checked for a change.
const TLS_RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Reloads the TLS files when they change: new connections (in and out) use the new ones.
fn spawn_tls_reload(tls: Arc<Tls>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TLS_RELOAD_EVERY);
        loop {
            every.tick().await;
            match tls.reload_if_changed() {
                Ok(true) => tracing::info!("TLS files changed: reloaded"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "TLS files changed but cannot be used; keeping the previous ones")
                }
            }
        }
    });
}

/// Opens the node's storage, recovers its state, starts its actor and builds its router: all
/// of start-up but the listening socket, so a simulation can serve the same node on its own.
/// `bound` is the address the router will be served on (the default endpoint).
pub async fn start(
    config: &Config,
    bound: SocketAddr,
    env: Environment,
) -> Result<Started, StartError> {
    let disk = env.disk;
    for dir in [
        &config.data_dir,
        &config.strand_dir,
        &config.graph_dir,
        &config.blob_dir,
    ] {
        ensure_dir(&*disk, dir).map_err(io("creating", dir))?;
    }
    let seed = master_seed(&*disk, config)?;
    let keys = Arc::new(KeySchedule::new(seed));
    let root_key = root_key(&*disk, config, &keys)?;
    let clock = env.clock;
    let identity = identity(&*disk, config, clock.wall().0)?;

    let mut opts = StrandOptions::new(
        config.strand_dir.clone(),
        config.graph_dir.clone(),
        config.blob_dir.clone(),
    );
    opts.inline_writer = env.blocking == Blocking::Inline;
    let strand_disk = disk.clone();
    let (strand, report) = env
        .blocking
        .run(move || Strand::open_on(strand_disk, opts))
        .await
        .expect("strand open task panicked")?;
    // Fields, not a Debug string: JSON logs keep each one queryable.
    tracing::info!(
        tip = report.tip,
        segments = report.segments,
        checkpoint = %report.checkpoint,
        scanned_frames = report.scanned_frames,
        "strand open"
    );
    if let Some(t) = &report.truncated {
        tracing::warn!(
            file = %t.file.display(),
            truncated_to = t.pos,
            dropped_bytes = t.dropped_bytes,
            at_offset = t.at_offset,
            why = %t.why,
            "strand open: a torn or corrupt tail was cut off the last segment"
        );
    }
    let strand = Arc::new(strand);

    let (cluster, cursors) = persist::load(&*disk, &config.strand_dir)
        .map_err(io("reading state in", &config.strand_dir))?;
    let head = persist::load_head(&*disk, &config.strand_dir)
        .map_err(io("reading state in", &config.strand_dir))?;
    let key_files =
        crate::head_key::KeyFiles::new(disk.clone(), &config.data_dir, env.head_keys.clone());
    let enrolled = cluster
        .as_ref()
        .and_then(|c| c.me.as_ref())
        .and_then(|me| me.head_keys.current());
    let key_path = config.data_dir.join(crate::head_key::FILE);
    let head_key = key_files
        .load(enrolled)
        .map_err(io("reading or writing", &key_path))?;
    if let Some(h) = head.as_ref().filter(|h| h.key != head_key.public()) {
        tracing::warn!(
            signed_by = %h.key,
            head_key = %head_key.public(),
            seq = h.head.seq,
            "the last head in head.json was signed by another head key (a rotation, or a key \
             file replaced): it is not served; the next head is signed with this key"
        );
    }
    tracing::info!(head_key = %head_key.public(), "head key: this node's own (mode 0600 in the data dir)");
    let restored = Restored {
        chains: sapix_runtime::actor::chains_from(&strand),
        local_tip: strand.tip(),
        cluster,
        cursors,
        head,
        evidence: sapix_runtime::evidence::list(&*disk, &config.strand_dir).map_err(io(
            "listing",
            &config.strand_dir.join(sapix_runtime::evidence::DIR),
        ))?,
        witnessed: witnessed_heads(&*disk, &config.strand_dir)?,
    };
    let node = Node::new(
        NodeConfig {
            agent_id: config.agent_id.clone(),
            endpoint: config.endpoint_for(bound),
            added_at: sapix_core::UnixMillis(identity.added_at_ms),
            backoff: BackoffPolicy::default(),
            rng_seed: env.rng_seed,
            root: root_key.credential(),
            auth: config.auth.clone(),
            head_key,
        },
        keys.signing_key(&config.agent_id),
        restored,
    );
    let mesh =
        MeshClient::with_connector(root_key.clone(), config.mesh_timeout, env.connector.clone());
    let codios = codios_client(config, env.connector)?;
    let metrics = Metrics::new(config.agent_id.as_str());
    strand.observe(metrics.clone());
    let handle = sapix_runtime::actor::spawn(
        node,
        Shell {
            strand: strand.clone(),
            keys: keys.clone(),
            mesh,
            state_dir: config.strand_dir.clone(),
            disk,
            clock: clock.clone(),
            codios,
            blocking: env.blocking,
            metrics: metrics.clone(),
        },
    );
    let shutting_down = Arc::new(AtomicBool::new(false));
    let app = api::router(AppState {
        node: handle.clone(),
        strand: strand.clone(),
        keys,
        root_key,
        root_key_next: config.root_key_next.clone(),
        agent_id: config.agent_id.clone(),
        clock,
        blocking: env.blocking,
        body_timeout: config.http.body_timeout,
        shutting_down: shutting_down.clone(),
        scheme: config.scheme(),
        require_client_cert: config.tls.require_client_cert,
        metrics,
        head_key: Arc::new(crate::head_key::Rotation::new(key_files)),
    });
    Ok(Started {
        app,
        strand,
        shutting_down,
        node: handle,
    })
}

/// The Codios client in Codios mode; says at start which mode the agent runs in.
fn codios_client(
    config: &Config,
    connector: Connector,
) -> Result<Option<CodiosClient>, StartError> {
    let Some(url) = &config.codios_url else {
        tracing::warn!(auth = "local", "{}", config.auth_mode_line());
        let a = &config.auth;
        if a.breaker.enabled || a.policy.require_codios || config.codios_api_key.is_some() {
            tracing::warn!(
                "SAPIX_AUTH_CIRCUIT_BREAKER, SAPIX_REQUIRE_CODIOS and SAPIX_CODIOS_API_KEY have \
                 no effect without SAPIX_CODIOS_URL"
            );
        }
        return Ok(None);
    };
    let client = CodiosClient::with_connector(
        url,
        config.codios_api_key.clone(),
        config.codios_timeout,
        connector,
    )
    .map_err(|e| StartError::Io {
        what: "building the Codios client for",
        path: PathBuf::from("SAPIX_CODIOS_URL"),
        source: std::io::Error::other(e.to_string()),
    })?;
    tracing::info!(
        auth = "codios",
        codios = %client.endpoint(),
        timeout_ms = config.codios_timeout.as_millis() as u64,
        api_key = config.codios_api_key.is_some(),
        "{}",
        config.auth_mode_line()
    );
    Ok(Some(client))
}

/// How often the strand's index checkpoint is refreshed, if anything was appended: bounds the
/// scan a restart after a crash has to do.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Refreshes the index checkpoint every [`CHECKPOINT_EVERY`] while anything was appended.
pub fn spawn_checkpoints(strand: Arc<Strand>, blocking: Blocking) {
    tokio::spawn(async move {
        let mut done = strand.tip();
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let tip = strand.tip();
            if tip == done {
                continue;
            }
            let s = strand.clone();
            match blocking.run(move || s.checkpoint()).await {
                Ok(Ok(())) => done = tip,
                Ok(Err(e)) => tracing::warn!(error = %e, "index checkpoint failed; will retry"),
                Err(e) => tracing::warn!(error = %e, "index checkpoint task failed"),
            }
        }
    });
}

/// Raises the soft limit on open files to the hard one: each connection is a descriptor, and
/// the default soft limit (often 1024) is below `SAPIX_MAX_CONNECTIONS`.
fn raise_fd_limit(max_connections: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    // Descriptors beyond connections: the strand's segments, state files, peers' connections.
    let needed = max_connections as u64 + 256;
    if lim.rlim_cur < needed {
        tracing::warn!(
            open_files = lim.rlim_cur,
            needed,
            "the open-files limit is below SAPIX_MAX_CONNECTIONS + 256; accepts will pause when it is reached"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The configured seed, else the one kept in the data dir, else a new one written there.
fn master_seed(disk: &dyn Disk, config: &Config) -> Result<MasterSeed, StartError> {
    if let Some(seed) = &config.master_seed {
        return Ok(seed.clone());
    }
    let path = config.data_dir.join("master_seed");
    if let Some(bytes) = state_file::read_bounded(disk, &path).map_err(io("reading", &path))? {
        let text = String::from_utf8_lossy(&bytes);
        return MasterSeed::from_hex(&text).map_err(|e| StartError::Io {
            what: "parsing",
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        });
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let seed = MasterSeed::from_bytes(bytes);
    state_file::write_atomic(
        disk,
        &path,
        format!("{}\n", seed.to_hex()).as_bytes(),
        0o600,
    )
    .map_err(io("writing", &path))?;
    tracing::warn!(
        path = %path.display(),
        "SAPIX_MASTER_SEED is not set: generated a new master seed (mode 0600). \
         Every node of a cluster needs the same seed; pass it as SAPIX_MASTER_SEED to add peers."
    );
    Ok(seed)
}

/// The configured root key, else the one derived from the seed, written to the data dir.
fn root_key(disk: &dyn Disk, config: &Config, keys: &KeySchedule) -> Result<RootKey, StartError> {
    if let Some(k) = &config.root_key {
        tracing::info!("root key: from SAPIX_ROOT_KEY");
        return Ok(k.clone());
    }
    let key = keys.default_root_key();
    let path = config.data_dir.join("root_key");
    let current = state_file::read_bounded(disk, &path).map_err(io("reading", &path))?;
    let want = format!("{}\n", key.expose());
    if current.as_deref() != Some(want.as_bytes()) {
        state_file::write_atomic(disk, &path, want.as_bytes(), 0o600)
            .map_err(io("writing", &path))?;
    }
    tracing::info!(
        path = %path.display(),
        "root key: derived from the master seed; read it from this file (mode 0600)"
    );
    Ok(key)
}

fn identity(disk: &dyn Disk, config: &Config, now_ms: u64) -> Result<Identity, StartError> {
    let path = config.strand_dir.join("node.json");
    match state_file::read_json::<Identity>(disk, &path).map_err(io("reading", &path))? {
        Some(id) if id.agent_id != config.agent_id => Err(StartError::WrongAgent {
            path,
            found: id.agent_id,
            configured: config.agent_id.clone(),
        }),
        Some(id) => Ok(id),
        None => {
            let id = Identity {
                agent_id: config.agent_id.clone(),
                added_at_ms: now_ms,
            };
            state_file::write_json(disk, &path, &id).map_err(io("writing", &path))?;
            Ok(id)
        }
    }
}
