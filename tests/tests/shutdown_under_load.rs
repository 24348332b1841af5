//! SIGTERM under load (issue 14): the agent stops accepting, finishes the writes it took,
//! checkpoints, logs that shutdown completed and exits 0 by itself — and every write it
//! answered 201 is there after a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sapix_tests::{wait_until, Agent};
use serde_json::json;

const WRITERS: usize = 8;

#[test]
fn sigterm_under_load_exits_0_and_loses_no_acknowledged_write() {
    let mut agent = Agent::start();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (api, acked, stop) = (agent.api(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match api.try_write("load", &json!({ "w": w, "i": i })) {
                        Ok(r) if r.status == 201 => {
                            acked
                                .lock()
                                .unwrap()
                                .push(r.json()["hash"].as_str().unwrap().into());
                        }
                        Ok(r) => answers.push(r.status),
                        // Refused connections once the listener is gone: the load is over.
                        Err(_) => break,
                    }
                }
                answers
            })
        })
        .collect();
    wait_until(Duration::from_secs(30), "200 writes acknowledged", || {
        acked.lock().unwrap().len() >= 200
    });
    let asked = Instant::now();
    let status = agent.stop().expect("it was running");
    let took = asked.elapsed();
    stop.store(true, Ordering::Relaxed);
    let others: Vec<u16> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(status.success(), "{status:?}\n{}", agent.stderr_tail());
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    let log = agent.stderr();
    assert!(log.contains("shutdown complete"), "{log}");
    // While draining, a write may be refused (503), never failed.
    assert!(
        others.iter().all(|s| *s == 503),
        "non-201 answers: {others:?}"
    );

    agent.restart();
    let api = agent.api();
    let acked = acked.lock().unwrap();
    for hash in acked.iter() {
        api.read(hash);
    }
    eprintln!(
        "{} writes acknowledged before SIGTERM, all durable; stopped in {took:?}",
        acked.len()
    );
}
