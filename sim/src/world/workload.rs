//! The clients on the world: an operation falls due and is sent, a write's start is noted
//! when its node takes it (which may be later than it was sent), a Codios decision that let a
//! write through is judged (§6.6), and every answer is judged the moment it leaves the node —
//! `Written` against the author's strand and, in CP, every peer's.

use sapix_core::auth::AuthKey;
use sapix_core::node::{Input, Receipt, Reply, RequestId, Response};
use sapix_core::Consistency;

use super::heap::{Ev, Heap};
use super::{Driver, Phase, Stats, World};
use crate::checkers::{cp_replicated, read_your_writes, Checkers, Verdict};
use crate::config::Micros;
use crate::host::{Client, Host};
use crate::storage::Store;
use crate::workload::Op;

/// Node `i` of `hosts` is about to take `input`: record what the checkers must know of that
/// moment (its mode and peers when it takes a write, which may be later than it was sent).
fn taking(hosts: &mut [Host], i: usize, input: &Input) {
    match input {
        Input::ConsistencyRequested { .. } => hosts[i].mode_epoch += 1,
        Input::WriteRequested { request, .. } => write_starts(hosts, i, *request),
        _ => {}
    }
}

/// Node `i` starts the client write `request` now: record its mode, mode epoch and peers.
fn write_starts(hosts: &mut [Host], i: usize, request: RequestId) {
    let node = hosts[i].node.as_ref().expect("up");
    let now_cp = node.consistency() == Consistency::Cp;
    let now_peers: Vec<usize> = node
        .peers()
        .keys()
        .filter_map(|a| hosts.iter().position(|h| &h.agent == a))
        .collect();
    let now_epoch = hosts[i].mode_epoch;
    if let Some(Client::Write {
        cp, epoch, peers, ..
    }) = hosts[i].clients.get_mut(&request)
    {
        (*cp, *epoch, *peers) = (now_cp, now_epoch, now_peers);
    }
}

/// Judges node `i`'s `response` to `client`: a receipt must be durable in its own strand and,
/// for a CP write, on every peer it had. Returns the node a divide made a member.
fn judge(
    i: usize,
    client: Client,
    response: Response,
    hosts: &[Host],
    stores: &[Store],
    checks: &mut Checkers,
    stats: &mut Stats,
) -> (Option<usize>, Verdict) {
    let mut acked = |receipt: &Receipt| -> Verdict {
        if receipt.author != hosts[i].agent {
            Err(format!("n{i} handed out a receipt for {}", receipt.author))
        } else {
            checks.acked.acknowledged(i, receipt, &stores[i])
        }
        .map_err(|m| ("acked_writes", m))
    };
    match (client, response) {
        (
            Client::Write {
                cp, epoch, peers, ..
            },
            Response::Written(receipt),
        ) => {
            stats.written += 1;
            let mut v = acked(&receipt);
            if cp && epoch == hosts[i].mode_epoch {
                stats.cp_checked += 1;
                let r = cp_replicated::check(&receipt, &peers, stores);
                v = v.and(r.map_err(|m| ("cp_replicated", m)));
            }
            (None, v)
        }
        (Client::Write { .. }, Response::Indeterminate { receipt, .. }) => {
            stats.indeterminate += 1;
            (None, acked(&receipt))
        }
        (Client::Write { .. }, Response::Partitioned { .. } | Response::StorageFailed) => {
            stats.refused += 1;
            (None, Ok(()))
        }
        (Client::Write { .. }, Response::StorageFull) if stores[i].was_full => {
            stats.storage_full += 1;
            (None, Ok(()))
        }
        (
            Client::Write { root: true, .. },
            r @ (Response::Denied { .. } | Response::AuthUnavailable { .. }),
        ) => (
            None,
            Err((
                "answered",
                format!("n{i} refused a write by the root key: {r:?}"),
            )),
        ),
        (Client::Write { .. }, Response::Denied { .. }) => {
            stats.denied += 1;
            (None, Ok(()))
        }
        (Client::Write { .. }, Response::AuthUnavailable { .. }) => {
            stats.auth_unavailable += 1;
            (None, Ok(()))
        }
        (Client::Write { .. }, other) => (
            None,
            Err(("answered", format!("n{i} answered a write with {other:?}"))),
        ),
        (Client::Divide { new }, Response::Divided { .. }) => {
            stats.divided += 1;
            (Some(new), Ok(()))
        }
        (Client::Read { position, hash }, Response::PositionReached) => {
            stats.reads_reached += 1;
            let forged = |h: &sapix_core::block::Hash| checks.forgery.is_forged(h);
            let v = read_your_writes::reached(i, &position, &hash, &stores[i], forged);
            (None, v.map_err(|m| ("read_your_writes", m)))
        }
        (Client::Read { position, .. }, Response::PositionNotReached { holds }) => {
            stats.reads_not_reached += 1;
            let v = read_your_writes::not_reached(i, &position, &holds, &stores[i]);
            (None, v.map_err(|m| ("read_your_writes", m)))
        }
        (Client::Read { .. }, Response::StorageFailed | Response::StorageFull) => (None, Ok(())),
        (Client::Read { position, .. }, other) => (
            None,
            Err((
                "answered",
                format!("n{i} answered a read at {position} with {other:?}"),
            )),
        ),
        _ => (None, Ok(())),
    }
}

