//! How each call's end maps to what the node acts on.

use super::*;
use crate::node::Response;

fn peer() -> AgentId {
    AgentId::new("peer").expect("valid id")
}

fn push() -> Call {
    Call::Push {
        peer: peer(),
        through: 9,
        head: None,
    }
}

fn answered(call: Call, response: Response) -> Done {
    call.ended(Reply::from_response(response))
}

#[test]
fn the_ingest_answer_acknowledges_a_push_through_its_last_seq() {
    let done = answered(
        push(),
        Response::Ingested {
            accepted: 2,
            duplicates: 0,
            witnessed: None,
        },
    );
    assert!(matches!(done, Done::PushAcked { through: 9, .. }));
}

#[test]
fn a_gap_is_a_push_gap_but_a_failed_copy() {
    let gap = Reply::Gap { expected: 4 };
    assert!(matches!(
        push().finished(gap.clone()),
        Done::PushGap { expected: 4, .. }
    ));
    let copy = Call::Copy { to: peer() };
    let Done::CopyFailed { reason, .. } = copy.finished(gap.of_copy(20, 3)) else {
        panic!("a copy refused with a gap must fail");
    };
    assert!(reason.to_string().contains("expected seq 4"), "{reason}");
}

#[test]
fn a_copy_is_done_only_with_the_batch_the_shell_sent() {
    let copy = Call::Copy { to: peer() };
    assert!(matches!(
        copy.clone()
            .finished(Reply::Ingested { witnessed: None }.of_copy(20, 3)),
        Done::Copied {
            next: 20,
            sent: 3,
            ..
        }
    ));
    // A bare ingest says nothing of which batch: not a success of the copy.
    assert!(matches!(
        copy.finished(Reply::Ingested { witnessed: None }),
        Done::CopyFailed { .. }
    ));
}

#[test]
fn an_answer_that_is_not_a_success_is_a_failure_that_names_it() {
    let Done::PushFailed { reason, .. } = answered(push(), Response::StorageFailed) else {
        panic!("a push answered StorageFailed must fail");
    };
    assert_eq!(reason, Failure::Unfit("answered StorageFailed".into()));
}

#[test]
fn a_reply_that_does_not_fit_its_call_is_a_failure() {
    let announce = Call::Announce { to: peer() };
    assert!(matches!(
        announce.finished(Reply::Ingested { witnessed: None }),
        Done::AnnounceFailed { .. }
    ));
    let probe = Call::Probe { peer: peer() };
    let Done::ProbeFailed { reason, .. } = answered(
        probe,
        Response::MembersUpdated {
            peers: 2,
            members: Vec::new(),
        },
    ) else {
        panic!("a probe answered with a membership update must fail");
    };
    assert_eq!(
        reason,
        Failure::Unfit("answered with a membership update".into())
    );
}

#[test]
fn a_divide_and_a_peer_probing_one_node_hear_their_own_answers() {
    let probed = || Reply::Probed {
        agent_id: peer(),
        holds: 3,
        tip: None,
        digest: None,
        head_key: None,
    };
    assert!(matches!(
        Call::Probe { peer: peer() }.finished(probed()),
        Done::ProbeAnswered { holds: 3, .. }
    ));
    assert!(matches!(
        Call::Verify { new: peer() }.finished(probed()),
        Done::Verified { .. }
    ));
    let members = || Reply::MembersUpdated {
        members: Vec::new(),
    };
    assert!(matches!(
        Call::Announce { to: peer() }.finished(members()),
        Done::Announced { .. }
    ));
    assert!(matches!(
        Call::Tell { new: peer() }.finished(members()),
        Done::Told { .. }
    ));
    assert!(matches!(
        Call::Tell { new: peer() }.ended(Err(Failure::Refused("no".into()))),
        Done::TellFailed { .. }
    ));
}

#[test]
fn a_call_ends_once() {
    let mut calls = Calls::default();
    let a = calls.open(push());
    let b = calls.open(Call::Probe { peer: peer() });
    assert_ne!(a, b);
    assert_eq!(calls.close(a), Some(push()));
    assert_eq!(
        calls.close(a),
        None,
        "a second report of the same call is ignored"
    );
    assert_eq!(calls.len(), 1);
}

#[test]
fn a_state_file_write_ends_stored_or_with_the_disks_own_words() {
    let cursors = Call::Cursors {
        peer: peer(),
        cursor: 7,
    };
    assert!(matches!(
        cursors.clone().ended(Ok(Reply::Stored)),
        Done::CursorPersisted { cursor: 7, .. }
    ));
    let full = Err(Failure::LocalStorage("No space left on device".into()));
    let Done::ClusterPersistFailed { version: 3, reason } =
        Call::Cluster { version: 3 }.ended(full)
    else {
        panic!("a failed cluster write is a ClusterPersistFailed");
    };
    assert_eq!(reason, "No space left on device");
    assert!(matches!(
        cursors.ended(Ok(Reply::Ingested { witnessed: None })),
        Done::CursorPersistFailed { .. }
    ));
}
