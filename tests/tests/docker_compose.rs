//! The spec's "Option B — docker-compose for local/staging", for real, with the image built from
//! this checkout:
//!
//! 1. `scripts/docker-image.sh` builds `sapixdb/agent:latest` (release binary on `FROM scratch`);
//! 2. `docker-compose.replication.yml` is copied to `docker-compose.yml` in a temporary directory
//!    and brought up with only `SAPIX_MASTER_SEED` set (plus loopback-only, free host ports and a
//!    unique project name `sapix-test-<pid>`), as `docker compose up -d` (or `docker-compose`);
//! 3. both `/healthz` answer; the root key is read the way the compose file tells an operator to
//!    (`docker cp <container>:/data/root_key`) and must be the one derived from the seed;
//! 4. Step 3 of the spec from the host: `POST /v1/cluster/divide` on node 1 with the replica's
//!    in-network endpoint `http://replica-eu:7475`; records written to node 1 before the call are
//!    readable on node 2 as soon as it returns, records written after it arrive by push, and
//!    node 2's `/v1/cluster/status` lists both nodes reachable;
//! 5. the failure story: node 2's container disconnected from the network for real — node 1
//!    reports `partitioned` and CP refuses within 10 s; switched to AP it writes; reconnected,
//!    node 2 gets those writes; `docker kill` node 1 under writes and `docker start` it with its
//!    volumes — no acknowledged write lost; `docker stop` exits 0 well inside the grace period;
//!    while cut and after the heal, node 1's `/metrics` and `sapixctl status` show it;
//! 6. `down -v` always (a drop guard), and no volume of the project is left behind.
//!
//! It is skipped, with a message, only when no Docker engine answers `docker info`.
//! `SAPIX_DOCKER_REUSE_IMAGE=1` skips step 1 and uses the existing `sapixdb/agent:latest`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

const IMAGE: &str = "sapixdb/agent:latest";
const COMPOSE_FILE: &str = "docker-compose.replication.yml";
/// Generous: two containers starting on a loaded 2-core machine.
const START_DEADLINE: Duration = Duration::from_secs(90);
const REPLICATION_DEADLINE: Duration = Duration::from_secs(30);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Runs a command to completion; panics with its output if it cannot start or fails.
fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(out.status.success(), "{}", describe(what, &out));
    out
}

