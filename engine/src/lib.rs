//! `windlass-engine` runs pipelines. It defines the [`Stage`] contract (a config half that validates
//! without I/O and builds a runtime half), builds a pipeline as a `petgraph` DAG while collecting
//! every configuration error, runs independent stages concurrently on tokio, records each stage's
//! lifecycle and facts in the event log, retries transient failures through one policy function,
//! and folds an install's events into its state (used by `show` and by resume), keeping
//! projections (install summaries, install keys, facts by type) so that `history`, resume and the
//! probe cache need not fold every install. It never depends on
//! a concrete stage: stages arrive through a [`StageRegistry`] built by the binary.

pub mod events;
pub mod install;
pub mod install_index;
pub mod install_state;
pub mod memo;
pub mod pipeline;
pub mod progress;
pub mod retry;
pub mod runner;
pub mod stage;

pub use install::{InstallRequest, License, LicenseRecord};
pub use install_index::{InstallProjector, InstallSummary};
pub use install_state::{
    FoldError, InstallState, InstallStatus, StageState, StageStatus, fold, fold_owned,
};
pub use memo::Memo;
pub use pipeline::{Pipeline, PipelineError, PipelineErrors, StageKind, StageRegistry, StageSpec};
pub use progress::{NoProgress, Progress};
pub use retry::retry_delay;
pub use runner::{RunError, Runner};
pub use stage::{
    Fact, FactHistory, FailureClass, Stage, StageConfig, StageContext, StageError, StageOutput,
};
