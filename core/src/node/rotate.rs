//! `POST /v1/cluster/rotate-head-key`: this node's head key is replaced by one the shell drew,
//! signed in by the current key and carried in this node's membership entry, so every member
//! accepts the new key and refuses any other ([`crate::ledger::enrol`]).

use super::{Event, Node, RequestId, Response};
use crate::ledger::{HeadKey, MAX_HEAD_KEYS};
use crate::time::Instant;

impl Node {
    pub(super) fn rotate_head_key(&mut self, now: Instant, request: RequestId, next: HeadKey) {
        let me = self.config.agent_id.clone();
        let old = self.heads.key().clone();
        let keys = self.membership.me().head_keys.clone();
        let refuse = |reason: String| Response::RotateRefused { reason };
        if let Some(why) = self.own_chain_unsafe() {
            let reason = format!("this node's own chain is not what its last head says: {why}");
            return self.respond(request, refuse(reason));
        }
        if keys.current() != Some(old.public()) {
            let reason = format!(
                "the cluster enrolled head key {keys} for {me}, not this node's key file's \
                 {}: only the enrolled key can sign a rotation; restore the key file that \
                 holds it",
                old.public()
            );
            return self.respond(request, refuse(reason));
        }
        let Some(rotated) = keys.rotated(&me, &old, next.public()) else {
            let reason = format!("{me} has rotated its head key {MAX_HEAD_KEYS} times, the most");
            return self.respond(request, refuse(reason));
        };
        let enrolled = rotated.len();
        if self.membership.rotate_me(rotated).is_none() {
            let reason = "the rotation did not verify".to_string();
            return self.respond(request, refuse(reason));
        }
        let key = next.public();
        self.heads.rotate(&me, next);
        self.sign_own_head(now);
        let replaced = old.public();
        self.log(Event::HeadKeyEnrolled {
            member: me,
            key,
            replaced: Some(replaced),
        });
        let mine = vec![self.membership.me().clone()];
        let live: Vec<_> = self.peers.values().map(|p| p.info.clone()).collect();
        for p in &live {
            self.admin.announce(p, mine.clone(), None, Vec::new());
        }
        let answer = Response::HeadKeyRotated {
            key,
            replaced,
            enrolled,
        };
        self.persist_then(request, answer);
    }
}
