//! A real `sapix-agent` process on loopback, in its own temporary data directory.
//!
//! The agent is started with every inherited `SAPIX_*` variable removed, so a developer's shell
//! cannot change what a test sees; `SAPIX_DATA_DIR` and `SAPIX_BIND_ADDR=127.0.0.1:0` are set
//! unless the test gives its own. It is ready when it prints its one stdout line,
//! `sapix-agent listening on http://127.0.0.1:PORT`. Its stderr (the logs) goes to a file next to
//! the data directory; if the test is panicking when the agent is dropped, the tail of that file
//! is printed and the directory is kept, so a failure can be read after the fact.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sapix_core::MasterSeed;
use tempfile::TempDir;

use crate::http::Api;
use crate::locate;
use crate::wait::try_wait_until;

/// The prefix of the agent's one stdout line; the base URL follows it.
pub const READY_PREFIX: &str = "sapix-agent listening on ";
/// How long an agent may take to print its ready line.
pub const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before the agent is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// Lines of stderr shown when a test fails.
const TAIL_LINES: usize = 60;

/// Settings for an agent, before it starts.
#[derive(Debug, Clone)]
pub struct AgentBuilder {
    bin: PathBuf,
    env: BTreeMap<String, String>,
}

/// How an agent that was expected to refuse to start ended.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

/// A running (or killed) agent process and its data directory.
pub struct Agent {
    bin: PathBuf,
    env: BTreeMap<String, String>,
    dir: Option<TempDir>,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    child: Option<Child>,
    addr: SocketAddr,
    /// `http`, or `https` when it serves TLS.
    scheme: &'static str,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    starts: u32,
}

