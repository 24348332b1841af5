//! Waiting for conditions with deadlines. Black-box tests never sleep for an event: they poll
//! the condition, with a short pause between checks, until it holds or the deadline passes.

use std::time::{Duration, Instant};

/// The pause between two checks of a polled condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `cond` until it returns true (then `true`) or `within` has passed (then `false`).
pub fn try_wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `cond` until it returns true; panics naming `what` if `within` passes first.
pub fn wait_until(within: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        try_wait_until(within, cond),
        "timed out after {within:?} waiting for {what}"
    );
}
