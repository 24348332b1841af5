//! `sapix-load`: a bounded write-load generator for one agent on loopback.
//!
//! `sapix-load [--url http://127.0.0.1:7475 --token KEY] [--clients 64] [--requests 20000]
//! [--seconds S]` sends small JSON records with `POST /v1/records` from `--clients` concurrent
//! connections until `--requests` have been sent or `--seconds` have passed (never more than
//! ten minutes), then prints throughput and latency percentiles of the acknowledged writes.
//! Without `--url` it starts its own agent in a temporary directory through the test harness.
//! Only loopback URLs are accepted. Exits 1 if any write was not acknowledged with `201`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use sapix_tests::Agent;

const USAGE: &str = "usage: sapix-load [--url http://127.0.0.1:PORT --token KEY] \
                     [--clients N] [--requests N] [--seconds N] [--collection NAME]";
const MAX_CLIENTS: usize = 1024;
const MAX_REQUESTS: u64 = 10_000_000;
/// The hard bound on a run's duration, whatever the flags say.
const MAX_SECONDS: u64 = 600;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Args {
    url: Option<Url>,
    token: Option<String>,
    clients: usize,
    requests: u64,
    seconds: u64,
    collection: String,
}

/// What one client saw.
#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        url: None,
        token: None,
        clients: 16,
        requests: 10_000,
        seconds: MAX_SECONDS,
        collection: "load".to_owned(),
    };
    let mut requests_given = false;
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--url" => args.url = Some(loopback_url(&value()?)?),
            "--token" => args.token = Some(value()?),
            "--clients" => args.clients = usize::try_from(number(value()?)?).unwrap_or(usize::MAX),
            "--requests" => {
                args.requests = number(value()?)?;
                requests_given = true;
            }
            "--seconds" => {
                args.seconds = number(value()?)?;
                if !requests_given {
                    args.requests = MAX_REQUESTS;
                }
            }
            "--collection" => args.collection = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !(1..=MAX_CLIENTS).contains(&args.clients) {
        return Err(format!("--clients must be 1..={MAX_CLIENTS}"));
    }
    if !(1..=MAX_REQUESTS).contains(&args.requests) {
        return Err(format!("--requests must be 1..={MAX_REQUESTS}"));
    }
    if !(1..=MAX_SECONDS).contains(&args.seconds) {
        return Err(format!("--seconds must be 1..={MAX_SECONDS}"));
    }
    if args.url.is_some() != args.token.is_some() {
        return Err("--url and --token go together (without both, an agent is started)".into());
    }
    Ok(args)
}

fn loopback_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("--url {text:?}: {e}"))?;
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    if url.scheme() != "http" || !loopback {
        return Err(format!(
            "--url {text:?}: only http:// on loopback is allowed"
        ));
    }
    Ok(url)
}

/// What every client shares: where to write, and when to stop.
struct Plan {
    client: reqwest::Client,
    endpoint: Url,
    token: String,
    collection: String,
    /// Requests handed out so far, across clients.
    issued: AtomicU64,
    requests: u64,
    deadline: Instant,
}

async fn client_loop(plan: Arc<Plan>, id: usize) -> Stats {
    let mut stats = Stats::default();
    loop {
        let n = plan.issued.fetch_add(1, Ordering::Relaxed);
        if n >= plan.requests || Instant::now() >= plan.deadline {
            return stats;
        }
        let body = serde_json::json!({
            "collection": plan.collection,
            "data": {"client": id, "n": n, "kind": "load", "value": n % 997},
        });
        let started = Instant::now();
        let sent = plan
            .client
            .post(plan.endpoint.clone())
            .bearer_auth(&plan.token)
            .json(&body)
            .send()
            .await;
        let outcome = match sent {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(_) if status == reqwest::StatusCode::CREATED => Ok(()),
                    Ok(_) => Err(format!("HTTP {status}")),
                    Err(e) => Err(error_kind(&e)),
                }
            }
            Err(e) => Err(error_kind(&e)),
        };
        match outcome {
            Ok(()) => {
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                stats.latencies_us.push(us);
            }
            Err(kind) => *stats.errors.entry(kind).or_default() += 1,
        }
    }
}

fn error_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect error".into()
    } else {
        format!("transport error ({e})")
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("sapix-load: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Kept alive for the run; dropping it kills the agent.
    let mut own_agent = None;
    let (base, token) = match (args.url.clone(), args.token.clone()) {
        (Some(url), Some(token)) => (url, token),
        _ => {
            let agent = Agent::start();
            eprintln!("sapix-load: started an agent at {}", agent.base_url());
            let base = Url::parse(&agent.base_url()).expect("agent URL");
            let token = agent.root_key();
            own_agent = Some(agent);
            (base, token)
        }
    };
    let endpoint = base.join("/v1/records").expect("records URL");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (stats, elapsed) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(args.clients)
            .no_proxy()
            .build()
            .expect("HTTP client");
        let started = Instant::now();
        let plan = Arc::new(Plan {
            client,
            endpoint: endpoint.clone(),
            token,
            collection: args.collection.clone(),
            issued: AtomicU64::new(0),
            requests: args.requests,
            deadline: started + Duration::from_secs(args.seconds),
        });
        let tasks: Vec<_> = (0..args.clients)
            .map(|id| tokio::spawn(client_loop(Arc::clone(&plan), id)))
            .collect();
        let mut all = Stats::default();
        for task in tasks {
            let stats = task.await.expect("client task");
            all.latencies_us.extend(stats.latencies_us);
            for (kind, n) in stats.errors {
                *all.errors.entry(kind).or_default() += n;
            }
        }
        (all, started.elapsed())
    });
    drop(runtime);

    let mut latencies = stats.latencies_us;
    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    let failed: u64 = stats.errors.values().sum();
    let secs = elapsed.as_secs_f64();
    println!(
        "sapix-load: {} clients, {} writes to {endpoint}",
        args.clients,
        ok + failed
    );
    println!(
        "acknowledged {ok}, failed {failed} in {secs:.2} s: {:.0} writes/s",
        ok as f64 / secs.max(f64::EPSILON)
    );
    println!(
        "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0)
    );
    for (kind, n) in &stats.errors {
        println!("  {n} × {kind}");
    }
    drop(own_agent);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