impl AgentBuilder {
    /// Sets an environment variable for the agent (overrides the harness defaults).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Uses another binary than the workspace's `sapix-agent`.
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = bin.into();
        self
    }

    /// Starts the agent and waits for its ready line. Panics (with its stderr) if it is not
    /// ready within [`READY_WITHIN`].
    pub fn start(self) -> Agent {
        let (dir, data_dir, stderr_path) = agent_dir();
        let mut agent = Agent {
            bin: self.bin,
            env: self.env,
            dir: Some(dir),
            data_dir,
            stderr_path,
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            scheme: "http",
            stdout_lines: Arc::default(),
            starts: 0,
        };
        if let Err(why) = agent.spawn(None) {
            panic!("{why}");
        }
        agent
    }

    /// Runs an agent that is expected to exit by itself within `within` (a refused config),
    /// and returns how it ended. Panics if it is still running then.
    pub fn run_expecting_exit(self, within: Duration) -> Exited {
        let (_dir, data_dir, stderr_path) = agent_dir();
        let mut cmd = command(&self.bin, &self.env, &data_dir, None);
        cmd.stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("create stderr log"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let reader =
            std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        let mut status = None;
        let exited = try_wait_until(within, || {
            status = child.try_wait().expect("poll child");
            status.is_some()
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let stdout = reader.join().unwrap_or_default();
        let status = status.unwrap_or_else(|| {
            panic!("agent was still running after {within:?}; expected it to refuse its config\nstdout:\n{stdout}\nstderr:\n{stderr}")
        });
        Exited {
            status,
            stdout,
            stderr,
        }
    }
}

impl Agent {
    /// An agent with the harness defaults and the workspace's binary.
    pub fn builder() -> AgentBuilder {
        AgentBuilder {
            bin: locate::agent_bin(),
            env: BTreeMap::new(),
        }
    }

    /// Starts an agent with the harness defaults only.
    pub fn start() -> Agent {
        Agent::builder().start()
    }

    /// The base URL, `http://127.0.0.1:PORT` (`https://` when it serves TLS). Changes if a
    /// restart had to take another port.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The URL of `path` (which starts with `/`) on this agent.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The process id of the running agent (for its CPU time and memory in `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The address the agent is (or was last) listening on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The agent's data directory (`SAPIX_DATA_DIR`), kept across restarts.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The value of an environment variable this agent was configured with.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// The root bearer token: `SAPIX_ROOT_KEY` if given, else the `root_key` file the agent
    /// wrote in its data directory.
    pub fn root_key(&self) -> String {
        if let Some(key) = self.env_var("SAPIX_ROOT_KEY") {
            return key.to_owned();
        }
        let path = self.data_dir.join("root_key");
        let key = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        key.trim().to_owned()
    }

    /// The cluster master seed: `SAPIX_MASTER_SEED` if given, else the `master_seed` file.
    pub fn master_seed(&self) -> MasterSeed {
        let text = match self.env_var("SAPIX_MASTER_SEED") {
            Some(seed) => seed.to_owned(),
            None => {
                let path = self.data_dir.join("master_seed");
                std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            }
        };
        MasterSeed::from_hex(&text).expect("master seed is 64 hex characters")
    }

    /// A client for this agent's current address, authenticated with the root key.
    pub fn api(&self) -> Api {
        Api::new(self.base_url(), self.root_key())
    }

    /// Every line the agent has printed on stdout since it last started.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines.lock().expect("stdout lines").clone()
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("poll child").is_none(),
            None => false,
        }
    }

    /// Kills the agent with SIGKILL mid-flight and reaps it. Panics if it had already exited,
    /// since that is a crash the test did not cause.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: the agent is not running");
        if let Some(status) = child.try_wait().expect("poll child") {
            panic!(
                "kill9: the agent had already exited ({status})\n{}",
                self.stderr_tail()
            );
        }
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: `kill` has no memory-safety preconditions; the pid is our own unreaped
        // child, so it cannot have been recycled for another process.
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill -9 {pid}: {}", std::io::Error::last_os_error());
        let status = child.wait().expect("reap killed agent");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "agent ended by something other than our SIGKILL: {status}"
        );
    }

    /// Stops the agent with SIGTERM, and SIGKILL if it has not exited within 10 s.
    /// Returns how it ended; does nothing and returns `None` if it was not running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(status) = child.try_wait().expect("poll child") {
            return Some(status);
        }
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: as in `kill9`: our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut status = None;
        if !try_wait_until(STOP_WITHIN, || {
            status = child.try_wait().expect("poll child");
            status.is_some()
        }) {
            let _ = child.kill();
            status = child.wait().ok();
        }
        status
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.env.insert(key.to_owned(), v.to_owned()),
            None => self.env.remove(key),
        };
    }

    /// Starts the agent again on the same data directory and environment, stopping it first
    /// if it is running. It asks for the port it had before; if that fails (the port was
    /// taken meanwhile), it starts on the configured address instead.
    pub fn restart(&mut self) {
        self.stop();
        let previous = self.addr;
        if let Err(first) = self.spawn(Some(previous)) {
            eprintln!("restart on {previous} failed, retrying on the configured address:\n{first}");
            if let Err(why) = self.spawn(None) {
                panic!("{why}");
            }
        }
    }

    /// Everything the agent has written on stderr, across restarts, with the harness's
    /// `--- harness: start #n ---` markers between runs.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The last lines of the agent's stderr, framed for a failure message.
    pub fn stderr_tail(&self) -> String {
        stderr_tail(&self.stderr_path)
    }

    fn spawn(&mut self, bind: Option<SocketAddr>) -> Result<(), String> {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("open stderr log");
        writeln!(log, "--- harness: start #{} ---", self.starts).expect("write stderr log");
        let mut cmd = command(&self.bin, &self.env, &self.data_dir, bind);
        cmd.stdout(Stdio::piped()).stderr(log);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let seen = Arc::clone(&lines);
        // Drains stdout for the process's whole life, so the agent can never block on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix(READY_PREFIX) {
                    let _ = ready_tx.send(url.trim().to_owned());
                }
                seen.lock().expect("stdout lines").push(line);
            }
        });
        let failed = |child: &mut Child, what: String| {
            let _ = child.kill();
            let _ = child.wait();
            format!("{what}\n{}", stderr_tail(&self.stderr_path))
        };
        let url = match ready_rx.recv_timeout(READY_WITHIN) {
            Ok(url) => url,
            Err(RecvTimeoutError::Timeout) => {
                return Err(failed(
                    &mut child,
                    format!("agent printed no ready line within {READY_WITHIN:?}"),
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(failed(
                    &mut child,
                    format!("agent exited ({status}) before printing its ready line"),
                ));
            }
        };
        let Some((scheme, addr)) = url
            .split_once("://")
            .filter(|(scheme, _)| ["http", "https"].contains(scheme))
            .and_then(|(scheme, a)| Some((scheme, a.parse::<SocketAddr>().ok()?)))
        else {
            return Err(failed(
                &mut child,
                format!("ready line has no http(s)://IP:PORT address: {url:?}"),
            ));
        };
        self.scheme = if scheme == "https" { "https" } else { "http" };
        if let Some(wanted) = bind {
            if addr != wanted {
                return Err(failed(
                    &mut child,
                    format!("asked to listen on {wanted}, agent says {addr}"),
                ));
            }
        }
        self.addr = addr;
        self.child = Some(child);
        self.stdout_lines = lines;
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_tail());
            if let Some(dir) = self.dir.take() {
                eprintln!("agent directory kept at {}", dir.keep().display());
            }
        }
    }
}

/// A fresh temporary directory with an empty `data/` and the path of the stderr log.
fn agent_dir() -> (TempDir, PathBuf, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("sapix-agent-")
        .tempdir()
        .expect("create temp dir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).expect("create data dir");
    let stderr_path = dir.path().join("agent.stderr.log");
    (dir, data_dir, stderr_path)
}

fn command(
    bin: &Path,
    env: &BTreeMap<String, String>,
    data_dir: &Path,
    bind: Option<SocketAddr>,
) -> Command {
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SAPIX_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("SAPIX_DATA_DIR", data_dir)
        .env("SAPIX_BIND_ADDR", "127.0.0.1:0")
        .envs(env)
        .stdin(Stdio::null());
    if let Some(addr) = bind {
        cmd.env("SAPIX_BIND_ADDR", addr.to_string());
    }
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        cmd.env("RUST_BACKTRACE", "1");
    }
    cmd
}

fn stderr_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    format!(
        "----- last {} lines of agent stderr ({}) -----\n{}\n----- end of agent stderr -----",
        tail.len(),
        path.display(),
        tail.join("\n")
    )
}
