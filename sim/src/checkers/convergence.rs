//! §6.2 (liveness): after faults stop and every link heals, all members converge to the same
//! set of blocks — the same tip (seq and hash) of every author's chain — and to the full mesh:
//! each member knows every other member as a peer.

use std::collections::{BTreeMap, BTreeSet};

use sapix_core::block::Hash;
use sapix_core::AgentId;

use crate::storage::Store;

/// Whether the durable strands of `members` agree, but on the chains of `except` (authors a
/// forged block of which is stored somewhere: an equivocated chain stops where it forked, and
/// which fork a node holds depends on what reached it first); otherwise, where they differ.
pub fn same_blocks(
    members: &[usize],
    stores: &[Store],
    except: &BTreeSet<AgentId>,
) -> Result<(), String> {
    let tips: Vec<BTreeMap<AgentId, (u64, Hash)>> = (members.iter())
        .map(|&m| {
            let mut t = stores[m].tips();
            t.retain(|a, _| !except.contains(a));
            t
        })
        .collect();
    let Some(first) = tips.first() else {
        return Ok(());
    };
    for (k, t) in tips.iter().enumerate().skip(1) {
        if t != first {
            return Err(format!(
                "tips differ: n{} has {} and n{} has {}",
                members[0],
                show(first),
                members[k],
                show(t)
            ));
        }
    }
    Ok(())
}

fn show(tips: &BTreeMap<AgentId, (u64, Hash)>) -> String {
    let parts: Vec<String> = tips.iter().map(|(a, (s, _))| format!("{a}/{s}")).collect();
    format!("[{}]", parts.join(" "))
}

/// Whether member `m` knows every other member; `knows` lists its peers.
pub fn full_mesh(m: usize, members: &[usize], knows: &[usize]) -> Result<(), String> {
    let missing: Vec<String> = members
        .iter()
        .filter(|&&o| o != m && !knows.contains(&o))
        .map(|o| format!("n{o}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("n{m} does not know members {}", missing.join(", ")))
    }
}
