//! Configuration from the environment, parsed once into a typed struct.
//!
//! Every variable of the spec is read here, with its default; a bad value stops the start with
//! an error that names the variable. Secrets (`SAPIX_MASTER_SEED`, `SAPIX_ROOT_KEY`,
//! `SAPIX_CODIOS_API_KEY`) are held in redacting types and never printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sapix_core::auth::{AuthPolicy, BreakerConfig};
use sapix_core::node::AuthSettings;
use sapix_core::{AgentId, MasterSeed, RootKey};
use sapix_runtime::codios::{CodiosApiKey, CodiosClient, DEFAULT_TIMEOUT};
use sapix_runtime::tls::TlsSettings;

use crate::serve::HttpLimits;

/// The agent's settings, before any file is touched.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SAPIX_AGENT_ID` (default `local`).
    pub agent_id: AgentId,
    /// `SAPIX_MASTER_SEED`; when unset, a seed is generated once under the data dir.
    pub master_seed: Option<MasterSeed>,
    /// `SAPIX_ROOT_KEY`; when unset, derived from the master seed.
    pub root_key: Option<RootKey>,
    /// `SAPIX_ROOT_KEY_NEXT`: during a root-key rotation, a second key accepted beside the
    /// current one on the mesh and admin routes (the new key, then the old one); this node
    /// always presents `SAPIX_ROOT_KEY`.
    pub root_key_next: Option<RootKey>,
    /// `SAPIX_DATA_DIR` (default `./sapix-data`): generated seed and root key files, and the
    /// default parent of the three storage dirs.
    pub data_dir: PathBuf,
    /// `SAPIX_STRAND_DIR` (default `$SAPIX_DATA_DIR/strand`).
    pub strand_dir: PathBuf,
    /// `SAPIX_GRAPH_DIR` (default `$SAPIX_DATA_DIR/graph`).
    pub graph_dir: PathBuf,
    /// `SAPIX_BLOB_DIR` (default `$SAPIX_DATA_DIR/blobs`).
    pub blob_dir: PathBuf,
    /// `SAPIX_BIND_ADDR` (default `127.0.0.1:7475`).
    pub bind_addr: SocketAddr,
    /// `SAPIX_ENDPOINT`: the URL peers use to reach this node (default `http://$SAPIX_BIND_ADDR`).
    pub endpoint: Option<String>,
    /// `SAPIX_MESH_TIMEOUT_MS`: timeout of each call to a peer (default 5000).
    pub mesh_timeout: std::time::Duration,
    /// `SAPIX_CODIOS_URL`: the Codios base URL; unset means local mode (root key only).
    pub codios_url: Option<String>,
    /// `SAPIX_CODIOS_API_KEY`: sent to Codios as a bearer token.
    pub codios_api_key: Option<CodiosApiKey>,
    /// `SAPIX_CODIOS_TIMEOUT_MS`: timeout of each Codios call (default 2000).
    pub codios_timeout: Duration,
    /// The core's auth settings: `SAPIX_AUTH_CACHE_TTL_SECS` (5), `SAPIX_AUTH_MAX_STALE_SECS`
    /// (300), `SAPIX_REQUIRE_CODIOS` (false), `SAPIX_AUTH_CIRCUIT_BREAKER` (false),
    /// `SAPIX_AUTH_CIRCUIT_OPEN_AFTER_SECS` (30), `SAPIX_READS_OPEN` (false); Codios mode when
    /// `SAPIX_CODIOS_URL` is set.
    pub auth: AuthSettings,
    /// Bounds on inbound connections: `SAPIX_HTTP_HEADER_TIMEOUT_MS` (10000),
    /// `SAPIX_HTTP_BODY_TIMEOUT_MS` (30000), `SAPIX_HTTP_IDLE_TIMEOUT_MS` (60000),
    /// `SAPIX_MAX_CONNECTIONS` (4096).
    pub http: HttpLimits,
    /// TLS: `SAPIX_TLS_CERT`, `SAPIX_TLS_KEY`, `SAPIX_TLS_CA`, `SAPIX_TLS_CLIENT_CERT`,
    /// `SAPIX_TLS_CLIENT_KEY`, `SAPIX_TLS_REQUIRE_CLIENT_CERT` (all unset: plain HTTP).
    pub tls: TlsSettings,
}

/// A variable whose value cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {why}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// What is wrong with it (never its value, which may be a secret).
    pub why: String,
}

