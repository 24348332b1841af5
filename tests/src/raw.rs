//! HTTP/1.1 by hand on a raw socket, for requests no well-behaved client sends: declared
//! lengths that lie, heads that never finish, bodies written whole before the answer is read.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// How long a raw exchange waits for the server, per read.
pub const READ_WITHIN: Duration = Duration::from_secs(30);

/// An answer read off a raw socket.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as the API's JSON error, checked to have the `error` code `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "answer: {self:?}");
        let json: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"));
        assert_eq!(json["error"], code, "answer: {json}");
        assert!(json["message"].is_string(), "answer: {json}");
        json
    }
}

/// A connection with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(READ_WITHIN)).unwrap();
    s.set_write_timeout(Some(READ_WITHIN)).unwrap();
    s
}

/// Reads one answer: until its body is complete, the server closes, or the read times out
/// (then `None` if nothing came).
pub fn read_answer(s: &mut TcpStream) -> Option<RawAnswer> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(a) = parse(&raw) {
            return Some(a);
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("reading an answer: {e} (after {} bytes)", raw.len()),
        }
    }
    parse(&raw)
}

/// Whether the server has closed the connection (reads EOF, or a reset) within `within`.
pub fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Writes all of `request` before reading anything, as a client that never reads early
/// does, then reads the answer.
pub fn send_whole_then_read(addr: SocketAddr, request: &[u8]) -> RawAnswer {
    let mut s = connect(addr);
    s.write_all(request)
        .expect("the server drains what it will not read");
    read_answer(&mut s).expect("an answer after the whole request was sent")
}

fn parse(raw: &[u8]) -> Option<RawAnswer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body = raw.get(end + 4..end + 4 + len)?.to_vec();
    Some(RawAnswer {
        status,
        headers,
        body,
    })
}

/// Raises this process's open-files soft limit to its hard limit (tests that hold thousands
/// of connections).
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the calls only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
