//! The [`Progress`] sink through which the runner and stages report what they are doing. The binary
//! implements it with progress bars on a terminal; tests and scripts use [`NoProgress`].

/// Receives progress reports. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// A stage attempt started.
    fn stage_started(&self, _stage: &str, _attempt: u32) {}
    /// A stage has done `done` of `total` units of work.
    fn stage_advanced(&self, _stage: &str, _done: u64, _total: u64) {}
    /// What a stage is doing now, in a few words (e.g. what a wait saw last); empty: nothing
    /// worth saying.
    fn stage_status(&self, _stage: &str, _message: &str) {}
    /// A stage attempt ended; `outcome` is a short human summary.
    fn stage_finished(&self, _stage: &str, _succeeded: bool, _outcome: &str) {}
    /// Something the user should know that is not a stage's outcome (e.g. output written again
    /// from the log on resume).
    fn note(&self, _message: &str) {}
}

/// Ignores every report.
pub struct NoProgress;

impl Progress for NoProgress {}