/// Default bind address: loopback, so a bare `sapix-agent` is never exposed by accident.
pub const DEFAULT_BIND: &str = "127.0.0.1:7475";

impl Config {
    /// Reads the configuration through `get` (the process environment in production).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &'static str| get(name).filter(|v| !v.trim().is_empty());
        let bad = |var: &'static str, why: String| ConfigError { var, why };

        let agent_id = match var("SAPIX_AGENT_ID") {
            Some(v) => AgentId::new(v.trim()).map_err(|e| bad("SAPIX_AGENT_ID", e.to_string()))?,
            None => AgentId::new("local").expect("valid default"),
        };
        let master_seed = var("SAPIX_MASTER_SEED")
            .map(|v| MasterSeed::from_hex(&v).map_err(|e| bad("SAPIX_MASTER_SEED", e.to_string())))
            .transpose()?;
        let key = |name: &'static str| match var(name) {
            Some(v) if v.trim().len() < 16 => {
                Err(bad(name, "must be at least 16 characters".into()))
            }
            v => Ok(v.map(|v| RootKey::new(v.trim()))),
        };
        let root_key = key("SAPIX_ROOT_KEY")?;
        let root_key_next = key("SAPIX_ROOT_KEY_NEXT")?;
        let data_dir =
            PathBuf::from(var("SAPIX_DATA_DIR").unwrap_or_else(|| "./sapix-data".into()));
        let dir = |name: &'static str, default: &str| {
            var(name).map_or_else(|| data_dir.join(default), PathBuf::from)
        };
        let strand_dir = dir("SAPIX_STRAND_DIR", "strand");
        let graph_dir = dir("SAPIX_GRAPH_DIR", "graph");
        let blob_dir = dir("SAPIX_BLOB_DIR", "blobs");
        let bind_addr = var("SAPIX_BIND_ADDR")
            .unwrap_or_else(|| DEFAULT_BIND.into())
            .trim()
            .parse()
            .map_err(|_| {
                bad(
                    "SAPIX_BIND_ADDR",
                    "must be an IP:port such as 0.0.0.0:7475".into(),
                )
            })?;
        let endpoint = match var("SAPIX_ENDPOINT") {
            Some(v) => Some(
                sapix_core::endpoint::endpoint(&v)
                    .map_err(|e| bad("SAPIX_ENDPOINT", format!("{e}")))?,
            ),
            None => None,
        };
        let mesh_timeout = match var("SAPIX_MESH_TIMEOUT_MS") {
            None => std::time::Duration::from_millis(5000),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (1..=600_000).contains(&ms) => std::time::Duration::from_millis(ms),
                _ => {
                    return Err(bad(
                        "SAPIX_MESH_TIMEOUT_MS",
                        "must be a whole number of milliseconds from 1 to 600000".into(),
                    ))
                }
            },
        };
        let (codios_url, codios_api_key, codios_timeout, auth) = auth_from(&var)?;
        let http = http_from(&var)?;
        let tls = tls_from(&var)?;
        Ok(Config {
            http,
            tls,
            codios_url,
            codios_api_key,
            codios_timeout,
            auth,
            mesh_timeout,
            agent_id,
            master_seed,
            root_key,
            root_key_next,
            data_dir,
            strand_dir,
            graph_dir,
            blob_dir,
            bind_addr,
            endpoint,
        })
    }

    /// A one-line description of how writes are authorized, for the start-up log.
    pub fn auth_mode_line(&self) -> String {
        let a = &self.auth;
        let reads = if a.reads_open {
            "; SAPIX_READS_OPEN=true: anyone may read records"
        } else {
            ""
        };
        let line = match &self.codios_url {
            None => "local mode: SAPIX_CODIOS_URL is not set, only the root key may write or \
                     read records"
                .to_string(),
            Some(_) => format!(
                "Codios mode: permits cached {} s, denies {} s, stale permits served up to {} s \
                 when Codios fails{}{}",
                a.policy.permit_ttl.as_secs(),
                a.policy.deny_ttl.as_secs(),
                a.policy.max_stale.as_secs(),
                if a.policy.require_codios {
                    "; SAPIX_REQUIRE_CODIOS=true: never (fail closed)"
                } else {
                    ""
                },
                if a.breaker.enabled {
                    format!(
                        "; circuit breaker on, opens after {} s of continuous failure",
                        a.breaker.open_after.as_secs()
                    )
                } else {
                    String::new()
                }
            ),
        };
        line + reads
    }

    /// The URL this node advertises, given the address it actually bound.
    pub fn endpoint_for(&self, bound: SocketAddr) -> String {
        let scheme = self.scheme();
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"))
    }

    /// `https` when the listener serves TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.serves() {
            "https"
        } else {
            "http"
        }
    }
}

