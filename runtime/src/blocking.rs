//! Where blocking file reads and CPU-heavy verification run.
//!
//! In production they go to tokio's blocking pool so the async threads stay responsive. In a
//! deterministic simulation (turmoil) they run inline on the calling task: a real thread would
//! finish at a moment chosen by the OS scheduler, and the run would no longer be a function of
//! its seed.

/// How [`Blocking::run`] runs a closure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Blocking {
    /// On tokio's blocking pool (production).
    #[default]
    Pool,
    /// On the calling task, before the future first returns (deterministic simulation).
    Inline,
}

/// The blocking task panicked or was cancelled at shutdown.
#[derive(Debug, thiserror::Error)]
#[error("blocking task failed: {0}")]
pub struct TaskFailed(String);

impl Blocking {
    /// Runs `f` as configured and returns its result.
    pub async fn run<F, R>(self, f: F) -> Result<R, TaskFailed>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match self {
            Blocking::Pool => tokio::task::spawn_blocking(f)
                .await
                .map_err(|e| TaskFailed(e.to_string())),
            Blocking::Inline => Ok(f()),
        }
    }
}