/// Why no Docker engine is usable, if none is.
fn docker_engine_missing() -> Option<String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Err(e) => Some(format!("cannot run `docker`: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "`docker info` failed: {}",
            text(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// `docker compose` (v2) when it works, else `docker-compose` (v1); the compose file is valid
/// for both. With an engine but neither tool, the test fails rather than skips.
fn compose_cli() -> Vec<String> {
    let works = |argv: &[&str]| {
        Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&["docker", "compose", "version"]) {
        vec!["docker".into(), "compose".into()]
    } else if works(&["docker-compose", "version"]) {
        vec!["docker-compose".into()]
    } else {
        panic!(
            "a Docker engine is running but neither `docker compose` nor `docker-compose` works"
        );
    }
}

/// The spec's default host port if it is free, else a free ephemeral one.
fn host_port(preferred: u16, taken: &[u16]) -> u16 {
    if !taken.contains(&preferred) && TcpListener::bind(("0.0.0.0", preferred)).is_ok() {
        return preferred;
    }
    loop {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("an ephemeral port")
            .port();
        if !taken.contains(&port) {
            return port;
        }
    }
}

fn random_seed_hex() -> String {
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut f, &mut bytes).expect("32 random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One compose project in a temporary directory; `down -v` when dropped, whatever happened.
struct Stack {
    cli: Vec<String>,
    project: String,
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
    down_done: bool,
}

impl Stack {
    fn new(seed: &str, node1_port: u16, node2_port: u16) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("sapix-compose-")
            .tempdir()
            .expect("temp dir");
        // Exactly the spec's first command.
        std::fs::copy(
            repo_root().join(COMPOSE_FILE),
            dir.path().join("docker-compose.yml"),
        )
        .expect("copy the compose file");
        Stack {
            cli: compose_cli(),
            project: format!("sapix-test-{}", std::process::id()),
            dir,
            env: vec![
                ("SAPIX_MASTER_SEED", seed.to_string()),
                ("SAPIX_NODE1_PORT", node1_port.to_string()),
                ("SAPIX_NODE2_PORT", node2_port.to_string()),
                // Loopback only: nothing of the test is reachable from the network.
                ("SAPIX_PUBLISH_IP", "127.0.0.1".to_string()),
                ("SAPIX_IMAGE", IMAGE.to_string()),
                ("SAPIX_LOG", "info".to_string()),
            ],
            down_done: false,
        }
    }

    fn compose(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cli[0]);
        cmd.args(&self.cli[1..])
            .args(["-p", &self.project])
            .args(args)
            .current_dir(self.dir.path())
            // The root key must come from the seed, as in the spec's command; nothing of the
            // caller's compose settings may leak in.
            .env_remove("SAPIX_ROOT_KEY")
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd
    }

    fn container(&self, service: &str) -> String {
        let out = run_ok(&mut self.compose(&["ps", "-q", service]), "compose ps -q");
        let id = text(&out.stdout).trim().to_string();
        assert!(!id.is_empty(), "no container for service {service}");
        id
    }

    fn logs(&self) -> String {
        match self
            .compose(&["logs", "--no-color", "--tail", "200"])
            .output()
        {
            Ok(out) => format!("{}{}", text(&out.stdout), text(&out.stderr)),
            Err(e) => format!("(compose logs failed: {e})"),
        }
    }

    /// `down -v`: containers, network and volumes.
    fn down(&mut self) -> Result<(), String> {
        self.down_done = true;
        let out = self
            .compose(&["down", "-v", "--remove-orphans", "-t", "10"])
            .output()
            .map_err(|e| format!("compose down: cannot run: {e}"))?;
        if !out.status.success() {
            return Err(describe("compose down -v", &out));
        }
        let left = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter"])
            .arg(format!("label=com.docker.compose.project={}", self.project))
            .output()
            .map_err(|e| format!("docker volume ls: {e}"))?;
        let left = text(&left.stdout);
        if !left.trim().is_empty() {
            return Err(format!("volumes left after down -v: {left}"));
        }
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "==== compose project {} logs (tail) ====\n{}",
                self.project,
                self.logs()
            );
        }
        if !self.down_done {
            if let Err(e) = self.down() {
                eprintln!("cleanup of compose project {} failed: {e}", self.project);
            }
        }
    }
}

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("http client")
}

fn get_json(client: &Client, url: &str) -> reqwest::Result<(StatusCode, Value)> {
    answered(client.get(url))
}

/// `GET url` with a bearer token (reads need one: the root key here).
fn read_json(client: &Client, url: &str, token: &str) -> reqwest::Result<(StatusCode, Value)> {
    answered(client.get(url).bearer_auth(token))
}

fn answered(request: reqwest::blocking::RequestBuilder) -> reqwest::Result<(StatusCode, Value)> {
    let resp = request.send()?;
    let status = resp.status();
    let body = resp.json::<Value>().unwrap_or(Value::Null);
    Ok((status, body))
}

/// The body of a 200 answer; anything else (another status, no answer) as the poll's reason.
fn ok_json(client: &Client, url: &str) -> Result<Value, String> {
    ok(get_json(client, url))
}

/// The body of a 200 answer to a read with `token`, as [`ok_json`].
fn ok_read(client: &Client, url: &str, token: &str) -> Result<Value, String> {
    ok(read_json(client, url, token))
}

