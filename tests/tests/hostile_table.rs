//! The hostile table (issue 12): what a hostile or broken client sends, against one real
//! `sapix-agent`, each case on its own connection. Every case must get its status and, for a
//! refusal, the API's JSON error with its code (a 503 also `Retry-After`); after every case
//! the node still serves and its strand is exactly what it was (checked by export), so no
//! refusal stored anything and nothing accepted was new.

use std::io::Write;
use std::time::Duration;

use sapix_tests::raw::{self, RawAnswer};
use sapix_tests::strand::{batch, ExportedBlock};
use sapix_tests::{cluster_agent, wait_until, Agent, Auth, TEST_SEED};
use serde_json::{json, Value};

/// Which credential a case presents.
#[derive(Clone, Copy)]
enum Who {
    Root,
    Nobody,
    Wrong,
    Truncated,
    Basic,
    EmptyBearer,
}

/// What a case must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A refusal: status and the JSON error code.
    Error(u16, &'static str),
    /// A success that adds nothing (a replay).
    Ok(u16),
}

/// One row: a name, the bytes of the request (sent on a fresh connection), and whether the
/// rest is held back for the stall cases.
struct Case {
    name: String,
    bytes: Vec<u8>,
    stall: bool,
    expect: Expect,
}

struct Table {
    host: String,
    root: String,
    cases: Vec<Case>,
}

impl Table {
    fn auth(&self, who: Who) -> String {
        match who {
            Who::Root => format!("Authorization: Bearer {}\r\n", self.root),
            Who::Nobody => String::new(),
            Who::Wrong => "Authorization: Bearer not-the-root-key-at-all\r\n".into(),
            Who::Truncated => {
                format!(
                    "Authorization: Bearer {}\r\n",
                    &self.root[..self.root.len() / 2]
                )
            }
            Who::Basic => format!("Authorization: Basic {}\r\n", self.root),
            Who::EmptyBearer => "Authorization: Bearer \r\n".into(),
        }
    }

