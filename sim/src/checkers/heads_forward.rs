//! No honest head ever goes back (issue 17): the own head a node persists never has a lower
//! seq than the one persisted before it, nor another root at the same seq; and the latest
//! head of each other author a node keeps as witnessed never goes back either. Checked as the
//! state file lands, against what the disk held before — across restarts too.

use sapix_core::ledger::SignedHead;

/// `new` replaces `old` as a node's persisted head (own, or witnessed of one author).
fn forward(old: &SignedHead, new: &SignedHead) -> Result<(), String> {
    let (o, n) = (&old.head, &new.head);
    if n.seq < o.seq {
        return Err(format!(
            "{}'s head went back from seq {} to {}",
            n.author, o.seq, n.seq
        ));
    }
    if n.seq == o.seq && n.root != o.root {
        return Err(format!(
            "{}'s head at seq {} changed its root",
            n.author, n.seq
        ));
    }
    Ok(())
}

/// Node `node`'s own head `new` lands where `old` was.
pub fn own(node: usize, old: Option<&SignedHead>, new: &SignedHead) -> Result<(), String> {
    old.map_or(Ok(()), |o| forward(o, new))
        .map_err(|m| format!("n{node}: {m}"))
}

/// Node `node`'s witnessed heads `new` land where `old` were.
pub fn witnessed(node: usize, old: &[SignedHead], new: &[SignedHead]) -> Result<(), String> {
    for o in old {
        match new.iter().find(|h| h.head.author == o.head.author) {
            Some(h) => forward(o, h).map_err(|m| format!("n{node} (witnessed): {m}"))?,
            None => {
                return Err(format!(
                    "n{node} no longer keeps the head of {} it witnessed",
                    o.head.author
                ))
            }
        }
    }
    Ok(())
}
