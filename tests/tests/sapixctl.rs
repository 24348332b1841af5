//! `sapixctl` against real agents (issue 14): a divide, the status table and its JSON, a peer
//! going down as the table shows it, the consistency switch, a manual sync, health, and the
//! human errors for a wrong key and an agent that is not there.

use std::process::{Command, Output};
use std::time::Duration;

use sapix_tests::locate::cargo_bin;
use sapix_tests::{cluster_agent, wait_until, Agent, TEST_SEED};
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(30);

/// Runs `sapixctl args` against `agent`, with its root key file unless `key` says otherwise.
fn ctl(agent: &Agent, args: &[&str]) -> Output {
    let key = agent.data_dir().join("root_key");
    Command::new(cargo_bin("sapix-ctl", "sapixctl"))
        .arg("--url")
        .arg(agent.base_url())
        .arg("--root-key-file")
        .arg(key)
        .args(args)
        .env_remove("SAPIX_ROOT_KEY")
        .env_remove("SAPIX_URL")
        .output()
        .expect("run sapixctl")
}

/// Runs `sapixctl flags args` with no key file and no SAPIX_* env; its exit code and stderr.
fn bare(flags: &[&str], args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(cargo_bin("sapix-ctl", "sapixctl"))
        .args(flags)
        .args(args)
        .env_remove("SAPIX_ROOT_KEY")
        .env_remove("SAPIX_URL")
        .output()
        .expect("run sapixctl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "sapixctl failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn row<'a>(table: &'a str, node: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(node))
        .unwrap_or_else(|| panic!("no row for {node}:\n{table}"))
}

#[test]
fn an_operator_divides_watches_switches_and_syncs_with_sapixctl() {
    let a = cluster_agent("primary");
    let mut b = cluster_agent("replica-eu");
    for i in 0..3 {
        a.api().write("orders", &serde_json::json!({ "n": i }));
    }
    // Table mode: a progress bar while it runs (drawn only on a terminal), then the answer.
    let divided = ok(&ctl(&a, &["divide", "replica-eu", &b.base_url()]));
    assert!(
        divided.starts_with("replica-eu is a member: 3 blocks copied"),
        "{divided}"
    );

    wait_until(WITHIN, "the table shows the replica reachable", || {
        let table = ok(&ctl(&a, &["status"]));
        row(&table, "replica-eu").contains("yes")
    });
    let table = ok(&ctl(&a, &["status"]));
    assert!(table.starts_with("NODE"), "{table}");
    assert!(
        row(&table, "primary (this node)").contains("Primary"),
        "{table}"
    );
    let status: Value = serde_json::from_str(&ok(&ctl(&a, &["status", "-o", "json"]))).unwrap();
    assert_eq!(status["nodes"].as_array().map(Vec::len), Some(2));

    b.stop();
    ok(&ctl(&a, &["consistency", "ap"]));
    a.api().write("orders", &serde_json::json!("while down"));
    wait_until(
        WITHIN,
        "the table shows the replica down and 1 block behind",
        || {
            let table = ok(&ctl(&a, &["status"]));
            let eu = row(&table, "replica-eu");
            eu.contains("NO")
                && eu.split_whitespace().nth(3) == Some("1")
                && table.contains("PARTITIONED")
        },
    );
    assert_eq!(ok(&ctl(&a, &["consistency"])).trim(), "AP");
    let members = ok(&ctl(&a, &["members"]));
    assert_eq!(members.lines().count(), 2, "{members}");

    b.restart();
    wait_until(WITHIN, "the replica is back", || {
        row(&ok(&ctl(&a, &["status"])), "replica-eu").contains("yes")
    });
    let synced = ok(&ctl(&b, &["-o", "json", "sync", "primary"]));
    assert!(synced.contains("primary"), "{synced}");
    assert!(ok(&ctl(&a, &["health"])).starts_with("ready"));
}

