//! The client: `clients` concurrent connections posting small JSON bodies until a deadline
//! or a request count, recording the latency of every acknowledged request. The same client
//! drives the agent and etcd, so their figures compare like with like.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request's timeout: a stuck server shows as errors, never as a hung benchmark.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a client posts, and how its bodies look.
#[derive(Clone)]
pub struct Target {
    /// The full URL posted to.
    pub url: String,
    /// The bearer token, if the server takes one.
    pub token: Option<String>,
    /// The status an acknowledged request answers.
    pub ok_status: u16,
    /// The body of request `n` of client `client`.
    pub body: Arc<dyn Fn(usize, u64) -> Vec<u8> + Send + Sync>,
    /// For reads: the path (and query) request `n` of client `client` GETs after `url`;
    /// `body` is then unused.
    pub get: Option<Arc<dyn Fn(usize, u64) -> String + Send + Sync>>,
}

/// When the clients stop.
#[derive(Clone, Copy, Debug)]
pub struct Until {
    /// Wall time.
    pub time: Duration,
    /// Requests sent, across clients.
    pub requests: u64,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Acknowledged requests.
    pub ok: u64,
    /// Refused or failed requests, by kind.
    pub errors: BTreeMap<String, u64>,
    /// From the first request to the last answer.
    pub secs: f64,
    /// Latencies of the acknowledged requests, µs, sorted.
    pub latencies_us: Vec<u64>,
}

impl Outcome {
    /// Acknowledged requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    /// The `p`th percentile latency in ms (nearest rank).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let s = &self.latencies_us;
        if s.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
        s[rank.clamp(1, s.len()) - 1] as f64 / 1000.0
    }

    /// All errors, `kind×n` joined, or "none".
    pub fn error_summary(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect();
        parts.join(", ")
    }
}

/// A client shared by every connection of one run: one pooled connection per client task.
pub fn http_client(clients: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .pool_max_idle_per_host(clients)
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client with default TLS settings builds")
}

/// Runs `clients` connections, spread round-robin over `targets`, until `until`.
pub async fn drive(targets: &[Target], clients: usize, until: Until) -> Outcome {
    assert!(!targets.is_empty() && clients > 0);
    let http = http_client(clients);
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + until.time;
    let mut tasks = Vec::with_capacity(clients);
    for id in 0..clients {
        let target = targets[id % targets.len()].clone();
        let (http, issued) = (http.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = BTreeMap::<String, u64>::new();
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= until.requests || Instant::now() >= deadline {
                    return (lat, errors);
                }
                let t = Instant::now();
                match post(&http, &target, id, n).await {
                    Ok(()) => lat.push(t.elapsed().as_micros() as u64),
                    Err(kind) => *errors.entry(kind).or_default() += 1,
                }
            }
        }));
    }
    let mut out = Outcome::default();
    for task in tasks {
        let (lat, errors) = task.await.expect("a client task panicked");
        out.latencies_us.extend(lat);
        for (k, n) in errors {
            *out.errors.entry(k).or_default() += n;
        }
    }
    out.secs = started.elapsed().as_secs_f64();
    out.ok = out.latencies_us.len() as u64;
    out.latencies_us.sort_unstable();
    out
}

async fn post(http: &reqwest::Client, t: &Target, client: usize, n: u64) -> Result<(), String> {
    let mut req = match &t.get {
        Some(path) => http.get(format!("{}{}", t.url, path(client, n))),
        None => http
            .post(&t.url)
            .header("content-type", "application/json")
            .body((t.body)(client, n)),
    };
    if let Some(token) = &t.token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(|e| kind(&e))?;
    let status = resp.status().as_u16();
    resp.bytes().await.map_err(|e| kind(&e))?;
    if status == t.ok_status {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// The record body every write scenario sends: about 100 bytes of JSON, like a ledger entry.
pub fn record(client: usize, n: u64) -> Vec<u8> {
    let data = record_data(client, n);
    let mut body = Vec::with_capacity(data.len() + 32);
    body.extend_from_slice(br#"{"collection":"bench","data":"#);
    body.extend_from_slice(&data);
    body.push(b'}');
    body
}

/// The record's `data`: what the node signs as the payload.
pub fn record_data(client: usize, n: u64) -> Vec<u8> {
    format!(
        r#"{{"account":"acct-{client:04}","n":{n},"amount_cents":{},"currency":"EUR","memo":"bench"}}"#,
        n % 100_000
    )
    .into_bytes()
}
