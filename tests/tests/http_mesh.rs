//! `GET /v1/mesh/export` and `POST /v1/mesh/ingest` between real agents of one cluster:
//! export pages are contiguous, ingest copies blocks exactly and idempotently, and a block that
//! is forged, out of chain order or unauthenticated is refused and stores nothing.

use std::collections::BTreeSet;

use sapix_tests::strand::{batch, verify_strand, ExportedBlock, EXPORT_FIELDS};
use sapix_tests::{cluster_agent, test_keys, Agent, Api, Auth, Written};
use serde_json::json;

fn write_n(api: &Api, n: u64, collection: &str) -> Vec<Written> {
    (1..=n)
        .map(|i| api.write(collection, &json!({"i": i, "note": format!("record {i}")})))
        .collect()
}

#[track_caller]
fn assert_ingest(reply: &sapix_tests::Reply, accepted: u64, duplicates: u64) {
    reply.assert_status(200);
    assert_eq!(
        reply.json(),
        json!({"accepted": accepted, "duplicates": duplicates}),
        "ingest answer"
    );
}

#[test]
fn export_pages_are_contiguous_and_next_is_the_last_offset() {
    let agent = cluster_agent("pager");
    let api = agent.api();
    let written = write_n(&api, 25, "pages");

    let mut all = Vec::new();
    for (after, offsets) in [(0, 1..=10), (10, 11..=20), (20, 21..=25)] {
        let page = api.export(after, Some(10));
        let got: Vec<u64> = page.blocks.iter().map(|b| b.offset).collect();
        assert_eq!(
            got,
            offsets.clone().collect::<Vec<_>>(),
            "page after {after}"
        );
        assert_eq!(page.next, *offsets.end(), "next is the page's last offset");
        assert_eq!(page.tip, 25, "tip is the last offset");
        all.extend(page.blocks);
    }
    let end = api.export(25, Some(10));
    assert!(end.blocks.is_empty(), "nothing after the tip");
    assert_eq!(
        (end.next, end.tip),
        (25, 25),
        "an empty page's next is `after`"
    );
    let beyond = api.export(100, Some(10));
    assert!(beyond.blocks.is_empty());
    assert_eq!((beyond.next, beyond.tip), (100, 25));

    verify_strand(&all, &test_keys());
    for (block, w) in all.iter().zip(&written) {
        assert_eq!(block.field_names(), EXPORT_FIELDS, "exported block fields");
        assert_eq!(block.fields["version"].get(), "1");
        assert_eq!(block.hash(), w.hash);
        assert_eq!((block.author(), block.seq()), ("pager", w.seq));
        assert_eq!(block.collection(), "pages");
        assert_eq!(
            block.data(),
            json!({"i": w.seq, "note": format!("record {}", w.seq)})
        );
    }
}

#[test]
fn export_pages_default_to_100_blocks_and_refuse_bad_cursors() {
    let agent = cluster_agent("pager");
    let api = agent.api();
    write_n(&api, 105, "many");

    let default = api.export(0, None);
    assert_eq!(default.blocks.len(), 100, "default limit is 100");
    assert_eq!((default.next, default.tip), (100, 105));
    let largest = api.export(0, Some(1000));
    assert_eq!(
        largest.blocks.len(),
        105,
        "limit 1000 returns everything here"
    );
    assert_eq!(largest.next, 105);

    for query in ["after=abc", "after=-1", "after=0&limit=ten"] {
        let reply = api.get(&format!("/v1/mesh/export?{query}"));
        assert_eq!(reply.status, 400, "{query} → {reply:?}");
        reply.assert_error(400, "bad_request");
    }
}