    /// A well-framed request.
    fn http(&self, method: &str, path: &str, who: Who, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            self.auth(who),
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    fn add(&mut self, name: impl Into<String>, bytes: Vec<u8>, expect: Expect) {
        self.cases.push(Case {
            name: name.into(),
            bytes,
            stall: false,
            expect,
        });
    }

    fn req(&mut self, name: &str, method: &str, path: &str, who: Who, body: &str, e: Expect) {
        let bytes = self.http(method, path, who, body.as_bytes());
        self.add(name, bytes, e);
    }

    fn stalled(&mut self, name: &str, bytes: Vec<u8>, expect: Expect) {
        self.cases.push(Case {
            name: name.into(),
            bytes,
            stall: true,
            expect,
        });
    }
}

fn err(status: u16, code: &'static str) -> Expect {
    Expect::Error(status, code)
}

fn nested(depth: usize) -> String {
    format!(
        r#"{{"collection":"c","data":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// The target: short header and body timeouts so the stall rows finish fast.
fn target() -> Agent {
    Agent::builder()
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_AGENT_ID", "target")
        .env("SAPIX_HTTP_HEADER_TIMEOUT_MS", "800")
        .env("SAPIX_HTTP_BODY_TIMEOUT_MS", "800")
        .start()
}

/// Blocks of a genuine chain (`donor`, seqs 1–3) and a second, different seq 1 of the same
/// author from another process claiming its id (equivocation).
fn donor_blocks() -> (Vec<ExportedBlock>, ExportedBlock) {
    let donor = cluster_agent("donor");
    for i in 1..=3 {
        donor.api().write("orders", &json!({ "i": i }));
    }
    let twin = cluster_agent("donor");
    twin.api().write("orders", &json!({ "other": "history" }));
    (donor.api().export_all(), twin.api().export_all().remove(0))
}

fn build(agent: &Agent, chain: &[ExportedBlock], twin: &ExportedBlock) -> Table {
    use Who::*;
    let mut t = Table {
        host: agent.addr().to_string(),
        root: agent.root_key(),
        cases: Vec::new(),
    };
    let ok_record = r#"{"collection":"c","data":{"a":1}}"#;
    let bad = |code| err(400, code);

    // ---- writes: malformed and wrong-typed JSON, depth, bad collections ----
    for (name, body) in [
        ("write: not JSON", "{"),
        ("write: empty body", ""),
        ("write: a JSON array", "[]"),
        ("write: a JSON string", r#""c""#),
        ("write: null", "null"),
        (
            "write: collection is a number",
            r#"{"collection":5,"data":{}}"#,
        ),
        ("write: data missing", r#"{"collection":"c"}"#),
        ("write: collection missing", r#"{"data":{}}"#),
        ("write: collection empty", r#"{"collection":"","data":{}}"#),
        (
            "write: collection ../x",
            r#"{"collection":"../x","data":{}}"#,
        ),
        (
            "write: collection with a slash",
            r#"{"collection":"a/b","data":{}}"#,
        ),
        (
            "write: trailing garbage",
            r#"{"collection":"c","data":{}} x"#,
        ),
        (
            "write: duplicate of a field",
            r#"{"collection":"c","collection":"d","data":{}}"#,
        ),
    ] {
        t.req(name, "POST", "/v1/records", Root, body, bad("bad_request"));
    }
    let long = format!(r#"{{"collection":"{}","data":{{}}}}"#, "c".repeat(300));
    t.req(
        "write: collection of 300 chars",
        "POST",
        "/v1/records",
        Root,
        &long,
        bad("bad_request"),
    );
    t.req(
        "write: depth 129",
        "POST",
        "/v1/records",
        Root,
        &nested(129),
        bad("bad_request"),
    );
    t.req(
        "write: depth 100,000",
        "POST",
        "/v1/records",
        Root,
        &nested(100_000),
        bad("bad_request"),
    );
    let mut not_utf8 = br#"{"collection":"c","data":""#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, b'"', b'}']);
    let bytes = t.http("POST", "/v1/records", Root, &not_utf8);
    t.add("write: invalid UTF-8", bytes, bad("bad_request"));

    // ---- credentials on the write path ----
    t.req(
        "write: no token",
        "POST",
        "/v1/records",
        Nobody,
        ok_record,
        err(401, "unauthorized"),
    );
    t.req(
        "write: wrong token",
        "POST",
        "/v1/records",
        Wrong,
        ok_record,
        err(403, "forbidden"),
    );
    t.req(
        "write: truncated root key",
        "POST",
        "/v1/records",
        Truncated,
        ok_record,
        err(403, "forbidden"),
    );
    t.req(
        "write: Basic scheme",
        "POST",
        "/v1/records",
        Basic,
        ok_record,
        err(401, "unauthorized"),
    );
    t.req(
        "write: empty bearer",
        "POST",
        "/v1/records",
        EmptyBearer,
        ok_record,
        err(401, "unauthorized"),
    );

    t.req(
        "write: CP while a member is down",
        "POST",
        "/v1/records",
        Root,
        ok_record,
        err(503, "partitioned"),
    );

    // ---- sizes: declared, chunked, headers ----
    let head = format!(
        "POST /v1/records HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\n",
        t.host,
        t.auth(Root)
    );
    t.add(
        "write: declared length 99999999999",
        format!("{head}Content-Length: 99999999999\r\n\r\n{{}}").into_bytes(),
        err(413, "payload_too_large"),
    );
    let mut chunked = format!("{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 64 * 1024));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    t.add(
        "write: chunked body over the limit",
        chunked,
        err(413, "payload_too_large"),
    );
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        t.host,
        "a".repeat(70 * 1024)
    );
    t.add(
        "head over 64 KiB",
        big_header.into_bytes(),
        err(431, "header_too_large"),
    );
    let many: String = (0..120).map(|i| format!("X-F{i}: v\r\n")).collect();
    let many = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\n{many}Connection: close\r\n\r\n",
        t.host
    );
    t.add(
        "120 header fields",
        many.into_bytes(),
        err(431, "header_too_large"),
    );
    let long_uri = format!(
        "GET /v1/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(70 * 1024),
        t.host
    );
    t.add(
        "a 70 KiB request line",
        long_uri.into_bytes(),
        err(431, "header_too_large"),
    );
    t.add(
        "not HTTP at all",
        b"HELLO THERE\r\n\r\n".to_vec(),
        bad("bad_request"),
    );

    // ---- slow clients ----
    t.stalled(
        "a head that stops half way",
        format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow:", t.host).into_bytes(),
        err(408, "request_timeout"),
    );
    t.stalled(
        "a body that stops half way",
        format!("{head}Content-Length: 100\r\n\r\n{{\"collection\":").into_bytes(),
        err(408, "request_timeout"),
    );

    // ---- reads, unknown routes and methods ----
    t.req(
        "read: hash not hex",
        "GET",
        "/v1/records/nothex",
        Nobody,
        "",
        bad("bad_request"),
    );
    let unknown = format!("/v1/records/{}", "ab".repeat(32));
    t.req(
        "read: unknown hash",
        "GET",
        &unknown,
        Root,
        "",
        err(404, "not_found"),
    );
    t.req(
        "read: unknown hash, no token",
        "GET",
        &unknown,
        Nobody,
        "",
        err(401, "unauthorized"),
    );
    t.req(
        "read: unknown hash, a token that may not read",
        "GET",
        &unknown,
        Wrong,
        "",
        err(404, "not_found"),
    );
    t.req(
        "read: Basic credentials",
        "GET",
        &unknown,
        Basic,
        "",
        err(401, "unauthorized"),
    );
    t.req(
        "read: ../ in the path",
        "GET",
        "/v1/records/../../etc/passwd",
        Nobody,
        "",
        err(404, "not_found"),
    );
    t.req(
        "read: encoded ../x",
        "GET",
        "/v1/records/..%2fx",
        Nobody,
        "",
        bad("bad_request"),
    );
    t.req(
        "unknown route",
        "GET",
        "/v1/nope",
        Root,
        "",
        err(404, "not_found"),
    );
    t.req("root path", "GET", "/", Root, "", err(404, "not_found"));
    t.req(
        "list: no collection",
        "GET",
        "/v1/records",
        Root,
        "",
        bad("bad_request"),
    );
    t.req(
        "list: a cursor not made here",
        "GET",
        "/v1/records?collection=orders&after=bm90LWEtY3Vyc29y",
        Root,
        "",
        bad("bad_request"),
    );
    for (name, path) in [
        ("ledger: a from past u64", "/v1/ledger/proof/consistency?author=a&from=99999999999999999999"),
        ("ledger: a hash of 65 hex", "/v1/ledger/proof/inclusion?hash=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("ledger: head_seq in hex", "/v1/ledger/proof/inclusion?hash=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&head_seq=0x10"),
        ("ledger: to twice", "/v1/ledger/proof/consistency?author=a&from=1&to=2&to=3"),
    ] {
        t.req(name, "GET", path, Root, "", bad("bad_request"));
    }
    t.req(
        "ledger: a proof of a chain never seen",
        "GET",
        "/v1/ledger/proof/consistency?author=never-seen&from=0",
        Root,
        "",
        err(404, "no_head"),
    );
    for (method, path) in [
        ("POST", "/v1/ledger/heads"),
        ("GET", "/v1/cluster/rotate-head-key"),
        ("DELETE", "/v1/records"),
        ("PUT", "/v1/records"),
        ("PUT", "/v1/cluster/divide"),
        ("GET", "/v1/cluster/divide"),
        ("POST", "/healthz"),
        ("PATCH", "/v1/cluster/status"),
        ("GET", "/v1/mesh/ingest"),
    ] {
        let name = format!("method {method} {path}");
        t.req(
            &name,
            method,
            path,
            Root,
            "",
            err(405, "method_not_allowed"),
        );
    }

    // ---- export cursors ----
    for (name, query) in [
        ("export: after=-1", "after=-1"),
        ("export: after=abc", "after=abc"),
        (
            "export: after overflows u64",
            "after=99999999999999999999999",
        ),
        ("export: limit=0", "after=0&limit=0"),
        ("export: limit=1001", "after=0&limit=1001"),
    ] {
        t.req(
            name,
            "GET",
            &format!("/v1/mesh/export?{query}"),
            Root,
            "",
            bad("bad_request"),
        );
    }
    t.req(
        "export: no token",
        "GET",
        "/v1/mesh/export?after=0",
        Nobody,
        "",
        err(401, "unauthorized"),
    );
    t.req(
        "export: wrong token",
        "GET",
        "/v1/mesh/export?after=0",
        Wrong,
        "",
        err(403, "forbidden"),
    );

    // ---- ingest: forged, replayed, out of order, equivocating, malformed ----
    let g1 = &chain[0];
    let ingest = "/v1/mesh/ingest";
    for (what, body) in g1.forgeries() {
        t.req(
            &format!("ingest: {what}"),
            "POST",
            ingest,
            Root,
            &body,
            err(422, "invalid_block"),
        );
    }
    let batched = batch([g1.ingest_json(), chain[1].ingest_json_with("data", "{}")]);
    t.req(
        "ingest: forged block in a batch",
        "POST",
        ingest,
        Root,
        &batched,
        err(422, "invalid_block"),
    );
    for (name, body) in [
        (
            "ingest: author ../x",
            g1.ingest_json_with("author", r#""../x""#),
        ),
        (
            "ingest: seq is a string",
            g1.ingest_json_with("seq", r#""1""#),
        ),
        (
            "ingest: data nested 129 deep",
            g1.ingest_json_with("data", &format!("{}{}", "[".repeat(129), "]".repeat(129))),
        ),
        ("ingest: not JSON", "{".to_string()),
        (
            "ingest: blocks is a string",
            r#"{"blocks":"x"}"#.to_string(),
        ),
        (
            "ingest: a block missing its sig",
            g1.ingest_json().replacen(r#""sig""#, r#""gis""#, 1),
        ),
    ] {
        t.req(name, "POST", ingest, Root, &body, bad("bad_request"));
    }
    // ---- ingest: the pusher's head, malformed or not its key's ----
    let head = sapix_core::ledger::HeadKey::from_bytes([9; 32]).sign(sapix_core::ledger::Head {
        author: sapix_core::AgentId::new("primary").unwrap(),
        seq: 1,
        root: sapix_core::block::Hash([1; 32]),
        ts_ms: 5,
    });
    let head = serde_json::to_value(sapix_core::ledger::wire::HeadJson::from(&head)).unwrap();
    let with_head = |change: &dyn Fn(&mut Value)| {
        let mut h = head.clone();
        change(&mut h);
        json!({ "blocks": [], "head": h }).to_string()
    };
    let cosig =
        json!({ "witness": "x", "head_key": "00".repeat(32), "signature": "00".repeat(64) });
    for (name, body) in [
        (
            "ingest: head root not hex",
            with_head(&|h| h["root"] = json!("zz")),
        ),
        (
            "ingest: head without a signature",
            with_head(&|h| {
                h.as_object_mut().unwrap().remove("signature");
            }),
        ),
        (
            "ingest: head author ../x",
            with_head(&|h| h["author"] = json!("../x")),
        ),
        (
            "ingest: head with 65 cosignatures",
            with_head(&|h| h["cosignatures"] = json!(vec![cosig.clone(); 65])),
        ),
        (
            "ingest: head with an unknown field",
            with_head(&|h| h["x"] = json!(1)),
        ),
    ] {
        t.req(name, "POST", ingest, Root, &body, bad("bad_request"));
    }
    t.req(
        "ingest: head signature not its key's",
        "POST",
        ingest,
        Root,
        &with_head(&|h| h["seq"] = json!(2)),
        err(422, "invalid_head"),
    );
    t.req(
        "ingest: out of order (seq 3 after 1)",
        "POST",
        ingest,
        Root,
        &chain[2].ingest_json(),
        err(409, "out_of_order"),
    );
    t.req(
        "ingest: equivocating second seq 1",
        "POST",
        ingest,
        Root,
        &twin.ingest_json(),
        err(409, "equivocation"),
    );
    t.req(
        "ingest: replay of a held block",
        "POST",
        ingest,
        Root,
        &g1.ingest_json(),
        Expect::Ok(200),
    );
    t.req(
        "ingest: no token",
        "POST",
        ingest,
        Nobody,
        &chain[1].ingest_json(),
        err(401, "unauthorized"),
    );
    t.req(
        "ingest: wrong token",
        "POST",
        ingest,
        Wrong,
        &chain[1].ingest_json(),
        err(403, "forbidden"),
    );
    t.req(
        "ingest: truncated root key",
        "POST",
        ingest,
        Truncated,
        &chain[1].ingest_json(),
        err(403, "forbidden"),
    );

    // ---- probe and sync ----
    t.req(
        "probe: author ../x",
        "GET",
        "/v1/mesh/probe?author=../x",
        Root,
        "",
        bad("bad_request"),
    );
    t.req(
        "probe: no token",
        "GET",
        "/v1/mesh/probe?author=donor",
        Nobody,
        "",
        err(401, "unauthorized"),
    );

    // ---- every admin route: without a key, with a wrong key, with bad input ----
    let consistency = r#"{"mode":"AP"}"#;
    let divide = r#"{"new_agent_id":"x","endpoint":"http://127.0.0.1:9","role":"Replica"}"#;
    let admin: [(&str, &str, &str); 5] = [
        ("POST", "/v1/cluster/consistency", consistency),
        ("POST", "/v1/cluster/divide", divide),
        ("POST", "/v1/mesh/sync/donor", ""),
        ("DELETE", "/v1/cluster/members/donor", ""),
        ("POST", "/v1/cluster/rotate-head-key", ""),
    ];
    for (method, path, body) in admin {
        t.req(
            &format!("{method} {path}: no token"),
            method,
            path,
            Nobody,
            body,
            err(401, "unauthorized"),
        );
        t.req(
            &format!("{method} {path}: wrong token"),
            method,
            path,
            Wrong,
            body,
            err(403, "forbidden"),
        );
        t.req(
            &format!("{method} {path}: truncated root key"),
            method,
            path,
            Truncated,
            body,
            err(403, "forbidden"),
        );
    }
    let members = r#"{"members":[]}"#;
    t.req(
        "members: no token",
        "POST",
        "/v1/cluster/members",
        Nobody,
        members,
        err(401, "unauthorized"),
    );
    t.req(
        "members: wrong token",
        "POST",
        "/v1/cluster/members",
        Wrong,
        members,
        err(403, "forbidden"),
    );
    t.req(
        "members: garbage",
        "POST",
        "/v1/cluster/members",
        Root,
        r#"{"members":5}"#,
        bad("bad_request"),
    );
    let entry = |keys: &str| {
        format!(
            r#"{{"members":[{{"agent_id":"ghost","endpoint":"http://127.0.0.1:9","role":"Replica","added_at_ms":1,"head_keys":{keys}}}]}}"#
        )
    };
    let key = "ab".repeat(32);
    let too_many = vec![format!(r#"{{"key":"{key}"}}"#); 65].join(",");
    for (name, keys) in [
        (
            "members: a head key of 63 hex",
            format!(r#"[{{"key":"{}"}}]"#, &key[1..]),
        ),
        (
            "members: a first head key with a signature",
            format!(r#"[{{"key":"{key}","signature":"00"}}]"#),
        ),
        (
            "members: a rotated head key unsigned",
            format!(r#"[{{"key":"{key}"}},{{"key":"{key}"}}]"#),
        ),
        ("members: 65 head keys", format!("[{too_many}]")),
        ("members: head_keys is a string", format!(r#""{key}""#)),
    ] {
        t.req(
            name,
            "POST",
            "/v1/cluster/members",
            Root,
            &entry(&keys),
            bad("bad_request"),
        );
    }
    t.req(
        "consistency: unknown mode",
        "POST",
        "/v1/cluster/consistency",
        Root,
        r#"{"mode":"XX"}"#,
        bad("bad_request"),
    );
    t.req(
        "consistency: mode is a number",
        "POST",
        "/v1/cluster/consistency",
        Root,
        r#"{"mode":5}"#,
        bad("bad_request"),
    );
    t.req(
        "divide: agent id ../x",
        "POST",
        "/v1/cluster/divide",
        Root,
        r#"{"new_agent_id":"../x","endpoint":"http://127.0.0.1:9"}"#,
        bad("bad_request"),
    );
    t.req(
        "divide: ftp endpoint",
        "POST",
        "/v1/cluster/divide",
        Root,
        r#"{"new_agent_id":"x","endpoint":"ftp://x"}"#,
        bad("bad_request"),
    );
    t.req(
        "divide: fields missing",
        "POST",
        "/v1/cluster/divide",
        Root,
        "{}",
        bad("bad_request"),
    );
    t.req(
        "divide: to itself",
        "POST",
        "/v1/cluster/divide",
        Root,
        r#"{"new_agent_id":"target","endpoint":"http://127.0.0.1:9"}"#,
        err(409, "divide_refused"),
    );
    t.req(
        "divide: nobody answers there",
        "POST",
        "/v1/cluster/divide",
        Root,
        divide,
        err(502, "divide_failed"),
    );
    t.req(
        "sync: unknown peer",
        "POST",
        "/v1/mesh/sync/nobody",
        Root,
        "",
        err(404, "not_found"),
    );
    t.req(
        "sync: peer ..%2fx",
        "POST",
        "/v1/mesh/sync/..%2fx",
        Root,
        "",
        bad("bad_request"),
    );
    t.req(
        "remove: unknown member",
        "DELETE",
        "/v1/cluster/members/nobody",
        Root,
        "",
        err(404, "not_found"),
    );
    t.req(
        "remove: ..%2fx",
        "DELETE",
        "/v1/cluster/members/..%2fx",
        Root,
        "",
        bad("bad_request"),
    );
    t.req(
        "remove: itself",
        "DELETE",
        "/v1/cluster/members/target",
        Root,
        "",
        err(409, "remove_refused"),
    );
    t
}

/// Sends one case and reads its answer.
fn exchange(agent: &Agent, case: &Case) -> RawAnswer {
    if !case.stall {
        return raw::send_whole_then_read(agent.addr(), &case.bytes);
    }
    let mut s = raw::connect(agent.addr());
    s.write_all(&case.bytes).expect("send the start");
    raw::read_answer(&mut s).unwrap_or_else(|| panic!("{}: no answer", case.name))
}

/// Checks one answer; `Err` says what was wrong.
fn judge(case: &Case, a: &RawAnswer) -> Result<(), String> {
    let body: Value = serde_json::from_slice(&a.body).map_err(|e| {
        format!(
            "body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&a.body)
        )
    })?;
    let status = match case.expect {
        Expect::Ok(status) => status,
        Expect::Error(status, code) => {
            if body["error"] != code || !body["message"].is_string() {
                return Err(format!("want error {code:?}, got {body}"));
            }
            status
        }
    };
    if a.status != status {
        return Err(format!("want {status}, got {} {body}", a.status));
    }
    if a.status == 503 && a.header("retry-after").is_none() {
        return Err("a 503 without Retry-After".into());
    }
    Ok(())
}

#[test]
fn every_hostile_request_is_answered_with_its_json_error_stores_nothing_and_the_node_serves_on() {
    let (chain, twin) = donor_blocks();
    let agent = target();
    let api = agent.api();
    // The target holds donor's seq 1, so replays, gaps and equivocation have something to meet.
    api.ingest(&chain[0].ingest_json()).assert_status(200);
    // And it has a member that is down, so a CP write is refused 503 (with Retry-After).
    let mut partner = cluster_agent("partner");
    let body = json!({"new_agent_id": "partner", "endpoint": partner.base_url()});
    api.post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    partner.kill9();
    wait_until(
        Duration::from_secs(30),
        "the target sees partner down",
        || api.get("/v1/cluster/status").json()["partitioned"] == true,
    );
    let before = api.export_all();
    let table = build(&agent, &chain, &twin);
    assert!(table.cases.len() >= 60, "{} cases", table.cases.len());
    let mut failures = Vec::new();
    for case in &table.cases {
        let answer = exchange(&agent, case);
        if let Err(why) = judge(case, &answer) {
            failures.push(format!("{}: {why}", case.name));
        }
        // Still serving, and the strand is what it was.
        api.get("/healthz").assert_status(200);
        let now = api.export_all();
        if now.len() != before.len() {
            failures.push(format!(
                "{}: the strand went from {} to {} blocks",
                case.name,
                before.len(),
                now.len()
            ));
        }
    }
    println!(
        "hostile table: {} cases, {} failing",
        table.cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        agent.stderr().lines().all(|l| !l.contains("panicked")),
        "no panic"
    );
}
