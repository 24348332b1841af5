//! Writes of the cluster view (`cluster.json`): numbered versions written in order by the
//! shell, the answers that wait for a version to be durable, and what a failed write does.
//!
//! A change to the cluster view takes effect in memory at once and is answered only when a
//! version holding it is durable. A failed write of the newest version answers everyone
//! waiting with [`Response::NotPersisted`] (the change is in effect here but may not survive
//! a restart) and is retried with a doubling delay until a write succeeds; a failed write of
//! an older version needs nothing, because the newer one already queued holds its state.

use core::time::Duration;

use super::{RequestId, Response};
use crate::repl::backoff::{Backoff, BackoffPolicy};
use crate::time::Instant;

/// The first wait before a failed write is tried again; it doubles up to [`RETRY_MAX`].
pub(super) const RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest wait between tries of a failing write.
pub(super) const RETRY_MAX: Duration = Duration::from_secs(30);
/// The schedule of those tries.
const RETRY: BackoffPolicy = BackoffPolicy {
    initial: RETRY_MIN,
    max: RETRY_MAX,
    jitter: 0.0,
};

/// The cluster view's writes.
#[derive(Debug, Default)]
pub(super) struct ClusterWrites {
    /// The last version asked to be written.
    version: u64,
    /// Answers waiting for a version to be durable.
    waiters: Vec<(u64, RequestId, Response)>,
    /// The newest write failed: when to write again.
    retry: Option<Instant>,
    /// How many writes failed in a row, for the wait after the next.
    backoff: Backoff,
}

impl ClusterWrites {
    /// A new version to write; returns its number.
    pub(super) fn next(&mut self) -> u64 {
        self.version += 1;
        self.retry = None;
        self.version
    }

    /// `response` answers `request` once `version` is durable.
    pub(super) fn wait(&mut self, version: u64, request: RequestId, response: Response) {
        self.waiters.push((version, request, response));
    }

    /// `version` is durable: the answers it releases (every version up to it).
    pub(super) fn written(&mut self, version: u64) -> Vec<(RequestId, Response)> {
        self.backoff.reset();
        self.release(version, |r| r)
    }

    /// Writing `version` failed at `now` (`reason` in the shell's words): the answers to
    /// send instead, and when the next try is due. `None` when a newer version is already
    /// on its way (it holds this one's state and its outcome answers these waiters).
    pub(super) fn failed(
        &mut self,
        version: u64,
        now: Instant,
        reason: &str,
    ) -> Option<(Vec<(RequestId, Response)>, Duration)> {
        if version < self.version {
            return None;
        }
        let delay = self.backoff.fail_steady(&RETRY);
        self.retry = Some(now + delay);
        let reason = format!(
            "the change is in effect on this node but writing cluster.json failed ({reason}); \
             it is retried every {} s at most and is lost if the node restarts first",
            RETRY_MAX.as_secs()
        );
        let answers = self.release(version, |_| Response::NotPersisted {
            reason: reason.clone(),
        });
        Some((answers, delay))
    }

    /// Whether a retry is due at `now`; the caller then writes a new version.
    pub(super) fn retry_due(&self, now: Instant) -> bool {
        self.retry.is_some_and(|at| now >= at)
    }

    /// When the failed write is tried again, if one failed.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry
    }

    /// Whether a retry is pending (the node's tick must keep running).
    pub(super) fn retrying(&self) -> bool {
        self.retry.is_some()
    }

    fn release(
        &mut self,
        version: u64,
        answer: impl Fn(Response) -> Response,
    ) -> Vec<(RequestId, Response)> {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(v, _, _)| *v <= version);
        self.waiters = waiting;
        ready
            .into_iter()
            .map(|(_, request, response)| (request, answer(response)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removed(n: u64) -> Response {
        Response::MemberRemoved {
            agent_id: crate::id::AgentId::new(format!("n{n}")).unwrap(),
        }
    }

    #[test]
    fn a_durable_version_answers_everything_up_to_it_in_order() {
        let mut w = ClusterWrites::default();
        for n in 1..=3 {
            let v = w.next();
            w.wait(v, RequestId(n), removed(n));
        }
        let got = w.written(2);
        assert_eq!(
            got,
            vec![(RequestId(1), removed(1)), (RequestId(2), removed(2))]
        );
        assert_eq!(w.written(3), vec![(RequestId(3), removed(3))]);
        assert!(w.written(3).is_empty());
    }

    #[test]
    fn a_failed_newest_write_refuses_its_waiters_and_retries_with_a_doubling_delay() {
        let mut w = ClusterWrites::default();
        let v = w.next();
        w.wait(v, RequestId(7), removed(7));
        let t0 = Instant::from_millis(10_000);
        let (answers, delay) = w.failed(v, t0, "No space left on device").expect("newest");
        assert_eq!(delay, RETRY_MIN);
        match answers.as_slice() {
            [(RequestId(7), Response::NotPersisted { reason })] => {
                assert!(reason.contains("No space left on device"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(!w.retry_due(t0) && w.retrying());
        assert!(w.retry_due(t0 + RETRY_MIN));
        let mut delays = Vec::new();
        for _ in 0..7 {
            let v = w.next();
            delays.push(w.failed(v, t0, "EIO").expect("newest").1.as_secs());
        }
        assert_eq!(delays, vec![2, 4, 8, 16, 30, 30, 30]);
        let v = w.next();
        assert!(!w.retrying(), "a new write replaces the pending retry");
        assert!(w.written(v).is_empty());
        let v = w.next();
        assert_eq!(w.failed(v, t0, "EIO").expect("newest").1, RETRY_MIN);
    }

    #[test]
    fn a_failed_older_write_waits_for_the_newer_one() {
        let mut w = ClusterWrites::default();
        let old = w.next();
        w.wait(old, RequestId(1), removed(1));
        let new = w.next();
        assert!(w.failed(old, Instant::ZERO, "EIO").is_none());
        assert!(!w.retrying());
        assert_eq!(w.written(new), vec![(RequestId(1), removed(1))]);
    }
}