#[test]
fn ingest_copies_blocks_between_nodes_of_one_cluster() {
    let a = cluster_agent("region-a");
    let b = cluster_agent("region-b");
    let (api_a, api_b) = (a.api(), b.api());
    let written = write_n(&api_a, 5, "orders");
    let exported = api_a.export_all();

    assert_ingest(
        &api_b.ingest(&batch(exported.iter().map(ExportedBlock::ingest_json))),
        5,
        0,
    );

    let on_b = api_b.export_all();
    verify_strand(&on_b, &test_keys());
    let hashes_b: Vec<String> = on_b.iter().map(ExportedBlock::hash).collect();
    let hashes_a: Vec<String> = written.iter().map(|w| w.hash.clone()).collect();
    assert_eq!(hashes_b, hashes_a, "B holds A's blocks, in A's order");
    for (block, w) in on_b.iter().zip(&written) {
        assert_eq!((block.author(), block.seq()), ("region-a", w.seq));
        assert_eq!(
            block.fields["data"].get(),
            exported[block.offset as usize - 1].fields["data"].get(),
            "data is byte-exact"
        );
        let record = api_b.read(&w.hash);
        assert_eq!(record["author"], "region-a");
        assert_eq!(
            record["data"],
            json!({"i": w.seq, "note": format!("record {}", w.seq)})
        );
    }

    // B's own chain starts at seq 1 after the foreign blocks.
    let own = api_b.write("orders", &json!({"from": "b"}));
    assert_eq!(
        (own.author.as_str(), own.seq, own.offset),
        ("region-b", 1, 6)
    );

    // A later block arrives alone, as a single object.
    let sixth = api_a.write("orders", &json!({"i": 6}));
    let page = api_a.export(5, Some(1));
    assert_eq!(page.blocks[0].hash(), sixth.hash);
    assert_ingest(&api_b.ingest(&page.blocks[0].ingest_json()), 1, 0);
    let last = api_b.export(6, Some(10));
    assert_eq!(last.blocks.len(), 1);
    assert_eq!(
        (last.blocks[0].hash(), last.blocks[0].offset),
        (sixth.hash, 7)
    );
    verify_strand(&api_b.export_all(), &test_keys());
}

#[test]
fn ingesting_the_same_block_twice_stores_it_once() {
    let a = cluster_agent("region-a");
    let b = cluster_agent("region-b");
    let (api_a, api_b) = (a.api(), b.api());
    write_n(&api_a, 3, "orders");
    let exported = api_a.export_all();
    let bodies: Vec<String> = exported.iter().map(ExportedBlock::ingest_json).collect();

    assert_ingest(&api_b.ingest(&bodies[0]), 1, 0);
    assert_ingest(&api_b.ingest(&bodies[0]), 0, 1);
    assert_ingest(&api_b.ingest(&batch(&bodies)), 2, 1);
    assert_ingest(&api_b.ingest(&batch(&bodies)), 0, 3);

    let on_b = api_b.export_all();
    assert_eq!(on_b.len(), 3, "each block stored once");
    let distinct: BTreeSet<String> = on_b.iter().map(ExportedBlock::hash).collect();
    assert_eq!(distinct.len(), 3);
    verify_strand(&on_b, &test_keys());

    // A node's own blocks coming back are duplicates too.
    assert_ingest(&api_a.ingest(&batch(&bodies)), 0, 3);
    assert_eq!(api_a.tip(), 3);
}

#[test]
fn forged_blocks_are_422_and_store_nothing() {
    let a = cluster_agent("region-a");
    let b = cluster_agent("region-b");
    let (api_a, api_b) = (a.api(), b.api());
    write_n(&api_a, 1, "orders");
    let genuine = api_a.export_all().remove(0);

    let forgeries = genuine.forgeries();
    for (what, body) in &forgeries {
        let reply = api_b.ingest(body);
        assert_eq!(reply.status, 422, "{what} → {reply:?}");
        reply.assert_error(422, "invalid_block");
        assert_eq!(api_b.tip(), 0, "{what}: nothing stored");
        let batched = api_b.ingest(&batch([body]));
        assert_eq!(batched.status, 422, "{what} in a batch → {batched:?}");
        assert_eq!(api_b.tip(), 0, "{what} in a batch: nothing stored");
    }
    api_b
        .get(&format!("/v1/records/{}", genuine.hash()))
        .assert_error(404, "not_found");

    // The refusals left no trace: the genuine block is still welcome.
    assert_ingest(&api_b.ingest(&genuine.ingest_json()), 1, 0);
    assert_eq!(api_b.read(&genuine.hash())["data"], genuine.data());
}

