//! Chain reads against a real agent (issue 16): every author's tip, a page of one author's
//! records in seq order with a cursor, one record by author and seq; authorized like every
//! read (a page withholds what the token may not read), with typed errors for bad input.

use sapix_tests::{Agent, Auth, CodiosDev};
use serde_json::{json, Value};

#[test]
fn tips_pages_and_single_records_follow_the_authors_chain() {
    let agent = Agent::start();
    let api = agent.api();
    let written: Vec<_> = (1..=7)
        .map(|n| api.write("orders", &json!({ "n": n })))
        .collect();
    let author = written[0].author.clone();

    let tips = api.get("/v1/chains").assert_status(200).json();
    assert_eq!(
        tips,
        json!({"chains": [{"author": author, "seq": 7, "hash": written[6].hash}]})
    );

    // Pages of 3 walk the chain in seq order and stop at the tip.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = api
            .get(&format!("/v1/chains/{author}?after_seq={after}&limit=3"))
            .assert_status(200)
            .json();
        assert_eq!(page["tip"], 7);
        assert_eq!(page["withheld"], 0);
        for r in page["records"].as_array().expect("records") {
            seen.push((
                r["seq"].as_u64().unwrap(),
                r["hash"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_after_seq"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let expected: Vec<(u64, String)> = written.iter().map(|w| (w.seq, w.hash.clone())).collect();
    assert_eq!(seen, expected);

    let fifth = api
        .get(&format!("/v1/chains/{author}/5"))
        .assert_status(200)
        .json();
    assert_eq!(
        fifth,
        api.read(&written[4].hash),
        "the same record as by hash"
    );

    api.get(&format!("/v1/chains/{author}/8"))
        .assert_error(404, "not_found");
    api.get(&format!("/v1/chains/{author}/0"))
        .assert_error(404, "not_found");
    let empty = api.get("/v1/chains/nobody").assert_status(200).json();
    assert_eq!(
        empty,
        json!({"author": "nobody", "records": [], "withheld": 0, "tip": 0})
    );
    for bad in [
        "/v1/chains/Bad!".to_string(),
        format!("/v1/chains/{author}?limit=0"),
        format!("/v1/chains/{author}?limit=1001"),
        format!("/v1/chains/{author}?after_seq=-1"),
        format!("/v1/chains/{author}?after_seq=1&after_seq=2"),
        format!("/v1/chains/{author}?cursor=1"),
        format!("/v1/chains/{author}/x"),
        "/v1/chains?limit=1".to_string(),
    ] {
        api.get(&bad).assert_error(400, "bad_request");
    }
    api.get_with("/v1/chains", Auth::None)
        .assert_error(401, "unauthorized");
    api.get_with(&format!("/v1/chains/{author}/1"), Auth::Bearer("stranger"))
        .assert_error(404, "not_found");
    // Read-your-writes works on chain reads too.
    api.get(&format!("/v1/chains/{author}/7?min_position={author}:7"))
        .assert_status(200);
    api.get(&format!("/v1/chains?min_position={author}:8"))
        .assert_error(409, "position_not_reached");
}

#[test]
fn a_page_withholds_the_records_a_codios_token_may_not_read() {
    let codios = CodiosDev::start(&json!({ "tokens": { "reader": {"read": ["orders"]} } }));
    let agent = Agent::builder()
        .env("SAPIX_CODIOS_URL", &codios.url())
        .start();
    let api = agent.api();
    let w = api.write("orders", &json!(1));
    api.write("secrets", &json!(2));
    api.write("orders", &json!(3));
    let page = api
        .get_with(&format!("/v1/chains/{}", w.author), Auth::Bearer("reader"))
        .assert_status(200)
        .json();
    let seqs: Vec<u64> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 3]);
    assert_eq!(page["withheld"], 1);
    assert!(!page.to_string().contains("secrets"), "{page}");
    api.get_with(
        &format!("/v1/chains/{}/2", w.author),
        Auth::Bearer("reader"),
    )
    .assert_error(404, "not_found");
}
