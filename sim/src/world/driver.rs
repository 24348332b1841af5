//! What the two drivers share, and the little each does its own way.
//!
//! Layer 0 (`World<Heap>`: an event heap and a network model) and Layer 0b (`World<Madsim>`:
//! madsim's scheduler, network and node kill/restart) run the same [`World`]: the same hosts,
//! disks, clients, Codios and checkers, and the same code for everything a step decides — how
//! an input is checked, traced and handed to the node, how its outputs are drained and
//! performed (`mesh`), how a disk completion lands, a boot or a crash (`host`), a client's
//! operation or answer (`workload`), and whether the cluster has settled (`liveness`). The
//! [`Driver`] trait is the rest: how an input, a request or an answer travels, when disk work
//! completes and how a wakeup is armed. Keeping that seam narrow is what makes the madsim
//! driver a second opinion on the same nodes rather than a second model of them.
//!
//! The trait is the world's own interface: a driver implements it for `World<_>` (Layer 0 in
//! `heap`, the madsim driver in `crate::madsim_driver`), and the parts never see it.

use std::collections::BTreeMap;

use sapix_core::auth::AuthKey;
use sapix_core::node::{CallId, Input, Node, RequestId, Response, Timer};
use sapix_core::AgentId;

use super::World;
use crate::checkers::{self, Verdict};
use crate::config::Micros;
use crate::host::Host;
use crate::mesh::{Asked, Req};
use crate::storage::Store;
use crate::trace::{input_digest, output_digest};

/// A node woken this many times at one instant is busy-looping.
const MAX_SPINS: u32 = 1_000;

/// How one driver moves facts and time; everything else about a step is [`World`]'s.
pub(crate) trait Driver {
    /// Whether an fsync is now and then slow. The madsim driver never drew it, and drawing it
    /// now would change what every one of its seeds runs.
    const SLOW_FSYNC: bool;

    /// Node `i`'s current process takes `input` now (or, stalled, when it runs again).
    fn feed(&mut self, i: usize, input: Input);

    /// Node `i`'s timer fires now.
    fn wake(&mut self, i: usize);

    /// Node `i` has a new wakeup (`hosts[i].wake`): arm it.
    fn arm(&mut self, i: usize);

    /// A completion without the network (as the runtime's tasks produce) for node `i`'s
    /// current process.
    fn local(&mut self, i: usize, input: Input);

    /// A client's request reaches node `i`.
    fn client_request(&mut self, i: usize, input: Input);

    /// Node `from` calls `endpoint` with `req`; whatever ends the call comes back to it as
    /// `kind`'s input.
    fn call(&mut self, from: usize, endpoint: &str, kind: Asked, req: Req);

    /// Node `i`'s server answers call `call` of node `from` with `response`.
    fn reply(&mut self, i: usize, from: usize, call: u64, response: Response);

    /// The oldest append in flight on node `i` lands at `at`: [`World::append_done`] then,
    /// if the process that began it still runs.
    fn append_at(&mut self, i: usize, at: Micros);

    /// The oldest state-file write in flight on node `i` lands at `at`:
    /// [`World::write_done`] then, if the process that began it still runs.
    fn write_at(&mut self, i: usize, at: Micros);

    /// Node `i` asks Codios about `key` (only on seeds where Codios is on).
    fn ask_codios(&mut self, i: usize, call: CallId, key: AuthKey);

    /// Node `i`'s process is gone while serving `serving` (request → (call, caller)): what
    /// its callers see.
    fn died(&mut self, i: usize, serving: BTreeMap<RequestId, (u64, usize)>);
}

impl<D> World<D>
where
    World<D>: Driver,
{
    /// Node `i` takes `input` at its own clock's now: the checkers note what they must know of
    /// that moment, the trace digests it, the node handles it, and its outputs are performed.
    /// The driver has already decided the node is up and mixed the step into the trace.
    pub(crate) fn handle(&mut self, i: usize, input: Input) {
        self.taking(i, &input);
        input_digest(&input, self.trace.hasher());
        if self.trace.printing() {
            let s = format!("n{i} <- {input:?}");
            self.trace.line(self.now, || s);
        }
        let host = &mut self.hosts[i];
        let local = host.clock.local(self.now);
        if let Some(node) = host.node.as_mut() {
            node.handle(local, input);
        }
        self.drain(i);
    }

    /// Node `i`'s `poll_timeout` is due: it handles the timeout; one that asks for the same
    /// instant again and again is busy-looping.
    pub(crate) fn woken(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        node.handle_timeout(host.clock.local(self.now));
        if let Some(wake) = node.last_wake() {
            self.trace
                .line(self.now, || format!("n{i} wakes: {}", describe(wake)));
        }
        self.drain(i);
        let host = &mut self.hosts[i];
        if host.wake.is_some_and(|w| w <= self.now) {
            host.spins += 1;
            if host.spins > MAX_SPINS {
                self.fail(
                    "poll_timeout",
                    format!("n{i} asks to be woken again and again at the same instant"),
                );
            }
        } else {
            host.spins = 0;
        }
    }

    /// Performs every output node `i` has queued, then arms its next wakeup.
    fn drain(&mut self, i: usize) {
        let v = peer_acks(i, &self.hosts, &self.stores);
        self.verdict(v);
        while let Some(out) = self.hosts[i].node.as_mut().and_then(Node::poll_output) {
            output_digest(&out, self.trace.hasher());
            if self.trace.printing() {
                let s = format!("n{i} -> {out:?}");
                self.trace.line(self.now, || s);
            }
            self.perform(i, out);
        }
        let host = &mut self.hosts[i];
        host.wake = host
            .node
            .as_ref()
            .and_then(Node::poll_timeout)
            .map(|at| host.clock.global(at).max(self.now));
        self.arm(i);
    }
}

/// One line for a trace: the waking deadline and what it serves.
fn describe(wake: &sapix_core::node::Wake) -> String {
    let name = |t: &Timer| match t {
        Timer::Drain => "drain".to_string(),
        Timer::BreakerProbe => "breaker probe".to_string(),
        Timer::PushRetry(p) => format!("push retry to {p}"),
        Timer::Probe(p) => format!("probe {p}"),
        Timer::PullRetry(p) => format!("pull retry from {p}"),
        Timer::AntiEntropy(p) => format!("anti-entropy pull from {p}"),
        Timer::PositionWait => "read position wait".to_string(),
        Timer::ClusterWrite => "cluster.json retry".to_string(),
        Timer::Head => "own head due".to_string(),
    };
    let serves: Vec<String> = wake.serves.iter().map(name).collect();
    if serves.is_empty() {
        name(&wake.timer)
    } else {
        format!("{} ({})", name(&wake.timer), serves.join(", "))
    }
}

/// [`checkers::peer_acks::check`] for node `i` of `hosts` if it is up: what both drivers run
/// after each step.
fn peer_acks(i: usize, hosts: &[Host], stores: &[Store]) -> Verdict {
    let Some(node) = hosts[i].node.as_ref() else {
        return Ok(());
    };
    let index = |a: &AgentId| hosts.iter().position(|h| &h.agent == a);
    checkers::peer_acks::check(i, &hosts[i].agent, node, stores, index)
        .map_err(|m| ("peer_acks", m))
}