/// A whole number in `range`, or the default when unset; the error names the variable.
fn number_var(
    var: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| ConfigError {
                var: name,
                why: format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
    }
}

/// The inbound connection bounds.
fn http_from(var: &impl Fn(&'static str) -> Option<String>) -> Result<HttpLimits, ConfigError> {
    let d = HttpLimits::default();
    let ms = |name: &'static str, default: Duration| {
        number_var(var, name, default.as_millis() as u64, 100..=3_600_000)
            .map(Duration::from_millis)
    };
    Ok(HttpLimits {
        header_timeout: ms("SAPIX_HTTP_HEADER_TIMEOUT_MS", d.header_timeout)?,
        body_timeout: ms("SAPIX_HTTP_BODY_TIMEOUT_MS", d.body_timeout)?,
        idle_timeout: ms("SAPIX_HTTP_IDLE_TIMEOUT_MS", d.idle_timeout)?,
        max_connections: number_var(
            var,
            "SAPIX_MAX_CONNECTIONS",
            d.max_connections as u64,
            1..=1_000_000,
        )? as usize,
    })
}

type AuthParts = (Option<String>, Option<CodiosApiKey>, Duration, AuthSettings);

/// The Codios and auth-cache variables.
fn auth_from(var: &impl Fn(&'static str) -> Option<String>) -> Result<AuthParts, ConfigError> {
    let bad = |var: &'static str, why: &str| ConfigError {
        var,
        why: why.to_string(),
    };
    let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
        number_var(var, name, default, range)
    };
    let flag = |name: &'static str| match var(name) {
        None => Ok(false),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(bad(name, "must be true or false")),
        },
    };
    let codios_url = match var("SAPIX_CODIOS_URL") {
        Some(v) => {
            let v = v.trim().trim_end_matches('/').to_string();
            CodiosClient::new(&v, None, DEFAULT_TIMEOUT).map_err(|_| {
                bad(
                    "SAPIX_CODIOS_URL",
                    "must be an http:// or https:// URL such as https://codios.internal",
                )
            })?;
            Some(v)
        }
        None => None,
    };
    let codios_api_key = var("SAPIX_CODIOS_API_KEY").map(|k| CodiosApiKey::new(k.trim()));
    let codios_timeout = Duration::from_millis(number(
        "SAPIX_CODIOS_TIMEOUT_MS",
        DEFAULT_TIMEOUT.as_millis() as u64,
        1..=60_000,
    )?);
    let policy = AuthPolicy {
        permit_ttl: Duration::from_secs(number("SAPIX_AUTH_CACHE_TTL_SECS", 5, 0..=86_400)?),
        max_stale: Duration::from_secs(number("SAPIX_AUTH_MAX_STALE_SECS", 300, 0..=604_800)?),
        require_codios: flag("SAPIX_REQUIRE_CODIOS")?,
        ..AuthPolicy::default()
    };
    let breaker = BreakerConfig {
        enabled: flag("SAPIX_AUTH_CIRCUIT_BREAKER")?,
        open_after: Duration::from_secs(number(
            "SAPIX_AUTH_CIRCUIT_OPEN_AFTER_SECS",
            30,
            0..=86_400,
        )?),
        ..BreakerConfig::default()
    };
    breaker
        .validate(policy.require_codios)
        .map_err(|e| bad("SAPIX_AUTH_CIRCUIT_BREAKER", &e.to_string()))?;
    let auth = AuthSettings {
        codios: codios_url.is_some(),
        policy,
        breaker,
        reads_open: flag("SAPIX_READS_OPEN")?,
    };
    Ok((codios_url, codios_api_key, codios_timeout, auth))
}

