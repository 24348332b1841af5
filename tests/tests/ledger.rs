//! The tamper-evident ledger against a real agent (issue 17): the node's own head key (0600,
//! never logged), signed heads that verify, inclusion and consistency proofs that verify
//! against them over HTTP, typed errors, and `sapixctl verify` pinning the key on first use,
//! accepting a chain that grew, and catching a rewritten history and a replaced head key.

use std::process::Output;

use sapix_core::ledger::wire::{ConsistencyProof, HeadJson, HeadsJson, InclusionProof};
use sapix_core::ledger::{HeadKey, SignedHead};
use sapix_tests::audit::{self, text};
use sapix_tests::{Agent, Auth};
use serde_json::json;

fn heads(agent: &Agent) -> Vec<SignedHead> {
    let h: HeadsJson = serde_json::from_value(
        agent
            .api()
            .get("/v1/ledger/heads")
            .assert_status(200)
            .json(),
    )
    .expect("heads parse");
    h.heads
        .iter()
        .map(|j: &HeadJson| SignedHead::try_from(j).expect("head parses"))
        .collect()
}

fn own_head(agent: &Agent) -> SignedHead {
    let hs = heads(agent);
    assert_eq!(hs.len(), 1, "{hs:?}");
    hs[0].clone()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn heads_and_proofs_verify_against_the_nodes_own_head_key() {
    let agent = Agent::start();
    let api = agent.api();
    let mut written = Vec::new();
    for n in 1..=3 {
        written.push(api.write("orders", &json!({ "n": n })));
    }
    let at3 = own_head(&agent);
    assert_eq!(at3.head.seq, 3);
    assert!(at3.verifies());

    // The head key: the node's own file, 0600, matching the heads, never in the logs.
    let key_file = agent.data_dir().join("head_key");
    let secret = std::fs::read_to_string(&key_file).expect("head_key file");
    #[cfg(unix)]
    assert_eq!(mode(&key_file), 0o600);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(secret.trim(), &mut bytes).expect("64 hex characters");
    assert_eq!(HeadKey::from_bytes(bytes).public(), at3.key);
    assert!(
        !agent.stderr().contains(secret.trim()),
        "the secret is logged"
    );

    for n in 4..=9 {
        written.push(api.write("orders", &json!({ "n": n })));
    }
    let head = own_head(&agent);
    assert_eq!(head.head.seq, 9);
    assert!(head.verifies());
    assert_eq!(head.key, at3.key, "one key across heads");

    for w in &written {
        let text = api
            .get(&format!("/v1/ledger/proof/inclusion?hash={}", w.hash))
            .assert_status(200)
            .text
            .clone();
        let p = InclusionProof::from_json(&text).expect("proof parses");
        assert_eq!(
            p.head.as_ref(),
            Some(&head),
            "proved against the latest head"
        );
        assert_eq!((p.seq, p.tree_size), (w.seq, 9));
        assert_eq!(p.verify(&head.head.root), Ok(()), "{}", w.hash);
        // And against the older head for the records it covers.
        if w.seq <= 3 {
            let text = api
                .get(&format!(
                    "/v1/ledger/proof/inclusion?hash={}&head_seq=3",
                    w.hash
                ))
                .assert_status(200)
                .text
                .clone();
            let p = InclusionProof::from_json(&text).expect("proof parses");
            assert_eq!(p.verify(&at3.head.root), Ok(()));
        }
    }
    let author = &written[0].author;
    let text = api
        .get(&format!(
            "/v1/ledger/proof/consistency?author={author}&from=3"
        ))
        .assert_status(200)
        .text
        .clone();
    let p = ConsistencyProof::from_json(&text).expect("proof parses");
    assert_eq!((p.from, p.to), (3, 9));
    assert_eq!(p.verify(&at3.head.root), Ok(()));
    let mut forged = at3.head.root;
    forged.0[0] ^= 1;
    assert!(
        p.verify(&forged).is_err(),
        "another past root is not extended"
    );

    // Typed errors.
    for bad in [
        "/v1/ledger/proof/inclusion".to_string(),
        "/v1/ledger/proof/inclusion?hash=xyz".to_string(),
        format!(
            "/v1/ledger/proof/inclusion?hash={}&head_seq=-1",
            written[0].hash
        ),
        format!(
            "/v1/ledger/proof/inclusion?hash={0}&hash={0}",
            written[0].hash
        ),
        format!("/v1/ledger/proof/consistency?author={author}"),
        format!("/v1/ledger/proof/consistency?author={author}&from=5&to=4"),
        "/v1/ledger/proof/consistency?author=Bad!&from=1".to_string(),
        "/v1/ledger/heads?x=1".to_string(),
    ] {
        api.get(&bad).assert_error(400, "bad_request");
    }
    api.get(&format!(
        "/v1/ledger/proof/consistency?author={author}&from=1&to=10"
    ))
    .assert_error(404, "beyond_head");
    api.get("/v1/ledger/proof/consistency?author=nobody&from=0")
        .assert_error(404, "no_head");
    api.get(&format!(
        "/v1/ledger/proof/inclusion?hash={}",
        "ab".repeat(32)
    ))
    .assert_error(404, "not_found");
    api.get_with("/v1/ledger/heads", Auth::None)
        .assert_error(401, "unauthorized");

    // The head survives a restart, and the chain goes on from it.
    let mut agent = agent;
    agent.restart();
    assert_eq!(own_head(&agent), head);
}

fn verify(agent: &Agent, state: &std::path::Path, hashes: &[&str]) -> Output {
    audit::verify(agent, state, hashes, &[])
}

fn verify_with(agent: &Agent, state: &std::path::Path, hashes: &[&str], extra: &[&str]) -> Output {
    audit::verify(agent, state, hashes, extra)
}

#[test]
fn sapixctl_verify_pins_the_key_follows_growth_and_catches_a_rewritten_history() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let state = scratch.path().join("audit.json");
    let mut agent = Agent::start();
    let api = agent.api();
    let first: Vec<_> = (0..5)
        .map(|n| api.write("orders", &json!({ "n": n })))
        .collect();

    let out = verify(&agent, &state, &[&first[2].hash]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("pinned on first use"), "{}", text(&out));
    assert!(
        text(&out).contains("is in the head at seq 5"),
        "{}",
        text(&out)
    );
    let pinned = std::fs::read_to_string(&state).expect("state written");

    for n in 5..12 {
        api.write("orders", &json!({ "n": n }));
    }
    let out = verify(&agent, &state, &[&first[0].hash]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("seq 12 extends seq 5"),
        "{}",
        text(&out)
    );
    let grown = std::fs::read_to_string(&state).expect("state");
    assert_ne!(grown, pinned, "the state moves forward");

    // The same node (same head key, seed, root key) with its strand replaced by another
    // history: the auditor refuses it, and keeps its state for the next run.
    agent.stop();
    for dir in ["strand", "graph", "blobs"] {
        let _ = std::fs::remove_dir_all(agent.data_dir().join(dir));
    }
    agent.restart();
    let api = agent.api();
    for n in 0..15 {
        api.write("orders", &json!({ "rewritten": n }));
    }
    let out = verify(&agent, &state, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("NOT consistent"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        grown,
        "state kept"
    );

    // A new head key for the same author is refused too.
    agent.stop();
    std::fs::remove_file(agent.data_dir().join("head_key")).expect("remove head key");
    agent.restart();
    let out = verify(&agent, &state, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the head key changed"),
        "{}",
        text(&out)
    );
}

/// A key rotated through `POST /v1/cluster/rotate-head-key` is followed by the auditor: the
/// rotation is signed by the pinned key, shown in the cluster status, and re-pinned; the chain
/// goes on consistent with what was seen before.
#[test]
fn sapixctl_verify_follows_a_signed_rotation_of_the_head_key() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let state = scratch.path().join("audit.json");
    let agent = Agent::start();
    let api = agent.api();
    for n in 0..3 {
        api.write("orders", &json!({ "n": n }));
    }
    let out = verify(&agent, &state, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let pinned = own_head(&agent).key.to_hex();

    let r = api
        .post_with("/v1/cluster/rotate-head-key", Auth::Root, String::new())
        .assert_status(200)
        .json();
    let new_key = r["head_key"].as_str().expect("new key").to_string();
    assert_ne!(new_key, pinned);
    let status = api.get("/v1/cluster/status").assert_status(200).json();
    let chain = status["nodes"][0]["head_keys"].clone();
    assert_eq!(chain.as_array().map(Vec::len), Some(2), "{status}");
    assert_eq!(chain[0]["key"], json!(pinned));
    assert_eq!(chain[1]["key"], json!(new_key));
    for n in 3..6 {
        api.write("orders", &json!({ "n": n }));
    }
    let out = verify(&agent, &state, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("head key rotated from") && text(&out).contains("1 signed rotation"),
        "{}",
        text(&out)
    );
    assert!(
        std::fs::read_to_string(&state).unwrap().contains(&new_key),
        "the new key is pinned"
    );
}

const SEED: &str = "17a17a17a17a17a17a17a17a17a17a17a17a17a17a17a17a17a17a17a17a17a1";

fn seeded(id: &str) -> Agent {
    Agent::builder()
        .env("SAPIX_AGENT_ID", id)
        .env("SAPIX_MASTER_SEED", SEED)
        .start()
}

#[test]
fn a_damaged_last_frame_is_reported_at_start_and_fetched_back_from_the_peer() {
    use sapix_tests::wait_until;
    use std::time::Duration;
    const WITHIN: Duration = Duration::from_secs(30);

    let mut a = seeded("primary");
    let mut b = seeded("replica-eu");
    let body = json!({ "new_agent_id": "replica-eu", "endpoint": b.base_url(), "role": "Replica" });
    a.api()
        .post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    a.api()
        .post_with("/v1/cluster/consistency", Auth::Root, r#"{"mode":"Ap"}"#)
        .assert_status(200);
    let written: Vec<_> = (0..5)
        .map(|n| a.api().write("orders", &json!({ "n": n })))
        .collect();
    let last = written.last().unwrap().clone();
    assert_eq!(last.seq, 5);
    wait_until(WITHIN, "the replica holds a:5", || {
        b.api().get(&format!("/v1/records/{}", last.hash)).status == 200
    });
    // The head over a:5 is signed (on demand here) and persisted.
    assert_eq!(own_head(&a).head.seq, 5);
    let head_file = a.data_dir().join("strand").join("head.json");
    wait_until(WITHIN, "head.json at seq 5", || {
        std::fs::read_to_string(&head_file).is_ok_and(|t| t.contains("\"seq\": 5"))
    });

    // a dies; a byte of its last frame flips; its index checkpoint is gone, so the start-up
    // scan meets the damaged frame and cuts it off like a torn write. b is down meanwhile.
    a.kill9();
    b.kill9();
    let segments = audit::segments(a.data_dir());
    let seg = segments.last().expect("a segment");
    let mut bytes = std::fs::read(seg).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(seg, bytes).unwrap();
    let _ = std::fs::remove_dir_all(a.data_dir().join("graph"));

    a.restart();
    // The node compares at its first instant: at the latest, this write's.
    a.api()
        .post_with(
            "/v1/records",
            Auth::Root,
            sapix_tests::Api::record_body("orders", &json!("early")),
        )
        .assert_error(503, "own_chain_unsafe");
    wait_until(WITHIN, "the lost tail reported in the log", || {
        a.stderr().contains("own_chain_unsafe")
    });

    b.restart();
    let mut seq = None;
    wait_until(WITHIN, "a takes its own writes again", || {
        let reply = a.api().post_with(
            "/v1/records",
            Auth::Root,
            sapix_tests::Api::record_body("orders", &json!("after")),
        );
        if reply.status == 201 {
            seq = reply.json()["seq"].as_u64();
        }
        reply.status == 201
    });
    assert_eq!(
        seq,
        Some(6),
        "a:5 came back from the replica and the chain goes on"
    );
    assert_eq!(
        a.api().read(&last.hash)["seq"],
        5,
        "the very block a acknowledged"
    );
    assert!(
        a.stderr().contains("own_chain_recovered"),
        "{}",
        a.stderr_tail()
    );
}

/// `member`'s enrolled head key as `at`'s status shows it, and how many are enrolled.
fn enrolled(at: &Agent, member: &str) -> (Option<String>, Option<u64>) {
    let status = at.api().get("/v1/cluster/status").assert_status(200).json();
    let node = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["agent_id"] == member)
        .unwrap_or_else(|| panic!("no {member} in {status}"))
        .clone();
    (
        node["head_key"].as_str().map(str::to_string),
        node["head_keys_enrolled"].as_u64(),
    )
}

#[test]
fn a_divide_enrols_each_head_key_and_a_rotation_spreads_and_survives_restarts() {
    use sapix_tests::wait_until;
    use std::time::Duration;
    const WITHIN: Duration = Duration::from_secs(30);

    let a = seeded("primary");
    let mut b = seeded("replica-eu");
    let key_of = |agent: &Agent| {
        let text = std::fs::read_to_string(agent.data_dir().join("head_key")).expect("head_key");
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret).expect("hex");
        HeadKey::from_bytes(secret).public().to_hex()
    };
    let (ka, kb) = (key_of(&a), key_of(&b));
    let body = json!({ "new_agent_id": "replica-eu", "endpoint": b.base_url(), "role": "Replica" });
    a.api()
        .post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    // The divider enrolled the key b answered with; b learned a's with the membership.
    assert_eq!(enrolled(&a, "replica-eu"), (Some(kb.clone()), Some(1)));
    assert_eq!(enrolled(&a, "primary"), (Some(ka.clone()), Some(1)));
    wait_until(WITHIN, "b knows both keys", || {
        enrolled(&b, "primary") == (Some(ka.clone()), Some(1))
            && enrolled(&b, "replica-eu") == (Some(kb.clone()), Some(1))
    });

    // b rotates: the answer names both keys; the file holds the new one, still 0600.
    let r = b
        .api()
        .post_with("/v1/cluster/rotate-head-key", Auth::Root, String::new())
        .assert_status(200)
        .json();
    assert_eq!(
        (r["replaced"].as_str(), r["enrolled"].as_u64()),
        (Some(kb.as_str()), Some(2))
    );
    let kb2 = r["head_key"].as_str().expect("new key").to_string();
    assert_ne!(kb2, kb);
    assert_eq!(key_of(&b), kb2);
    assert_eq!(mode(&b.data_dir().join("head_key")), 0o600);
    assert!(!b.data_dir().join("head_key.next").exists());
    assert!(
        !b.stderr().contains(&hex_secret(&b)),
        "the secret is never logged"
    );
    wait_until(WITHIN, "a enrolled b's rotation", || {
        enrolled(&a, "replica-eu") == (Some(kb2.clone()), Some(2))
    });
    assert!(a.stderr().contains("head_key_rotated") || b.stderr().contains("head_key_rotated"));
    // b's heads are signed with the new key from now on.
    b.api().write("orders", &json!({ "n": 1 }));
    let own = heads(&b)
        .into_iter()
        .find(|h| h.head.author.as_str() == "replica-eu")
        .expect("b's own head");
    assert_eq!(own.key.to_hex(), kb2);
    assert!(own.verifies());

    // A restart keeps the rotated key and the enrolment on both sides.
    b.restart();
    assert_eq!(key_of(&b), kb2);
    assert_eq!(enrolled(&b, "replica-eu"), (Some(kb2.clone()), Some(2)));
    assert!(!b.stderr().contains("head_key_not_enrolled"));

    // A key file replaced outside a rotation is reported, and cannot rotate.
    b.kill9();
    let stranger = HeadKey::from_bytes([7; 32]);
    std::fs::write(
        b.data_dir().join("head_key"),
        format!("{}\n", hex::encode(stranger.secret_bytes())),
    )
    .unwrap();
    b.restart();
    wait_until(WITHIN, "b reports its key is not the enrolled one", || {
        b.stderr().contains("head_key_not_enrolled")
    });
    b.api()
        .post_with("/v1/cluster/rotate-head-key", Auth::Root, String::new())
        .assert_error(409, "rotate_refused");
    assert_eq!(enrolled(&a, "replica-eu"), (Some(kb2), Some(2)));
}

