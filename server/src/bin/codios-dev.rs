//! `codios-dev --policy <file> [--bind 127.0.0.1:7575]`: a Codios-compatible authorization
//! server for local use, compose files and tests (see `docs/codios.md`). Prints one line on
//! stdout when ready, `codios-dev listening on http://ADDR`; logs go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use sapix_server::codios_dev::{router, Policy};

const USAGE: &str = "usage: codios-dev --policy <file.json> [--bind 127.0.0.1:7575]";
const DEFAULT_BIND: &str = "127.0.0.1:7575";

fn parse_args() -> Result<(PathBuf, SocketAddr), String> {
    let mut policy = None;
    let mut bind = DEFAULT_BIND.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--policy" => policy = Some(PathBuf::from(value()?)),
            "--bind" => bind = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let policy = policy.ok_or("--policy is required")?;
    let bind = bind
        .parse()
        .map_err(|_| format!("--bind {bind:?}: expected IP:port"))?;
    Ok((policy, bind))
}

fn main() -> ExitCode {
    let (policy_path, bind) = match parse_args() {
        Ok(a) => a,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("codios-dev: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let policy = match Policy::load(&policy_path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("codios-dev: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("codios-dev: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(bind).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("codios-dev: binding {bind}: {e}");
                return ExitCode::from(1);
            }
        };
        let bound = listener.local_addr().unwrap_or(bind);
        eprintln!(
            "codios-dev: policy {} with {} token(s), API key {}",
            policy_path.display(),
            policy.tokens(),
            if policy.has_api_key() {
                "required"
            } else {
                "not required"
            }
        );
        println!("codios-dev listening on http://{bound}");
        match axum::serve(listener, router(policy)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("codios-dev: serving: {e}");
                ExitCode::from(1)
            }
        }
    })
}
