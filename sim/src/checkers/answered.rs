//! Every request is answered exactly once (the `RequestId` contract of `node::event`), and,
//! once faults stop, none is left hanging: a client that waits forever is a bug too.

use std::collections::BTreeMap;

use sapix_core::node::RequestId;

/// An answer must match a pending request; `pending` is the node's table of them.
pub fn answer<T>(
    pending: &mut BTreeMap<RequestId, T>,
    request: RequestId,
    node: usize,
) -> Result<T, String> {
    pending.remove(&request).ok_or_else(|| {
        format!(
            "n{node} answered {request:?}, which is not pending: never asked, or answered twice"
        )
    })
}

/// After the liveness bound: the requests still waiting, described.
pub fn hanging<T: std::fmt::Debug>(
    node: usize,
    pending: &BTreeMap<RequestId, T>,
) -> Option<String> {
    if pending.is_empty() {
        return None;
    }
    let list: Vec<String> = pending
        .iter()
        .take(4)
        .map(|(r, what)| format!("{r:?} {what:?}"))
        .collect();
    Some(format!(
        "n{node} never answered {} request(s): {}",
        pending.len(),
        list.join(", ")
    ))
}
