//! docs/runbook.md, run as written: every `sh` block of the page, in order, in bash with
//! `-e -o pipefail`, against real agents on loopback (a primary and a replica of one cluster),
//! with `sapix-agent` and `sapixctl` on the PATH. Between blocks the test does only what the
//! page's prose tells an operator to do (restart nodes with a new key, lose a region), and
//! after each block it checks what the block was for. A block the test does not know fails it,
//! so a command added to the page is a command tested.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sapix_tests::locate::{cargo_bin, WORKSPACE_ROOT};
use sapix_tests::{cluster_agent, wait_until, Api, TEST_SEED};
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(30);

/// One `sh NAME` block of the page.
struct Block {
    name: String,
    code: String,
}

fn blocks() -> Vec<Block> {
    let text = std::fs::read_to_string(Path::new(WORKSPACE_ROOT).join("docs/runbook.md"))
        .expect("docs/runbook.md");
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) if info.starts_with("sh") => {
                let name = info.strip_prefix("sh").unwrap().trim();
                assert!(!name.is_empty(), "every sh block has a name: ```sh NAME");
                open = Some(Block {
                    name: name.to_string(),
                    code: String::new(),
                });
            }
            (Some(_), Some("")) => blocks.push(open.take().unwrap()),
            (Some(b), _) => b.code += &format!("{line}\n"),
            (None, _) => {}
        }
    }
    assert!(open.is_none(), "an sh block is not closed");
    blocks
}

/// The shell every block runs in: the page's variables, the binaries on the PATH, and each
/// block in a process group of its own, so nodes it starts in the background are stopped
/// when the test ends, whatever happens.
struct Shell {
    env: BTreeMap<String, String>,
    groups: Vec<i32>,
}

