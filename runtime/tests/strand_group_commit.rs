//! Group commit: concurrent appends get distinct, contiguous offsets, are answered in queue
//! order, and share fsyncs.

mod strand_common;

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use sapix_core::Block;
use strand_common::{open, opts, snapshot, Chain};

#[test]
fn concurrent_appenders_get_distinct_contiguous_offsets() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 25;
    let root = tempfile::tempdir().unwrap();
    let o = opts(root.path());
    let strand = Arc::new(open(&o));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let strand = strand.clone();
            let start = start.clone();
            thread::spawn(move || {
                let mut chain = Chain::new(&format!("writer-{t}"));
                start.wait();
                (0..PER_THREAD)
                    .map(|_| {
                        let b = chain.next_small();
                        let offsets = strand.append_blocking(vec![b.clone()]).unwrap();
                        assert_eq!(offsets.len(), 1);
                        (offsets[0], b)
                    })
                    .collect::<Vec<(u64, Block)>>()
            })
        })
        .collect();
    let results: Vec<Vec<(u64, Block)>> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let total = (THREADS * PER_THREAD) as u64;
    let all: BTreeSet<u64> = results.iter().flatten().map(|(o, _)| *o).collect();
    assert_eq!(all, (1..=total).collect());
    for per_thread in &results {
        // One thread's appends are sequential, so its offsets only grow.
        assert!(per_thread.windows(2).all(|w| w[0].0 < w[1].0));
        for (offset, block) in per_thread {
            assert_eq!(strand.get(*offset).unwrap().as_ref(), Some(block));
        }
    }
    let stats = strand.stats();
    assert_eq!(stats.appended_blocks, total);
    assert_eq!(stats.append_requests, total);
    assert!(
        stats.fsyncs <= stats.batches && stats.batches <= total,
        "{stats:?}"
    );
    assert_eq!(strand.tip(), total);

    let before = snapshot(&strand);
    drop(strand);
    assert_eq!(snapshot(&open(&o)), before);
}

#[test]
fn appends_queued_during_an_fsync_share_the_next_one() {
    const WAITERS: usize = 16;
    let root = tempfile::tempdir().unwrap();
    let strand = Arc::new(open(&opts(root.path())));
    let (answers_tx, answers_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();

    // The first append's callback runs on the writer thread and holds it until every other
    // append is queued: whatever the scheduling, those all land in at most one more batch.
    let mut first = Chain::new("first");
    let tx = answers_tx.clone();
    strand.append(
        vec![first.next_small()],
        Box::new(move |r| {
            release_rx.recv().unwrap();
            tx.send(("first".to_string(), r)).unwrap();
        }),
    );
    let queued = Arc::new(Barrier::new(WAITERS + 1));
    let handles: Vec<_> = (0..WAITERS)
        .map(|t| {
            let strand = strand.clone();
            let tx = answers_tx.clone();
            let queued = queued.clone();
            thread::spawn(move || {
                let name = format!("waiter-{t}");
                let block = Chain::new(&name).next_small();
                strand.append(vec![block], Box::new(move |r| tx.send((name, r)).unwrap()));
                queued.wait();
            })
        })
        .collect();
    queued.wait();
    release_tx.send(()).unwrap();
    for h in handles {
        h.join().unwrap();
    }
    drop(answers_tx);
    let answers: Vec<(String, Vec<u64>)> = answers_rx
        .iter()
        .map(|(name, r)| (name, r.unwrap()))
        .collect();
    assert_eq!(answers.len(), WAITERS + 1);
    assert_eq!(answers[0], ("first".to_string(), vec![1]));
    // Answered in queue order: offsets ascend in the order the callbacks ran.
    let offsets: Vec<u64> = answers.iter().flat_map(|(_, o)| o.clone()).collect();
    assert_eq!(offsets, (1..=WAITERS as u64 + 1).collect::<Vec<_>>());

    let stats = strand.stats();
    assert_eq!(stats.appended_blocks, WAITERS as u64 + 1);
    assert!(stats.batches <= 2, "{stats:?}");
    assert!(stats.fsyncs <= stats.batches, "{stats:?}");
    assert!(stats.fsyncs < stats.appended_blocks, "{stats:?}");
}

#[test]
fn one_request_of_many_blocks_is_one_fsync() {
    let root = tempfile::tempdir().unwrap();
    let strand = open(&opts(root.path()));
    let mut c = Chain::new("bulk");
    let blocks: Vec<Block> = (0..100).map(|_| c.next_small()).collect();
    let offsets = strand.append_blocking(blocks).unwrap();
    assert_eq!(offsets, (1..=100).collect::<Vec<_>>());
    let stats = strand.stats();
    assert_eq!((stats.batches, stats.fsyncs, stats.dir_fsyncs), (1, 1, 0));
}