/// The TLS files and the mutual-TLS switch; pairs go together, and requiring client
/// certificates needs a listener with TLS and a CA to check them against.
fn tls_from(var: &impl Fn(&'static str) -> Option<String>) -> Result<TlsSettings, ConfigError> {
    let bad = |var: &'static str, why: &str| ConfigError {
        var,
        why: why.into(),
    };
    let path = |name| var(name).map(|v| PathBuf::from(v.trim()));
    let tls = TlsSettings {
        cert: path("SAPIX_TLS_CERT"),
        key: path("SAPIX_TLS_KEY"),
        ca: path("SAPIX_TLS_CA"),
        client_cert: path("SAPIX_TLS_CLIENT_CERT"),
        client_key: path("SAPIX_TLS_CLIENT_KEY"),
        require_client_cert: match var("SAPIX_TLS_REQUIRE_CLIENT_CERT") {
            None => false,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(bad(
                        "SAPIX_TLS_REQUIRE_CLIENT_CERT",
                        "must be true or false",
                    ))
                }
            },
        },
    };
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(bad(
            "SAPIX_TLS_KEY",
            "SAPIX_TLS_CERT and SAPIX_TLS_KEY go together",
        ));
    }
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err(bad(
            "SAPIX_TLS_CLIENT_KEY",
            "SAPIX_TLS_CLIENT_CERT and SAPIX_TLS_CLIENT_KEY go together",
        ));
    }
    if tls.require_client_cert && (tls.cert.is_none() || tls.ca.is_none()) {
        return Err(bad(
            "SAPIX_TLS_REQUIRE_CLIENT_CERT",
            "needs SAPIX_TLS_CERT/SAPIX_TLS_KEY (the listener serves TLS) and SAPIX_TLS_CA",
        ));
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn no_env_gives_the_embedded_single_node_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.agent_id.as_str(), "local");
        assert_eq!(c.bind_addr.to_string(), DEFAULT_BIND);
        assert_eq!(c.strand_dir, PathBuf::from("./sapix-data/strand"));
        assert!(c.master_seed.is_none() && c.root_key.is_none());
        assert_eq!(
            c.endpoint_for("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn each_bad_value_names_its_variable_and_not_the_secret() {
        for (var, val) in [
            ("SAPIX_AGENT_ID", "Bad!"),
            ("SAPIX_MASTER_SEED", "xyz-secret"),
            ("SAPIX_BIND_ADDR", "nope"),
            ("SAPIX_ROOT_KEY", "short"),
            ("SAPIX_ROOT_KEY_NEXT", "short"),
            ("SAPIX_ENDPOINT", "ftp://x"),
            ("SAPIX_MESH_TIMEOUT_MS", "0"),
            ("SAPIX_CODIOS_URL", "codios.internal"),
            ("SAPIX_CODIOS_TIMEOUT_MS", "0"),
            ("SAPIX_AUTH_CACHE_TTL_SECS", "five"),
            ("SAPIX_AUTH_MAX_STALE_SECS", "-1"),
            ("SAPIX_REQUIRE_CODIOS", "maybe"),
            ("SAPIX_AUTH_CIRCUIT_BREAKER", "on-secret"),
            ("SAPIX_AUTH_CIRCUIT_OPEN_AFTER_SECS", "1e3"),
            ("SAPIX_READS_OPEN", "public"),
            ("SAPIX_HTTP_HEADER_TIMEOUT_MS", "99"),
            ("SAPIX_HTTP_BODY_TIMEOUT_MS", "soon"),
            ("SAPIX_HTTP_IDLE_TIMEOUT_MS", "3600001"),
            ("SAPIX_MAX_CONNECTIONS", "0"),
        ] {
            let e = parse(&[(var, val)]).unwrap_err();
            assert_eq!(e.var, var);
            assert!(!e.to_string().contains("secret"));
        }
    }

    #[test]
    fn explicit_dirs_override_the_data_dir() {
        let c = parse(&[
            ("SAPIX_DATA_DIR", "/d"),
            ("SAPIX_STRAND_DIR", "/data/strand"),
            ("SAPIX_AGENT_ID", "replica-eu"),
            ("SAPIX_ENDPOINT", "http://replica-region-b:7475/"),
        ])
        .unwrap();
        assert_eq!(c.strand_dir, PathBuf::from("/data/strand"));
        assert_eq!(c.graph_dir, PathBuf::from("/d/graph"));
        assert_eq!(c.endpoint.as_deref(), Some("http://replica-region-b:7475"));
    }

    #[test]
    fn auth_defaults_are_local_mode_with_the_spec_values() {
        let c = parse(&[]).unwrap();
        assert!(c.codios_url.is_none() && !c.auth.codios);
        assert_eq!(c.auth, AuthSettings::default());
        assert_eq!(c.auth.policy.permit_ttl, Duration::from_secs(5));
        assert_eq!(c.auth.policy.deny_ttl, Duration::from_secs(2));
        assert_eq!(c.auth.policy.max_stale, Duration::from_secs(300));
        assert!(!c.auth.policy.require_codios && !c.auth.breaker.enabled);
        assert_eq!(c.auth.breaker.open_after, Duration::from_secs(30));
        assert_eq!(c.codios_timeout, Duration::from_millis(2000));
        assert!(c.auth_mode_line().starts_with("local mode"));
    }

    #[test]
    fn tls_is_off_by_default_and_its_pairs_and_mutual_tls_are_checked() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.tls, TlsSettings::default());
        assert_eq!(
            c.endpoint_for("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9"
        );
        let c = parse(&[
            ("SAPIX_TLS_CERT", "/tls/a.crt"),
            ("SAPIX_TLS_KEY", "/tls/a.key"),
            ("SAPIX_TLS_CA", "/tls/ca.pem"),
            ("SAPIX_TLS_REQUIRE_CLIENT_CERT", "true"),
        ])
        .unwrap();
        assert!(c.tls.serves() && c.tls.require_client_cert);
        assert_eq!(
            c.endpoint_for("127.0.0.1:9".parse().unwrap()),
            "https://127.0.0.1:9"
        );
        for (vars, var) in [
            (&[("SAPIX_TLS_CERT", "/a.crt")][..], "SAPIX_TLS_KEY"),
            (
                &[("SAPIX_TLS_CLIENT_KEY", "/c.key")][..],
                "SAPIX_TLS_CLIENT_KEY",
            ),
            (
                &[
                    ("SAPIX_TLS_REQUIRE_CLIENT_CERT", "true"),
                    ("SAPIX_TLS_CA", "/ca"),
                ][..],
                "SAPIX_TLS_REQUIRE_CLIENT_CERT",
            ),
            (
                &[("SAPIX_TLS_REQUIRE_CLIENT_CERT", "sure")][..],
                "SAPIX_TLS_REQUIRE_CLIENT_CERT",
            ),
        ] {
            assert_eq!(parse(vars).unwrap_err().var, var, "{vars:?}");
        }
    }

    #[test]
    fn http_limits_default_as_documented_and_parse_from_the_env() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_secs(10));
        assert_eq!(c.http.body_timeout, Duration::from_secs(30));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.http.max_connections, 4096);
        let c = parse(&[
            ("SAPIX_HTTP_HEADER_TIMEOUT_MS", "500"),
            ("SAPIX_HTTP_BODY_TIMEOUT_MS", "700"),
            ("SAPIX_HTTP_IDLE_TIMEOUT_MS", "900"),
            ("SAPIX_MAX_CONNECTIONS", "3"),
        ])
        .unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_millis(500));
        assert_eq!(c.http.body_timeout, Duration::from_millis(700));
        assert_eq!(c.http.idle_timeout, Duration::from_millis(900));
        assert_eq!(c.http.max_connections, 3);
    }

    #[test]
    fn reads_are_closed_unless_opened() {
        assert!(!parse(&[]).unwrap().auth.reads_open);
        assert!(
            parse(&[("SAPIX_READS_OPEN", "true")])
                .unwrap()
                .auth
                .reads_open
        );
    }

    #[test]
    fn the_spec_compose_file_parses_into_codios_mode_with_the_breaker() {
        let c = parse(&[
            ("SAPIX_CODIOS_URL", "https://codios-api.midlantics.com"),
            ("SAPIX_CODIOS_API_KEY", "codios_sk_..."),
            ("SAPIX_AUTH_CACHE_TTL_SECS", "5"),
            ("SAPIX_AUTH_CIRCUIT_BREAKER", "true"),
            ("SAPIX_AUTH_CIRCUIT_OPEN_AFTER_SECS", "30"),
        ])
        .unwrap();
        assert!(c.auth.codios && c.auth.breaker.enabled);
        assert_eq!(
            c.codios_url.as_deref(),
            Some("https://codios-api.midlantics.com")
        );
        assert!(
            !format!("{c:?}").contains("codios_sk_"),
            "the API key is redacted"
        );
        assert!(c.auth_mode_line().starts_with("Codios mode"));
    }

    #[test]
    fn breaker_with_require_codios_is_refused_with_a_message_naming_both() {
        let e = parse(&[
            ("SAPIX_CODIOS_URL", "http://127.0.0.1:7575"),
            ("SAPIX_REQUIRE_CODIOS", "true"),
            ("SAPIX_AUTH_CIRCUIT_BREAKER", "true"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "SAPIX_AUTH_CIRCUIT_BREAKER");
        assert!(e.to_string().contains("SAPIX_REQUIRE_CODIOS"), "{e}");
    }
}
