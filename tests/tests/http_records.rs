//! `POST /v1/records` and `GET /v1/records/{hash}` against a real agent: what is written reads
//! back exactly, and every refused request is refused with the contract's status and JSON error,
//! stores nothing, and leaves the node serving good writes.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use sapix_core::{AgentId, Hash, Signature};
use sapix_tests::http::is_hex;
use sapix_tests::strand::verify_strand;
use sapix_tests::{cluster_agent, test_keys, Api, Auth};
use serde_json::{json, Value};

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("ms fit u64")
}

/// After a refused request: nothing was stored, and the node still takes a good write, which
/// lands right after the old tip.
#[track_caller]
fn assert_nothing_stored_and_still_writes(api: &Api, tip_before: u64) {
    assert_eq!(
        api.tip(),
        tip_before,
        "a refused request must store nothing"
    );
    let ok = api.write("after-refusal", &json!({"still": "serving"}));
    assert_eq!(
        ok.offset,
        tip_before + 1,
        "the good write follows the old tip"
    );
}

#[test]
fn written_records_read_back_with_their_data_author_and_signature() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    let keys = test_keys();
    let payloads = [
        json!({"amount": 42, "currency": "EUR", "tags": ["a", "b"], "nested": {"x": [1, 2.5, null, true]}}),
        json!({"z": 1, "a": 2}),
        json!("a plain string with ü and ✓"),
        json!(-7),
        json!(null),
        json!([]),
    ];
    let started_ms = now_ms();
    let written: Vec<_> = payloads
        .iter()
        .map(|data| api.write("orders", data))
        .collect();
    let finished_ms = now_ms();

    for (i, (w, data)) in written.iter().zip(&payloads).enumerate() {
        assert_eq!(w.author, "writer-1", "the author is the agent id");
        assert_eq!(w.seq, i as u64 + 1, "seq increments by one per write");
        assert_eq!(w.offset, i as u64 + 1, "offset increments by one per write");

        let record = api.read(&w.hash);
        for key in [
            "hash",
            "author",
            "seq",
            "ts_ms",
            "collection",
            "data",
            "sig",
        ] {
            assert!(record.get(key).is_some(), "record lacks {key:?}: {record}");
        }
        assert_eq!(record["hash"], w.hash.as_str());
        assert_eq!(record["author"], "writer-1");
        assert_eq!(record["seq"], w.seq);
        assert_eq!(record["collection"], "orders");
        assert_eq!(&record["data"], data, "data reads back as written");
        let ts = record["ts_ms"].as_u64().expect("ts_ms is an integer");
        assert!(
            ts + 60_000 >= started_ms && ts <= finished_ms + 60_000,
            "ts_ms {ts} is the write's wall-clock time (test saw {started_ms}..{finished_ms})"
        );
        let sig = record["sig"].as_str().expect("sig is a string");
        assert!(is_hex(sig, 128), "sig is 128 hex characters: {sig}");
        let signed = keys.verify(
            &AgentId::new("writer-1").unwrap(),
            &Hash::from_hex(&w.hash).unwrap(),
            &Signature::from_hex(sig).unwrap(),
        );
        assert!(
            signed,
            "sig is writer-1's signature over the hash under the cluster seed"
        );
    }
    let distinct: BTreeSet<_> = written.iter().map(|w| &w.hash).collect();
    assert_eq!(
        distinct.len(),
        written.len(),
        "every record has its own hash"
    );

    let strand = api.export_all();
    assert_eq!(strand.len(), written.len());
    verify_strand(&strand, &keys);
    for (block, w) in strand.iter().zip(&written) {
        assert_eq!(block.hash(), w.hash, "export lists the writes in order");
    }
}

#[test]
fn collection_names_at_the_limits_are_accepted() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    let longest = "c".repeat(128);
    for name in ["a", "A.b_c-9", "...", longest.as_str()] {
        let w = api.write(name, &json!({"name": name}));
        assert_eq!(api.read(&w.hash)["collection"], name);
    }
}

#[test]
fn payload_just_under_one_mib_is_accepted_and_reads_back() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    let big = json!({"blob": "b".repeat(1_000_000)});
    let w = api.write("big", &big);
    assert_eq!(api.read(&w.hash)["data"], big);
}

#[test]
fn malformed_json_is_400_and_stores_nothing() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    api.write("before", &json!(1));
    let bodies = [
        r#"{"collection":"c","data":"#,
        "not json at all",
        "",
        "[]",
        r#"{"collection":"c"}"#,
        r#"{"data":{"x":1}}"#,
        r#"{"collection":5,"data":1}"#,
    ];
    for body in bodies {
        let tip = api.tip();
        let reply = api.post("/v1/records", body);
        assert_eq!(reply.status, 400, "body {body:?} → {reply:?}");
        reply.assert_error(400, "bad_request");
        assert_nothing_stored_and_still_writes(&api, tip);
    }
}

