//! The engine's own events: the lifecycle of an install and of each stage attempt. These structs
//! are wire formats (stored in the log for ever), so fields are only ever added as optional; any
//! other change bumps the version and adds an upcaster to [`SCHEMAS`]. This module imports no
//! other module of the crate.

use serde::{Deserialize, Serialize};
use windlass_state::{EventPayload, EventSchema, Upcaster};

/// `InstallStarted`: an install began.
pub const INSTALL_STARTED: &str = "InstallStarted";
/// `InstallResumed`: an interrupted install was picked up again.
pub const INSTALL_RESUMED: &str = "InstallResumed";
/// `StageStarted`: a stage attempt began.
pub const STAGE_STARTED: &str = "StageStarted";
/// `StageCompleted`: a stage attempt succeeded; its facts immediately precede it.
pub const STAGE_COMPLETED: &str = "StageCompleted";
/// `StageFailed`: a stage attempt failed.
pub const STAGE_FAILED: &str = "StageFailed";
/// `StageFactsRecorded`: a running stage recorded facts as it went (they immediately precede it).
pub const STAGE_FACTS_RECORDED: &str = "StageFactsRecorded";
/// `InstallCompleted`: every stage completed.
pub const INSTALL_COMPLETED: &str = "InstallCompleted";
/// `InstallFailed`: a stage failed for good.
pub const INSTALL_FAILED: &str = "InstallFailed";

/// The engine's event types with their upcasters.
pub const SCHEMAS: &[EventSchema] = &[
    EventSchema::of::<InstallStarted>(&[
        Upcaster {
            from_version: 1,
            upcast: install_started_v1_to_v2,
        },
        Upcaster {
            from_version: 2,
            upcast: install_started_v2_to_v3,
        },
    ]),
    EventSchema::of::<InstallResumed>(&[]),
    EventSchema::of::<StageStarted>(&[]),
    EventSchema::of::<StageCompleted>(&[]),
    EventSchema::of::<StageFactsRecorded>(&[]),
    EventSchema::of::<StageFailed>(&[]),
    EventSchema::of::<InstallCompleted>(&[]),
    EventSchema::of::<InstallFailed>(&[]),
];

/// One stage as declared in the pipeline that an install runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineStageRecord {
    /// The stage's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Names of the stages whose facts it reads.
    pub inputs: Vec<String>,
    /// The stage's full configuration, exactly as the pipeline gave it to the stage kind (since
    /// `InstallStarted` version 3; `null` for installs recorded before, whose configuration only
    /// entered the install key as a digest). Stage configurations hold no secrets.
    pub config: serde_json::Value,
}

/// `InstallStarted` version 3.
///
/// Version 1 kept the license as three flat fields (`app_slug`, `license_sequence`,
/// `license_fingerprint`) that were all null without a license; version 2 groups them in an
/// optional `license` object so an install without a license is unambiguous. Version 3 records
/// each stage's full configuration (`pipeline[].config`), so an install can be explained and
/// replayed from its own log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallStarted {
    /// The release directory.
    pub release_dir: String,
    /// blake3 digest of the release.
    pub release_digest: String,
    /// See [`crate::InstallRequest::install_key`].
    pub install_key: String,
    /// The app slug (from the license, else `app`).
    pub app_slug: String,
    /// What is recorded about the license.
    pub license: Option<LicenseRecord>,
    /// The app namespace.
    pub namespace: String,
    /// The output directory.
    pub out_dir: String,
    /// The stages of the pipeline, in order.
    pub pipeline: Vec<PipelineStageRecord>,
    /// The install this one upgrades: the newest completed install of the same app in this state
    /// directory, when it installed another release (an optional field: absent when there is
    /// none, and in events recorded before windlass looked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades: Option<String>,
    /// Which command began it (an optional field: absent in events recorded before 2026-11-28,
    /// whose kind [`InstallStarted::kind`] tells from the pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<InstallKind>,
}

