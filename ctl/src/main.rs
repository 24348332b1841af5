//! sapixctl: the operator's command line for a running `sapix-agent` — status as a table or
//! JSON, health, the consistency switch, a manual sync, members, a divide with progress, a
//! backup, and reads (a record by hash, chains and their pages, read-your-writes positions).
//! It only calls the agent's HTTP API (the spec's endpoints), so what it does an operator can
//! also do with curl.

mod backup;
mod client;
mod table;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use reqwest::Method;
use sapix_core::status::ClusterStatus;
use serde_json::{json, Value};

use client::{Client, Failed};

#[derive(Parser)]
#[command(
    name = "sapixctl",
    version,
    about = "Operate a SapixDB agent over its HTTP API"
)]
struct Cli {
    /// The agent's base URL.
    #[arg(
        long,
        env = "SAPIX_URL",
        default_value = "http://127.0.0.1:7475",
        global = true
    )]
    url: String,
    /// The root key (prefer --root-key-file or SAPIX_ROOT_KEY: a flag shows in `ps`).
    #[arg(long, env = "SAPIX_ROOT_KEY", hide_env_values = true, global = true)]
    root_key: Option<String>,
    /// A file holding the root key, e.g. the agent's `<data dir>/root_key`.
    #[arg(long, global = true, conflicts_with = "root_key")]
    root_key_file: Option<PathBuf>,
    /// Output: a table for people, or JSON for scripts.
    #[arg(short, long, value_enum, default_value_t = Format::Table, global = true)]
    output: Format,
    /// Give up on a call after this many seconds (a divide waits for the copy: see `divide`).
    #[arg(long, default_value_t = 10, global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Every node: reachable, how far behind, retry queue, backoff, last sync.
    Status,
    /// Whether the agent is ready (exit 1 if not), with each check.
    Health,
    /// Show the write gating mode, or switch it.
    Consistency {
        /// The new mode.
        #[arg(value_enum)]
        mode: Option<Mode>,
    },
    /// Pull from a peer now (the runbook's manual catch-up).
    Sync {
        /// The peer's agent id.
        peer: String,
    },
    /// List the members, or remove one for good.
    Members {
        #[command(subcommand)]
        action: Option<MembersAction>,
    },
    /// Add a new node: copy every block to it and make it a member (the spec's Step 3), with
    /// a progress bar (blocks copied of the strand's) while it runs.
    Divide {
        /// The new node's agent id.
        new_agent_id: String,
        /// Its base URL, as the other members reach it.
        endpoint: String,
        /// Its role.
        #[arg(long, default_value = "Replica")]
        role: String,
        /// Give up after this many seconds (the copy of a large strand takes a while).
        #[arg(long, default_value_t = 3600)]
        wait: u64,
    },
    /// Read a record by its hash (`GET /v1/records/{hash}`).
    Get {
        /// The record's hash (64 hex characters).
        hash: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Without an author, every chain held (author, last seq, hash); with one, a page of its
    /// records in seq order (`GET /v1/chains[/{author}]`); with --collection, a page of that
    /// collection, oldest first (`GET /v1/records?collection=`).
    List {
        /// The author whose records to page through.
        #[arg(conflicts_with = "collection")]
        author: Option<String>,
        /// Page through this collection instead.
        #[arg(long)]
        collection: Option<String>,
        /// With --collection: the cursor a previous page gave (`next`).
        #[arg(long, default_value = "", requires = "collection")]
        after: String,
        /// Start after this seq.
        #[arg(long, default_value_t = 0)]
        after_seq: u64,
        /// At most this many records (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Audit the node's ledger: each author's head signed by the head key pinned in --state
    /// (on first use), consistent with the head seen there last time, and each --hash
    /// included in its author's head. Prints a report; exit 1 if anything fails.
    Verify {
        /// The auditor's memory between runs: pinned keys and last heads (created if absent;
        /// updated only when everything verified).
        #[arg(long)]
        state: Option<PathBuf>,
        /// A record whose inclusion to check (repeatable).
        #[arg(long = "hash")]
        hashes: Vec<String>,
        /// Fail a head that fewer members witnessed (cosigned with their enrolled keys).
        #[arg(long, default_value_t = 0)]
        min_witnesses: usize,
        /// Read with this bearer token (default: the root key, if given).
        #[arg(long, env = "SAPIX_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Copy a running node's strand (up to its tip when the backup begins) into a new data
    /// directory, checking every block; writes are not paused. See docs/runbook.md to restore.
    Backup {
        /// The directory to create (or an empty one).
        #[arg(long)]
        out: PathBuf,
    },
}

/// What every read takes.
#[derive(clap::Args)]
struct ReadArgs {
    /// Read with this bearer token (default: the root key, if given).
    #[arg(long, env = "SAPIX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read-your-writes: `<author>:<seq>` (a write's answer gives both); repeatable. The agent
    /// answers once it holds each, or 409 position_not_reached when --wait-ms ends first.
    #[arg(long = "min-position", value_parser = position)]
    min_position: Vec<String>,
    /// How long the agent may wait for --min-position (0-10000 ms).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    wait_ms: u64,
}

impl ReadArgs {
    /// The query these add to a read (`&`-joined, without the leading `?`).
    fn query(&self) -> Vec<String> {
        let mut q: Vec<String> = (self.min_position.iter())
            .map(|p| format!("min_position={p}"))
            .collect();
        if !q.is_empty() {
            q.push(format!("wait_ms={}", self.wait_ms));
        }
        q
    }
}

fn position(text: &str) -> Result<String, String> {
    sapix_core::node::ChainPosition::parse(text)
        .map(|p| p.to_string())
        .map_err(|e| e.to_string())
}

/// `path` with `query` appended.
fn with_query(path: &str, query: &[String]) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Cp,
    Ap,
}

#[derive(Subcommand)]
enum MembersAction {
    /// Remove a member for good (its id can never join again).
    Remove {
        /// The member's agent id.
        agent_id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sapixctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sapixctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `divide` while a progress bar follows `GET /v1/cluster/divide/progress`.
async fn with_progress(
    poller: &Client,
    new: &str,
    divide: impl std::future::Future<Output = Result<Value, Failed>>,
) -> Result<Value, Failed> {
    let bar = indicatif::ProgressBar::new(0);
    let style = "{spinner} {msg} [{bar:30}] {pos}/{len} blocks ({elapsed})";
    if let Ok(style) = indicatif::ProgressStyle::with_template(style) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("dividing {new}: starting"));
    bar.enable_steady_tick(Duration::from_millis(200));
    tokio::pin!(divide);
    let answer = loop {
        tokio::select! {
            answer = &mut divide => break answer,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                // A poll that fails only leaves the bar where it was.
                if let Ok((_, p)) = poller.get("/v1/cluster/divide/progress").await {
                    if p["in_progress"] == true {
                        bar.set_length(p["blocks_total"].as_u64().unwrap_or(0));
                        bar.set_position(p["blocks_copied"].as_u64().unwrap_or(0));
                        let stage = p["stage"].as_str().unwrap_or("");
                        bar.set_message(format!("dividing {new}: {stage}"));
                    }
                }
            }
        }
    };
    bar.finish_and_clear();
    answer
}

fn root_key(cli: &Cli) -> Result<Option<String>, Failed> {
    match &cli.root_key_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|k| Some(k.trim().to_string()))
            .map_err(|e| {
                Failed(format!(
                    "cannot read the root key from {}: {e}",
                    path.display()
                ))
            }),
        None => Ok(cli.root_key.clone()),
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn print(format: Format, json: &Value, table: impl FnOnce() -> String) {
    match format {
        Format::Json => println!("{json:#}"),
        Format::Table => print!("{}", table()),
    }
}

async fn status(client: &Client) -> Result<(Value, ClusterStatus), Failed> {
    let (code, json) = client.get("/v1/cluster/status").await?;
    if !code.is_success() {
        return Err(Failed(format!("status answered {code}: {json}")));
    }
    let parsed = serde_json::from_value(json.clone())
        .map_err(|e| Failed(format!("the status answer is not the expected shape: {e}")))?;
    Ok((json, parsed))
}

async fn run(cli: Cli) -> Result<ExitCode, Failed> {
    let key = root_key(&cli)?;
    let timeout = match cli.command {
        Command::Divide { wait, .. } => Duration::from_secs(wait),
        _ => Duration::from_secs(cli.timeout),
    };
    let client = Client::new(&cli.url, key, timeout)?;
    let out = cli.output;
    match cli.command {
        Command::Status => {
            let (json, s) = status(&client).await?;
            print(out, &json, || table::render(&s, now_ms()));
        }
        Command::Health => {
            let (code, json) = client.get("/readyz?verbose").await?;
            print(out, &json, || {
                let mut text = format!("{}\n", json["status"].as_str().unwrap_or("unknown"));
                if let Some(checks) = json["checks"].as_object() {
                    for (name, verdict) in checks {
                        text += &format!("  {name:<8} {}\n", verdict.as_str().unwrap_or(""));
                    }
                }
                text
            });
            if !code.is_success() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Consistency { mode: None } => {
            let (json, s) = status(&client).await?;
            let mode = json!({ "consistency": json["consistency"] });
            print(out, &mode, || {
                format!("{:?}\n", s.consistency).to_uppercase()
            });
        }
        Command::Consistency { mode: Some(mode) } => {
            let mode = match mode {
                Mode::Cp => "CP",
                Mode::Ap => "AP",
            };
            let path = "/v1/cluster/consistency";
            let json = client
                .admin(Method::POST, path, Some(json!({ "mode": mode })))
                .await?;
            print(out, &json, || {
                format!(
                    "consistency {} (was {})\n",
                    json["consistency"].as_str().unwrap_or("?").to_uppercase(),
                    json["previous"].as_str().unwrap_or("?").to_uppercase()
                )
            });
        }
        Command::Sync { peer } => {
            let path = format!("/v1/mesh/sync/{peer}");
            let json = client.admin(Method::POST, &path, None).await?;
            print(out, &json, || format!("{json}\n"));
        }
        Command::Members { action: None } => {
            let (json, s) = status(&client).await?;
            let members = json!(json["nodes"]);
            print(out, &members, || {
                s.nodes
                    .iter()
                    .map(|n| format!("{}  {:?}  {}\n", n.agent_id, n.role, n.endpoint))
                    .collect()
            });
        }
        Command::Members {
            action: Some(MembersAction::Remove { agent_id }),
        } => {
            let path = format!("/v1/cluster/members/{agent_id}");
            let json = client.admin(Method::DELETE, &path, None).await?;
            print(out, &json, || format!("removed {agent_id}: {json}\n"));
        }
        Command::Get { hash, read } => {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Failed(format!(
                    "{hash:?} is not a hash (64 hex characters)"
                )));
            }
            let path = with_query(&format!("/v1/records/{hash}"), &read.query());
            let json = client.read(&path, read.token.as_deref()).await?;
            print(out, &json, || format!("{json:#}\n"));
        }
        Command::List {
            collection: Some(collection),
            after,
            limit,
            read,
            ..
        } => {
            let mut query = vec![
                format!("collection={collection}"),
                format!("after={after}"),
                format!("limit={limit}"),
            ];
            query.extend(read.query());
            let path = with_query("/v1/records", &query);
            let json = client.read(&path, read.token.as_deref()).await?;
            print(out, &json, || table::collection_page(&json));
        }
        Command::List {
            author: None, read, ..
        } => {
            let json = client
                .read(
                    &with_query("/v1/chains", &read.query()),
                    read.token.as_deref(),
                )
                .await?;
            print(out, &json, || table::chains(&json));
        }
        Command::List {
            author: Some(author),
            after_seq,
            limit,
            read,
            ..
        } => {
            let mut query = vec![format!("after_seq={after_seq}"), format!("limit={limit}")];
            query.extend(read.query());
            let path = with_query(&format!("/v1/chains/{author}"), &query);
            let json = client.read(&path, read.token.as_deref()).await?;
            print(out, &json, || table::chain_page(&json));
        }
        Command::Verify {
            state,
            hashes,
            min_witnesses,
            token,
        } => {
            let asked = verify::Asked {
                hashes: &hashes,
                min_witnesses,
            };
            let report = verify::verify(&client, token.as_deref(), state.as_deref(), asked).await?;
            print(out, &report.json(), || report.table());
            if !report.ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Backup { out: dir } => {
            let copied = backup::backup(&client, &dir, out == Format::Table).await?;
            let m = &copied.manifest;
            print(out, m, || {
                format!(
                    "backed up {} blocks of {} into {} ({} authors)\n",
                    m["tip"],
                    m["source"]["agent_id"].as_str().unwrap_or("?"),
                    dir.display(),
                    m["chains"].as_object().map_or(0, |c| c.len())
                )
            });
        }
        Command::Divide {
            new_agent_id,
            endpoint,
            role,
            ..
        } => {
            let body = json!({ "new_agent_id": new_agent_id, "endpoint": endpoint, "role": role });
            let divide = client.admin(Method::POST, "/v1/cluster/divide", Some(body));
            let json = match out {
                Format::Json => divide.await?,
                Format::Table => {
                    let poller = Client::new(&cli.url, None, Duration::from_secs(2))?;
                    with_progress(&poller, &new_agent_id, divide).await?
                }
            };
            print(out, &json, || {
                format!(
                    "{} is a member: {} blocks copied; informed {}, pending {}\n",
                    json["replica_agent_id"].as_str().unwrap_or("?"),
                    json["blocks_pushed"],
                    json["members_informed"],
                    json["members_pending"]
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
