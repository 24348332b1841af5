//! The runtime's one HTTP client, shared by the mesh and the Codios clients.
//!
//! It is hyper-util's pooled client over a [`Connector`]: production connects with tokio TCP
//! (and TLS for `https://`), a simulation passes a connector over its own sockets. Everything
//! above the socket — request building, the timeout on every call, the body-size limit,
//! status and error mapping — is this one code path whichever connector is used.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use sapix_core::node::Failure;

/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// A byte stream hyper can speak HTTP over.
pub trait Io: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static {}
impl<T: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static> Io for T {}

/// A connection made by a [`Connector`], whatever its transport.
pub struct BoxIo(Box<dyn Io>);

impl hyper::rt::Read for BoxIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for BoxIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl Connection for BoxIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<BoxIo>> + Send>>;

/// Opens a connection to a URI's host and port: the one piece that differs between
/// production and simulation.
#[derive(Clone)]
pub struct Connector(Arc<dyn Fn(Uri) -> ConnectFuture + Send + Sync>);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    /// A connector from a function that connects to a URI.
    pub fn new<F, Fut, T>(connect: F) -> Self
    where
        F: Fn(Uri) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
        T: Io,
    {
        Connector(Arc::new(move |uri| {
            let fut = connect(uri);
            Box::pin(async move { Ok(BoxIo(Box::new(fut.await?))) })
        }))
    }

    /// Real TCP, with TLS for `https://` URIs as `tls` says now (its CA, its client
    /// certificate): a reload applies to every connection opened after it.
    pub fn tcp_with_tls(tls: Arc<crate::tls::Tls>) -> Self {
        Connector::new(move |uri| {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            let mut https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*tls.client()).clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            async move {
                tower_service::Service::call(&mut https, uri)
                    .await
                    .map_err(io::Error::other)
            }
        })
    }

    /// Real TCP, with TLS (Mozilla's roots, ring) for `https://` URIs.
    pub fn tcp() -> Self {
        let mut http = HttpConnector::new();
        // TLS is layered on top by the https connector, which needs `https://` passed through.
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("ring supports the safe default protocol versions")
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Connector::new(move |uri| {
            let mut https = https.clone();
            async move {
                tower_service::Service::call(&mut https, uri)
                    .await
                    .map_err(io::Error::other)
            }
        })
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = BoxIo;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> ConnectFuture {
        (self.0)(uri)
    }
}

/// Why a call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The call (connect, send and the whole answer) took longer than its timeout.
    #[error("timed out")]
    TimedOut,
    /// No connection could be made; why, in the innermost error's words (a refused port, a
    /// certificate the CA did not sign, an expired one).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The answer's body is larger than the call allows.
    #[error("answer over {0} bytes")]
    TooLarge(usize),
    /// The request could not be built (a bad URL).
    #[error("bad request URL: {0}")]
    BadUrl(String),
    /// The connection broke or the answer was not HTTP.
    #[error("{0}")]
    Transport(String),
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Failure {
        match e {
            HttpError::TimedOut => Failure::TimedOut,
            HttpError::Connect(why) => Failure::Unreachable(why),
            HttpError::TooLarge(limit) => Failure::TooLarge { limit },
            HttpError::BadUrl(why) => Failure::NotSent(format!("bad request URL: {why}")),
            HttpError::Transport(why) => Failure::Broken(why),
        }
    }
}

/// A complete answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body, whole.
    pub body: Bytes,
}

/// One request: method, URL, optional bearer token and JSON body.
#[derive(Debug)]
pub struct Call<'a> {
    method: Method,
    url: String,
    bearer: Option<&'a str>,
    json: Option<Vec<u8>>,
    max_body: usize,
}

impl<'a> Call<'a> {
    /// A `GET` of `url`, reading at most `max_body` bytes of answer.
    pub fn get(url: impl Into<String>, max_body: usize) -> Self {
        Call {
            method: Method::GET,
            url: url.into(),
            bearer: None,
            json: None,
            max_body,
        }
    }