fn ok(answer: reqwest::Result<(StatusCode, Value)>) -> Result<Value, String> {
    match answer {
        Ok((StatusCode::OK, body)) => Ok(body),
        Ok((status, body)) => Err(format!("{status} {body}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Polls `check` until it gives `Some`, or panics at the deadline with the last observation.
fn poll<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= deadline => {
                panic!("{what}: not within {deadline:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn write_record(client: &Client, base: &str, token: &str, data: &Value) -> String {
    let resp = client
        .post(format!("{base}/v1/records"))
        .bearer_auth(token)
        .json(&json!({ "collection": "orders", "data": data }))
        .send()
        .expect("POST /v1/records");
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::CREATED, "write to node 1: {body}");
    assert_eq!(body["author"], "primary", "{body}");
    body["hash"].as_str().expect("hash").to_string()
}

fn assert_record(body: &Value, hash: &str, data: &Value) {
    assert_eq!(body["hash"], hash, "{body}");
    assert_eq!(body["author"], "primary", "{body}");
    assert_eq!(body["collection"], "orders", "{body}");
    assert_eq!(&body["data"], data, "{body}");
}

fn build_image() {
    if std::env::var("SAPIX_DOCKER_REUSE_IMAGE").is_ok_and(|v| v == "1") {
        run_ok(
            Command::new("docker").args(["image", "inspect", IMAGE]),
            "SAPIX_DOCKER_REUSE_IMAGE=1 but the image is missing",
        );
        println!("reusing the existing {IMAGE}");
        return;
    }
    let out = run_ok(
        Command::new("bash")
            .arg(repo_root().join("scripts/docker-image.sh"))
            .current_dir(repo_root())
            .env_remove("SAPIX_IMAGE"),
        "scripts/docker-image.sh",
    );
    let stdout = text(&out.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(3).collect();
    println!(
        "scripts/docker-image.sh: {}",
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    );
}

#[test]
fn compose_file_brings_up_two_nodes_that_replicate_after_divide() {
    if let Some(why) = docker_engine_missing() {
        println!("SKIPPED docker_compose: no Docker engine ({why})");
        eprintln!("SKIPPED docker_compose: no Docker engine ({why})");
        return;
    }
    let t0 = Instant::now();
    let mut phase = t0;
    let mut lap = |name: &str| {
        println!(
            "[{:>6.1}s] {name} ({:.1}s)",
            t0.elapsed().as_secs_f64(),
            phase.elapsed().as_secs_f64()
        );
        phase = Instant::now();
    };

    image_once();
    lap("image built");

    let seed = random_seed_hex();
    let p1 = host_port(7475, &[]);
    let p2 = host_port(7476, &[p1]);
    let mut stack = Stack::new(&seed, p1, p2);
    println!(
        "compose project {} ({}) in {}: node 1 on 127.0.0.1:{p1}, node 2 on 127.0.0.1:{p2}",
        stack.project,
        stack.cli.join(" "),
        stack.dir.path().display()
    );
    // The spec's second command: `SAPIX_MASTER_SEED=<hex> docker compose up -d`.
    run_ok(&mut stack.compose(&["up", "-d"]), "compose up -d");
    lap("compose up -d");

    let client = http();
    let node1 = format!("http://127.0.0.1:{p1}");
    let node2 = format!("http://127.0.0.1:{p2}");
    for (base, id) in [(&node1, "primary"), (&node2, "replica-eu")] {
        poll(&format!("{id} healthy at {base}"), START_DEADLINE, || {
            let body = ok_json(&client, &format!("{base}/healthz"))?;
            (body["agent_id"] == id)
                .then_some(())
                .ok_or(body.to_string())
        });
    }
    lap("both /healthz answer");

    // The containers run unprivileged on a read-only root filesystem.
    for service in ["primary", "replica-eu"] {
        let cid = stack.container(service);
        let out = run_ok(
            Command::new("docker").args([
                "inspect",
                "-f",
                "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
                &cid,
            ]),
            "docker inspect",
        );
        assert_eq!(text(&out.stdout).trim(), "10001:10001 true", "{service}");
    }

    // The root key, read as the compose file documents (the image has no shell to exec).
    let expected_key = sapix_core::KeySchedule::new(
        sapix_core::MasterSeed::from_hex(&seed).expect("seed is 64 hex chars"),
    )
    .default_root_key();
    for service in ["primary", "replica-eu"] {
        let dest = stack.dir.path().join(format!("root_key.{service}"));
        let src = format!("{}:/data/root_key", stack.container(service));
        run_ok(
            Command::new("docker").arg("cp").arg(&src).arg(&dest),
            "docker cp root_key",
        );
        let key = std::fs::read_to_string(&dest).expect("root_key copied out");
        assert_eq!(
            key.trim(),
            expected_key.expose(),
            "{service}'s /data/root_key is not the key derived from the master seed"
        );
    }
    let token = expected_key.expose().to_string();
    lap("root key read from /data/root_key");

    // Records written before the replica joins: Step 3 must copy them.
    let before: Vec<(String, Value)> = (0..3)
        .map(|i| {
            let data = json!({"id": i, "amount": 10.5 * f64::from(i), "phase": "before-divide"});
            (write_record(&client, &node1, &token, &data), data)
        })
        .collect();

    // Step 3, from the host, with the endpoint node 1 reaches node 2 at on the compose network.
    let resp = client
        .post(format!("{node1}/v1/cluster/divide"))
        .bearer_auth(&token)
        .json(&json!({
            "new_agent_id": "replica-eu",
            "endpoint": "http://replica-eu:7475",
            "role": "Replica",
        }))
        .send()
        .expect("POST /v1/cluster/divide");
    let status = resp.status();
    let divided: Value = resp.json().unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "divide: {divided}");
    assert_eq!(divided["replica_agent_id"], "replica-eu", "{divided}");
    assert_eq!(divided["endpoint"], "http://replica-eu:7475", "{divided}");
    let pushed = divided["blocks_pushed"].as_u64().expect("blocks_pushed");
    assert!(
        pushed >= 3,
        "divide pushed {pushed} blocks, node 1 had 3: {divided}"
    );
    lap("divide");

    // "The replica is immediately readable after the call returns."
    for (hash, data) in &before {
        let (status, body) = read_json(&client, &format!("{node2}/v1/records/{hash}"), &token)
            .expect("GET on node 2");
        assert_eq!(
            status,
            StatusCode::OK,
            "bootstrapped record {hash} on node 2: {body}"
        );
        assert_record(&body, hash, data);
    }

    // Records written after it reach node 2 by push.
    let after: Vec<(String, Value)> = (0..5)
        .map(|i| {
            let data = json!({"id": 100 + i, "phase": "after-divide", "tags": ["x", i]});
            (write_record(&client, &node1, &token, &data), data)
        })
        .collect();
    for (hash, data) in &after {
        let body = poll(
            &format!("record {hash} on node 2"),
            REPLICATION_DEADLINE,
            || ok_read(&client, &format!("{node2}/v1/records/{hash}"), &token),
        );
        assert_record(&body, hash, data);
    }
    lap("8 records readable on node 2");

    // Node 2's view of the cluster: both nodes, both reachable, at their in-network endpoints.
    let status = poll(
        "node 2 lists both nodes reachable",
        REPLICATION_DEADLINE,
        || {
            let (code, body) = get_json(&client, &format!("{node2}/v1/cluster/status"))
                .map_err(|e| e.to_string())?;
            let nodes = body["nodes"].as_array().cloned().unwrap_or_default();
            let ok = ["primary", "replica-eu"].iter().all(|id| {
                nodes
                    .iter()
                    .any(|n| n["agent_id"] == *id && n["reachable"] == true)
            });
            if code == StatusCode::OK && ok {
                Ok(body)
            } else {
                Err(format!("{code} {body}"))
            }
        },
    );
    let endpoint_of = |id: &str| {
        status["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["agent_id"] == id))
            .map(|n| n["endpoint"].clone())
    };
    assert_eq!(
        endpoint_of("primary"),
        Some(json!("http://primary:7475")),
        "{status}"
    );
    assert_eq!(
        endpoint_of("replica-eu"),
        Some(json!("http://replica-eu:7475")),
        "{status}"
    );
    assert_eq!(status["partitioned"], false, "{status}");
    lap("cluster status on node 2");

    cut_off_and_healed(&stack, &client, (&node1, &node2), &token);
    lap("node 2 cut off, AP writes, reconnected, converged");
    killed_under_writes(&stack, &client, (&node1, &node2), &token);
    lap("node 1 killed under writes, started, nothing lost");
    stopped_cleanly(&stack, "replica-eu");
    lap("docker stop is clean and prompt");

    stack.down().unwrap_or_else(|e| panic!("{e}"));
    lap("compose down -v");
    println!("total {:.1}s", t0.elapsed().as_secs_f64());
}

/// The compose network a service's container is on.
fn network_of(stack: &Stack, service: &str) -> String {
    let cid = stack.container(service);
    let out = run_ok(
        Command::new("docker").args([
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
            &cid,
        ]),
        "docker inspect networks",
    );
    text(&out.stdout).trim().to_string()
}

fn post_json(client: &Client, url: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let resp = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    (status, resp.json().unwrap_or(Value::Null))
}

/// The failure story's first half: node 2's container is cut off the network for real; node 1
/// sees the partition and CP refuses within 10 s; switched to AP it writes; reconnected, node 2
/// gets every write and node 1 sees it reachable again.
fn cut_off_and_healed(stack: &Stack, client: &Client, (node1, node2): (&str, &str), token: &str) {
    let net = network_of(stack, "replica-eu");
    let cid = stack.container("replica-eu");
    run_ok(
        Command::new("docker").args(["network", "disconnect", &net, &cid]),
        "docker network disconnect",
    );
    let cut = Instant::now();
    poll(
        "node 1 refuses CP writes, partitioned",
        Duration::from_secs(10),
        || {
            let (code, body) = post_json(
                client,
                &format!("{node1}/v1/records"),
                token,
                &json!({"collection": "c", "data": {"during": "cut"}}),
            );
            let status = ok_json(client, &format!("{node1}/v1/cluster/status"))?;
            (code == StatusCode::SERVICE_UNAVAILABLE && status["partitioned"] == true)
                .then_some(())
                .ok_or(format!(
                    "{code} {body} partitioned={}",
                    status["partitioned"]
                ))
        },
    );
    println!(
        "  partition seen and CP refusing {:.1}s after the cut",
        cut.elapsed().as_secs_f64()
    );
    watched(client, node1, token, false);
    let (code, body) = post_json(
        client,
        &format!("{node1}/v1/cluster/consistency"),
        token,
        &json!({"mode": "AP"}),
    );
    assert_eq!(code, StatusCode::OK, "{body}");
    let during: Vec<(String, Value)> = (0..3)
        .map(|i| {
            let data = json!({"cut": i});
            (write_record(client, node1, token, &data), data)
        })
        .collect();
    // Back on the network under its service name, as compose attached it.
    run_ok(
        Command::new("docker").args(["network", "connect", "--alias", "replica-eu", &net, &cid]),
        "docker network connect",
    );
    for (hash, data) in &during {
        let body = poll(
            &format!("AP record {hash} on node 2"),
            REPLICATION_DEADLINE,
            || ok_read(client, &format!("{node2}/v1/records/{hash}"), token),
        );
        assert_record(&body, hash, data);
    }
    poll("node 1 sees node 2 again", REPLICATION_DEADLINE, || {
        let status = ok_json(client, &format!("{node1}/v1/cluster/status"))?;
        (status["partitioned"] == false)
            .then_some(())
            .ok_or(status.to_string())
    });
    watched(client, node1, token, true);
}

/// What an operator watching node 1 sees of node 2: its `/metrics` and `sapixctl status`.
fn watched(client: &Client, node1: &str, token: &str, reachable: bool) {
    let metrics = client
        .get(format!("{node1}/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("GET /metrics");
    let (up, partitioned) = if reachable { (1, 0) } else { (0, 1) };
    for line in [
        format!("sapix_peer_reachable{{peer=\"replica-eu\"}} {up}"),
        format!("sapix_partitioned {partitioned}"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let out = Command::new(sapix_tests::locate::cargo_bin("sapix-ctl", "sapixctl"))
        .args(["--url", node1, "status"])
        .env("SAPIX_ROOT_KEY", token)
        .output()
        .expect("run sapixctl");
    let table = text(&out.stdout);
    println!("  sapixctl status on node 1:\n{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("replica-eu"))
        .unwrap_or_else(|| panic!("no replica-eu row:\n{table}"));
    let shown = if reachable { " yes " } else { " NO " };
    assert!(row.contains(shown), "{row}");
}

/// `docker kill` node 1 while a client writes to it, `docker start` it with its volumes: every
/// write it acknowledged is there, and reaches node 2.
fn killed_under_writes(stack: &Stack, client: &Client, (node1, node2): (&str, &str), token: &str) {
    let cid = stack.container("primary");
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = {
        let (acked, url, token) = (
            acked.clone(),
            format!("{node1}/v1/records"),
            token.to_string(),
        );
        std::thread::spawn(move || {
            let client = http();
            for i in 0..10_000 {
                let body = json!({"collection": "c", "data": {"kill": i}});
                match client.post(&url).bearer_auth(&token).json(&body).send() {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let v: Value = r.json().unwrap_or(Value::Null);
                        acked
                            .lock()
                            .unwrap()
                            .push(v["hash"].as_str().unwrap_or("").to_string());
                    }
                    Ok(_) => {}
                    // The container is gone: the load is over.
                    Err(_) => break,
                }
            }
        })
    };
    poll("20 writes acknowledged", REPLICATION_DEADLINE, || {
        let n = acked.lock().unwrap().len();
        (n >= 20).then_some(()).ok_or(format!("{n}"))
    });
    run_ok(Command::new("docker").args(["kill", &cid]), "docker kill");
    writer.join().expect("writer");
    run_ok(Command::new("docker").args(["start", &cid]), "docker start");
    poll("node 1 healthy again", START_DEADLINE, || {
        ok_json(client, &format!("{node1}/healthz")).map(|_| ())
    });
    let acked = acked.lock().unwrap().clone();
    println!("  {} writes acknowledged before the kill", acked.len());
    for hash in &acked {
        let (code, body) =
            read_json(client, &format!("{node1}/v1/records/{hash}"), token).expect("GET on node 1");
        assert_eq!(code, StatusCode::OK, "acknowledged {hash} lost: {body}");
    }
    let last = acked.last().expect("writes were acknowledged");
    poll(
        "the last acknowledged write reaches node 2",
        REPLICATION_DEADLINE,
        || ok_read(client, &format!("{node2}/v1/records/{last}"), token).map(|_| ()),
    );
}

/// `docker stop` sends SIGTERM: the agent exits 0 by itself, well inside the grace period.
fn stopped_cleanly(stack: &Stack, service: &str) {
    let cid = stack.container(service);
    let asked = Instant::now();
    run_ok(Command::new("docker").args(["stop", &cid]), "docker stop");
    let took = asked.elapsed();
    let out = run_ok(
        Command::new("docker").args(["inspect", "-f", "{{.State.ExitCode}}", &cid]),
        "docker inspect exit code",
    );
    assert_eq!(text(&out.stdout).trim(), "0", "exit code after docker stop");
    assert!(took < Duration::from_secs(10), "docker stop took {took:?}");
    println!("  docker stop took {:.1}s, exit 0", took.as_secs_f64());
}

/// Builds the image once per test process (both tests here need it).
fn image_once() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(build_image);
}

/// Containers, volumes and a network of one test; all removed when dropped.
struct Page {
    tag: String,
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl Page {
    fn new() -> Page {
        let tag = format!("sapix-page-{}", std::process::id());
        run_ok(
            Command::new("docker").args(["network", "create", &tag]),
            "docker network create",
        );
        Page {
            tag,
            containers: Vec::new(),
            volumes: Vec::new(),
        }
    }

    /// The page's `docker run -d -e … sapixdb/agent:latest`, every `-e` exactly as typed. Only
    /// what separates two regions on one test machine differs: each region's volumes get
    /// their own names, the container joins the test network under the host name the page's
    /// Step 3 uses (`primary-region-a`, `replica-region-b`), and no host port is published.
    fn docker_run(&mut self, agent_id: &str, seed: &str, host_name: &str) -> String {
        let name = format!("{}-{agent_id}", self.tag);
        let vol = |what: &str| format!("{name}-{what}");
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--name", &name, "--network", &self.tag])
            .args(["--network-alias", host_name])
            .args(["-e", &format!("SAPIX_AGENT_ID={agent_id}")])
            .args(["-e", &format!("SAPIX_MASTER_SEED={seed}")])
            .args(["-e", "SAPIX_STRAND_DIR=/data/strand"])
            .args(["-e", "SAPIX_GRAPH_DIR=/data/graph"])
            .args(["-e", "SAPIX_BLOB_DIR=/data/blobs"])
            .args(["-e", "SAPIX_BIND_ADDR=0.0.0.0:7475"])
            .args(["-v", &format!("{}:/data/strand", vol("strand"))])
            .args(["-v", &format!("{}:/data/graph", vol("graph"))])
            .args(["-v", &format!("{}:/data/blobs", vol("blobs"))])
            .arg(IMAGE);
        self.containers.push(name.clone());
        self.volumes.extend(["strand", "graph", "blobs"].map(vol));
        run_ok(&mut cmd, "docker run (the page's Step 1/2)");
        let out = run_ok(
            Command::new("docker").args([
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &name,
            ]),
            "docker inspect (address)",
        );
        text(&out.stdout).trim().to_string()
    }

    fn logs(&self, container: &str) -> String {
        Command::new("docker")
            .args(["logs", "--tail", "100", container])
            .output()
            .map(|o| format!("{}{}", text(&o.stdout), text(&o.stderr)))
            .unwrap_or_else(|e| format!("(docker logs failed: {e})"))
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        for c in &self.containers {
            if std::thread::panicking() {
                eprintln!("==== {c} logs (tail) ====\n{}", self.logs(c));
            }
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        for v in &self.volumes {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", v])
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.tag])
            .output();
    }
}

/// A client that reaches `name:7475` at `ip` while sending `Host: name:7475`, as a client in
/// another region whose DNS knows the name would.
fn client_for(name: &str, ip: &str) -> Client {
    let addr: std::net::SocketAddr = format!("{ip}:7475").parse().expect("container address");
    Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .resolve(name, addr)
        .build()
        .expect("http client")
}

/// The spec's "Setting up multi-region" Steps 1–3 as the page types them — no SAPIX_ENDPOINT
/// anywhere — must give a two-way mesh: the primary learns the endpoint the operator's Step 3
/// call names (`http://primary-region-a:7475`), the replica reaches it back, and a CP write on
/// the replica is accepted. A divide called at a name the replica cannot resolve fails first,
/// naming SAPIX_ENDPOINT, and the same body then succeeds.
#[test]
fn the_pages_docker_run_steps_without_sapix_endpoint_give_a_two_way_mesh() {
    if let Some(why) = docker_engine_missing() {
        println!("SKIPPED docker page steps: no Docker engine ({why})");
        return;
    }
    image_once();
    let seed = random_seed_hex();
    let token = sapix_core::KeySchedule::new(
        sapix_core::MasterSeed::from_hex(&seed).expect("seed is 64 hex chars"),
    )
    .default_root_key()
    .expose()
    .to_string();
    let mut page = Page::new();
    let ip_a = page.docker_run("primary", &seed, "primary-region-a");
    let ip_b = page.docker_run("replica-eu", &seed, "replica-region-b");
    // A `docker run` user reads the key with the script, naming the container.
    let name = page.containers[0].clone();
    let script = repo_root().join("docker/root-key.sh");
    let read = poll(
        "root-key.sh --container reads the key",
        START_DEADLINE,
        || {
            let out = Command::new(&script)
                .args(["--container", &name])
                .output()
                .map_err(|e| e.to_string())?;
            out.status
                .success()
                .then(|| text(&out.stdout))
                .ok_or_else(|| text(&out.stderr))
        },
    );
    assert_eq!(read.trim(), token, "root-key.sh --container {name}");
    let primary = client_for("primary-region-a", &ip_a);
    let replica = client_for("replica-region-b", &ip_b);
    let (base_a, base_b) = (
        "http://primary-region-a:7475",
        "http://replica-region-b:7475",
    );
    for (client, base) in [(&primary, base_a), (&replica, base_b)] {
        poll(&format!("{base} healthy"), START_DEADLINE, || {
            ok_json(client, &format!("{base}/healthz"))
        });
    }
    for i in 0..3 {
        write_record(&primary, base_a, &token, &json!({ "i": i }));
    }
    let step3 = json!({
        "new_agent_id": "replica-eu",
        "endpoint": "http://replica-region-b:7475",
        "role": "Replica",
    });

    // Called at a name only the operator's machine resolves: the replica cannot reach the
    // primary back there, so the divide fails and says what to set.
    let wrong = client_for("primary.invalid", &ip_a);
    let resp = wrong
        .post("http://primary.invalid:7475/v1/cluster/divide")
        .bearer_auth(&token)
        .json(&step3)
        .send()
        .expect("divide at a name the replica cannot resolve");
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    for part in [
        "replica-eu cannot reach primary back at http://primary.invalid:7475",
        "SAPIX_ENDPOINT",
    ] {
        assert!(message.contains(part), "{part:?} missing: {body}");
    }

    // Step 3 exactly as the page types it.
    let resp = primary
        .post(format!("{base_a}/v1/cluster/divide"))
        .bearer_auth(&token)
        .json(&step3)
        .send()
        .expect("Step 3");
    let status = resp.status();
    let divided: Value = resp.json().unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "divide: {divided}");
    assert_eq!(divided["replica_agent_id"], "replica-eu", "{divided}");
    assert_eq!(
        divided["endpoint"], "http://replica-region-b:7475",
        "{divided}"
    );
    assert_eq!(
        divided["members_informed"],
        json!(["replica-eu"]),
        "{divided}"
    );
    assert_eq!(divided["members_pending"], json!([]), "{divided}");
    assert!(divided["blocks_pushed"].as_u64() >= Some(3), "{divided}");

    // The replica sees the primary where the operator's call reached it, reachable, and
    // takes a CP write (it was 503 for ever with the one-way mesh).
    let view = poll(
        "the replica reaches the primary",
        REPLICATION_DEADLINE,
        || {
            let (code, body) = get_json(&replica, &format!("{base_b}/v1/cluster/status"))
                .map_err(|e| e.to_string())?;
            let primary_entry = body["nodes"]
                .as_array()
                .and_then(|ns| ns.iter().find(|n| n["agent_id"] == "primary").cloned());
            match primary_entry {
                Some(n) if code == StatusCode::OK && n["reachable"] == true => Ok(body),
                _ => Err(format!("{code} {body}")),
            }
        },
    );
    assert_eq!(view["partitioned"], false, "{view}");
    assert_eq!(view["consistency"], "cp", "{view}");
    let nodes = view["nodes"].as_array().expect("nodes");
    assert_eq!(
        nodes[0]["endpoint"], "http://replica-region-b:7475",
        "{view}"
    );
    let primary_at = nodes.iter().find(|n| n["agent_id"] == "primary");
    assert_eq!(
        primary_at.map(|n| n["endpoint"].clone()),
        Some(json!("http://primary-region-a:7475")),
        "{view}"
    );
    let resp = replica
        .post(format!("{base_b}/v1/records"))
        .bearer_auth(&token)
        .json(&json!({ "collection": "orders", "data": { "from": "replica" } }))
        .send()
        .expect("CP write on the replica");
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    assert_eq!(
        status,
        StatusCode::CREATED,
        "CP write on the replica: {body}"
    );
    let hash = body["hash"].as_str().expect("hash").to_string();
    poll(
        "the replica's write on the primary",
        REPLICATION_DEADLINE,
        || ok_read(&primary, &format!("{base_a}/v1/records/{hash}"), &token),
    );
    // The image's own health check (the agent asks its /livez; no shell in the image).
    for container in &page.containers {
        poll(&format!("{container} healthy"), START_DEADLINE, || {
            let out = Command::new("docker")
                .args(["inspect", "-f", "{{.State.Health.Status}}", container])
                .output()
                .map_err(|e| e.to_string())?;
            match text(&out.stdout).trim() {
                "healthy" => Ok(()),
                other => Err(other.to_string()),
            }
        });
    }
    let logs = page.logs(&page.containers[0]);
    assert!(
        logs.contains("endpoint learned") && logs.contains("http://primary-region-a:7475"),
        "the primary logs the endpoint it learned:\n{logs}"
    );
}
