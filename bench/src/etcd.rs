//! etcd side by side, when it is installed (`apt-get install etcd-server`): one node or three
//! on loopback, durable writes (etcd's default), written through its JSON gateway
//! (`POST /v3/kv/put`) by the same client as the agent.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sapix_tests::try_wait_until;
use tempfile::TempDir;

use crate::load::{record, Target};
use crate::procstat::{self, Usage};

/// How long an etcd cluster may take to elect a leader and answer `/health`.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The `etcd` binary, if installed.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ETCD_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

/// A running etcd cluster; killed when dropped.
pub struct Etcd {
    _dir: TempDir,
    children: Vec<Child>,
    /// Client URLs, one per member.
    pub clients: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Etcd {
    /// Starts `members` etcd processes as one cluster and waits until each answers healthy.
    pub fn start(bin: &PathBuf, members: usize) -> Result<Etcd, String> {
        let dir = tempfile::Builder::new()
            .prefix("sapix-bench-etcd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut etcd = Etcd {
            _dir: dir,
            children: Vec::new(),
            clients: Vec::new(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let data = etcd._dir.path().join(format!("e{i}"));
            let log = std::fs::File::create(etcd._dir.path().join(format!("e{i}.log")))
                .map_err(|e| e.to_string())?;
            let c = format!("http://127.0.0.1:{client}");
            let p = format!("http://127.0.0.1:{peer}");
            let child = Command::new(bin)
                .args(["--name", &format!("e{i}")])
                .arg("--data-dir")
                .arg(&data)
                .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
                .args([
                    "--listen-peer-urls",
                    &p,
                    "--initial-advertise-peer-urls",
                    &p,
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new", "--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting {}: {e}", bin.display()))?;
            etcd.children.push(child);
            etcd.clients.push(c);
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        for url in &etcd.clients {
            let healthy = try_wait_until(READY_WITHIN, || {
                http.get(format!("{url}/health"))
                    .send()
                    .and_then(|r| r.text())
                    .is_ok_and(|t| t.contains("\"true\""))
            });
            if !healthy {
                return Err(format!("etcd at {url} not healthy within {READY_WITHIN:?}"));
            }
        }
        Ok(etcd)
    }

    /// The write target on member `i`: a put of a ~100-byte record under a fresh key.
    pub fn target(&self, i: usize) -> Target {
        Target {
            url: format!("{}/v3/kv/put", self.clients[i]),
            token: None,
            get: None,
            ok_status: 200,
            body: Arc::new(|client, n| {
                let b64 = base64::engine::general_purpose::STANDARD;
                format!(
                    r#"{{"key":"{}","value":"{}"}}"#,
                    b64.encode(format!("bench/{client}/{n}")),
                    b64.encode(record(client, n))
                )
                .into_bytes()
            }),
        }
    }

    /// Each member's usage.
    pub fn usage(&self) -> Vec<Usage> {
        self.children
            .iter()
            .map(|c| procstat::usage(c.id()))
            .collect()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
