//! A connection's byte stream with the listener's deadlines on it.
//!
//! A connection is in one of three phases, kept in its [`ConnClock`]:
//! - `Head`: waiting for a request head, since the accept or since the first byte of a later
//!   request; it must be whole within the header timeout, or the client gets 408 and is closed.
//! - `Request`: a request is being served, from the service call until its answer is ready;
//!   no deadline here (a CP write may wait on peers, a divide copies for
//!   minutes; the body's own timeout is the handler's).
//! - `Idle`: kept alive between requests, with no byte of the next one yet; closed silently
//!   after the idle timeout.
//!
//! The deadline is a timer polled from `poll_read`, since hyper always has a read pending in
//! `Head` and `Idle`. An expiry reads as EOF, so hyper winds the connection down by itself.
//! hyper answers a head it cannot parse itself, with a bodyless 400, 414 or 431; such a write
//! is swallowed and the API's JSON answer with the same status is kept to be written at close
//! ([`TimedIo::into_parts`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{canned, HttpLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head { since: Instant, got_bytes: bool },
    Request { in_flight: u32 },
    Idle { since: Instant },
}

/// Why a connection's deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// A request head began (or the connection opened) and did not complete in time; the
    /// flag says whether any byte of it came.
    Head { got_bytes: bool },
    /// Nothing happened for the idle timeout.
    Idle,
}

/// The phase of one connection, shared by its stream and its service.
#[derive(Debug)]
pub(super) struct ConnClock {
    phase: Mutex<Phase>,
}

impl ConnClock {
    /// A connection just accepted: its first head is due within the header timeout.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(ConnClock {
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
                got_bytes: false,
            }),
        })
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // Nothing can panic while the lock is held; a poisoned lock still holds a valid phase.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request reached the service; the phase is `Request` until the guard is dropped.
    pub(super) fn request_started(self: &Arc<Self>) -> InFlight {
        let mut p = self.phase();
        *p = match *p {
            Phase::Request { in_flight } => Phase::Request {
                in_flight: in_flight + 1,
            },
            _ => Phase::Request { in_flight: 1 },
        };
        InFlight(self.clone())
    }

    fn bytes_arrived(&self, now: Instant) {
        let mut p = self.phase();
        match *p {
            Phase::Idle { .. } => {
                *p = Phase::Head {
                    since: now,
                    got_bytes: true,
                }
            }
            Phase::Head {
                since,
                got_bytes: false,
            } => {
                *p = Phase::Head {
                    since,
                    got_bytes: true,
                }
            }
            _ => {}
        }
    }

    fn serving(&self) -> bool {
        matches!(*self.phase(), Phase::Request { .. })
    }

    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, Expiry)> {
        match *self.phase() {
            Phase::Head { since, got_bytes } => {
                Some((since + limits.header_timeout, Expiry::Head { got_bytes }))
            }
            Phase::Idle { since } => Some((since + limits.idle_timeout, Expiry::Idle)),
            Phase::Request { .. } => None,
        }
    }
}

/// Held while a request is served.
pub(super) struct InFlight(Arc<ConnClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut p = self.0.phase();
        if let Phase::Request { in_flight } = *p {
            *p = if in_flight > 1 {
                Phase::Request {
                    in_flight: in_flight - 1,
                }
            } else {
                Phase::Idle {
                    since: Instant::now(),
                }
            };
        }
    }
}

/// A stream whose reads end (as EOF) when the connection's deadline passes.
pub(super) struct TimedIo<S> {
    inner: S,
    clock: Arc<ConnClock>,
    limits: HttpLimits,
    timer: Pin<Box<Sleep>>,
    armed: Instant,
    /// The deadline passed, or hyper refused the head: reads end, hyper's writes are dropped.
    closing: bool,
    /// An answer of the listener's own, to write before closing.
    unsent: Vec<u8>,
}

impl<S> TimedIo<S> {
    /// Wraps a freshly accepted stream.
    pub(super) fn new(inner: S, clock: Arc<ConnClock>, limits: HttpLimits) -> Self {
        let armed = Instant::now() + limits.header_timeout;
        TimedIo {
            inner,
            clock,
            limits,
            timer: Box::pin(tokio::time::sleep_until(armed)),
            armed,
            closing: false,
            unsent: Vec::new(),
        }
    }