    /// A `POST` of `body` as JSON to `url`, reading at most `max_body` bytes of answer.
    pub fn post_json<T: serde::Serialize>(
        url: impl Into<String>,
        body: &T,
        max_body: usize,
    ) -> Self {
        Call {
            method: Method::POST,
            url: url.into(),
            bearer: None,
            json: Some(serde_json::to_vec(body).expect("request bodies serialize")),
            max_body,
        }
    }

    /// A `POST` of `json` (already encoded) to `url`, reading at most `max_body` bytes of
    /// answer.
    pub fn post_json_bytes(url: impl Into<String>, json: Vec<u8>, max_body: usize) -> Self {
        Call {
            method: Method::POST,
            url: url.into(),
            bearer: None,
            json: Some(json),
            max_body,
        }
    }

    /// Sends `token` as `Authorization: Bearer`.
    pub fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }
}

/// The hyper-util client (and connection pool) of one origin.
type OriginClient = Client<Connector, Full<Bytes>>;

/// A pooled HTTP/1 client whose every call is bounded by one timeout.
///
/// It keeps one hyper-util client (one connection pool) per origin. hyper-util keeps a pool's
/// connections in `HashMap`s keyed by origin, whose iteration order is random per process: a
/// pool holding several origins closes its idle connections (on expiry or when dropped) in a
/// random order. With one origin per pool, the order in which connections are opened, reused
/// and closed is a function of the calls alone, which a deterministic simulation needs.
/// Pooling is per origin either way, so this changes nothing else.
#[derive(Clone, Debug)]
pub struct HttpClient {
    connector: Connector,
    clients: Arc<Mutex<BTreeMap<String, OriginClient>>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client over `connector` that gives up on a connect after `connect_timeout` and on any
    /// whole call after `timeout`.
    pub fn new(connector: Connector, timeout: Duration, connect_timeout: Duration) -> Self {
        let bounded = Connector(Arc::new(move |uri| {
            let connect = (connector.0)(uri);
            Box::pin(async move {
                match tokio::time::timeout(connect_timeout, connect).await {
                    Ok(io) => io,
                    Err(_) => Err(io::ErrorKind::TimedOut.into()),
                }
            })
        }));
        HttpClient {
            connector: bounded,
            clients: Arc::default(),
            timeout,
        }
    }

    /// The client (and pool) of `uri`'s origin, made on first use.
    fn client_for(&self, uri: &Uri) -> OriginClient {
        let origin = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map_or("", |a| a.as_str())
        );
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(origin)
            .or_insert_with(|| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(POOL_IDLE)
                    .pool_timer(TokioTimer::new())
                    .build(self.connector.clone())
            })
            .clone()
    }

    /// Sends `call` and reads the whole answer, within the timeout.
    pub async fn send(&self, call: Call<'_>) -> Result<Answer, HttpError> {
        let uri: Uri = call
            .url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| HttpError::BadUrl(e.to_string()))?;
        let client = self.client_for(&uri);
        let mut req = Request::builder().method(call.method).uri(uri);
        if let Some(token) = call.bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match call.json {
            Some(json) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| HttpError::BadUrl(e.to_string()))?;
        let max_body = call.max_body;
        let exchange = async {
            let resp = client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    connect_error(&e)
                } else {
                    HttpError::Transport(e.to_string())
                }
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge(max_body)
                    } else {
                        HttpError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(HttpError::TimedOut))
    }
}

/// A connect that timed out is reported as a timeout, as any slow call is; any other failure
/// with the innermost cause (io errors wrap theirs where `source` does not reach).
fn connect_error(e: &hyper_util::client::legacy::Error) -> HttpError {
    let mut innermost = e.to_string();
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    for _ in 0..16 {
        let Some(s) = next else { break };
        innermost = s.to_string();
        next = match s.downcast_ref::<io::Error>() {
            Some(io) if io.kind() == io::ErrorKind::TimedOut => return HttpError::TimedOut,
            Some(io) => io.get_ref().map(|inner| inner as _).or_else(|| s.source()),
            None => s.source(),
        };
    }
    HttpError::Connect(innermost)
}