impl InstallStarted {
    /// Which command began the install: as recorded, or told from the pipeline of an install
    /// recorded before the kind was (see [`InstallKind::told_from_pipeline`]).
    pub fn kind(&self) -> InstallKind {
        self.kind
            .unwrap_or_else(|| InstallKind::told_from_pipeline(&self.pipeline))
    }
}

/// Which command began an install: its runs are all installs in the log (each has its own id,
/// stages and outcome), and this tells them apart in `history`, `show` and the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallKind {
    /// `windlass install` (and the daemon's installs): a release rendered, and applied when a
    /// target was given.
    #[default]
    Install,
    /// `windlass apply INSTALL_ID`: an install rendered earlier, applied.
    Apply,
    /// `windlass undeploy INSTALL_ID`: the app removed from a cluster.
    Undeploy,
}

impl InstallKind {
    /// The kind of an install recorded before the kind was: `windlass apply` and `windlass
    /// undeploy` ran a pipeline of one stage whose configuration names the install it applies
    /// (`source_install`), with `undeploy: true` for an undeploy; anything else was an install.
    /// (The engine reads these two keys of the apply stage's configuration here only.)
    pub fn told_from_pipeline(pipeline: &[PipelineStageRecord]) -> InstallKind {
        let [only] = pipeline else {
            return InstallKind::Install;
        };
        if !only
            .config
            .get("source_install")
            .is_some_and(serde_json::Value::is_string)
        {
            return InstallKind::Install;
        }
        if only.config.get("undeploy") == Some(&serde_json::Value::Bool(true)) {
            InstallKind::Undeploy
        } else {
            InstallKind::Apply
        }
    }

    /// The kind as `history` prints it: `install`, `apply` or `undeploy`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallKind::Install => "install",
            InstallKind::Apply => "apply",
            InstallKind::Undeploy => "undeploy",
        }
    }
}

impl EventPayload for InstallStarted {
    const EVENT_TYPE: &'static str = INSTALL_STARTED;
    const VERSION: u32 = 3;
}

/// Version 2 recorded no stage configuration: it becomes `null` ("not recorded").
fn install_started_v2_to_v3(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
    let stages = payload
        .get_mut("pipeline")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or("InstallStarted v2 payload has no pipeline list")?;
    for stage in stages {
        let stage = stage
            .as_object_mut()
            .ok_or("InstallStarted v2 pipeline entry is not an object")?;
        stage.entry("config").or_insert(serde_json::Value::Null);
    }
    Ok(payload)
}

fn install_started_v1_to_v2(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
    let object = payload
        .as_object_mut()
        .ok_or("InstallStarted v1 payload is not an object")?;
    let app_slug = object.remove("app_slug").unwrap_or(serde_json::Value::Null);
    let sequence = object
        .remove("license_sequence")
        .unwrap_or(serde_json::Value::Null);
    let fingerprint = object
        .remove("license_fingerprint")
        .unwrap_or(serde_json::Value::Null);
    let license = if fingerprint.is_null() {
        serde_json::Value::Null
    } else {
        serde_json::json!({
            "app_slug": app_slug.clone(),
            "sequence": sequence,
            "fingerprint": fingerprint,
        })
    };
    let app_slug = if app_slug.is_null() {
        serde_json::Value::from("app")
    } else {
        app_slug
    };
    object.insert("app_slug".into(), app_slug);
    object.insert("license".into(), license);
    Ok(payload)
}

/// `InstallResumed` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallResumed {
    /// Stages already completed, which will not run again.
    pub completed_stages: Vec<String>,
    /// Output a completed stage had written that was missing or damaged and was written again
    /// from its recorded facts and blobs before the resume (added later: absent when nothing was).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rederived: Vec<RederivedOutput>,
}

impl EventPayload for InstallResumed {
    const EVENT_TYPE: &'static str = INSTALL_RESUMED;
    const VERSION: u32 = 1;
}

