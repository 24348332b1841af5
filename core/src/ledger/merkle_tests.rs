use super::*;

fn blocks(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| Hash(*blake3::hash(&i.to_le_bytes()).as_bytes()))
        .collect()
}

/// RFC 9162 §2.1.1's MTH, straight from its definition, over the slice.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => leaf_hash(&d[0]),
        n => {
            let k = split(n as u64) as usize;
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1's PATH, from its definition.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split(d.len() as u64) as usize;
    let mut p;
    if m < k {
        p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
    } else {
        p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
    }
    p
}

/// RFC 9162 §2.1.4.1's SUBPROOF, from its definition.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    if m == d.len() {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split(d.len() as u64) as usize;
    let mut p;
    if m <= k {
        p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
    } else {
        p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
    }
    p
}

#[test]
fn tree_matches_the_rfc_definitions_at_every_size() {
    let d = blocks(70);
    let t = Tree::from_blocks(&d);
    for n in 0..=70u64 {
        assert_eq!(t.root(n), Some(mth(&d[..n as usize])), "root at {n}");
        for m in 0..n {
            let p = t.inclusion(m, n).unwrap();
            assert_eq!(p, path(m as usize, &d[..n as usize]), "path {m} of {n}");
            let root = t.root(n).unwrap();
            assert_eq!(verify_inclusion(&d[m as usize], m, n, &p, &root), Ok(()));
        }
        for m in 1..n {
            let p = t.consistency(m, n).unwrap();
            assert_eq!(p, subproof(m as usize, &d[..n as usize], true), "{m}→{n}");
            let (a, b) = (t.root(m).unwrap(), t.root(n).unwrap());
            assert_eq!(verify_consistency(m, n, &a, &b, &p), Ok(()), "{m}→{n}");
        }
    }
    assert_eq!(t.root(71), None);
    assert_eq!(t.inclusion(3, 71), None);
    assert_eq!(t.consistency(5, 71), None);
}

#[test]
fn every_altered_hash_or_size_is_refused() {
    let d = blocks(37);
    let t = Tree::from_blocks(&d);
    let flip = |h: &Hash| {
        let mut h = *h;
        h.0[7] ^= 1;
        h
    };
    for n in 1..=37u64 {
        let root = t.root(n).unwrap();
        for m in 0..n {
            let p = t.inclusion(m, n).unwrap();
            let b = &d[m as usize];
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] = flip(&q[i]);
                assert!(verify_inclusion(b, m, n, &q, &root).is_err());
            }
            assert!(verify_inclusion(&flip(b), m, n, &p, &root).is_err());
            assert!(verify_inclusion(b, m, n, &p, &flip(&root)).is_err());
            let mut longer = p.clone();
            longer.push(root);
            assert!(verify_inclusion(b, m, n, &longer, &root).is_err());
            if !p.is_empty() {
                assert!(verify_inclusion(b, m, n, &p[..p.len() - 1], &root).is_err());
            }
            // The same path claimed for a neighbour or another size never verifies.
            if m + 1 < n {
                assert!(verify_inclusion(b, m + 1, n, &p, &root).is_err());
            }
            // (A path can also lead to this root under another size: RFC 9162 trusts the
            // signed (size, root) pair, so only the real root of that size must refuse it.)
            if n < 37 {
                let next = t.root(n + 1).unwrap();
                assert!(
                    verify_inclusion(b, m, n + 1, &p, &next).is_err(),
                    "{m} of {n}"
                );
            }
        }
        for m in 1..n {
            let p = t.consistency(m, n).unwrap();
            let a = t.root(m).unwrap();
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] = flip(&q[i]);
                assert!(
                    verify_consistency(m, n, &a, &root, &q).is_err(),
                    "{m}→{n} @{i}"
                );
            }
            assert!(verify_consistency(m, n, &flip(&a), &root, &p).is_err());
            assert!(verify_consistency(m, n, &a, &flip(&root), &p).is_err());
            let mut longer = p.clone();
            longer.push(root);
            assert!(verify_consistency(m, n, &a, &root, &longer).is_err());
            assert!(verify_consistency(m, n, &a, &root, &p[..p.len() - 1]).is_err());
            assert!(verify_consistency(m, n, &a, &root, &[]).is_err());
            if n < 37 {
                let next = t.root(n + 1).unwrap();
                assert!(verify_consistency(m, n + 1, &a, &next, &p).is_err());
            }
        }
    }
}

#[test]
fn a_forked_chain_is_not_consistent_with_its_past() {
    let d = blocks(20);
    let mut forked = d.clone();
    forked[9] = Hash([9; 32]);
    let (honest, fork) = (Tree::from_blocks(&d), Tree::from_blocks(&forked));
    for m in 10..20 {
        let old = honest.root(m).unwrap();
        let p = fork.consistency(m, 20).unwrap();
        let new = fork.root(20).unwrap();
        assert_eq!(
            verify_consistency(m, 20, &old, &new, &p),
            Err(ProofError::Mismatch)
        );
    }
}

#[test]
fn equal_sizes_and_the_empty_tree() {
    let d = blocks(5);
    let t = Tree::from_blocks(&d);
    let r = t.root(5).unwrap();
    assert_eq!(t.consistency(5, 5), Some(vec![]));
    assert_eq!(verify_consistency(5, 5, &r, &r, &[]), Ok(()));
    assert_eq!(
        verify_consistency(5, 5, &r, &t.root(4).unwrap(), &[]),
        Err(ProofError::Mismatch)
    );
    assert_eq!(verify_consistency(0, 5, &Hash::ZERO, &r, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 5, &Hash::ZERO, &r, &[r]),
        Err(ProofError::WrongLength)
    );
    assert_eq!(
        verify_consistency(6, 5, &r, &r, &[]),
        Err(ProofError::OutOfRange)
    );
    assert_eq!(
        verify_inclusion(&d[0], 5, 5, &[], &r),
        Err(ProofError::OutOfRange)
    );
}

#[test]
fn pop_undoes_push() {
    let d = blocks(33);
    let mut t = Tree::from_blocks(&d);
    for n in (0..33).rev() {
        t.pop();
        assert_eq!(t, Tree::from_blocks(&d[..n]), "after pop to {n}");
    }
    t.pop();
    assert!(t.is_empty());
}

#[test]
fn hashes_are_pinned() {
    // Changing these forks every signed head ever issued.
    let d = blocks(3);
    let t = Tree::from_blocks(&d);
    insta::assert_snapshot!(format!(
        "empty {}\nleaf {}\nroot3 {}",
        empty_root(),
        leaf_hash(&d[0]),
        t.root(3).unwrap()
    ));
}
