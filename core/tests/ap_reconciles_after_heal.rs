//! AP: during a partition both sides keep accepting writes; once the partition heals,
//! pushes and pull-sync reconcile with no operator, and every node ends with the same blocks,
//! each author's chain intact (DESIGN §4, §6.2).

mod common;

use common::{id, t, World};
use sapix_core::node::Input;
use sapix_core::repl::backoff::BackoffPolicy;
use sapix_core::{Consistency, Response};

fn written(w: &World, req: sapix_core::node::RequestId) -> bool {
    matches!(w.answer(req), Some(Response::Written(_)))
}

#[test]
fn both_sides_write_during_a_partition_and_converge_after_heal() {
    // Both nodes start in CP; the operator switches each writing node to AP (DESIGN §4: the
    // mode is per node).
    let mut w = World::cluster(&["a", "b"], Consistency::Cp, BackoffPolicy::default());
    w.start_quietly();
    for n in ["a", "b"] {
        let req = w.ask(n, |request| Input::ConsistencyRequested {
            request,
            mode: Consistency::Ap,
        });
        assert_eq!(
            w.answer(req),
            Some(&Response::ConsistencySet {
                consistency: Consistency::Ap,
                previous: Consistency::Cp
            })
        );
        assert_eq!(
            w.host(n).persisted_cluster.as_ref().unwrap().consistency,
            Consistency::Ap,
            "persisted before answered"
        );
    }
    let req = w.write("a", r#"{"before":1}"#);
    assert!(written(&w, req));

    w.run_until(t(1_000));
    w.cut("a", "b");
    w.note("partition: both sides write");
    for (n, body) in [
        ("a", "a2"),
        ("b", "b1"),
        ("a", "a3"),
        ("b", "b2"),
        ("a", "a4"),
    ] {
        let req = w.write(n, &format!(r#"{{"v":"{body}"}}"#));
        assert!(written(&w, req), "AP accepts writes during a partition");
    }
    w.advance(5_000);
    assert_ne!(w.chain_view("a"), w.chain_view("b"), "diverged");
    assert!(w.status("a").partitioned && w.status("b").partitioned);

    w.heal("a", "b");
    w.advance(5_000);
    assert_eq!(w.chain_view("a"), w.chain_view("b"), "converged");
    for n in ["a", "b"] {
        let held = w.assert_strand_intact(n);
        assert_eq!(held.get(&id("a")), Some(&4), "{n}");
        assert_eq!(held.get(&id("b")), Some(&2), "{n}");
        let st = w.status(n);
        assert!(!st.partitioned);
        assert_eq!(st.nodes[1].queue_depth, Some(0));
    }
    insta::assert_snapshot!(w.trace);
}

#[test]
fn three_nodes_with_one_cut_off_converge_after_heal() {
    let mut w = World::cluster(&["a", "b", "c"], Consistency::Ap, BackoffPolicy::default());
    w.start_quietly();
    w.run_until(t(1_000));
    w.cut("a", "b");
    w.cut("a", "c");
    w.tracing = false;
    for i in 0..50 {
        for n in ["a", "b", "c"] {
            let req = w.write(n, &format!(r#"{{"i":{i}}}"#));
            assert!(written(&w, req));
        }
        w.advance(250);
    }
    w.tracing = true;
    w.note("a was cut off from b and c for 12.5 s while all three wrote 50 records each");
    assert_eq!(
        w.chain_view("b"),
        w.chain_view("c"),
        "b and c replicate to each other"
    );
    assert_ne!(w.chain_view("a"), w.chain_view("b"));

    w.heal("a", "b");
    w.heal("a", "c");
    w.hide = vec!["Probe", "ProbeAnswer"];
    w.advance(10_000);
    let a = w.chain_view("a");
    assert_eq!(a, w.chain_view("b"));
    assert_eq!(a, w.chain_view("c"));
    for n in ["a", "b", "c"] {
        let held = w.assert_strand_intact(n);
        assert_eq!(
            held.values().copied().collect::<Vec<_>>(),
            [50, 50, 50],
            "{n}"
        );
        assert_eq!(w.host(n).store.len(), 150, "{n}: no block stored twice");
    }
    insta::assert_snapshot!(w.trace);
}