/// Output of a completed stage written again on resume (part of `InstallResumed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RederivedOutput {
    /// The stage whose output it was.
    pub stage: String,
    /// What was wrong and what was written again, for humans.
    pub detail: String,
}

/// `StageStarted` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStarted {
    /// Stage name.
    pub stage: String,
    /// Attempt number, from 1, counted across resumes.
    pub attempt: u32,
}

impl EventPayload for StageStarted {
    const EVENT_TYPE: &'static str = STAGE_STARTED;
    const VERSION: u32 = 1;
}

/// `StageFactsRecorded` version 1: the `facts` events immediately before it (in the same atomic
/// batch) are facts stage `stage` recorded while running (see
/// [`crate::StageContext::record_fact`]). They belong to the stage from then on, across attempts
/// and resumes, until the stage completes or an input of it is found stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageFactsRecorded {
    /// Stage name.
    pub stage: String,
    /// The attempt that recorded them.
    pub attempt: u32,
    /// How many fact events immediately precede this one.
    pub facts: u32,
}

impl EventPayload for StageFactsRecorded {
    const EVENT_TYPE: &'static str = STAGE_FACTS_RECORDED;
    const VERSION: u32 = 1;
}

/// `StageCompleted` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageCompleted {
    /// Stage name.
    pub stage: String,
    /// Attempt number.
    pub attempt: u32,
    /// Wall time of the attempt.
    pub duration_ms: u64,
    /// How many fact events immediately precede this one (recorded in the same batch).
    pub facts: u32,
    /// One line for humans.
    pub summary: String,
}

impl EventPayload for StageCompleted {
    const EVENT_TYPE: &'static str = STAGE_COMPLETED;
    const VERSION: u32 = 1;
}

/// `StageFailed` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageFailed {
    /// Stage name.
    pub stage: String,
    /// Attempt number.
    pub attempt: u32,
    /// Wall time of the attempt.
    pub duration_ms: u64,
    /// How the failure is classified.
    pub class: FailureClass,
    /// What went wrong (never a secret).
    pub message: String,
    /// When the runner will try again, if it will.
    pub retry_in_ms: Option<u64>,
    /// Input stages whose recorded results were found damaged; the install's next run runs them
    /// again (optional: absent in records written before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_inputs: Vec<String>,
}

impl EventPayload for StageFailed {
    const EVENT_TYPE: &'static str = STAGE_FAILED;
    const VERSION: u32 = 1;
}

/// `InstallCompleted` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallCompleted {
    /// Wall time of this run (since the install started or resumed).
    pub duration_ms: u64,
}

impl EventPayload for InstallCompleted {
    const EVENT_TYPE: &'static str = INSTALL_COMPLETED;
    const VERSION: u32 = 1;
}

/// `InstallFailed` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallFailed {
    /// The stage that failed.
    pub stage: String,
    /// How.
    pub class: FailureClass,
    /// What went wrong.
    pub message: String,
}

impl EventPayload for InstallFailed {
    const EVENT_TYPE: &'static str = INSTALL_FAILED;
    const VERSION: u32 = 1;
}

/// How a stage failure should be treated; recorded in `StageFailed` and read by the retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Might succeed if tried again (network blips, a lock held briefly).
    Transient,
    /// Will fail again the same way (a bug, a full disk).
    Permanent,
    /// The user's input is wrong; retrying without changing it is pointless.
    InvalidInput,
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureClass::Transient => "transient",
            FailureClass::Permanent => "permanent",
            FailureClass::InvalidInput => "invalid input",
        })
    }
}

/// The recordable part of a license (wire format: part of `InstallStarted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseRecord {
    /// The app slug.
    pub app_slug: String,
    /// The license sequence.
    pub sequence: i64,
    /// Keyed fingerprint of the license ID.
    pub fingerprint: String,
    /// Expiry, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}
