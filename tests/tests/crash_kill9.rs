//! The crash test: an agent under concurrent write load is killed with SIGKILL mid-flight,
//! restarted on the same data directory, and must still hold every write it acknowledged, with
//! the right data, in a gap-free strand whose chain verifies. Three kill/restart cycles.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sapix_tests::strand::{verify_strand, ExportedBlock};
use sapix_tests::{cluster_agent, test_keys, wait_until, Api, Written};
use serde_json::{json, Value};

const WRITERS: usize = 24;
/// The agent is killed once this many writes of the cycle have been acknowledged, plus a
/// per-cycle offset so each kill lands at a different point of the strand.
const ACKS_BEFORE_KILL: usize = 1000;
const CYCLES: usize = 3;
/// Generous for a debug build on two cores; the kill is triggered by count, not time.
const ACKS_WITHIN: Duration = Duration::from_secs(120);

/// Shared state of one cycle's writers.
#[derive(Default)]
struct Load {
    acks: AtomicUsize,
    /// Set just before the SIGKILL: transport errors after it are the kill's doing.
    killing: AtomicBool,
    /// Stops every writer: set on a failure, or when the main thread is done or unwinding.
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
}

/// Stops the writers when dropped, even if the main thread unwinds, so the thread scope ends.
struct StopOnDrop<'a>(&'a Load);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

impl Load {
    fn fail(&self, why: String) {
        self.failures.lock().unwrap().push(why);
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Writes until the agent dies; returns every acknowledged write with the data sent.
fn writer(api: &Api, cycle: usize, id: usize, load: &Load) -> Vec<(Value, Written)> {
    let mut acked = Vec::new();
    for i in 0.. {
        if load.stop.load(Ordering::SeqCst) {
            break;
        }
        // Sizes vary so a torn tail can fall anywhere in a block.
        let data = json!({
            "cycle": cycle, "writer": id, "i": i,
            "pad": "p".repeat((id * 131 + i * 37) % 1500),
        });
        match api.try_write("crash", &data) {
            Ok(reply) if reply.status == 201 => {
                acked.push((data, Written::parse(&reply.json())));
                load.acks.fetch_add(1, Ordering::SeqCst);
            }
            Ok(reply) => {
                load.fail(format!("writer {id}: unexpected answer {reply:?}"));
                break;
            }
            Err(e) => {
                if !load.killing.load(Ordering::SeqCst) {
                    load.fail(format!("writer {id}: transport error before the kill: {e}"));
                }
                break;
            }
        }
    }
    acked
}

#[test]
fn acknowledged_writes_survive_sigkill_mid_flight() {
    let mut agent = cluster_agent("crash-node");
    let keys = test_keys();
    // Every acknowledged write of every cycle: hash → (data sent, acknowledgement).
    let mut acked: BTreeMap<String, (Value, Written)> = BTreeMap::new();

    for cycle in 0..CYCLES {
        let api = agent.api();
        let load = Load::default();
        let kill_at = ACKS_BEFORE_KILL + cycle * 317;
        let per_writer: Vec<Vec<(Value, Written)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|id| {
                    let (api, load) = (&api, &load);
                    s.spawn(move || writer(api, cycle, id, load))
                })
                .collect();
            let stop = StopOnDrop(&load);
            wait_until(
                ACKS_WITHIN,
                &format!("{kill_at} acknowledged writes in cycle {cycle}"),
                || load.acks.load(Ordering::SeqCst) >= kill_at || load.stop.load(Ordering::SeqCst),
            );
            load.killing.store(true, Ordering::SeqCst);
            agent.kill9();
            drop(stop);
            handles
                .into_iter()
                .map(|h| h.join().expect("writer thread"))
                .collect()
        });
        let failures = load.failures.into_inner().unwrap();
        assert!(failures.is_empty(), "cycle {cycle}: {failures:#?}");

        let cycle_acks: usize = per_writer.iter().map(Vec::len).sum();
        assert!(
            cycle_acks >= kill_at,
            "cycle {cycle}: only {cycle_acks} acks"
        );
        for (data, w) in per_writer.into_iter().flatten() {
            let hash = w.hash.clone();
            assert!(
                acked.insert(hash.clone(), (data, w)).is_none(),
                "hash {hash} acknowledged twice"
            );
        }

        agent.restart();
        let api = agent.api();
        let strand = api.export_all();
        let tips = verify_strand(&strand, &keys);
        assert_eq!(
            tips.keys().collect::<Vec<_>>(),
            ["crash-node"],
            "one author on this node"
        );
        // Each writer has at most one request in flight at the kill, so at most that many
        // stored blocks can be unacknowledged per cycle.
        let allowed = acked.len() + WRITERS * (cycle + 1);
        assert!(
            strand.len() <= allowed,
            "after cycle {cycle}: {} blocks stored but only {} acknowledged (+{} in flight)",
            strand.len(),
            acked.len(),
            WRITERS * (cycle + 1)
        );
        eprintln!(
            "cycle {cycle}: {cycle_acks} acks, {} blocks recovered, {} acknowledged in all",
            strand.len(),
            acked.len()
        );
        let by_hash: BTreeMap<String, &ExportedBlock> =
            strand.iter().map(|b| (b.hash(), b)).collect();
        for (hash, (data, w)) in &acked {
            let block = by_hash
                .get(hash)
                .unwrap_or_else(|| panic!("after cycle {cycle}: acknowledged write {w:?} lost"));
            assert_eq!(
                (block.offset, block.seq(), block.author()),
                (w.offset, w.seq, w.author.as_str()),
                "the block sits where its acknowledgement said"
            );
            assert_eq!(&block.data(), data, "export data of {hash}");
            let record = api.read(hash);
            assert_eq!(&record["data"], data, "read-back data of {hash}");
            assert_eq!(record["seq"], w.seq);
        }

        // The restarted node extends the recovered chain.
        let data = json!({"after_restart": cycle});
        let next = api.write("crash", &data);
        assert_eq!(next.offset, strand.len() as u64 + 1);
        assert_eq!(Some(&(next.seq - 1)), tips.get("crash-node"));
        acked.insert(next.hash.clone(), (data, next));
    }
}
