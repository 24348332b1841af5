//! A small blocking HTTP client for one agent, with a timeout on every call, and the
//! contract's typed answers (`Written`, error bodies, export pages).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

use crate::strand::{ExportPage, ExportedBlock};

/// Timeout for one whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Timeout for establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest export page the contract allows.
pub const MAX_EXPORT_LIMIT: u64 = 1000;

/// Which `Authorization` header a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// `Bearer <root key>`.
    Root,
    /// No header.
    None,
    /// `Bearer <token>`.
    Bearer(&'a str),
}

/// A client for one agent's base URL.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    root_key: String,
    client: Client,
}

/// A response: status and body text.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body as text.
    pub text: String,
}

/// The acknowledgement of a record write (`201`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Hex BLAKE3 hash of the block.
    pub hash: String,
    /// The writing agent's id.
    pub author: String,
    /// Position in the author's chain.
    pub seq: u64,
    /// Local strand offset.
    pub offset: u64,
}

impl Reply {
    /// The body as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status, self.text
            )
        })
    }

    /// Asserts the status, showing the body if it differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Reply {
        assert_eq!(
            self.status, status,
            "expected status {status}, got {} with body {:?}",
            self.status, self.text
        );
        self
    }

    /// Asserts a contract error: this status and a JSON body
    /// `{"error": code, "message": <non-empty string>}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        self.assert_status(status);
        let body = self.json();
        assert_eq!(
            body["error"], code,
            "error code for status {status}: {body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "error body must carry a non-empty message: {body}"
        );
    }
}

impl Api {
    /// A client for `base` (`http://IP:PORT`) whose [`Auth::Root`] is `root_key`.
    pub fn new(base: String, root_key: String) -> Api {
        let client = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .build()
            .expect("build HTTP client");
        Api {
            base,
            root_key,
            client,
        }
    }

    /// A client for `base` over a client of the caller's own (a TLS client with its CA, or
    /// with a client certificate).
    pub fn with_client(base: String, root_key: String, client: Client) -> Api {
        Api {
            base,
            root_key,
            client,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The root key this client sends for [`Auth::Root`].
    pub fn root_key(&self) -> &str {
        &self.root_key
    }

    /// Sends a request; `Err` only for transport failures (refused, reset, timeout).
    pub fn try_send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Vec<u8>>,
    ) -> reqwest::Result<Reply> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        req = match auth {
            Auth::Root => req.bearer_auth(&self.root_key),
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token),
        };
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send()?;
        let status = resp.status().as_u16();
        let text = resp.text()?;
        Ok(Reply { status, text })
    }

    /// Sends a request; panics on transport failures.
    pub fn send(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<Vec<u8>>) -> Reply {
        let what = format!("{method} {}{path}", self.base);
        self.try_send(method, path, auth, body)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// `GET path` with the root key.
    pub fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Auth::Root, None)
    }

    /// `GET path` with the given authorization.
    pub fn get_with(&self, path: &str, auth: Auth<'_>) -> Reply {
        self.send(Method::GET, path, auth, None)
    }

    /// `POST path` with a JSON body and the root key.
    pub fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send(Method::POST, path, Auth::Root, Some(body.into()))
    }

    /// `POST path` with a JSON body and the given authorization.
    pub fn post_with(&self, path: &str, auth: Auth<'_>, body: impl Into<Vec<u8>>) -> Reply {
        self.send(Method::POST, path, auth, Some(body.into()))
    }

    /// The request body of a record write.
    pub fn record_body(collection: &str, data: &Value) -> Vec<u8> {
        json!({ "collection": collection, "data": data })
            .to_string()
            .into_bytes()
    }

    /// `POST /v1/records`; `Err` only for transport failures.
    pub fn try_write(&self, collection: &str, data: &Value) -> reqwest::Result<Reply> {
        self.try_send(
            Method::POST,
            "/v1/records",
            Auth::Root,
            Some(Api::record_body(collection, data)),
        )
    }

    /// Writes a record, asserting a `201` with a well-formed acknowledgement.
    #[track_caller]
    pub fn write(&self, collection: &str, data: &Value) -> Written {
        let reply = self.post("/v1/records", Api::record_body(collection, data));
        reply.assert_status(201);
        Written::parse(&reply.json())
    }

    /// Reads a record with the root key, asserting a `200`; returns its JSON.
    #[track_caller]
    pub fn read(&self, hash: &str) -> Value {
        let reply = self.get(&format!("/v1/records/{hash}"));
        reply.assert_status(200);
        reply.json()
    }

    /// One export page, asserting a `200` and a well-formed page.
    #[track_caller]
    pub fn export(&self, after: u64, limit: Option<u64>) -> ExportPage {
        let path = match limit {
            Some(limit) => format!("/v1/mesh/export?after={after}&limit={limit}"),
            None => format!("/v1/mesh/export?after={after}"),
        };
        let reply = self.get(&path);
        reply.assert_status(200);
        ExportPage::parse(&reply.text)
    }

    /// The whole strand from offset 1, paging with the largest allowed pages.
    #[track_caller]
    pub fn export_all(&self) -> Vec<ExportedBlock> {
        let mut blocks = Vec::new();
        let mut after = 0;
        loop {
            let page = self.export(after, Some(MAX_EXPORT_LIMIT));
            let Some(last) = page.blocks.last() else {
                assert_eq!(page.next, after, "an empty page's next must be `after`");
                return blocks;
            };
            assert_eq!(
                page.next, last.offset,
                "next must be the page's last offset"
            );
            after = page.next;
            blocks.extend(page.blocks);
        }
    }

    /// The strand's last offset, as the export reports it.
    #[track_caller]
    pub fn tip(&self) -> u64 {
        self.export(0, Some(1)).tip
    }

    /// `POST /v1/mesh/ingest` with the root key.
    pub fn ingest(&self, body: &str) -> Reply {
        self.post("/v1/mesh/ingest", body.as_bytes().to_vec())
    }

    /// `POST path` written by hand on a raw socket: `head_fields` are extra header lines
    /// (each ending in `\r\n`), `body` is sent while the response is read concurrently. For
    /// bodies the server may refuse before reading them: a client that finishes sending
    /// first can lose the answer to a connection reset.
    pub fn raw_post(&self, path: &str, head_fields: &str, body: Vec<u8>) -> Reply {
        let addr: SocketAddr = self
            .base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .expect("base URL is http://IP:PORT");
        let mut stream =
            TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).expect("connect to agent");
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nConnection: close\r\n{head_fields}\r\n",
            self.root_key
        );
        stream
            .write_all(head.as_bytes())
            .expect("send request head");
        let mut writer = stream.try_clone().expect("clone socket");
        // Write errors are expected once the server has answered and closed.
        let sender = std::thread::spawn(move || {
            for chunk in body.chunks(64 * 1024) {
                if writer.write_all(chunk).is_err() {
                    break;
                }
            }
        });
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A reset after the answer arrived still leaves us the answer.
                Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break
                }
                Err(e) => panic!("reading the answer to POST {path}: {e}"),
            }
            if response_complete(&raw) {
                break;
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = sender.join();
        parse_response(&raw)
    }
}

