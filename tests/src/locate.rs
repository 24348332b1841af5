//! Finding the binaries under test.
//!
//! A binary comes from an explicit path in the environment (`SAPIX_AGENT_BIN` for `sapix-agent`,
//! `CODIOS_DEV_BIN` for `codios-dev`: the name upper-cased, `-` as `_`, plus `_BIN`), or else
//! from one `cargo build` per test process, in the profile the tests themselves were built with.
//! The path is taken from cargo's own artifact messages, so `CARGO_TARGET_DIR`, a configured
//! target dir and the profile are all respected without guessing the layout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// The workspace root, where `cargo build` runs.
pub const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The `sapix-agent` binary.
pub fn agent_bin() -> PathBuf {
    cargo_bin("sapix-server", "sapix-agent")
}

/// The environment variable that overrides where `bin` is found.
pub fn override_var(bin: &str) -> String {
    format!("{}_BIN", bin.to_ascii_uppercase().replace('-', "_"))
}

/// The path of binary `bin` of workspace package `package`, building it at most once per
/// process. Panics with cargo's output if the build fails.
pub fn cargo_bin(package: &str, bin: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(override_var(bin)) {
        return PathBuf::from(path);
    }
    type Built = BTreeMap<(String, String), Result<PathBuf, String>>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    // Held across the build: two tests asking at once wait for one build, not two.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (package.to_owned(), bin.to_owned());
    if let Some(earlier) = built.get(&key) {
        // The full cargo output went with the first failure; repeat only the verdict.
        return earlier.clone().unwrap_or_else(|_| {
            panic!("building {bin} failed earlier in this test process (see the first failure)")
        });
    }
    let result = build(package, bin);
    built.insert(key, result.clone());
    result.unwrap_or_else(|why| panic!("{why}"))
}

fn build(package: &str, bin: &str) -> Result<PathBuf, String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(WORKSPACE_ROOT).args([
        "build",
        "--message-format=json-render-diagnostics",
        "-p",
        package,
        "--bin",
        bin,
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("could not run cargo to build {bin}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "`cargo build -p {package} --bin {bin}` failed ({}); set {} to use a prebuilt binary\n{stderr}",
            out.status,
            override_var(bin)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| {
            format!("cargo built {package} but reported no executable named {bin}\n{stderr}")
        })
}
