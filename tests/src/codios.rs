//! A real `codios-dev` process on loopback, with a policy file in its own temporary directory.
//!
//! It is ready when it prints `codios-dev listening on http://127.0.0.1:PORT`. It can be
//! killed (SIGKILL, to look like an outage) and restarted on the same port, so an agent
//! pointed at it sees Codios go away and come back. The binary is found like the agent's
//! (`CODIOS_DEV_BIN` overrides).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::locate;
use crate::wait::try_wait_until;

/// The prefix of codios-dev's one stdout line.
pub const READY_PREFIX: &str = "codios-dev listening on ";
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running (or killed) `codios-dev`.
pub struct CodiosDev {
    bin: PathBuf,
    dir: TempDir,
    child: Option<Child>,
    addr: SocketAddr,
}

impl CodiosDev {
    /// Starts `codios-dev` with `policy` (the JSON of `docs/codios.md`) on a free port.
    pub fn start(policy: &Value) -> CodiosDev {
        let dir = tempfile::Builder::new()
            .prefix("codios-dev-")
            .tempdir()
            .expect("create temp dir");
        std::fs::write(dir.path().join("policy.json"), policy.to_string()).expect("write policy");
        let mut dev = CodiosDev {
            bin: locate::cargo_bin("sapix-server", "codios-dev"),
            dir,
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        dev.spawn();
        dev
    }

    /// The base URL, for `SAPIX_CODIOS_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills it with SIGKILL: Codios is unreachable until [`CodiosDev::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same policy.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// How many authorize calls it has answered since it last started.
    pub fn authorize_calls(&self) -> u64 {
        let body = client()
            .get(format!("{}/v1/stats", self.url()))
            .send()
            .and_then(|r| r.json::<Value>())
            .expect("codios-dev stats");
        body["authorize_calls"].as_u64().expect("authorize_calls")
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("codios-dev.stderr.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("codios-dev.stderr.log"))
            .expect("open stderr log");
        let mut child = Command::new(&self.bin)
            .arg("--policy")
            .arg(self.dir.path().join("policy.json"))
            .arg("--bind")
            .arg(self.addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix(READY_PREFIX) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(READY_WITHIN) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("codios-dev did not get ready:\n{}", self.stderr());
            }
        };
        self.addr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("codios-dev ready line without an address: {url:?}"));
        self.child = Some(child);
        let base = self.url();
        assert!(
            try_wait_until(Duration::from_secs(10), || {
                client()
                    .get(format!("{base}/healthz"))
                    .send()
                    .is_ok_and(|r| r.status().is_success())
            }),
            "codios-dev answers /healthz"
        );
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("build HTTP client")
}

impl Drop for CodiosDev {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("----- codios-dev stderr -----\n{}", self.stderr());
        }
    }
}