impl Written {
    /// Checks and reads a `201` body: `{"hash","author","seq","offset"}`.
    #[track_caller]
    pub fn parse(body: &Value) -> Written {
        let hash = body["hash"].as_str().unwrap_or_default().to_owned();
        assert!(is_hex(&hash, 64), "hash must be 64 lower-case hex: {body}");
        let author = body["author"].as_str().unwrap_or_default().to_owned();
        assert!(
            !author.is_empty(),
            "author must be a non-empty string: {body}"
        );
        let seq = body["seq"].as_u64().unwrap_or(0);
        let offset = body["offset"].as_u64().unwrap_or(0);
        assert!(seq >= 1 && offset >= 1, "seq and offset start at 1: {body}");
        Written {
            hash,
            author,
            seq,
            offset,
        }
    }
}

/// Whether `s` is exactly `len` lower-case hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn split_head(raw: &[u8]) -> Option<(String, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((
        String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase(),
        &raw[end + 4..],
    ))
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

fn response_complete(raw: &[u8]) -> bool {
    let Some((head, body)) = split_head(raw) else {
        return false;
    };
    match header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => body.len() >= len,
        None if header(&head, "transfer-encoding") == Some("chunked") => {
            body.windows(5).any(|w| w == b"0\r\n\r\n")
        }
        None => false,
    }
}

fn parse_response(raw: &[u8]) -> Reply {
    let (head, body) = split_head(raw).unwrap_or_else(|| {
        panic!(
            "incomplete HTTP response: {:?}",
            String::from_utf8_lossy(raw)
        )
    });
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let body = if header(&head, "transfer-encoding") == Some("chunked") {
        dechunk(body)
    } else {
        match header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(len) => body[..len.min(body.len())].to_vec(),
            None => body.to_vec(),
        }
    };
    Reply {
        status,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_field = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = size_field.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    out
}