fn hex_secret(agent: &Agent) -> String {
    std::fs::read_to_string(agent.data_dir().join("head_key"))
        .expect("head_key")
        .trim()
        .to_string()
}

/// The head of `author` that `at` holds, if any.
fn head_of(at: &Agent, author: &str) -> Option<SignedHead> {
    heads(at)
        .into_iter()
        .find(|h| h.head.author.as_str() == author)
}

/// The witnesses whose cosignatures of `head` verify.
fn witnessed_by(head: &SignedHead) -> Vec<String> {
    head.witnesses().iter().map(|w| w.to_string()).collect()
}

#[test]
fn a_peer_cosigns_each_pushed_head_and_refuses_one_over_another_chain() {
    use sapix_tests::wait_until;
    use std::time::Duration;
    const WITHIN: Duration = Duration::from_secs(30);

    let a = seeded("primary");
    let mut b = seeded("replica-eu");
    let body = json!({ "new_agent_id": "replica-eu", "endpoint": b.base_url(), "role": "Replica" });
    a.api()
        .post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    let kb = enrolled(&a, "replica-eu").0.expect("b enrolled");
    for n in 0..3 {
        a.api().write("orders", &json!({ "n": n }));
    }
    // The pushes carry a's head; b cosigns it and the cosignature comes back to a.
    wait_until(WITHIN, "a's head at seq 3 witnessed by b", || {
        head_of(&a, "primary")
            .is_some_and(|h| h.head.seq == 3 && witnessed_by(&h) == vec!["replica-eu"])
    });
    let own = head_of(&a, "primary").unwrap();
    assert!(own.verifies());
    assert_eq!(own.cosignatures[0].key.to_hex(), kb, "b's enrolled key");
    // b holds the same head, its own cosignature on it, and serves proofs of a's chain.
    let held = head_of(&b, "primary").expect("b holds a's head");
    assert_eq!(held.head, own.head);
    assert!(held.verifies());
    assert!(witnessed_by(&held).contains(&"replica-eu".to_string()));
    b.api()
        .get("/v1/ledger/proof/consistency?author=primary&from=1&to=3")
        .assert_status(200);
    // Status and metrics count the witnesses per author.
    let status = a.api().get("/v1/cluster/status").assert_status(200).json();
    let me = &status["nodes"][0];
    assert_eq!(
        (
            me["agent_id"].as_str(),
            me["head_seq"].as_u64(),
            me["head_witnesses"].as_u64()
        ),
        (Some("primary"), Some(3), Some(1))
    );
    let scrape = a.api().get("/metrics");
    let metrics = &scrape.assert_status(200).text;
    assert!(
        metrics.contains("sapix_head_witnesses{author=\"primary\"} 1"),
        "{metrics}"
    );
    // The auditor counts witnesses with their enrolled keys, and holds a head to a minimum.
    let scratch = tempfile::tempdir().expect("tempdir");
    let state = scratch.path().join("audit.json");
    let out = verify_with(&a, &state, &[], &["--min-witnesses", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 witness(es)"), "{}", text(&out));
    let out = verify_with(&a, &state, &[], &["--min-witnesses", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("fewer than the 2 asked"),
        "{}",
        text(&out)
    );

    // A head whose signature is not its key's is refused before the node sees it.
    let mut forged = serde_json::to_value(HeadJson::from(&own)).unwrap();
    forged["root"] = json!("ab".repeat(32));
    forged["cosignatures"] = json!([]);
    let push = |head: serde_json::Value| {
        b.api().post_with(
            "/v1/mesh/ingest",
            Auth::Root,
            json!({ "blocks": [], "head": head }).to_string(),
        )
    };
    push(forged).assert_error(422, "invalid_head");
    // a's own key over another chain (a's key file stolen, or a forking its chain): the
    // blocks are taken, the head is not cosigned, and b raises the alert.
    let secret = hex_secret(&a);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&secret, &mut bytes).unwrap();
    let fork = HeadKey::from_bytes(bytes).sign(sapix_core::ledger::Head {
        root: sapix_core::block::Hash([0xab; 32]),
        ..own.head.clone()
    });
    let answer = push(serde_json::to_value(HeadJson::from(&fork)).unwrap())
        .assert_status(200)
        .json();
    assert_eq!(answer.get("cosignature"), None, "{answer}");
    wait_until(WITHIN, "b's alert", || b.stderr().contains("head_refused"));
    assert_eq!(
        head_of(&b, "primary").unwrap().head,
        own.head,
        "the honest head kept"
    );
    // Both sides of it are kept on disk, counted in status, and no proof crosses seq 3.
    let evidence = b.data_dir().join("strand").join("evidence");
    wait_until(WITHIN, "the evidence file", || {
        std::fs::read_dir(&evidence).is_ok_and(|d| d.count() == 1)
    });
    let file = std::fs::read_dir(&evidence)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
    assert_eq!(kept["kind"], "head");
    assert_eq!(kept["held_root"], own.head.root.to_hex());
    let refused =
        SignedHead::try_from(&serde_json::from_value::<HeadJson>(kept["refused"].clone()).unwrap())
            .unwrap();
    assert!(refused.verifies(), "the evidence is signed by a's own key");
    let equivocations = |at: &Agent| {
        let status = at.api().get("/v1/cluster/status").assert_status(200).json();
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["agent_id"] == "primary")
            .unwrap()["equivocations"]
            .as_u64()
    };
    assert_eq!(equivocations(&b), Some(1));
    b.api()
        .get("/v1/ledger/proof/consistency?author=primary&from=1&to=3")
        .assert_error(409, "equivocation");
    b.restart();
    assert_eq!(equivocations(&b), Some(1), "kept across a restart");
    assert_eq!(
        head_of(&b, "primary").map(|h| h.head),
        Some(own.head),
        "the head witnessed is kept across a restart"
    );
}
