//! Lingering close, as nginx does it: finish writing the answer, send FIN, then read and
//! discard what the client still sends for a bounded time before closing.
//!
//! Why: closing a socket whose receive buffer holds unread bytes makes the kernel send RST,
//! and a client still writing a body it was told is too large (or one that writes everything
//! before reading) then loses the answer sitting in its own receive buffer. Draining until the
//! client closes, or the bounds below pass, lets the answer arrive.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Longest time spent writing what is left of an answer.
const WRITE_WITHIN: Duration = Duration::from_secs(2);
/// Longest lingering after FIN.
const LINGER_TOTAL: Duration = Duration::from_secs(5);
/// Lingering ends once the client sends nothing for this long.
const LINGER_QUIET: Duration = Duration::from_secs(1);
/// Most bytes discarded while lingering.
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Writes `unsent` (an answer the listener wrote itself; may be empty), half-closes, drains
/// within the bounds, and closes.
pub(super) async fn close(mut stream: TcpStream, unsent: Vec<u8>) {
    let written = tokio::time::timeout(WRITE_WITHIN, async {
        stream.write_all(&unsent).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let until = Instant::now() + LINGER_TOTAL;
    let mut scratch = vec![0u8; 64 * 1024];
    let mut drained = 0usize;
    while drained < LINGER_BYTES {
        let wait = until
            .saturating_duration_since(Instant::now())
            .min(LINGER_QUIET);
        match tokio::time::timeout(wait, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            // EOF, an error, or quiet for too long: the client is done.
            _ => break,
        }
    }
}

/// Answers a connection the listener will not serve with `answer`, then closes it lingering.
pub(super) async fn refuse(stream: TcpStream, answer: &[u8]) {
    close(stream, answer.to_vec()).await;
}
