//! `windlass-replay` re-runs recorded installs and compares installs. [`run::replay`] re-runs an
//! install offline through the stages' own code from what the log holds (release blobs, recorded
//! probe results, recorded stage configurations, the recorded clock) into a scratch directory and
//! compares every fact and file with what the install recorded; with changed options
//! ([`run::WhatIf`]) the same run answers "what would this install have produced if ...".
//! [`events`] holds the two events a replay records (`ReplayVerified`, `ReplayDiffered`),
//! [`compare`] how facts and files are compared, [`scratch`] the throwaway directory a replay runs
//! in, [`text_diff`] unified diffs, and `skim` reads an install leaving out what a diff never
//! reads. The crate sits above `stages` (it runs the built-in stage
//! kinds) and below the binary; it never touches the network, a release directory or a cluster.

pub mod compare;
pub mod diff;
pub mod events;
mod helm_diff;
pub mod run;
pub mod scratch;
mod skim;
pub mod text_diff;

pub use events::SCHEMAS;

/// Why a replay could not run to a verdict. A replay that ran and found differences is not an
/// error: see [`run::ReplayReport`].
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No install has that id.
    #[error("no install with id {0:?} in this state directory (see `windlass history`)")]
    NotFound(String),
    /// The install did not complete, so there is nothing whole to compare with.
    #[error("install {install_id} is {status}: only a completed install can be replayed")]
    NotCompleted {
        /// The install.
        install_id: String,
        /// Its status.
        status: String,
    },
    /// The log fails its hash-chain check (an event was edited, removed or reordered).
    #[error("the event log is damaged{}: {message}", .global_seq.map(|seq| format!(" at record {seq}")).unwrap_or_default())]
    DamagedLog {
        /// The first bad record, when known.
        global_seq: Option<u64>,
        /// The chain check's message.
        message: String,
    },
    /// A blob the install recorded is damaged or missing.
    #[error("stage {stage}: {file}: blob {blob} {problem}")]
    Blob {
        /// The stage whose fact names the blob.
        stage: String,
        /// The file it holds.
        file: String,
        /// The blob id.
        blob: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The license given is not the one the install ran with.
    #[error("--license: the license's fingerprint is {given}, but the install ran with {recorded}")]
    LicenseMismatch {
        /// Fingerprint of the license given.
        given: String,
        /// Fingerprint recorded.
        recorded: String,
    },
    /// The ConfigValues file given is not the one the install ran with.
    #[error(
        "--config-values: the file's fingerprint is {given}, but the install ran with {recorded}"
    )]
    ConfigValuesMismatch {
        /// Fingerprint of the file given.
        given: String,
        /// Fingerprint recorded.
        recorded: String,
    },
    /// The registry password file given is not the one the install ran with (or the install did
    /// not run in local-registry mode with a password).
    #[error(
        "--registry-password-file: the password's fingerprint is {given}, but the install ran with {recorded}"
    )]
    RegistryPasswordMismatch {
        /// Fingerprint of the password given.
        given: String,
        /// Fingerprint recorded.
        recorded: String,
    },
    /// What the install recorded cannot be replayed (a fact that does not decode, a pipeline
    /// this binary cannot build).
    #[error("cannot replay what was recorded: {0}")]
    Recorded(String),
    /// The log cannot be read or written.
    #[error("event log: {0}")]
    Log(String),
    /// The scratch directory or the replayed run failed.
    #[error("replay: {0}")]
    Scratch(String),
}