    /// The stream, and the answer still to write on it before it is closed.
    pub(super) fn into_parts(self) -> (S, Vec<u8>) {
        (self.inner, self.unsent)
    }

    /// Whether the deadline has passed; arms the timer for the current one otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<Expiry> {
        let (deadline, why) = self.clock.deadline(&self.limits)?;
        if deadline != self.armed {
            self.armed = deadline;
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx).is_ready().then_some(why)
    }

    /// Whether this write is hyper's own refusal of a head; if so it is kept as our JSON
    /// answer instead, and the connection is closing.
    fn is_refusal(&mut self, head: &[u8]) -> bool {
        if !self.closing && !self.clock.serving() && canned::is_refusal(head) {
            self.unsent = canned::for_refusal(head);
            self.closing = true;
        }
        self.closing
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closing {
            return Poll::Ready(Ok(()));
        }
        if let Some(why) = this.expired(cx) {
            this.closing = true;
            if why == (Expiry::Head { got_bytes: true }) {
                this.unsent = canned::HEADER_TIMEOUT.to_vec();
            }
            tracing::debug!(?why, "closing a connection past its deadline");
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.bytes_arrived(Instant::now());
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.is_refusal(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        if this.is_refusal(first) {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..HttpLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_completes_is_answered_408_at_the_header_timeout() {
        let (client, server) = tokio::io::duplex(1024);
        let clock = ConnClock::new();
        let mut io = TimedIo::new(server, clock, limits());
        let mut client = client;
        client
            .write_all(b"POST /v1/records HTTP/1.1\r\nHo")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(n, 29, "the bytes sent so far are read");
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(n, 0, "then the deadline reads as EOF");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let (_, unsent) = io.into_parts();
        assert!(unsent.starts_with(b"HTTP/1.1 408 "));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_at_the_header_timeout_without_an_answer() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut io = TimedIo::new(server, ConnClock::new(), limits());
        let started = Instant::now();
        assert_eq!(io.read(&mut [0u8; 8]).await.unwrap(), 0);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(io.into_parts().1.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_while_serving_then_the_idle_timeout_counts_from_the_answer() {
        let (_client, server) = tokio::io::duplex(1024);
        let clock = ConnClock::new();
        let mut io = TimedIo::new(server, clock.clone(), limits());
        let in_flight = clock.request_started();
        // A request may take far longer than any timeout (a CP write, a divide).
        let read = tokio::time::timeout(Duration::from_secs(3600), io.read(&mut [0u8; 8])).await;
        assert!(read.is_err(), "no deadline while a request is served");
        drop(in_flight);
        let idle_from = Instant::now();
        assert_eq!(io.read(&mut [0u8; 8]).await.unwrap(), 0);
        assert_eq!(idle_from.elapsed(), Duration::from_secs(60));
        assert!(
            io.into_parts().1.is_empty(),
            "an idle close answers nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_outside_a_request_becomes_the_json_refusal_written_at_close() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut io = TimedIo::new(server, ConnClock::new(), limits());
        let hyper_says =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(io.write(hyper_says).await.unwrap(), hyper_says.len());
        io.flush().await.unwrap();
        let unsent = io.into_parts().1;
        let text = String::from_utf8(unsent).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.ends_with("\"error\":\"header_too_large\",\"message\":\"the request head is over 65536 bytes or 100 fields\"}"));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_while_serving_pass_through() {
        let (mut client, server) = tokio::io::duplex(1024);
        let clock = ConnClock::new();
        let mut io = TimedIo::new(server, clock.clone(), limits());
        let _in_flight = clock.request_started();
        io.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        let mut got = [0u8; 19];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"HTTP/1.1 200 OK\r\n\r\n");
        assert!(io.into_parts().1.is_empty());
    }

    #[test]
    fn a_byte_after_idle_starts_a_head_deadline_from_that_byte() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let clock = ConnClock::new();
            drop(clock.request_started());
            tokio::time::advance(Duration::from_secs(30)).await;
            let at = Instant::now();
            clock.bytes_arrived(at);
            let (deadline, why) = clock.deadline(&limits()).unwrap();
            assert_eq!(deadline, at + Duration::from_secs(10));
            assert_eq!(why, Expiry::Head { got_bytes: true });
        });
    }
}
