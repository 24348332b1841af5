//! The HTTP/1 listener: an accept loop with a connection cap, and per connection hyper with
//! the header, idle and body bounds of DESIGN §7.
//!
//! What it guarantees: no connection holds a socket for longer than its header timeout
//! without sending a whole request head, or its idle timeout between requests; at most
//! `max_connections` are served at once, and a connection past the cap is answered 503 with
//! `Retry-After` instead of waiting in the kernel's backlog; every connection ends with a
//! lingering close, so a client that wrote a whole body before reading still gets the 413 (or
//! any early answer) instead of a reset. Body read timeouts are enforced where bodies are read
//! (`api::body`), since only the handler knows it wants one.
//!
//! With TLS (`SAPIX_TLS_CERT`), each connection is a TLS handshake first, bounded by the header
//! timeout, under the configuration current at accept time (files are reloaded on change); a
//! client certificate the CA signed rides on every request of its connection as [`ClientCert`].

mod canned;
mod linger;
mod timed_io;

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use sapix_runtime::tls::Tls;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use timed_io::{ConnClock, TimedIo};

/// The bounds on every inbound connection (env `SAPIX_HTTP_*`, `SAPIX_MAX_CONNECTIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From accepting a connection, or from the first byte of a later request, until the whole
    /// request head has arrived (`SAPIX_HTTP_HEADER_TIMEOUT_MS`).
    pub header_timeout: Duration,
    /// For a handler to receive a whole request body (`SAPIX_HTTP_BODY_TIMEOUT_MS`).
    pub body_timeout: Duration,
    /// A kept-alive connection with no request in flight and no byte sent
    /// (`SAPIX_HTTP_IDLE_TIMEOUT_MS`).
    pub idle_timeout: Duration,
    /// Connections served at once (`SAPIX_MAX_CONNECTIONS`).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            // Longer than the mesh client's 30 s pool idle time, so a peer never reuses a
            // connection this side is closing.
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// Largest request head (request line and headers); past it the answer is 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest read buffer hyper keeps per connection: bounds memory per slow client.
const MAX_BUF_BYTES: usize = 128 * 1024;
/// Answers to connections past the cap that may be in progress at once; past it, such a
/// connection is closed without one (a flood must not turn the refusals into the new leak).
const MAX_REFUSING: usize = 1024;
/// How long a shutdown waits for connections to finish their requests.
const DRAIN_WITHIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish the request it is serving, and returns (after at most [`DRAIN_WITHIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let app = app.clone();
                let stop = stop_rx.clone();
                let tls = tls.as_ref().and_then(|t| t.server());
                tokio::spawn(async move {
                    match tls {
                        None => serve_plain(stream, app, limits, stop).await,
                        Some(config) => serve_tls(stream, config, app, limits, stop).await,
                    }
                    drop(slot);
                });
            }
            Err(_) => match refusing.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(async move {
                        linger::refuse(stream, canned::OVER_CAPACITY).await;
                        drop(permit);
                    });
                }
                Err(_) => drop(stream),
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_WITHIN, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = limits.max_connections - slots.available_permits(),
            "shutdown: connections still open after {} s; closing them",
            DRAIN_WITHIN.as_secs()
        );
    }
}

/// A failed accept: out of file descriptors pauses accepting briefly (the connections already
/// open keep being served); anything else is one client's problem.
async fn accept_failed(e: &std::io::Error) {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            tracing::warn!(error = %e, "accept failed: out of resources; pausing 100 ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        _ => tracing::debug!(error = %e, "accept failed"),
    }
}

/// A client certificate presented on this request's connection and verified against
/// `SAPIX_TLS_CA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Its subject (`CN=operator, O=…`), or `(unparsed)`.
    pub subject: String,
    /// `blake3:` and the first 16 hex digits of the BLAKE3 hash of its DER.
    pub fingerprint: String,
}

impl ClientCert {
    fn of(der: &[u8]) -> ClientCert {
        let subject = x509_parser::parse_x509_certificate(der)
            .map(|(_, cert)| cert.subject().to_string())
            .unwrap_or_else(|_| "(unparsed)".into());
        ClientCert {
            subject,
            fingerprint: format!("blake3:{}", &blake3::hash(der).to_hex()[..16]),
        }
    }
}

/// One plain connection, from accept to lingering close.
async fn serve_plain(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    stop: watch::Receiver<bool>,
) {
    let (stream, unsent) = serve_connection(stream, app, limits, stop, None).await;
    linger::close(stream, unsent).await;
}

/// One TLS connection: the handshake within the header timeout, HTTP, then close_notify and
/// a lingering close of the socket.
async fn serve_tls(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    app: Router,
    limits: HttpLimits,
    stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!("TLS handshake timed out"),
    };
    let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let peer = cert.map(|der| ClientCert::of(der));
    let (mut tls, _) = serve_connection(tls, app, limits, stop, peer).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
    let (stream, _) = tls.into_inner();
    linger::close(stream, Vec::new()).await;
}

/// HTTP/1 on one connection until it ends; gives back the stream and any bytes read but not
/// used, for the close.
async fn serve_connection<S>(
    stream: S,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    peer: Option<ClientCert>,
) -> (S, Vec<u8>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = ConnClock::new();
    let io = TimedIo::new(stream, clock.clone(), limits);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_BUF_BYTES);
    let mut conn = builder.serve_connection(TokioIo::new(io), Svc { app, clock, peer });
    let mut stopping = pin!(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let mut graceful = false;
    let done = poll_fn(|cx| {
        if !graceful && stopping.as_mut().poll(cx).is_ready() {
            graceful = true;
            Pin::new(&mut conn).graceful_shutdown();
        }
        conn.poll_without_shutdown(cx)
    })
    .await;
    if let Err(e) = done {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    let io = conn.into_parts().io.into_inner();
    io.into_parts()
}

/// The router as hyper's service, telling the connection's clock when a request is in flight.
struct Svc {
    app: Router,
    clock: Arc<ConnClock>,
    peer: Option<ClientCert>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Svc {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self.clock.request_started();
        let app = self.app.clone();
        let mut req = req.map(Body::new);
        if let Some(cert) = &self.peer {
            req.extensions_mut().insert(cert.clone());
        }
        Box::pin(async move {
            let answer = app.oneshot(req).await;
            drop(in_flight);
            answer
        })
    }
}
