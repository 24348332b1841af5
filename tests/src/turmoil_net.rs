//! The two pieces that put the real server and the real HTTP client on turmoil's network: a
//! [`Connector`] over `turmoil::net::TcpStream` for the runtime's one HTTP client, and an
//! `axum::serve::Listener` over `turmoil::net::TcpListener` for the real router. Both hand out
//! [`Traced`] streams, whose traffic a determinism check can record (see [`trace`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::rt::TokioIo;
use sapix_runtime::http::Connector;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Connects to a URI's host (a turmoil host name) and port over turmoil's TCP.
pub fn connector() -> Connector {
    Connector::new(|uri: Uri| async move {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::other("URI without a host"))?
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let stream = turmoil::net::TcpStream::connect((host, port)).await?;
        Ok(TokioIo::new(Traced::new(stream)))
    })
}

/// A turmoil listener that axum can serve on.
pub struct Listener(pub turmoil::net::TcpListener);

impl Listener {
    /// Binds `0.0.0.0:port` on the current turmoil host.
    pub async fn bind(port: u16) -> io::Result<Self> {
        Ok(Listener(
            turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?,
        ))
    }
}

impl axum::serve::Listener for Listener {
    type Io = Traced;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => return (Traced::new(stream), addr),
                // As axum's own TCP listener does: back off instead of spinning on an error.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The current thread's trace: a simulation and all its hosts run on one thread, so a trace
/// started on it holds that simulation's events only. Recording is off unless started.
pub mod trace {
    use std::cell::RefCell;

    thread_local! {
        static TRACE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    /// Starts recording on this thread, dropping anything recorded before.
    pub fn start() {
        TRACE.with(|t| *t.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns what was recorded.
    pub fn take() -> Vec<String> {
        TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default()
    }

    /// Records the line `line` makes, if this thread is recording.
    pub fn record(line: impl FnOnce() -> String) {
        TRACE.with(|t| {
            if let Some(lines) = t.borrow_mut().as_mut() {
                lines.push(line());
            }
        });
    }

    /// The current host's simulated time in µs (0 outside a host).
    pub(crate) fn now_us() -> u128 {
        turmoil::sim_elapsed().map_or(0, |d| d.as_micros())
    }
}

/// A turmoil TCP stream that records its opening, every read, write and shutdown, and its drop
/// in the thread's [`trace`].
pub struct Traced {
    inner: turmoil::net::TcpStream,
    /// `local>peer`.
    tag: String,
}

impl Traced {
    fn new(inner: turmoil::net::TcpStream) -> Self {
        let addr = |a: io::Result<SocketAddr>| a.map_or_else(|_| "?".into(), |a| a.to_string());
        let tag = format!("{}>{}", addr(inner.local_addr()), addr(inner.peer_addr()));
        trace::record(|| format!("{} {tag} open", trace::now_us()));
        Traced { inner, tag }
    }

    fn record(&self, what: &str, result: Option<&io::Error>, bytes: &[u8]) {
        trace::record(|| {
            format!(
                "{} {} {what} {:?} {:?}",
                trace::now_us(),
                self.tag,
                result.map(io::Error::kind),
                without_date(bytes)
            )
        });
    }
}

/// `bytes` as text, with the value of hyper's `date:` header (the real wall clock) blanked.
fn without_date(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).into_owned();
    match text.find("\r\ndate: ") {
        Some(at) => {
            let value = at + "\r\ndate: ".len();
            let end = text[value..].find("\r\n").map_or(text.len(), |e| value + e);
            format!("{}-{}", &text[..value], &text[end..])
        }
        None => text,
    }
}

impl AsyncRead for Traced {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(result) = &polled {
            self.record("R", result.as_ref().err(), &buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Traced {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(result) = &polled {
            let written = *result.as_ref().unwrap_or(&0);
            self.record("W", result.as_ref().err(), &buf[..written]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        if let Poll::Ready(result) = &polled {
            self.record("shutdown", result.as_ref().err(), &[]);
        }
        polled
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        trace::record(|| format!("{} {} drop", trace::now_us(), self.tag));
    }
}