#[test]
fn errors_say_what_to_do() {
    let a = cluster_agent("alone");
    let (code, err) = bare(
        &[
            "--url",
            &a.base_url(),
            "--root-key",
            "not-the-root-key-0123",
        ],
        &["consistency", "ap"],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("403") && err.contains("--root-key-file"),
        "{err}"
    );
    let (code, err) = bare(&["--url", "http://127.0.0.1:9"], &["status"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot reach") && err.contains("SAPIX_URL"),
        "{err}"
    );
    let (_, err) = bare(&["--url", &a.base_url()], &["sync", "x"]);
    assert!(err.contains("needs the root key"), "{err}");
}

#[test]
fn divide_progress_names_the_stage_while_a_divide_runs() {
    let a = Agent::builder()
        .env("SAPIX_AGENT_ID", "primary")
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_MESH_TIMEOUT_MS", "3000")
        .start();
    let api = a.api();
    let idle = api.get("/v1/cluster/divide/progress");
    idle.assert_status(200);
    assert_eq!(idle.json(), serde_json::json!({ "in_progress": false }));

    // A "new node" that accepts connections and never answers: the divide stays verifying
    // until the mesh timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let divide = std::thread::spawn({
        let api = a.api();
        move || {
            let body = serde_json::json!({ "new_agent_id": "mute", "endpoint": endpoint });
            api.post_with(
                "/v1/cluster/divide",
                sapix_tests::Auth::Root,
                body.to_string(),
            )
        }
    });
    wait_until(WITHIN, "the progress shows the divide verifying", || {
        let p = api.get("/v1/cluster/divide/progress").json();
        p["in_progress"] == true && p["new_agent_id"] == "mute" && p["stage"] == "verifying"
    });
    let failed = divide.join().unwrap();
    failed.assert_status(502);
    assert_eq!(
        api.get("/v1/cluster/divide/progress").json()["in_progress"],
        false
    );
    drop(silent);
}

#[test]
fn an_operator_reads_records_and_chains_with_their_positions() {
    let agent = cluster_agent("reader-1");
    let api = agent.api();
    let first = api.write("orders", &serde_json::json!({"n": 1}));
    let second = api.write("invoices", &serde_json::json!({"n": 2}));

    let got: Value =
        serde_json::from_str(&ok(&ctl(&agent, &["-o", "json", "get", &second.hash]))).unwrap();
    assert_eq!(got, api.read(&second.hash));
    let position = format!("reader-1:{}", second.seq);
    let at = ctl(&agent, &["get", &first.hash, "--min-position", &position]);
    assert!(ok(&at).contains("\"orders\""), "the record, pretty-printed");

    let tips = ok(&ctl(&agent, &["list"]));
    assert!(row(&tips, "reader-1").contains(&second.hash), "{tips}");
    let page = ok(&ctl(&agent, &["list", "reader-1", "--limit", "1"]));
    assert!(
        page.contains("orders") && !page.contains("invoices"),
        "{page}"
    );
    assert!(page.contains("more: --after-seq 1"), "{page}");
    let rest: Value = serde_json::from_str(&ok(&ctl(
        &agent,
        &["-o", "json", "list", "reader-1", "--after-seq", "1"],
    )))
    .unwrap();
    assert_eq!(rest["records"][0]["hash"], second.hash);

    // A collection, page by page with the cursor each page gives.
    let orders = ok(&ctl(
        &agent,
        &["list", "--collection", "invoices", "--limit", "1"],
    ));
    assert!(
        orders.contains(&second.hash[..16]) && orders.contains("end of the collection"),
        "{orders}"
    );
    let first_page: Value = serde_json::from_str(&ok(&ctl(
        &agent,
        &[
            "-o",
            "json",
            "list",
            "--collection",
            "orders",
            "--limit",
            "1",
        ],
    )))
    .unwrap();
    assert_eq!(first_page["records"][0]["hash"], first.hash);
    let next = first_page["next"].as_str().unwrap();
    let rest: Value = serde_json::from_str(&ok(&ctl(
        &agent,
        &[
            "-o",
            "json",
            "list",
            "--collection",
            "orders",
            "--after",
            next,
        ],
    )))
    .unwrap();
    assert_eq!(
        rest["records"],
        serde_json::json!([]),
        "one orders record: nothing after it"
    );

    // A position not held: the agent's words, exit 1.
    let ahead = ctl(
        &agent,
        &[
            "get",
            &first.hash,
            "--min-position",
            "reader-1:9",
            "--wait-ms",
            "50",
        ],
    );
    assert_eq!(ahead.status.code(), Some(1));
    let err = String::from_utf8_lossy(&ahead.stderr);
    assert!(err.contains("409 position_not_reached"), "{err}");
    // Bad input is refused before any call.
    let (code, err) = bare(&["--url", &agent.base_url()], &["get", "xyz"]);
    assert_eq!(code, Some(1), "{err}");
    let (code, err) = bare(&[], &["get", &first.hash, "--min-position", "nocolon"]);
    assert_eq!(code, Some(2), "clap refuses it: {err}");
    // Without a token the agent refuses the read, and sapixctl says how to give one.
    let (code, err) = bare(&["--url", &agent.base_url()], &["get", &first.hash]);
    assert_eq!(code, Some(1));
    assert!(err.contains("401 unauthorized"), "{err}");
}
