//! `sapix-agent`: one SapixDB node. Configuration comes from `SAPIX_*` environment variables;
//! with none set it runs an embedded single node on 127.0.0.1:7475 with data in ./sapix-data.

use std::io::IsTerminal;
use std::process::ExitCode;

use sapix_server::config::Config;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    init_logging();
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

/// Logs go to stderr: `SAPIX_LOG` sets the filter (default `info`), `SAPIX_LOG_FORMAT=json`
/// switches to one JSON object per line.
fn init_logging() {
    let filter = EnvFilter::try_from_env("SAPIX_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if std::env::var("SAPIX_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}
