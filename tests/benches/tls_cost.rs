//! The cost of TLS on the replicated write path, printed, not asserted: a two-node CP cluster
//! over plain HTTP and the same over mutual TLS (certificates made here), each written to by
//! the same clients for the same time, in alternating rounds of one run, so the ratio compares
//! like with like on this machine. A CP write is acknowledged once the peer holds it, so each
//! write crosses the mesh once besides the client's own call.
//!
//! `cargo bench -p sapix-tests --bench tls_cost` (set `SAPIX_AGENT_BIN` to a release agent)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use reqwest::blocking::Client;
use sapix_tests::{wait_until, Agent, Api, Auth, TEST_SEED};
use serde_json::{json, Value};

const CLIENTS: usize = 8;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 4;

/// PEM files of a CA and one certificate (for 127.0.0.1) that every node and client uses.
struct Pki {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bench CA");
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("cert");
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("ca.pem"), ca.pem()).expect("write");
    std::fs::write(p("node.crt"), cert.pem()).expect("write");
    std::fs::write(p("node.key"), key.serialize_pem()).expect("write");
    Pki {
        ca: p("ca.pem"),
        cert: p("node.crt"),
        key: p("node.key"),
        _dir: dir,
    }
}

/// A divided two-node cluster, `a` reachable from `b`; the API of `a` for the clients.
fn cluster(tls: Option<&Pki>) -> (Agent, Agent, Api) {
    let node = |id: &str| {
        let mut b = Agent::builder()
            .env("SAPIX_AGENT_ID", id)
            .env("SAPIX_MASTER_SEED", TEST_SEED)
            .env("SAPIX_LOG", "warn");
        if let Some(p) = tls {
            let s = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
            for (var, val) in [
                ("SAPIX_TLS_CERT", s(&p.cert)),
                ("SAPIX_TLS_KEY", s(&p.key)),
                ("SAPIX_TLS_CA", s(&p.ca)),
                ("SAPIX_TLS_CLIENT_CERT", s(&p.cert)),
                ("SAPIX_TLS_CLIENT_KEY", s(&p.key)),
                ("SAPIX_TLS_REQUIRE_CLIENT_CERT", "true".into()),
            ] {
                b = b.env(var, &val);
            }
        }
        b.start()
    };
    let (a, b) = (node("bench-a"), node("bench-b"));
    let api = Api::with_client(a.base_url(), a.root_key(), client(tls));
    let body = json!({"new_agent_id": "bench-b", "endpoint": b.base_url()});
    api.post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    let api_b = Api::with_client(b.base_url(), b.root_key(), client(tls));
    wait_until(Duration::from_secs(30), "b reaches a", || {
        let s: Value = api_b.get("/v1/cluster/status").json();
        s["partitioned"] == false
    });
    (a, b, api)
}

fn client(tls: Option<&Pki>) -> Client {
    let mut b = Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .pool_max_idle_per_host(CLIENTS);
    if let Some(p) = tls {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&p.ca).expect("ca")).expect("ca");
        let mut pem = std::fs::read(&p.cert).expect("cert");
        pem.extend(std::fs::read(&p.key).expect("key"));
        b = b
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    b.build().expect("client")
}

/// `CLIENTS` threads writing for `ROUND`: acknowledged writes per second, and the median
/// latency in ms.
fn round(api: &Api) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (api, stop, ok) = (api.clone(), stop.clone(), ok.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let body = Api::record_body("orders", &json!({"client": id, "n": n}));
                    api.post_with("/v1/records", Auth::Root, body)
                        .assert_status(201);
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    ok.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(ROUND);
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect();
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let p50 = lat.get(lat.len() / 2).copied().unwrap_or(f64::NAN);
    (ok.load(Ordering::Relaxed) as f64 / secs, p50)
}

fn main() {
    let p = pki();
    let (_a, _b, plain) = cluster(None);
    let (_c, _d, tls) = cluster(Some(&p));
    round(&plain);
    round(&tls);
    let (mut sum_plain, mut sum_tls) = (0.0, 0.0);
    for r in 1..=ROUNDS {
        let (wp, lp) = round(&plain);
        let (wt, lt) = round(&tls);
        println!(
            "round {r}: plain {wp:>8.0} writes/s (p50 {lp:.2} ms)   mutual TLS {wt:>8.0} writes/s (p50 {lt:.2} ms)   ratio {:.3}",
            wt / wp
        );
        sum_plain += wp;
        sum_tls += wt;
    }
    println!(
        "CP writes, 2 nodes, {CLIENTS} clients, {ROUNDS} × {ROUND:?} each: plain {:.0} writes/s, mutual TLS {:.0} writes/s, TLS/plain = {:.3}",
        sum_plain / ROUNDS as f64,
        sum_tls / ROUNDS as f64,
        sum_tls / sum_plain
    );
}