impl Shell {
    fn run(&mut self, block: &Block) -> Output {
        let mut cmd = Command::new("bash");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SAPIX_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .args(["-e", "-o", "pipefail", "-c", &block.code])
            .envs(&self.env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("run bash");
        self.groups.push(child.id() as i32);
        let out = child.wait_with_output().expect("wait for bash");
        println!(
            "--- {} (exit {:?})\n{}{}",
            block.name,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn ok(&mut self, block: &Block) -> String {
        let out = self.run(block);
        assert!(
            out.status.success(),
            "runbook block `{}` failed:\n{}\n{}",
            block.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.insert(key.to_string(), value.into());
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        for g in &self.groups {
            // SAFETY: kill(2) with a negative pid signals a process group we created.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

fn status(url: &str, key: &str) -> Value {
    Api::new(url.to_string(), key.to_string())
        .get("/v1/cluster/status")
        .json()
}

fn member(status: &Value, id: &str) -> Option<Value> {
    status["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["agent_id"] == id)
        .cloned()
}

fn path_with(bins: &[PathBuf]) -> String {
    let mut dirs: Vec<String> = bins
        .iter()
        .map(|b| b.parent().expect("a dir").display().to_string())
        .collect();
    dirs.push(std::env::var("PATH").unwrap_or_default());
    dirs.join(":")
}

#[test]
fn every_command_of_the_runbook_works_as_written() {
    let mut primary = cluster_agent("primary");
    let mut replica = cluster_agent("replica");
    let old_key = primary.root_key();
    let new_key = "rotated-root-key-0123456789abcdef".to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let (new_addr, new_addr_2) = (free_addr(), free_addr());
    let mut sh = Shell {
        env: BTreeMap::new(),
        groups: Vec::new(),
    };
    let bins = [
        cargo_bin("sapix-server", "sapix-agent"),
        cargo_bin("sapix-ctl", "sapixctl"),
    ];
    sh.set("PATH", path_with(&bins));
    sh.set("PRIMARY", primary.base_url());
    sh.set("REPLICA", replica.base_url());
    sh.set("SAPIX_ROOT_KEY", old_key.clone());
    sh.set("SAPIX_MASTER_SEED", TEST_SEED);
    sh.set("NEW_ROOT_KEY", new_key.clone());
    sh.set(
        "BACKUP_DIR",
        dir.path().join("backup").display().to_string(),
    );
    sh.set(
        "NEW_DATA_DIR",
        dir.path().join("replica-2").display().to_string(),
    );
    sh.set("NEW_ADDR", new_addr.clone());
    sh.set("NEW_ADDR_2", new_addr_2.clone());
    let api = primary.api();
    for i in 0..25 {
        api.write("orders", &serde_json::json!({ "n": i }));
    }

    let blocks = blocks();
    let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    println!("runbook blocks: {names:?}");
    let mut key = old_key.clone();
    for block in &blocks {
        match block.name.as_str() {
            "add-region" => {
                let out = sh.ok(block);
                assert!(out.contains("replica is a member"), "{out}");
                assert!(member(&status(&primary.base_url(), &key), "replica").is_some());
            }
            "lag" => {
                let out = sh.ok(block);
                assert!(out.lines().any(|l| l.starts_with("primary")), "{out}");
                assert!(out.contains("replica queue"), "{out}");
            }
            "cron-check" => {
                let out = sh.ok(block);
                assert_eq!(out.trim(), "OK");
            }
            "catch-up" => {
                let out = sh.ok(block);
                assert_eq!(out.matches("primary").count(), 2, "{out}");
            }
            "incident" => {
                let out = sh.ok(block);
                assert!(out.starts_with("CP\n"), "{out}");
                assert!(out.contains("consistency AP (was CP)"), "{out}");
                assert!(out.contains("consistency CP (was AP)"), "{out}");
                let hash = out
                    .split("\"hash\":\"")
                    .nth(1)
                    .and_then(|r| r.get(..64))
                    .expect("the AP write's receipt")
                    .to_string();
                wait_until(WITHIN, "the AP write reaches the replica", || {
                    replica.api().get(&format!("/v1/records/{hash}")).status == 200
                });
                assert_eq!(status(&primary.base_url(), &key)["consistency"], "cp");
            }
            "metrics" => {
                let out = sh.ok(block);
                assert!(
                    out.contains("sapix_peer_reachable{peer=\"replica\"} 1"),
                    "{out}"
                );
                assert!(out.contains("sapix_consistency{mode=\"cp\"} 1"), "{out}");
            }
            "rotate-check" => {
                // Step 1: every node restarted with the next key beside the current one.
                for node in [&mut primary, &mut replica] {
                    node.set_env("SAPIX_ROOT_KEY", Some(&old_key));
                    node.set_env("SAPIX_ROOT_KEY_NEXT", Some(&new_key));
                    node.restart();
                }
                let out = sh.ok(block);
                assert_eq!(out.matches("\"holds\"").count(), 2, "{out}");
            }
            "rotate-done" => {
                // Step 4: every node restarted with the new key only.
                for node in [&mut primary, &mut replica] {
                    node.set_env("SAPIX_ROOT_KEY", Some(&new_key));
                    node.set_env("SAPIX_ROOT_KEY_NEXT", None);
                    node.restart();
                }
                let out = sh.ok(block);
                assert!(out.contains("\"peer_agent_id\":\"replica\""), "{out}");
                // Step 3, for the rest of the page: the operator uses the new key.
                key = new_key.clone();
                sh.set("SAPIX_ROOT_KEY", key.clone());
            }
            "backup" => {
                let out = sh.ok(block);
                let manifest: Value = serde_json::from_str(
                    &std::fs::read_to_string(dir.path().join("backup/backup.json"))
                        .expect("backup.json"),
                )
                .expect("JSON");
                assert_eq!(manifest["tip"], primary.api().tip(), "{out}");
            }
            "restore" => {
                let out = sh.ok(block);
                assert!(out.contains("primary-copy is a member"), "{out}");
                let copy = Api::new(format!("http://{new_addr}"), key.clone());
                wait_until(WITHIN, "the restored node holds every block", || {
                    copy.tip() >= primary.api().tip()
                });
            }
            "standby-check" => {
                let out = sh.ok(block);
                let mut lines = out.lines();
                let copied: u64 = lines.next().unwrap_or("").trim().parse().expect("a seq");
                let probe: Value = serde_json::from_str(lines.next().unwrap_or("")).unwrap();
                assert_eq!(probe["holds"], copied, "no write since the backup: safe");
            }
            "replace" => {
                // The region is lost; the cron check says so, by its exit code and its words.
                replica.kill9();
                let cron = blocks.iter().find(|b| b.name == "cron-check").unwrap();
                let out = sh.run(cron);
                assert_eq!(out.status.code(), Some(2));
                assert!(String::from_utf8_lossy(&out.stdout).starts_with("CRIT"));
                let out = sh.ok(block);
                assert!(out.contains("replica-2 is a member"), "{out}");
                let s = status(&primary.base_url(), &key);
                assert!(member(&s, "replica").is_none(), "removed: {s}");
                let new = Api::new(format!("http://{new_addr_2}"), key.clone());
                wait_until(WITHIN, "the new region holds every block", || {
                    new.tip() >= primary.api().tip()
                });
            }
            "disk-check" => {
                let out = sh.ok(block);
                assert!(out.starts_with("ready"), "{out}");
                assert!(out.contains("storage"), "{out}");
            }
            other => panic!("runbook block `{other}` has no check in tests/tests/runbook.rs"),
        }
    }
    assert_eq!(blocks.len(), 13, "every block of the page ran: {names:?}");
}
