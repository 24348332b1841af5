//! RFC 9162 (RFC 6962) Merkle trees over one author's chain, hashed with keyed BLAKE3.
//!
//! Leaves are block hashes in seq order (leaf index = seq - 1). A leaf hashes as
//! `H(0x00 || block hash)` and an interior node as `H(0x01 || left || right)`, where `H` is
//! BLAKE3 keyed with [`MERKLE_KEY`]: the prefixes keep leaves and nodes apart (RFC 9162 §2.1.1)
//! and the key keeps both apart from block hashes. The tree shape, the audit paths and the
//! consistency proofs are RFC 9162 §2.1.3-2.1.4 exactly, so its verification algorithms apply.
//!
//! [`Tree`] keeps every perfect, aligned subtree of the chain (about two hashes a block), so a
//! root, an audit path or a consistency proof at any size costs O(log² n) hashes, never a pass
//! over the chain. Verification ([`verify_inclusion`], [`verify_consistency`]) needs no tree.

use crate::digest::Hash;

/// The BLAKE3 key of every Merkle hash: its own domain, apart from block hashes.
pub const MERKLE_KEY: [u8; 32] = *b"sapixdb/v1/merkle-tree/blake3/k1";

/// The longest proof a tree of at most 2^64 leaves can need.
pub const MAX_PROOF_LEN: usize = 64;

/// The root of the empty tree: `H()` (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Hash(*blake3::keyed_hash(&MERKLE_KEY, &[]).as_bytes())
}

/// A leaf: `H(0x00 || block hash)`.
pub fn leaf_hash(block: &Hash) -> Hash {
    let mut h = blake3::Hasher::new_keyed(&MERKLE_KEY);
    h.update(&[0x00]).update(&block.0);
    Hash(*h.finalize().as_bytes())
}

/// An interior node: `H(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new_keyed(&MERKLE_KEY);
    h.update(&[0x01]).update(&left.0).update(&right.0);
    Hash(*h.finalize().as_bytes())
}

/// The largest power of two strictly below `n` (n ≥ 2): where RFC 9162 splits a tree.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Every perfect, aligned subtree of one chain: `levels[k][i]` is the root of leaves
/// `i·2^k .. (i+1)·2^k`. Grows and shrinks at the end only, as the chain does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree of these block hashes, in seq order.
    pub fn from_blocks<'a>(blocks: impl IntoIterator<Item = &'a Hash>) -> Self {
        let mut t = Tree::new();
        for b in blocks {
            t.push(b);
        }
        t
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Whether it has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the next block's hash, completing every subtree it closes.
    pub fn push(&mut self, block: &Hash) {
        let mut hash = leaf_hash(block);
        let mut k = 0;
        loop {
            if self.levels.len() == k {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[k];
            level.push(hash);
            if level.len() % 2 == 1 {
                return;
            }
            hash = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            k += 1;
        }
    }

    /// Removes the last leaf and every subtree that held it (an append rolled back).
    pub fn pop(&mut self) {
        let n = self.len();
        if n == 0 {
            return;
        }
        let n = n - 1;
        for (k, level) in self.levels.iter_mut().enumerate() {
            level.truncate((n >> k) as usize);
        }
        while self.levels.last().is_some_and(|l| l.is_empty()) {
            self.levels.pop();
        }
    }

    /// The root of the first `size` leaves; `None` past the end.
    pub fn root(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(empty_root()),
            s if s <= self.len() => Some(self.subtree(0, s)),
            _ => None,
        }
    }

    /// RFC 9162 `PATH(index, D[0:size])`: the audit path of leaf `index` in the tree of the
    /// first `size` leaves, bottom first; `None` unless `index < size <= len`.
    pub fn inclusion(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.len() {
            return None;
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Some(path)
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, lo, lo + k, out);
            out.push(self.subtree(lo + k, hi));
        } else {
            self.path(m - k, lo + k, hi, out);
            out.push(self.subtree(lo, lo + k));
        }
    }

    /// RFC 9162 `PROOF(from, D[0:to])`: that the tree of the first `to` leaves extends the
    /// tree of the first `from`. Empty when `from` is 0 or equals `to`; `None` unless
    /// `from <= to <= len`.
    pub fn consistency(&self, from: u64, to: u64) -> Option<Vec<Hash>> {
        if from > to || to > self.len() {
            return None;
        }
        let mut proof = Vec::new();
        if from > 0 && from < to {
            self.subproof(from, 0, to, true, &mut proof);
        }
        Some(proof)
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(self.subtree(lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, whole, out);
            out.push(self.subtree(lo + k, hi));
        } else {
            self.subproof(m - k, lo + k, hi, false, out);
            out.push(self.subtree(lo, lo + k));
        }
    }

    /// `MTH(D[lo:hi])`, 0 ≤ lo < hi ≤ len: a stored subtree when aligned and perfect, else
    /// RFC 9162's split.
    fn subtree(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        if n.is_power_of_two() && lo % n == 0 {
            let k = n.trailing_zeros() as usize;
            return self.levels[k][(lo >> k) as usize];
        }
        let k = split(n);
        node_hash(&self.subtree(lo, lo + k), &self.subtree(lo + k, hi))
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or sizes cannot describe a proof (index past the size, from past to).
    #[error("the proof's index or sizes are out of range")]
    OutOfRange,
    /// More hashes than any tree of that size needs, or fewer.
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    /// The hashes do not lead to the given root(s).
    #[error("the proof does not lead to the root")]
    Mismatch,
}

/// RFC 9162 §2.1.3.2: whether `path` proves block `block` is leaf `index` of the tree of `size`
/// leaves with root `root`.
pub fn verify_inclusion(
    block: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    if path.len() > MAX_PROOF_LEN {
        return Err(ProofError::WrongLength);
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf_hash(block);
    for p in path {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: whether `proof` shows the tree of `to` leaves with root `to_root`
/// extends the tree of `from` leaves with root `from_root`. Equal sizes need equal roots and
/// an empty proof; the empty tree (`from` = 0) is extended by every tree.
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::OutOfRange);
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::WrongLength);
    }
    if from == 0 || from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if from == 0 || from_root == to_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    let mut hashes = proof.iter();
    // A power-of-two `from` is a whole left subtree: its root is the proof's first hash.
    let first = if from.is_power_of_two() {
        from_root
    } else {
        hashes.next().ok_or(ProofError::WrongLength)?
    };
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in hashes {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *from_root || sr != *to_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
