//! The new node's side of a divide: before it records the membership its divider announces,
//! it probes the divider back at the endpoint the divider advertises and checks the answer
//! comes from the divider. Without this, a divider that advertises an address its new member
//! cannot reach (the spec's Step 1 binds 0.0.0.0 and sets no SAPIX_ENDPOINT) gives a one-way
//! mesh: the divide answers 200, and the new node can never probe, push to or pull from it, so
//! it reports a partition for ever and refuses every CP write. Instead the divide fails, saying
//! which direction failed and which setting to fix, and nothing is recorded here.

use super::call::Call;
use super::{Failure, Node, Output, RequestId, Response};
use crate::id::AgentId;
use crate::repl::peer::PeerInfo;
use crate::status::Role;
use crate::time::Instant;

/// A divide's announcement waiting for the probe back.
#[derive(Debug)]
pub(super) struct Join {
    request: RequestId,
    divider: PeerInfo,
    members: Vec<PeerInfo>,
    your_role: Role,
    cursors: Vec<(AgentId, u64)>,
}

impl Node {
    /// Another member announces the membership. A divide's announcement (it assigns this
    /// node a role and names its sender) is recorded only once the divider answered a probe
    /// back; any other is recorded at once.
    pub(super) fn members_announced(
        &mut self,
        now: Instant,
        request: RequestId,
        from: Option<AgentId>,
        members: Vec<PeerInfo>,
        your_role: Option<Role>,
        cursors: Vec<(AgentId, u64)>,
    ) {
        let divider = from.and_then(|f| members.iter().find(|m| m.agent_id == f && !m.removed));
        let (Some(divider), Some(role)) = (divider.cloned(), your_role) else {
            return self.record_announcement(now, request, members, your_role, cursors);
        };
        if let Some(old) = self.admin.join.take() {
            let reason = format!(
                "superseded by a newer divide announcement from {}",
                divider.agent_id
            );
            self.respond(old.request, Response::JoinRefused { reason });
        }
        let call = self.calls.open(Call::ProbeBack {
            divider: divider.agent_id.clone(),
        });
        self.outputs.push_back(Output::ProbeBack {
            call,
            divider: divider.agent_id.clone(),
            endpoint: divider.endpoint.clone(),
        });
        self.admin.join = Some(Join {
            request,
            divider,
            members,
            your_role: role,
            cursors,
        });
    }

    /// The probe back ended: the divider answered as `answered` (with how much of this
    /// node's chain it holds and its membership digest), or did not answer.
    pub(super) fn probed_back(
        &mut self,
        now: Instant,
        divider: AgentId,
        answered: Result<(AgentId, u64, Option<u64>), Failure>,
    ) {
        let Some(j) = self.admin.join.take_if(|j| j.divider.agent_id == divider) else {
            return;
        };
        let why = match answered {
            Ok((id, holds, digest)) if id == divider => {
                let role = Some(j.your_role);
                self.record_announcement(now, j.request, j.members, role, j.cursors);
                // The probe back reached the divider: it counts as the first probe, so the
                // new member does not report a partition (and refuse CP writes) until the next.
                return self.probe_answered(now, divider, id, (holds, None), digest);
            }
            Ok((other, ..)) => format!("it answered as {other}"),
            Err(e) => e.to_string(),
        };
        let me = &self.config.agent_id;
        let reason = format!(
            "{me} cannot reach {divider} back at {}, the endpoint {divider} advertises ({why}); \
             start {divider} with SAPIX_ENDPOINT set to a URL {me} can reach; nothing was \
             recorded on {me}",
            j.divider.endpoint
        );
        self.respond(j.request, Response::JoinRefused { reason });
    }
}
