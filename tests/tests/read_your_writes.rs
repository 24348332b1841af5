//! Read-your-writes across real processes (issue 16): a write's answer gives its position
//! (`author`, `seq`); a read on another node naming it with `min_position` never misses the
//! write. Cut off from the author, the read waits and is refused 409 `position_not_reached`
//! with what the node holds when its wait ends; once the author is back (here: a frozen
//! process, SIGSTOP then SIGCONT), a waiting read is answered with the record.

use std::time::{Duration, Instant};

use sapix_tests::{wait_until, Agent, Api, Auth};
use serde_json::json;

const SEED: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";
const WITHIN: Duration = Duration::from_secs(30);

fn node(id: &str) -> Agent {
    Agent::builder()
        .env("SAPIX_AGENT_ID", id)
        .env("SAPIX_MASTER_SEED", SEED)
        .env("SAPIX_MESH_TIMEOUT_MS", "1000")
        .start()
}

fn signal(agent: &Agent, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(agent.pid().expect("running")).expect("pid fits");
    // SAFETY: `kill` has no memory-safety preconditions; the pid is our own running child.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

fn read_at(api: &Api, hash: &str, position: &str, wait_ms: u64) -> sapix_tests::Reply {
    api.get(&format!(
        "/v1/records/{hash}?min_position={position}&wait_ms={wait_ms}"
    ))
}

#[test]
fn a_read_with_its_writes_position_waits_for_the_author_and_never_misses_the_write() {
    let a = node("author-a");
    let mut b = node("reader-b");
    let (api_a, api_b) = (a.api(), b.api());
    let body = json!({ "new_agent_id": "reader-b", "endpoint": b.base_url(), "role": "Replica" });
    api_a
        .post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    for api in [&api_a, &api_b] {
        api.post_with("/v1/cluster/consistency", Auth::Root, r#"{"mode":"Ap"}"#)
            .assert_status(200);
    }

    // Replicated already: answered at once, whatever the wait.
    let first = api_a.write("orders", &json!({ "n": 1 }));
    let position = format!("author-a:{}", first.seq);
    wait_until(WITHIN, "b reads the first write at its position", || {
        read_at(&api_b, &first.hash, &position, 10_000).status == 200
    });

    // b goes down; a writes (AP acknowledges alone); then a freezes and b comes back: b is
    // cut off from the author of the write it is asked to read.
    b.stop();
    let second = api_a.write("orders", &json!({ "n": 2 }));
    let position = format!("author-a:{}", second.seq);
    signal(&a, libc::SIGSTOP);
    b.restart();
    let api_b = b.api();

    let refused = read_at(&api_b, &second.hash, &position, 300);
    refused.assert_error(409, "position_not_reached");
    assert_eq!(
        refused.json()["holds"],
        json!({ "author-a": first.seq }),
        "b says how far it holds a's chain"
    );
    // Without a position b simply has no such record yet: the stale read the position avoids.
    api_b
        .get(&format!("/v1/records/{}", second.hash))
        .assert_error(404, "not_found");
    // No token, no wait: the position is looked at only for a reader the node would answer.
    api_b
        .get_with(
            &format!(
                "/v1/records/{}?min_position={position}&wait_ms=5000",
                second.hash
            ),
            Auth::None,
        )
        .assert_error(401, "unauthorized");

    let reader = std::thread::spawn({
        let (api_b, hash, position) = (api_b.clone(), second.hash.clone(), position.clone());
        move || {
            let asked = Instant::now();
            let reply = read_at(&api_b, &hash, &position, 10_000);
            (reply, asked.elapsed())
        }
    });
    // The partition is held for a fixed time (the fault, not a wait for a condition).
    let frozen_for = Duration::from_millis(1_500);
    std::thread::sleep(frozen_for);
    assert!(!reader.is_finished(), "the read waits while a is frozen");
    signal(&a, libc::SIGCONT);
    let (reply, waited) = reader.join().expect("reader thread");
    reply.assert_status(200);
    let record = reply.json();
    assert_eq!(record["data"], json!({ "n": 2 }));
    assert_eq!(record["seq"], second.seq);
    assert!(
        waited >= frozen_for,
        "answered only after a was back ({waited:?})"
    );
}