#[test]
fn invalid_collection_names_are_400_and_store_nothing() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    let too_long = "c".repeat(129);
    for name in [
        "",
        "has space",
        "a/b",
        "ünïcode",
        "semi;colon",
        "new\nline",
        too_long.as_str(),
    ] {
        let tip = api.tip();
        let reply = api.post("/v1/records", Api::record_body(name, &json!({"x": 1})));
        assert_eq!(reply.status, 400, "collection {name:?} → {reply:?}");
        reply.assert_error(400, "bad_request");
        assert_nothing_stored_and_still_writes(&api, tip);
    }
}

#[test]
fn body_over_the_limit_is_413_and_stores_nothing() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    api.write("before", &json!(1));
    let body = Api::record_body("big", &json!({"blob": "x".repeat(2 << 20)}));

    let tip = api.tip();
    let declared = api.raw_post(
        "/v1/records",
        &format!("Content-Length: {}\r\n", body.len()),
        body.clone(),
    );
    declared.assert_error(413, "payload_too_large");
    assert_nothing_stored_and_still_writes(&api, tip);

    // Without a Content-Length the limit must still hold while the body streams in.
    let mut chunked = Vec::new();
    for piece in body.chunks(256 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let tip = api.tip();
    let streamed = api.raw_post("/v1/records", "Transfer-Encoding: chunked\r\n", chunked);
    streamed.assert_error(413, "payload_too_large");
    assert_nothing_stored_and_still_writes(&api, tip);
}

#[test]
fn write_without_token_is_401_and_with_wrong_token_is_403() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    api.write("before", &json!(1));
    let body = Api::record_body("c", &json!({"x": 1}));

    let tip = api.tip();
    api.post_with("/v1/records", Auth::None, body.clone())
        .assert_error(401, "unauthorized");
    assert_nothing_stored_and_still_writes(&api, tip);

    let near_miss = format!("{}x", api.root_key());
    for token in ["wrong", near_miss.as_str()] {
        let tip = api.tip();
        api.post_with("/v1/records", Auth::Bearer(token), body.clone())
            .assert_error(403, "forbidden");
        assert_nothing_stored_and_still_writes(&api, tip);
    }
}

#[test]
fn unknown_routes_are_404() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    api.write("before", &json!(1));
    let tip = api.tip();
    api.get("/v1/nope").assert_error(404, "not_found");
    api.get_with("/nope", Auth::None)
        .assert_error(404, "not_found");
    api.post("/v1/nope", r#"{"collection":"c","data":1}"#)
        .assert_error(404, "not_found");
    assert_nothing_stored_and_still_writes(&api, tip);
}

#[test]
fn absent_record_is_404_and_malformed_hash_is_400() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    let w = api.write("before", &json!(1));
    let tip = api.tip();

    let absent = "0".repeat(64);
    api.get(&format!("/v1/records/{absent}"))
        .assert_error(404, "not_found");
    // A hash that differs from a stored one in its last digit is just as absent.
    let last = if w.hash.ends_with('0') { "1" } else { "0" };
    let sibling = format!("{}{last}", &w.hash[..63]);
    api.get(&format!("/v1/records/{sibling}"))
        .assert_error(404, "not_found");

    let non_hex = "g".repeat(64);
    let short = &w.hash[..63];
    let long = format!("{}0", w.hash);
    for bad in ["xyz", short, long.as_str(), non_hex.as_str()] {
        let reply = api.get_with(&format!("/v1/records/{bad}"), Auth::None);
        assert_eq!(reply.status, 400, "hash {bad:?} → {reply:?}");
        reply.assert_error(400, "bad_request");
    }
    assert_nothing_stored_and_still_writes(&api, tip);
    assert_eq!(api.read(&w.hash)["data"], json!(1));
}

#[test]
fn wrong_method_on_a_record_is_405_and_changes_nothing() {
    let agent = cluster_agent("writer-1");
    let api = agent.api();
    let w = api.write("keep", &json!({"keep": true}));
    let tip = api.tip();
    let path = format!("/v1/records/{}", w.hash);
    for method in [Method::DELETE, Method::PUT] {
        let reply = api.send(method.clone(), &path, Auth::Root, Some(b"{}".to_vec()));
        assert_eq!(reply.status, 405, "{method} {path} → {reply:?}");
    }
    let record: Value = api.read(&w.hash);
    assert_eq!(record["data"], json!({"keep": true}));
    assert_nothing_stored_and_still_writes(&api, tip);
}
