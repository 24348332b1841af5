//! Membership that belongs to no single node (DESIGN §4, §6.9): one versioned entry per agent
//! id, this node's own among them, merged the same way on every node.
//!
//! An entry changes only by a higher version: a divide creates it, a change of endpoint or
//! role bumps it, a removal turns it into a tombstone one version up. Two different entries at
//! one version are settled by a fixed order (a tombstone wins, then the greater endpoint, role
//! and join time), so merging is commutative, associative and idempotent: nodes that have seen
//! the same entries hold the same set, whatever order they saw them in. The [`Membership::digest`]
//! of the set rides on every probe answer; a prober whose digest differs sends its whole set
//! and gets the peer's back (push-pull), so one exchange with any member that knows an entry
//! is enough to learn it.
//!
//! Guarantee: after faults stop, every live member knows every member within 10 s (five
//! probe intervals of 2 s), whichever members stay down — no entry lives only in the memory
//! of the node that created it. The simulator checks this bound on every seed (`membership`,
//! counted from faults stopping or the last join, whichever is later). An id once
//! removed is never a member again: its tombstone wins over any live entry of the same id.

use std::collections::{BTreeMap, BTreeSet};

use super::peer::PeerInfo;
use crate::id::AgentId;
use crate::ledger::{HeadKeys, HeadPublicKey, Join};
use crate::status::Role;

/// What a merge or a local change did to the members other than this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// A live member this node did not know.
    Added(PeerInfo),
    /// A known member's endpoint or role changed.
    Changed(PeerInfo),
    /// A member was removed (its tombstone arrived).
    Removed(AgentId),
    /// This node's own entry changed (an endpoint or role given by the cluster, or its own
    /// head key enrolled or rotated).
    Me(PeerInfo),
    /// An entry offered head keys for `id` that do not extend the enrolled ones (another
    /// first key, or a rotation not signed by the current key): refused, the enrolled kept.
    /// Reported once per offered key.
    KeyRefused {
        /// The member.
        id: AgentId,
        /// Its enrolled key.
        enrolled: Option<HeadPublicKey>,
        /// The key offered instead.
        offered: HeadPublicKey,
    },
}

/// One node's view of the cluster's members.
#[derive(Debug, Clone)]
pub struct Membership {
    me: AgentId,
    entries: BTreeMap<AgentId, PeerInfo>,
    /// Head keys refused so far, so each forged key is reported once, not at every exchange.
    refused: BTreeSet<(AgentId, HeadPublicKey)>,
}

impl Membership {
    /// A view holding this node's own entry and the persisted ones.
    pub fn new(me: PeerInfo, others: impl IntoIterator<Item = PeerInfo>) -> Self {
        let id = me.agent_id.clone();
        let mut entries: BTreeMap<AgentId, PeerInfo> = others
            .into_iter()
            .map(|p| (p.agent_id.clone(), p))
            .collect();
        entries.insert(id.clone(), me);
        Membership {
            me: id,
            entries,
            refused: BTreeSet::new(),
        }
    }

    /// This node's own entry.
    pub fn me(&self) -> &PeerInfo {
        &self.entries[&self.me]
    }

    /// The entry of `id`, live or removed.
    pub fn get(&self, id: &AgentId) -> Option<&PeerInfo> {
        self.entries.get(id)
    }

    /// Whether `id` was removed from the cluster.
    pub fn is_removed(&self, id: &AgentId) -> bool {
        self.entries.get(id).is_some_and(|p| p.removed)
    }

    /// Every entry, this node's and tombstones included, in id order: what is announced.
    pub fn all(&self) -> Vec<PeerInfo> {
        self.entries.values().cloned().collect()
    }

    /// Every entry but this node's, tombstones included: what is persisted beside it.
    pub fn others(&self) -> Vec<PeerInfo> {
        let me = &self.me;
        self.entries
            .values()
            .filter(|p| p.agent_id != *me)
            .cloned()
            .collect()
    }

