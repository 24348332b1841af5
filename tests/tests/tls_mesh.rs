//! TLS between regions (issue 12) on real processes with certificates made here (rcgen): the
//! spec's divide, push and pull over `https://`; a peer whose certificate another CA signed, or
//! whose certificate expired, is refused and nothing is registered; mutual TLS keeps the mesh
//! and admin routes for certified clients while record routes stay open; and a certificate
//! replaced on disk is served without a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use reqwest::blocking::Client;
use sapix_tests::{wait_until, Agent, Api, Auth, TEST_SEED};
use serde_json::{json, Value};
use tempfile::TempDir;

const WITHIN: Duration = Duration::from_secs(30);

/// A test CA that issues certificates into a directory.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: PathBuf,
}

/// A certificate and its key, as PEM files.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA cert");
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).expect("write CA");
        Ca { cert, key, pem }
    }

    /// A certificate for 127.0.0.1, for servers and clients alike; `expired` puts its whole
    /// validity in the past.
    fn issue(&self, dir: &Path, name: &str, expired: bool) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        let leaf = Leaf {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        // Written beside and renamed, as an operator's tooling would, so a reload never
        // reads half a file.
        for (path, text) in [(&leaf.key, key.serialize_pem()), (&leaf.cert, cert.pem())] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).expect("write leaf");
            std::fs::rename(&tmp, path).expect("rename leaf");
        }
        leaf
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// An agent of the test cluster serving TLS with `leaf`, trusting `ca`; with `client`, it also
/// presents that certificate on its mesh calls and requires one from mesh and admin clients.
fn tls_agent(id: &str, leaf: &Leaf, ca: &Path, client: Option<&Leaf>) -> Agent {
    let mut b = Agent::builder()
        .env("SAPIX_AGENT_ID", id)
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_TLS_CERT", path(&leaf.cert))
        .env("SAPIX_TLS_KEY", path(&leaf.key))
        .env("SAPIX_TLS_CA", path(ca));
    if let Some(c) = client {
        b = b
            .env("SAPIX_TLS_CLIENT_CERT", path(&c.cert))
            .env("SAPIX_TLS_CLIENT_KEY", path(&c.key))
            .env("SAPIX_TLS_REQUIRE_CLIENT_CERT", "true");
    }
    b.start()
}

/// An HTTPS client trusting `ca`, presenting `identity` if given.
fn client(ca: &Path, identity: Option<&Leaf>) -> Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("read CA")).expect("CA");
    let mut b = Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    if let Some(leaf) = identity {
        let mut pem = std::fs::read(&leaf.cert).expect("cert");
        pem.extend(std::fs::read(&leaf.key).expect("key"));
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    b.build().expect("https client")
}

fn api(agent: &Agent, client: Client) -> Api {
    assert!(
        agent.base_url().starts_with("https://"),
        "{}",
        agent.base_url()
    );
    Api::with_client(agent.base_url(), agent.root_key(), client)
}

fn divide(from: &Api, id: &str, to: &Agent) -> sapix_tests::Reply {
    let body = json!({ "new_agent_id": id, "endpoint": to.base_url(), "role": "Replica" });
    from.post_with("/v1/cluster/divide", Auth::Root, body.to_string())
}

fn reachable(api: &Api, peer: &str) -> bool {
    let status: Value = api.get("/v1/cluster/status").json();
    status["nodes"].as_array().is_some_and(|n| {
        n.iter()
            .any(|n| n["agent_id"] == peer && n["reachable"] == true)
    })
}

fn readable(api: &Api, hash: &str) -> bool {
    api.get(&format!("/v1/records/{hash}")).status == 200
}