impl World<Heap> {
    /// An operation of class `op` is due.
    pub(crate) fn work(&mut self, op: Op) {
        if self.phase != Phase::Active {
            return;
        }
        if let Some(gap) = self.client_op(op) {
            self.schedule(self.now + gap, Ev::Work(op));
        }
    }
}

impl<D> World<D>
where
    World<D>: Driver,
{
    /// An operation of class `op` is due: a client sends it (a write bears the root key, or
    /// on a Codios seed a token drawn as the seed says). Returns the time to the next
    /// operation of its class.
    pub(crate) fn client_op(&mut self, op: Op) -> Option<Micros> {
        let codios = &mut self.codios;
        let who = || {
            if codios.on() {
                codios.client_credential()
            } else {
                (crate::codios::root_credential(), true)
            }
        };
        if let Some(ask) = self.work.next(op, &self.hosts, self.now, who) {
            if let Client::Divide { new } = ask.client {
                let at = ask.node;
                self.trace
                    .line(self.now, || format!("client: divide n{new} into n{at}"));
            }
            let request = self.new_request();
            self.hosts[ask.node].clients.insert(request, ask.client);
            self.client_request(ask.node, (ask.input)(request));
        }
        self.work.next_gap(op)
    }

    /// Node `i` let the write `request` through on a Codios decision, as it logged: judge the
    /// decision (§6.6) and note the write's start (it may have waited for Codios).
    pub(crate) fn write_authorized(
        &mut self,
        i: usize,
        request: RequestId,
        key: &AuthKey,
        degraded: bool,
    ) {
        self.stats.authorized += 1;
        if degraded {
            self.stats.auth_degraded += 1;
        }
        let r = match self.cfg.codios.as_ref() {
            Some(cfg) => {
                let local = self.hosts[i].clock.local(self.now);
                self.checks
                    .auth
                    .authorized(i, key, degraded, local, &cfg.policy, &cfg.breaker)
            }
            None => Err(format!(
                "n{i} let {key:?} through on a Codios decision in local mode"
            )),
        };
        self.check("auth", r);
        write_starts(&mut self.hosts, i, request);
    }

    /// Node `i` is about to take `input`.
    pub(crate) fn taking(&mut self, i: usize, input: &Input) {
        taking(&mut self.hosts, i, input);
        if let Input::CallEnded { call, outcome } = input {
            let asked = self.hosts[i].codios_asks.remove(call);
            if let (Some(key), Ok(Reply::Decided(decision))) = (asked, outcome) {
                let local = self.hosts[i].clock.local(self.now);
                self.checks.auth.answered(i, &key, *decision, local);
            }
        }
    }

    /// Node `i` answered a client's request.
    pub(crate) fn client_answered(&mut self, i: usize, client: Client, response: Response) {
        if let Response::Written(r) | Response::Indeterminate { receipt: r, .. } = &response {
            self.work.acknowledged(r);
        }
        let (member, v) = judge(
            i,
            client,
            response,
            &self.hosts,
            &self.stores,
            &mut self.checks,
            &mut self.stats,
        );
        self.verdict(v);
        if let Some(new) = member {
            if !self.hosts[new].member {
                self.members_changed_at = self.now;
            }
            self.hosts[new].member = true;
        }
    }
}
