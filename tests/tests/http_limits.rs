//! The listener's bounds (DESIGN §7) against a real `sapix-agent`: declared and chunked body
//! sizes, header size, header, body and idle timeouts, the connection cap, and lingering close.
//! Every refusal is a JSON error, stores nothing, and leaves the node serving.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sapix_tests::raw::{self, RawAnswer};
use sapix_tests::{wait_until, Agent};
use serde_json::json;

fn record_head(agent: &Agent, fields: &str) -> String {
    format!(
        "POST /v1/records HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\n{fields}\r\n",
        agent.addr(),
        agent.root_key()
    )
}

/// Nothing was stored and the node still takes a write.
#[track_caller]
fn still_serving_with_nothing_stored(agent: &Agent) {
    let api = agent.api();
    assert_eq!(api.tip(), 0, "a refused request stored nothing");
    api.write("c", &json!({"after": "refusal"}));
}

#[test]
fn a_declared_length_over_the_limit_is_refused_413_before_any_body_is_read() {
    let agent = Agent::start();
    let mut s = raw::connect(agent.addr());
    let head = record_head(&agent, "Content-Length: 99999999999\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(b"{}").unwrap();
    let answer = raw::read_answer(&mut s).expect("answered without waiting for the body");
    answer.assert_error(413, "payload_too_large");
    still_serving_with_nothing_stored(&agent);
}

#[test]
fn a_client_that_writes_a_whole_oversized_body_before_reading_still_gets_413() {
    let agent = Agent::start();
    let big = format!(r#"{{"collection":"c","data":"{}"}}"#, "a".repeat(32 << 20));
    let declared = format!(
        "{}{big}",
        record_head(&agent, &format!("Content-Length: {}\r\n", big.len()))
    );
    raw::send_whole_then_read(agent.addr(), declared.as_bytes())
        .assert_error(413, "payload_too_large");
    let chunked = format!(
        "{}{:x}\r\n{big}\r\n0\r\n\r\n",
        record_head(&agent, "Transfer-Encoding: chunked\r\n"),
        big.len()
    );
    raw::send_whole_then_read(agent.addr(), chunked.as_bytes())
        .assert_error(413, "payload_too_large");
    still_serving_with_nothing_stored(&agent);
}

#[test]
fn a_head_over_64_kib_is_refused_431_with_a_json_error() {
    let agent = Agent::start();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    raw::send_whole_then_read(agent.addr(), head.as_bytes()).assert_error(431, "header_too_large");
    let many: String = (0..150).map(|i| format!("X-F{i}: v\r\n")).collect();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    raw::send_whole_then_read(agent.addr(), head.as_bytes()).assert_error(431, "header_too_large");
    raw::send_whole_then_read(agent.addr(), b"\x16\x03\x01 not http\r\n\r\n")
        .assert_error(400, "bad_request");
    still_serving_with_nothing_stored(&agent);
}

fn timeouts_agent() -> Agent {
    Agent::builder()
        .env("SAPIX_HTTP_HEADER_TIMEOUT_MS", "300")
        .env("SAPIX_HTTP_BODY_TIMEOUT_MS", "300")
        .env("SAPIX_HTTP_IDLE_TIMEOUT_MS", "300")
        .start()
}

#[test]
fn a_head_that_stalls_gets_408_and_the_connection_is_closed() {
    let agent = timeouts_agent();
    let mut s = raw::connect(agent.addr());
    s.write_all(b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-")
        .unwrap();
    raw::read_answer(&mut s)
        .expect("an answer to a stalled head")
        .assert_error(408, "request_timeout");
    assert!(raw::closed_within(&mut s, Duration::from_secs(10)));
    // A connection that never sends a byte is closed too, without an answer.
    let mut silent = raw::connect(agent.addr());
    assert!(raw::closed_within(&mut silent, Duration::from_secs(10)));
    still_serving_with_nothing_stored(&agent);
}

#[test]
fn a_body_that_stalls_gets_408_and_nothing_is_stored() {
    let agent = timeouts_agent();
    let mut s = raw::connect(agent.addr());
    let head = record_head(&agent, "Content-Length: 100\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(br#"{"collection":"c","da"#).unwrap();
    raw::read_answer(&mut s)
        .expect("an answer to a stalled body")
        .assert_error(408, "request_timeout");
    still_serving_with_nothing_stored(&agent);
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let agent = timeouts_agent();
    let mut s = raw::connect(agent.addr());
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let ok = raw::read_answer(&mut s).expect("healthz answers");
    assert_eq!(ok.status, 200);
    assert_ne!(ok.header("connection"), Some("close"), "kept alive");
    assert!(raw::closed_within(&mut s, Duration::from_secs(10)));
}

#[test]
fn connections_past_the_cap_get_503_with_retry_after_until_one_closes() {
    let agent = Agent::builder().env("SAPIX_MAX_CONNECTIONS", "3").start();
    let held: Vec<TcpStream> = (0..3).map(|_| raw::connect(agent.addr())).collect();
    // The three are accepted in order; the fourth is past the cap once they are all served.
    let refused =
        raw::send_whole_then_read(agent.addr(), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    refused.assert_error(503, "over_capacity");
    assert_eq!(refused.header("retry-after"), Some("1"));
    drop(held);
    wait_until(Duration::from_secs(10), "a slot freed by closing", || {
        let mut s = raw::connect(agent.addr());
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        raw::read_answer(&mut s).is_some_and(|a| a.status == 200)
    });
}

/// 2,000 connections that send part of a head and then a byte now and then, held while a
/// well-behaved client writes; then the header timeout evicts every one of them with a 408.
#[test]
fn two_thousand_slow_loris_connections_neither_stop_a_writer_nor_stay() {
    const LORIS: usize = 2000;
    const WRITES: usize = 200;
    let fds = raw::raise_fd_limit();
    assert!(
        fds > 2 * LORIS as u64 + 512,
        "open-files limit {fds} is too low"
    );
    let agent = Agent::builder()
        .env("SAPIX_HTTP_HEADER_TIMEOUT_MS", "8000")
        .start();
    let opened = Instant::now();
    let mut loris: Vec<TcpStream> = (0..LORIS)
        .map(|_| {
            let mut s = raw::connect(agent.addr());
            s.write_all(b"POST /v1/records HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let open_ms = opened.elapsed().as_millis();

    let api = agent.api();
    let mut latencies = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let t = Instant::now();
        api.write("orders", &json!({"i": i}));
        latencies.push(t.elapsed());
        // The slow clients trickle: one more header byte each, every 20 writes.
        if i % 20 == 19 {
            for s in &mut loris {
                let _ = s.write_all(b"X");
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "slow-loris: {LORIS} connections opened in {open_ms} ms; {WRITES} writes beside them: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    assert_eq!(api.tip(), WRITES as u64);

    let evicting = Instant::now();
    let answers: Vec<RawAnswer> = loris
        .iter_mut()
        .map(|s| raw::read_answer(s).expect("each slow client is answered"))
        .collect();
    for a in &answers {
        a.assert_error(408, "request_timeout");
    }
    println!(
        "slow-loris: all {LORIS} evicted with 408 within {} ms of the last write",
        evicting.elapsed().as_millis()
    );
    api.write("orders", &json!({"after": "eviction"}));
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn a_payload_nested_deeper_than_128_levels_is_400_by_write_and_by_ingest() {
    use sapix_core::block::{BlockBody, MAX_JSON_DEPTH};
    use sapix_core::wire::WireBlock;
    use sapix_core::{AgentId, Collection, Hash, UnixMillis};

    let agent = sapix_tests::cluster_agent("deep");
    let api = agent.api();
    for depth in [MAX_JSON_DEPTH + 1, 100_000] {
        let body = format!(r#"{{"collection":"c","data":{}}}"#, nested(depth));
        api.post("/v1/records", body)
            .assert_error(400, "bad_request");
    }
    // A block signed by a member of the cluster, but too deep, is not stored either.
    let author = AgentId::new("other").unwrap();
    let block = BlockBody {
        author: author.clone(),
        seq: 1,
        prev: Hash::ZERO,
        ts: UnixMillis(1_715_000_000_000),
        collection: Collection::new("c").unwrap(),
        payload: nested(MAX_JSON_DEPTH + 1).into_bytes(),
    }
    .seal(&sapix_tests::test_keys().signing_key(&author));
    let wire = serde_json::to_string(&WireBlock::from_block(&block, None)).unwrap();
    let refused = api.ingest(&wire);
    assert!(
        (400..500).contains(&refused.status),
        "ingest of a too-deep block: {}",
        refused.status
    );
    // At the bound, a write is stored.
    let ok = format!(r#"{{"collection":"c","data":{}}}"#, nested(MAX_JSON_DEPTH));
    api.post("/v1/records", ok).assert_status(201);
    assert_eq!(api.tip(), 1, "only the write at the bound was stored");
}
