//! Equivocation evidence: an author signed two different things at one position of its chain
//! — two blocks at one `(author, seq)`, or a head whose root is not the root of the author's
//! blocks held at its seq. The node keeps the first it verified, refuses the other, and hands
//! the shell both to keep on disk; each piece is named by what was refused, so a refused push
//! retried a hundred times is one piece of evidence.

use crate::block::{Block, Hash};
use crate::id::AgentId;

use super::SignedHead;

/// One piece of evidence, as the core hands it to the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Two blocks at one position: the one held and the one refused (both signed as the
    /// author; the shell reads the held one from the strand).
    Blocks {
        /// The held block's hash.
        held: Hash,
        /// The refused block.
        refused: Block,
    },
    /// A head signed with the author's enrolled key over another chain than the blocks held.
    Head {
        /// The root of the author's blocks held here at the head's seq.
        held_root: Hash,
        /// The refused head.
        refused: SignedHead,
    },
}

/// What names a piece of evidence: the author, the seq, and a digest of what was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvidenceId {
    /// The seq.
    pub seq: u64,
    /// The refused block's hash, or the refused head's root.
    pub refused: Hash,
}

impl Evidence {
    /// The equivocating author.
    pub fn author(&self) -> &AgentId {
        match self {
            Evidence::Blocks { refused, .. } => refused.author(),
            Evidence::Head { refused, .. } => &refused.head.author,
        }
    }

    /// Its id among the author's evidence.
    pub fn id(&self) -> EvidenceId {
        match self {
            Evidence::Blocks { refused, .. } => EvidenceId {
                seq: refused.seq(),
                refused: refused.hash,
            },
            Evidence::Head { refused, .. } => EvidenceId {
                seq: refused.head.seq,
                refused: refused.head.root,
            },
        }
    }

    /// The file name the shell keeps it under: `<author>@<seq>.<blocks|head>.<hex>.json` (an
    /// agent id has no `@`), parsed back by [`EvidenceId::from_file_name`].
    pub fn file_name(&self) -> String {
        let kind = match self {
            Evidence::Blocks { .. } => "blocks",
            Evidence::Head { .. } => "head",
        };
        let id = self.id();
        format!(
            "{}@{}.{kind}.{}.json",
            self.author(),
            id.seq,
            id.refused.to_hex()
        )
    }
}

impl EvidenceId {
    /// The author and id a file of [`Evidence::file_name`] names; `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<(AgentId, EvidenceId)> {
        let (author, rest) = name.split_once('@')?;
        let mut parts = rest.split('.');
        let seq = parts.next()?;
        // Digits only (no sign); `ledger` does not reach into `wire`, which depends on it.
        let seq: u64 = seq
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| seq.parse().ok())??;
        let kind = parts.next()?;
        let refused = Hash::from_hex(parts.next()?)?;
        let tail_ok = parts.next() == Some("json") && parts.next().is_none();
        let kind_ok = kind == "blocks" || kind == "head";
        let author = AgentId::new(author).ok()?;
        (tail_ok && kind_ok).then_some((author, EvidenceId { seq, refused }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Head, HeadKey};

    #[test]
    fn a_file_name_names_its_evidence_and_nothing_else_parses() {
        let refused = HeadKey::from_bytes([1; 32]).sign(Head {
            author: AgentId::new("eu-west.1").unwrap(),
            seq: 42,
            root: Hash([7; 32]),
            ts_ms: 1,
        });
        let e = Evidence::Head {
            held_root: Hash([8; 32]),
            refused,
        };
        let name = e.file_name();
        assert_eq!(
            EvidenceId::from_file_name(&name),
            Some((AgentId::new("eu-west.1").unwrap(), e.id()))
        );
        for bad in [
            "x.json",
            "a@1.head.zz.json",
            "a@x.head.0707070707070707070707070707070707070707070707070707070707070707.json",
            "a@1.other.0707070707070707070707070707070707070707070707070707070707070707.json",
            "a@1.head.0707070707070707070707070707070707070707070707070707070707070707.json.tmp",
            "A B@1.head.0707070707070707070707070707070707070707070707070707070707070707.json",
        ] {
            assert_eq!(EvidenceId::from_file_name(bad), None, "{bad}");
        }
    }
}