#[test]
fn divide_push_and_pull_run_over_https() {
    let dir = TempDir::new().expect("temp dir");
    let ca = Ca::new(dir.path(), "ca");
    let a = tls_agent("region-a", &ca.issue(dir.path(), "a", false), &ca.pem, None);
    let b = tls_agent("region-b", &ca.issue(dir.path(), "b", false), &ca.pem, None);
    let (api_a, api_b) = (
        api(&a, client(&ca.pem, None)),
        api(&b, client(&ca.pem, None)),
    );
    let before = api_a.write("orders", &json!({"n": 1}));
    let divided = divide(&api_a, "region-b", &b);
    divided.assert_status(200);
    assert_eq!(divided.json()["endpoint"], b.base_url());
    assert!(readable(&api_b, &before.hash), "the copy went over TLS");
    let pushed = api_a.write("orders", &json!({"n": 2}));
    wait_until(WITHIN, "a's write pushed to b", || {
        readable(&api_b, &pushed.hash)
    });
    // A CP write on b waits for b's first probe of a (over TLS) to say a is reachable.
    wait_until(WITHIN, "b reaches a", || reachable(&api_b, "region-a"));
    let back = api_b.write("orders", &json!({"n": 3}));
    wait_until(WITHIN, "b's write pushed to a", || {
        readable(&api_a, &back.hash)
    });
    api_b
        .post_with("/v1/mesh/sync/region-a", Auth::Root, "")
        .assert_status(200);
    let status: Value = api_b.get("/v1/cluster/status").json();
    let a_entry = status["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["agent_id"] == "region-a").cloned())
        .expect("b lists a");
    assert_eq!(a_entry["endpoint"], a.base_url(), "{status}");
    assert_eq!(a_entry["reachable"], true, "{status}");
}

#[test]
fn a_peer_certified_by_another_ca_or_expired_is_refused_and_nothing_registered() {
    let dir = TempDir::new().expect("temp dir");
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other-ca");
    let a = tls_agent("region-a", &ca.issue(dir.path(), "a", false), &ca.pem, None);
    let api_a = api(&a, client(&ca.pem, None));
    api_a.write("orders", &json!({"n": 1}));
    let stranger = tls_agent(
        "region-b",
        &other.issue(dir.path(), "b", false),
        &other.pem,
        None,
    );
    let expired = tls_agent("region-c", &ca.issue(dir.path(), "c", true), &ca.pem, None);
    for (to, id, why) in [
        (&stranger, "region-b", "another CA"),
        (&expired, "region-c", "expired"),
    ] {
        let reply = divide(&api_a, id, to);
        assert_eq!(reply.status, 502, "{why}: {reply:?}");
        reply.assert_error(502, "divide_failed");
        println!("{why}: {}", reply.json()["message"]);
        assert!(
            reply.text.to_lowercase().contains("certificate"),
            "{why}: the reason names the certificate: {reply:?}"
        );
    }
    let status: Value = api_a.get("/v1/cluster/status").json();
    assert_eq!(
        status["nodes"].as_array().map(Vec::len),
        Some(1),
        "nothing registered: {status}"
    );
}

#[test]
fn mutual_tls_keeps_mesh_and_admin_routes_for_certified_clients_only() {
    let dir = TempDir::new().expect("temp dir");
    let ca = Ca::new(dir.path(), "ca");
    let client_a = ca.issue(dir.path(), "client-a", false);
    let client_b = ca.issue(dir.path(), "client-b", false);
    let operator = ca.issue(dir.path(), "operator", false);
    let a = tls_agent(
        "region-a",
        &ca.issue(dir.path(), "a", false),
        &ca.pem,
        Some(&client_a),
    );
    let b = tls_agent(
        "region-b",
        &ca.issue(dir.path(), "b", false),
        &ca.pem,
        Some(&client_b),
    );
    let certified = api(&a, client(&ca.pem, Some(&operator)));
    let plain = api(&a, client(&ca.pem, None));
    let api_b = api(&b, client(&ca.pem, Some(&operator)));

    // Records stay open to ordinary clients; mesh and admin routes need a certificate.
    let w = plain.write("orders", &json!({"n": 1}));
    plain
        .get_with("/v1/mesh/export?after=0", Auth::Root)
        .assert_error(403, "client_certificate_required");
    let refused = json!({ "new_agent_id": "region-b", "endpoint": b.base_url() });
    plain
        .post_with("/v1/cluster/divide", Auth::Root, refused.to_string())
        .assert_error(403, "client_certificate_required");
    certified
        .get_with("/v1/mesh/export?after=0", Auth::Root)
        .assert_status(200);

    // The nodes present their own client certificates to each other.
    divide(&certified, "region-b", &b).assert_status(200);
    assert!(readable(&api_b, &w.hash));
    let pushed = certified.write("orders", &json!({"n": 2}));
    wait_until(WITHIN, "push under mutual TLS", || {
        readable(&api_b, &pushed.hash)
    });
    let log = a.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains(" audit:") && l.contains("client certificate CN=operator (blake3:")),
        "the audit log names the operator's certificate:\n{log}"
    );
}

#[test]
fn a_certificate_replaced_on_disk_is_served_without_a_restart() {
    let dir = TempDir::new().expect("temp dir");
    let ca = Ca::new(dir.path(), "ca");
    let next = Ca::new(dir.path(), "next-ca");
    let leaf = ca.issue(dir.path(), "a", false);
    let a = tls_agent("region-a", &leaf, &ca.pem, None);
    let old = api(&a, client(&ca.pem, None));
    let new = api(&a, client(&next.pem, None));
    old.get_with("/livez", Auth::None).assert_status(200);
    assert!(
        new.try_send(reqwest::Method::GET, "/livez", Auth::None, None)
            .is_err(),
        "a client trusting only the next CA cannot talk to a yet"
    );
    // Rotate: a certificate from the next CA, same file names.
    next.issue(dir.path(), "a", false);
    wait_until(WITHIN, "the new certificate is served", || {
        new.try_send(reqwest::Method::GET, "/livez", Auth::None, None)
            .is_ok_and(|r| r.status == 200)
    });
    assert!(a.stderr().contains("TLS files changed: reloaded"));
}