#[test]
fn block_signed_under_another_master_seed_is_422() {
    let b = cluster_agent("region-b");
    // Same agent id as a real cluster member, but a different seed: a well-formed block whose
    // hash is right and whose signature is not region-a's key in this cluster.
    let impostor = Agent::builder()
        .env("SAPIX_MASTER_SEED", &"ab".repeat(32))
        .env("SAPIX_AGENT_ID", "region-a")
        .start();
    let api_i = impostor.api();
    write_n(&api_i, 1, "orders");
    let forged = api_i.export_all().remove(0);

    let api_b = b.api();
    api_b
        .ingest(&forged.ingest_json())
        .assert_error(422, "invalid_block");
    assert_eq!(api_b.tip(), 0, "nothing stored");
}

#[test]
fn block_ahead_of_its_chain_is_409_and_stores_nothing() {
    let a = cluster_agent("region-a");
    let b = cluster_agent("region-b");
    let (api_a, api_b) = (a.api(), b.api());
    write_n(&api_a, 3, "orders");
    let exported = api_a.export_all();
    let body = |seq: usize| exported[seq - 1].ingest_json();

    api_b.ingest(&body(2)).assert_error(409, "out_of_order");
    assert_eq!(api_b.tip(), 0, "nothing stored");
    assert_ingest(&api_b.ingest(&body(1)), 1, 0);
    api_b.ingest(&body(3)).assert_error(409, "out_of_order");
    assert_eq!(api_b.tip(), 1, "nothing more stored");
    assert_ingest(&api_b.ingest(&body(2)), 1, 0);
    assert_ingest(&api_b.ingest(&body(3)), 1, 0);
    verify_strand(&api_b.export_all(), &test_keys());
}

#[test]
fn second_block_for_a_taken_seq_is_refused_and_the_first_is_kept() {
    // Two processes claiming the same agent id each write a valid seq 1: equivocation.
    let a = cluster_agent("region-a");
    let twin = cluster_agent("region-a");
    let b = cluster_agent("region-b");
    write_n(&a.api(), 1, "orders");
    twin.api().write("orders", &json!({"other": "history"}));
    let first = a.api().export_all().remove(0);
    let second = twin.api().export_all().remove(0);
    assert_ne!(first.hash(), second.hash());

    let api_b = b.api();
    assert_ingest(&api_b.ingest(&first.ingest_json()), 1, 0);
    let reply = api_b.ingest(&second.ingest_json());
    assert!(
        (400..500).contains(&reply.status),
        "a second, different seq 1 of region-a must be refused: {reply:?}"
    );
    let on_b = api_b.export_all();
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].hash(), first.hash(), "the first block is kept");
}

#[test]
fn mesh_endpoints_require_the_root_key() {
    let a = cluster_agent("region-a");
    let b = cluster_agent("region-b");
    let (api_a, api_b) = (a.api(), b.api());
    write_n(&api_a, 1, "orders");
    let body = api_a.export_all().remove(0).ingest_json();

    api_a
        .get_with("/v1/mesh/export?after=0", Auth::None)
        .assert_error(401, "unauthorized");
    api_a
        .get_with("/v1/mesh/export?after=0", Auth::Bearer("wrong"))
        .assert_error(403, "forbidden");
    api_b
        .post_with("/v1/mesh/ingest", Auth::None, body.clone())
        .assert_error(401, "unauthorized");
    api_b
        .post_with("/v1/mesh/ingest", Auth::Bearer("wrong"), body.clone())
        .assert_error(403, "forbidden");
    assert_eq!(api_b.tip(), 0, "unauthenticated ingest stored nothing");

    for malformed in ["{", "[]", r#"{"blocks":"nope"}"#, r#"{"version":1}"#] {
        let reply = api_b.ingest(malformed);
        assert_eq!(reply.status, 400, "{malformed:?} → {reply:?}");
        reply.assert_error(400, "bad_request");
    }
    assert_eq!(api_b.tip(), 0, "malformed ingest stored nothing");
    assert_ingest(&api_b.ingest(&body), 1, 0);
    assert_eq!(api_b.tip(), 1, "with the root key the block is stored");
}
