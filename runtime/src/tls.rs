//! TLS between regions: the listener's certificate, the CA peers (and, with mutual TLS,
//! clients) are verified against, and the client certificate this node presents on its mesh
//! calls — loaded from PEM files and reloaded when any of them changes, without a restart.
//!
//! A reload that fails (a half-written file, a key that does not match) keeps the previous
//! configuration and is logged; the next change is tried again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Where the PEM files are (`SAPIX_TLS_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `SAPIX_TLS_CERT`: this node's certificate chain; with the key, the node serves HTTPS.
    pub cert: Option<PathBuf>,
    /// `SAPIX_TLS_KEY`: its private key.
    pub key: Option<PathBuf>,
    /// `SAPIX_TLS_CA`: the CA `https://` peers and client certificates are verified against
    /// (unset: the public web roots for peers, and no client certificates asked for).
    pub ca: Option<PathBuf>,
    /// `SAPIX_TLS_CLIENT_CERT`: the certificate this node presents on its mesh calls.
    pub client_cert: Option<PathBuf>,
    /// `SAPIX_TLS_CLIENT_KEY`: its private key.
    pub client_key: Option<PathBuf>,
    /// `SAPIX_TLS_REQUIRE_CLIENT_CERT`: mesh and admin routes refuse a request whose
    /// connection presented no certificate signed by the CA.
    pub require_client_cert: bool,
}

impl TlsSettings {
    /// Whether the listener serves HTTPS.
    pub fn serves(&self) -> bool {
        self.cert.is_some()
    }

    fn files(&self) -> Vec<&Path> {
        [
            &self.cert,
            &self.key,
            &self.ca,
            &self.client_cert,
            &self.client_key,
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect()
    }
}

/// The loaded configurations, replaced whole on a reload.
#[derive(Debug)]
pub struct Tls {
    settings: TlsSettings,
    server: RwLock<Option<Arc<ServerConfig>>>,
    client: RwLock<Arc<ClientConfig>>,
    stamps: RwLock<Vec<Option<SystemTime>>>,
}

impl Tls {
    /// Loads every file `settings` names; the error says which and why.
    pub fn load(settings: TlsSettings) -> Result<Arc<Tls>, String> {
        let (server, client) = build(&settings)?;
        let stamps = stamps(&settings);
        Ok(Arc::new(Tls {
            settings,
            server: RwLock::new(server),
            client: RwLock::new(client),
            stamps: RwLock::new(stamps),
        }))
    }

    /// The listener's configuration now, if it serves HTTPS.
    pub fn server(&self) -> Option<Arc<ServerConfig>> {
        self.server.read().expect("tls lock").clone()
    }

    /// The mesh client's configuration now.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.read().expect("tls lock").clone()
    }

    /// The settings it was loaded from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Reloads if any file changed since the last load. `Ok(true)` if it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamps(&self.settings);
        if *self.stamps.read().expect("tls lock") == now {
            return Ok(false);
        }
        // Remember the change even if it fails, so a broken file is reported once.
        *self.stamps.write().expect("tls lock") = now;
        let (server, client) = build(&self.settings)?;
        *self.server.write().expect("tls lock") = server;
        *self.client.write().expect("tls lock") = client;
        Ok(true)
    }
}

fn stamps(settings: &TlsSettings) -> Vec<Option<SystemTime>> {
    settings
        .files()
        .into_iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

type Configs = (Option<Arc<ServerConfig>>, Arc<ClientConfig>);

fn build(s: &TlsSettings) -> Result<Configs, String> {
    let roots = match &s.ca {
        Some(ca) => Some(roots(ca)?),
        None => None,
    };
    let server = match (&s.cert, &s.key) {
        (Some(cert), Some(key)) => {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            let builder = match &roots {
                // Every client is asked for a certificate; none is required at this layer
                // (record routes stay open to ordinary clients), but one that is presented
                // must be signed by the CA.
                Some(roots) => builder.with_client_cert_verifier(
                    WebPkiClientVerifier::builder_with_provider(
                        Arc::new(roots.clone()),
                        provider(),
                    )
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("SAPIX_TLS_CA: {e}"))?,
                ),
                None => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(
                    chain(cert, "SAPIX_TLS_CERT")?,
                    private_key(key, "SAPIX_TLS_KEY")?,
                )
                .map_err(|e| format!("SAPIX_TLS_CERT/SAPIX_TLS_KEY: {e}"))?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        }
        (None, None) => None,
        _ => return Err("SAPIX_TLS_CERT and SAPIX_TLS_KEY go together".into()),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = builder.with_root_certificates(roots.unwrap_or_else(|| RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }));
    let client = match (&s.client_cert, &s.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                chain(cert, "SAPIX_TLS_CLIENT_CERT")?,
                private_key(key, "SAPIX_TLS_CLIENT_KEY")?,
            )
            .map_err(|e| format!("SAPIX_TLS_CLIENT_CERT/SAPIX_TLS_CLIENT_KEY: {e}"))?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("SAPIX_TLS_CLIENT_CERT and SAPIX_TLS_CLIENT_KEY go together".into()),
    };
    // ALPN is left to the https connector, which sets it from the HTTP versions it speaks.
    Ok((server, Arc::new(client)))
}

fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in chain(path, "SAPIX_TLS_CA")? {
        roots
            .add(cert)
            .map_err(|e| format!("SAPIX_TLS_CA {}: {e}", path.display()))?;
    }
    Ok(roots)
}

fn chain(path: &Path, var: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{var} {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{var} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{var} {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

fn private_key(path: &Path, var: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{var} {}: {e}", path.display()))
}
