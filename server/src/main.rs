//! `sapix-agent`: one SapixDB node. Configuration comes from `SAPIX_*` environment variables;
//! with none set it runs an embedded single node on 127.0.0.1:7475 with data in ./sapix-data.

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use sapix_server::config::Config;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
sapix-agent — one SapixDB node: a signed, append-only ledger replicated across regions.

Usage:
  sapix-agent            run the node; configuration comes from SAPIX_* environment variables
                         (none needed: an embedded single node on 127.0.0.1:7475, data in
                         ./sapix-data)
  sapix-agent health     exit 0 if the node at SAPIX_BIND_ADDR answers GET /livez, else 1
                         (the container image's health check)
  sapix-agent --version  print the version
  sapix-agent --help     print this

Main settings (README.md has them all): SAPIX_AGENT_ID, SAPIX_MASTER_SEED, SAPIX_ROOT_KEY
(SAPIX_ROOT_KEY_NEXT during a rotation),
SAPIX_BIND_ADDR, SAPIX_ENDPOINT, SAPIX_DATA_DIR, SAPIX_STRAND_DIR, SAPIX_CODIOS_URL,
SAPIX_LOG (filter, default info), SAPIX_LOG_FORMAT (text or json).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["--help" | "-h" | "help"] => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["--version" | "-V"] => {
            println!("sapix-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        ["health"] => return health(),
        other => {
            eprintln!("sapix-agent: unknown arguments {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = init_logging() {
        eprintln!("sapix-agent: configuration error: {e}");
        return ExitCode::from(2);
    }
    let config = match Config::from_env(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sapix-agent: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sapix-agent: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(sapix_server::startup::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            eprintln!("sapix-agent: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr: `SAPIX_LOG` sets the filter (default `info`), `SAPIX_LOG_FORMAT` is
/// `text` (default) or `json` (one object per line); anything else is refused, not guessed.
fn init_logging() -> Result<(), String> {
    let filter = EnvFilter::try_from_env("SAPIX_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match std::env::var("SAPIX_LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
        Ok(v) if v == "json" => builder.json().init(),
        Ok(v) if v == "text" || v.is_empty() => builder.init(),
        Err(_) => builder.init(),
        Ok(v) => return Err(format!("SAPIX_LOG_FORMAT={v:?}: must be `text` or `json`")),
    }
    Ok(())
}

/// `sapix-agent health`: GET /livez on this node's own address (a wildcard bind is asked on
/// loopback), 2 s at most. A `FROM scratch` image has no curl; this is its health check.
fn health() -> ExitCode {
    let bind = std::env::var("SAPIX_BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:7475".into());
    let addr = match bind.to_socket_addrs().ok().and_then(|mut a| a.next()) {
        Some(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        Some(a) => a,
        None => {
            eprintln!("sapix-agent health: SAPIX_BIND_ADDR={bind:?} is not an address");
            return ExitCode::from(2);
        }
    };
    match livez(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("sapix-agent health: http://{addr}/livez: {why}");
            ExitCode::from(1)
        }
    }
}

fn livez(addr: SocketAddr) -> Result<(), String> {
    let within = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /livez HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(|e| e.to_string())?;
    let status_line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    if status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answered {:?}", status_line.trim()))
    }
}