    /// A fingerprint of the whole set: equal on two nodes exactly when (barring a hash
    /// collision) they hold the same entries.
    pub fn digest(&self) -> u64 {
        let mut h = blake3::Hasher::new();
        h.update(b"sapixdb/v1/membership\0");
        for p in self.entries.values() {
            for field in [p.agent_id.as_str(), p.endpoint.as_str(), role_name(p.role)] {
                h.update(&(field.len() as u64).to_le_bytes());
                h.update(field.as_bytes());
            }
            h.update(&p.added_at_ms.to_le_bytes());
            h.update(&p.version.to_le_bytes());
            h.update(&[u8::from(p.removed)]);
            h.update(&(p.head_keys.len() as u64).to_le_bytes());
            for link in p.head_keys.links() {
                h.update(&link.key.0);
                h.update(&link.signature.map_or([0; 64], |s| s.0));
            }
        }
        let bytes = h.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    /// Merges entries learned from another member; returns what changed here.
    pub fn merge(&mut self, incoming: &[PeerInfo]) -> Vec<Delta> {
        let mut deltas = Vec::new();
        for p in incoming {
            if let Some(d) = self.offer_into(p.clone(), &mut deltas) {
                deltas.push(d);
            }
        }
        deltas
    }

    /// Records a member this node adds (a divide): a new entry, or the existing one if it
    /// already says the same. `None` if the id was removed or is this node.
    pub fn add(&mut self, mut info: PeerInfo) -> Option<Delta> {
        if info.agent_id == self.me || self.is_removed(&info.agent_id) {
            return None;
        }
        match self.entries.get(&info.agent_id) {
            Some(cur) if same_content(cur, &info) => None,
            cur => {
                // A member's keys change only by its own rotation, never by a divide.
                if let Some(c) = cur.filter(|c| !c.head_keys.is_empty()) {
                    info.head_keys = c.head_keys.clone();
                }
                info.version = cur.map_or(1, |c| c.version + 1);
                info.removed = false;
                self.offer(info)
            }
        }
    }

    /// Tombstones `id`; `None` if it is unknown, already removed, or this node.
    pub fn remove(&mut self, id: &AgentId) -> Option<Delta> {
        if *id == self.me {
            return None;
        }
        let cur = self.entries.get(id).filter(|p| !p.removed)?;
        let mut tomb = cur.clone();
        tomb.version += 1;
        tomb.removed = true;
        self.offer(tomb)
    }

    /// Changes this node's own endpoint or role (one version up); `None` if unchanged.
    pub fn set_me(&mut self, endpoint: Option<&str>, role: Option<Role>) -> Option<Delta> {
        let mut next = self.me().clone();
        if let Some(e) = endpoint {
            next.endpoint = e.to_string();
        }
        if let Some(r) = role {
            next.role = r;
        }
        if same_content(self.me(), &next) {
            return None;
        }
        next.version += 1;
        self.offer(next)
    }

    /// Enrols this node's own head key if its entry has none (first start, or an entry from
    /// before enrolment): one version up. `None` if a key is enrolled already.
    pub fn enrol_me(&mut self, key: HeadPublicKey) -> Option<Delta> {
        if !self.me().head_keys.is_empty() {
            return None;
        }
        let mut next = self.me().clone();
        next.head_keys = HeadKeys::first(key);
        next.version += 1;
        self.offer(next)
    }

    /// Puts this node's rotated key list in its entry (one version up); `None` unless `keys`
    /// extends the enrolled list with valid links.
    pub fn rotate_me(&mut self, keys: HeadKeys) -> Option<Delta> {
        if self.me().head_keys.join(&self.me, &keys) != Join::Extends {
            return None;
        }
        let mut next = self.me().clone();
        next.head_keys = keys;
        next.version += 1;
        self.offer(next)
    }

    /// [`Membership::offer_into`] for a local change, which never offers a foreign key.
    fn offer(&mut self, p: PeerInfo) -> Option<Delta> {
        let mut refused = Vec::new();
        let delta = self.offer_into(p, &mut refused);
        debug_assert!(refused.is_empty(), "a local change refused its own key");
        delta
    }

    /// Keeps `p` if it wins over the entry held for its id; says what changed. Head keys merge
    /// apart from the rest: the held list is replaced only by one that extends it with valid
    /// rotations ([`HeadKeys::join`]); any other offered key is refused into `refused`.
    fn offer_into(&mut self, mut p: PeerInfo, refused: &mut Vec<Delta>) -> Option<Delta> {
        let id = p.agent_id.clone();
        match self.entries.get(&id) {
            Some(cur) => {
                p.head_keys = match cur.head_keys.join(&id, &p.head_keys) {
                    Join::Same | Join::Behind => cur.head_keys.clone(),
                    Join::Extends => p.head_keys,
                    Join::Fork { offered } => {
                        if self.refused.insert((id.clone(), offered)) {
                            let enrolled = cur.head_keys.current();
                            refused.push(Delta::KeyRefused {
                                id: id.clone(),
                                enrolled,
                                offered,
                            });
                        }
                        cur.head_keys.clone()
                    }
                };
                if !wins(&p, cur) && p.head_keys != cur.head_keys {
                    // An older entry that carries a rotation: the held entry with its keys.
                    let mut next = cur.clone();
                    next.head_keys = p.head_keys;
                    p = next;
                }
            }
            None => p.head_keys = p.head_keys.valid_prefix(&id),
        }
        let delta = match self.entries.get(&id) {
            Some(cur) if *cur == p => return None,
            Some(cur) if !wins(&p, cur) && p.head_keys == cur.head_keys => return None,
            _ if id == self.me => Delta::Me(p.clone()),
            Some(cur) if p.removed && !cur.removed => Delta::Removed(id.clone()),
            Some(cur) if p.removed || cur.removed => {
                // Tombstone over tombstone: nothing live changes.
                debug_assert!(p.removed && cur.removed);
                self.entries.insert(id, p);
                return None;
            }
            Some(_) => Delta::Changed(p.clone()),
            None if p.removed => {
                self.entries.insert(id.clone(), p);
                return Some(Delta::Removed(id));
            }
            None => Delta::Added(p.clone()),
        };
        self.entries.insert(id, p);
        Some(delta)
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Primary => "primary",
        Role::Replica => "replica",
    }
}

fn same_content(a: &PeerInfo, b: &PeerInfo) -> bool {
    a.endpoint == b.endpoint && a.role == b.role && a.removed == b.removed
}

/// Whether `a` replaces `b` (entries of one id): a tombstone over any live entry, then the
/// higher version, then a fixed order of the content.
fn wins(a: &PeerInfo, b: &PeerInfo) -> bool {
    let key = |p: &PeerInfo| {
        (
            p.removed,
            p.version,
            p.endpoint.clone(),
            role_name(p.role),
            p.added_at_ms,
        )
    };
    key(a) > key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, endpoint: &str, version: u64) -> PeerInfo {
        PeerInfo {
            agent_id: AgentId::new(id).unwrap(),
            endpoint: endpoint.into(),
            role: Role::Replica,
            added_at_ms: 7,
            version,
            removed: false,
            head_keys: HeadKeys::default(),
        }
    }

