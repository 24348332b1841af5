//! The client against canned HTTP answers on loopback: only an exact `permit` is a permit.

use std::time::Duration;

use sapix_core::auth::{Action, AuthKey, Decision};
use sapix_core::Collection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn key() -> AuthKey {
    AuthKey::new(
        "alice-token",
        Action::Write,
        &Collection::new("orders").unwrap(),
    )
}

/// Serves one connection with `status` and `body` after `delay`; returns the base URL and
/// the request text it received.
async fn serve_once(
    status: &'static str,
    body: &'static str,
    delay: Duration,
) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then the JSON body (small: one read after the headers is enough here).
        while !String::from_utf8_lossy(&req).contains("}") {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        tokio::time::sleep(delay).await;
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(answer.as_bytes()).await;
        String::from_utf8_lossy(&req).into_owned()
    });
    (base, task)
}

fn client(base: &str, timeout: Duration) -> CodiosClient {
    CodiosClient::new(base, Some(CodiosApiKey::new("sk-test-123")), timeout).unwrap()
}

#[tokio::test]
async fn permit_and_deny_are_read_and_the_request_carries_the_hashed_subject_and_key() {
    let (base, seen) = serve_once("200 OK", r#"{"decision":"permit"}"#, Duration::ZERO).await;
    let got = client(&base, DEFAULT_TIMEOUT).authorize(&key()).await;
    assert_eq!(got, Ok(Decision::Permit));
    let req = seen.await.unwrap();
    assert!(req.starts_with("POST /v1/authorize HTTP/1.1"), "{req}");
    assert!(req
        .to_ascii_lowercase()
        .contains("authorization: bearer sk-test-123"));
    let subject = hex::encode(blake3::hash(b"alice-token").as_bytes());
    assert!(req.contains(&format!(r#""subject":"{subject}""#)), "{req}");
    assert!(req.contains(r#""action":"write""#) && req.contains(r#""resource":"orders""#));
    assert!(
        !req.contains("alice-token"),
        "the token itself never leaves"
    );

    let (base, _) = serve_once(
        "200 OK",
        r#"{"decision":"deny","reason":"no"}"#,
        Duration::ZERO,
    )
    .await;
    let got = client(&base, DEFAULT_TIMEOUT).authorize(&key()).await;
    assert_eq!(got, Ok(Decision::Deny));
}

#[tokio::test]
async fn non_2xx_garbled_and_unknown_decisions_are_failures_never_permits() {
    // The status code is what decides, never the body: a 500 saying "permit" is a failure.
    for (status, body, code) in [
        ("500 Internal Server Error", r#"{"decision":"permit"}"#, 500),
        ("401 Unauthorized", r#"{"decision":"permit"}"#, 401),
    ] {
        let (base, _) = serve_once(status, body, Duration::ZERO).await;
        let got = client(&base, DEFAULT_TIMEOUT).authorize(&key()).await;
        match got {
            Err(Failure::Status {
                call: "Codios",
                code: c,
                ..
            }) if c == code => {}
            other => panic!("{status} {body} gave {other:?}"),
        }
    }
    for body in [
        r#"{"decision":"PERMIT"}"#,
        r#"{"decision":"allow"}"#,
        r#"permit"#,
        r#"{}"#,
        // Found by the codios_answer fuzz target: serde reads a struct from an array.
        r#"["permit"]"#,
        " \r\n[\"deny\"]",
    ] {
        let (base, _) = serve_once("200 OK", body, Duration::ZERO).await;
        let got = client(&base, DEFAULT_TIMEOUT).authorize(&key()).await;
        match got {
            Err(Failure::Garbled {
                what: "Codios answer",
                ..
            }) => {}
            other => panic!("200 {body} gave {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_failure_and_a_closed_port_a_connection_failure() {
    let (base, _) = serve_once("200 OK", r#"{"decision":"permit"}"#, Duration::from_secs(5)).await;
    let got = client(&base, Duration::from_millis(200))
        .authorize(&key())
        .await;
    assert_eq!(got, Err(Failure::TimedOut));

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let got = client(&base, DEFAULT_TIMEOUT).authorize(&key()).await;
    assert!(matches!(got, Err(Failure::Unreachable(_))), "{got:?}");
}

#[test]
fn urls_must_be_http_and_the_key_is_never_shown() {
    assert!(CodiosClient::new("ftp://x", None, DEFAULT_TIMEOUT).is_err());
    assert!(CodiosClient::new("not a url", None, DEFAULT_TIMEOUT).is_err());
    let c = CodiosClient::new(
        "https://user:pw@codios.example/",
        Some(CodiosApiKey::new("sk-secret")),
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(c.endpoint(), "https://codios.example/v1/authorize");
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("sk-secret") && !shown.contains("pw"),
        "{shown}"
    );
}
