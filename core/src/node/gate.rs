//! The consistency gate (DESIGN §4, spec "CP vs AP"): in CP a write is refused while any peer
//! is unreachable, and a write durable here is acknowledged only once every peer holds it —
//! or answered indeterminate when a peer that lacks it fails; in AP it is acknowledged once
//! durable here. Pure: the node tells it which peers exist and what each holds.

use crate::id::AgentId;
use crate::status::Consistency;

use super::{Receipt, RequestId, Response};

/// A CP write durable here, waiting for every peer to hold it.
#[derive(Debug)]
struct Held {
    request: RequestId,
    receipt: Receipt,
    peers: Vec<AgentId>,
}

/// The write gating mode and the CP writes it holds.
#[derive(Debug)]
pub(super) struct ConsistencyGate {
    mode: Consistency,
    held: Vec<Held>,
}

impl ConsistencyGate {
    pub(super) fn new(mode: Consistency) -> Self {
        ConsistencyGate {
            mode,
            held: Vec::new(),
        }
    }

    /// The current mode.
    pub(super) fn mode(&self) -> Consistency {
        self.mode
    }

    /// Switches to `mode`; returns the previous one. Writes already held stay held.
    pub(super) fn set(&mut self, mode: Consistency) -> Consistency {
        std::mem::replace(&mut self.mode, mode)
    }

    /// The answer refusing a new write, if the gate refuses it: in CP, while `unreachable`
    /// (asked only in CP) names any peer.
    pub(super) fn refuses(&self, unreachable: impl FnOnce() -> Vec<AgentId>) -> Option<Response> {
        if self.mode == Consistency::Ap {
            return None;
        }
        let unreachable = unreachable();
        (!unreachable.is_empty()).then_some(Response::Partitioned { unreachable })
    }

    /// A write is durable here: its answer now (AP, or no `peers`), or `None` while it is held
    /// until every one of `peers` (asked only in CP) holds it.
    pub(super) fn written(
        &mut self,
        request: RequestId,
        receipt: Receipt,
        peers: impl FnOnce() -> Vec<AgentId>,
    ) -> Option<Response> {
        let peers = match self.mode {
            Consistency::Ap => Vec::new(),
            Consistency::Cp => peers(),
        };
        if peers.is_empty() {
            return Some(Response::Written(receipt));
        }
        self.held.push(Held {
            request,
            receipt,
            peers,
        });
        None
    }

    /// The answers of held writes that settle now: written once every peer `holds` it (a peer
    /// that is gone holds nothing back), indeterminate if `failed` names a peer that just
    /// failed without holding it (durable here; it will replicate).
    pub(super) fn settle(
        &mut self,
        holds: impl Fn(&AgentId, u64) -> bool,
        failed: Option<&AgentId>,
    ) -> Vec<(RequestId, Response)> {
        let mut answers = Vec::new();
        let mut i = 0;
        while i < self.held.len() {
            let w = &self.held[i];
            let seq = w.receipt.seq;
            let lost = failed
                .filter(|f| w.peers.contains(f) && !holds(f, seq))
                .cloned();
            if let Some(peer) = lost {
                let w = self.held.remove(i);
                let receipt = w.receipt;
                answers.push((w.request, Response::Indeterminate { receipt, peer }));
            } else if w.peers.iter().all(|p| holds(p, seq)) {
                let w = self.held.remove(i);
                answers.push((w.request, Response::Written(w.receipt)));
            } else {
                i += 1;
            }
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Hash;

    fn id(s: &str) -> AgentId {
        AgentId::new(s).expect("valid id")
    }

    fn receipt(seq: u64) -> Receipt {
        Receipt {
            hash: Hash::ZERO,
            author: id("me"),
            seq,
            offset: seq,
        }
    }

    fn b_and_c() -> Vec<AgentId> {
        vec![id("b"), id("c")]
    }

    #[test]
    fn cp_refuses_while_a_peer_is_unreachable_and_ap_never_asks() {
        let mut gate = ConsistencyGate::new(Consistency::Cp);
        assert_eq!(gate.refuses(Vec::new), None);
        assert_eq!(
            gate.refuses(|| vec![id("b")]),
            Some(Response::Partitioned {
                unreachable: vec![id("b")]
            })
        );
        assert_eq!(gate.set(Consistency::Ap), Consistency::Cp);
        assert_eq!(gate.refuses(|| panic!("AP does not look at peers")), None);
    }

    #[test]
    fn cp_holds_a_write_until_every_peer_holds_it() {
        let mut gate = ConsistencyGate::new(Consistency::Cp);
        assert_eq!(gate.written(RequestId(1), receipt(5), b_and_c), None);
        let only_b = |p: &AgentId, _: u64| p == &id("b");
        assert!(gate.settle(only_b, None).is_empty());
        let all = |_: &AgentId, seq: u64| seq <= 5;
        assert_eq!(
            gate.settle(all, None),
            vec![(RequestId(1), Response::Written(receipt(5)))]
        );
        assert!(gate.settle(all, None).is_empty(), "answered once");
    }

    #[test]
    fn a_peer_failing_without_the_write_makes_it_indeterminate() {
        let mut gate = ConsistencyGate::new(Consistency::Cp);
        gate.written(RequestId(1), receipt(5), b_and_c);
        gate.written(RequestId(2), receipt(6), b_and_c);
        // c holds 5 but not 6 when it fails: write 2 is indeterminate, write 1 still held.
        let c_holds_5 = |p: &AgentId, seq: u64| p == &id("c") && seq <= 5;
        let indeterminate = |request, seq, peer: &str| {
            let (receipt, peer) = (receipt(seq), id(peer));
            (
                RequestId(request),
                Response::Indeterminate { receipt, peer },
            )
        };
        assert_eq!(
            gate.settle(c_holds_5, Some(&id("c"))),
            vec![indeterminate(2, 6, "c")]
        );
        // b fails without 5: write 1 is indeterminate too; write 2 is not answered again.
        assert_eq!(
            gate.settle(c_holds_5, Some(&id("b"))),
            vec![indeterminate(1, 5, "b")]
        );
    }

    #[test]
    fn ap_or_no_peers_answers_at_once() {
        let mut gate = ConsistencyGate::new(Consistency::Ap);
        let written = Some(Response::Written(receipt(1)));
        let never = || panic!("AP does not wait for peers");
        assert_eq!(gate.written(RequestId(1), receipt(1), never), written);
        gate.set(Consistency::Cp);
        assert_eq!(gate.written(RequestId(2), receipt(1), Vec::new), written);
    }
}