    fn view(me: &str) -> Membership {
        Membership::new(info(me, &format!("http://{me}"), 0), [])
    }

    #[test]
    fn a_new_entry_is_added_and_an_older_version_never_replaces_a_newer() {
        let mut m = view("a");
        let b1 = info("b", "http://b", 1);
        assert_eq!(
            m.merge(std::slice::from_ref(&b1)),
            vec![Delta::Added(b1.clone())]
        );
        assert_eq!(m.merge(std::slice::from_ref(&b1)), vec![], "idempotent");
        let b2 = info("b", "http://b2", 2);
        assert_eq!(
            m.merge(std::slice::from_ref(&b2)),
            vec![Delta::Changed(b2.clone())]
        );
        assert_eq!(m.merge(&[b1]), vec![], "older version ignored");
        assert_eq!(m.get(&b2.agent_id), Some(&b2));
    }

    #[test]
    fn merging_in_any_order_gives_the_same_set_and_digest() {
        let entries = [
            info("b", "http://b", 1),
            info("b", "http://b-other", 1),
            info("c", "http://c", 3),
            info("c", "http://c", 2),
            PeerInfo {
                removed: true,
                ..info("d", "http://d", 2)
            },
            info("d", "http://d", 2),
        ];
        let mut forward = view("a");
        forward.merge(&entries);
        let mut backward = view("a");
        let mut rev = entries.to_vec();
        rev.reverse();
        backward.merge(&rev);
        assert_eq!(forward.all(), backward.all());
        assert_eq!(forward.digest(), backward.digest());
        assert!(forward.is_removed(&AgentId::new("d").unwrap()));
    }

