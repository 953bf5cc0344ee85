//! `windlass-engine` runs pipelines. It defines the [`Stage`] contract (a config half that validates
//! without I/O and builds a runtime half, asynchronously and with injected [`Services`]), builds a
//! pipeline as a `petgraph` DAG while collecting every configuration error (from specs in code or
//! from a pipeline file, [`pipeline_file`]), runs independent stages concurrently on tokio, records
//! each stage's lifecycle and facts in the event log, retries transient failures through one policy
//! function, and folds an install's events into its state (used by `show` and by resume), keeping
//! projections (install summaries, install keys, facts by type) so that `history`, resume and the
//! probe cache need not fold every install. It never
//! depends on a concrete stage: stage kinds arrive through a [`StageRegistry`], registered by name
//! with a factory closure.

pub mod events;
pub mod install;
pub mod install_index;
pub mod install_state;
pub mod memo;
pub mod memory_output;
pub mod pipeline;
pub mod pipeline_file;
pub mod progress;
pub mod recorded_run;
pub mod retry;
pub mod runner;
pub mod services;
pub mod stage;

pub use events::InstallKind;
pub use install::{
    CarriedConfigValues, ConfigValuesInput, InstallRequest, License, LicenseRecord,
    LocalRegistryInput,
};
pub use install_index::{InstallProjector, InstallSummary};
pub use install_state::{
    FoldError, InstallState, InstallStatus, StageState, StageStatus, fold, fold_owned,
};
pub use memo::Memo;
pub use memory_output::{MemoryFile, MemoryOutput};
pub use pipeline::{
    DuplicateKind, Pipeline, PipelineError, PipelineErrors, StageFactory, StageKind, StageRegistry,
    StageSpec,
};
pub use progress::{NoProgress, Progress};
pub use recorded_run::RecordedRun;
pub use retry::retry_delay;
pub use runner::{ChainCheck, RunError, Runner};
pub use services::{
    Clock, FixedClock, HttpClient, KubernetesClientFactory, NamedLocks, NoKubernetes, NoRandom,
    OsRandom, RandomSource, ServiceError, Services, StateDirLocks, SystemClock,
};
pub use stage::{
    BuildContext, Fact, FactHistory, FailureClass, Stage, StageConfig, StageContext, StageError,
    StageOutput, recorded_fact, recorded_payload,
};
pub use windlass_state::EventPayload;