    #[test]
    fn head_keys_merge_apart_from_the_version_in_any_order() {
        use crate::ledger::HeadKey;
        let (k1, k2) = (HeadKey::from_bytes([1; 32]), HeadKey::from_bytes([2; 32]));
        let b = AgentId::new("b").unwrap();
        let first = HeadKeys::first(k1.public());
        let rotated = first.rotated(&b, &k1, k2.public()).unwrap();
        let with = |endpoint: &str, version: u64, keys: &HeadKeys| PeerInfo {
            head_keys: keys.clone(),
            ..info("b", endpoint, version)
        };
        // A rotation at v2 and a move at v3 made from a view that had not seen it.
        let entries = [
            info("b", "http://b", 1),
            with("http://b", 1, &first),
            with("http://b", 2, &rotated),
            with("http://b-moved", 3, &first),
        ];
        let mut views = Vec::new();
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]] {
            let mut m = view("a");
            for i in order {
                m.merge(std::slice::from_ref(&entries[i]));
            }
            views.push(m);
        }
        for m in &views {
            let got = m.get(&b).unwrap();
            assert_eq!((got.endpoint.as_str(), got.version), ("http://b-moved", 3));
            assert_eq!(got.head_keys, rotated, "the rotation is never lost");
            assert_eq!(m.digest(), views[0].digest());
        }
    }

    #[test]
    fn two_views_that_exchange_their_sets_agree() {
        let mut a = view("a");
        let mut b = view("b");
        a.merge(&[info("c", "http://c", 1)]);
        b.merge(&[info("d", "http://d", 1)]);
        assert_ne!(a.digest(), b.digest());
        // Push-pull: a sends its set, b merges and answers with its own.
        b.merge(&a.all());
        a.merge(&b.all());
        assert_eq!(a.all(), b.all());
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn a_removed_id_stays_removed_and_cannot_be_added_again() {
        let mut m = view("a");
        let b = info("b", "http://b", 1);
        m.merge(std::slice::from_ref(&b));
        assert_eq!(
            m.remove(&b.agent_id),
            Some(Delta::Removed(b.agent_id.clone()))
        );
        assert_eq!(m.remove(&b.agent_id), None, "already removed");
        assert_eq!(
            m.add(info("b", "http://b", 0)),
            None,
            "never a member again"
        );
        assert_eq!(
            m.merge(&[info("b", "http://b", 9)]),
            vec![],
            "a tombstone beats any version"
        );
        // A view that never knew b learns the tombstone, not a member.
        let mut fresh = view("c");
        assert_eq!(
            fresh.merge(&m.all()),
            vec![
                Delta::Added(m.get(&AgentId::new("a").unwrap()).unwrap().clone()),
                Delta::Removed(b.agent_id.clone())
            ]
        );
        assert_eq!(m.remove(&AgentId::new("a").unwrap()), None, "not itself");
    }

    #[test]
    fn own_entry_changes_bump_its_version_and_are_reported_as_me() {
        let mut m = view("a");
        let d = m.set_me(Some("http://region-a:7475"), None).unwrap();
        let Delta::Me(me) = d else { panic!("{d:?}") };
        assert_eq!(
            (me.version, me.endpoint.as_str()),
            (1, "http://region-a:7475")
        );
        assert_eq!(m.set_me(Some("http://region-a:7475"), None), None);
        // Another node's newer word on this node's entry is taken (a divide named it).
        let given = PeerInfo {
            role: Role::Primary,
            ..info("a", "http://a.example", 2)
        };
        assert_eq!(
            m.merge(std::slice::from_ref(&given)),
            vec![Delta::Me(given)]
        );
    }

    #[test]
    fn adding_what_is_already_known_changes_nothing_and_a_move_is_a_new_version() {
        let mut m = view("a");
        let Some(Delta::Added(b)) = m.add(info("b", "http://b", 0)) else {
            panic!("added")
        };
        assert_eq!(b.version, 1);
        assert_eq!(m.add(info("b", "http://b", 0)), None);
        let Some(Delta::Changed(moved)) = m.add(info("b", "http://b2", 0)) else {
            panic!("changed")
        };
        assert_eq!(moved.version, 2);
    }
}
