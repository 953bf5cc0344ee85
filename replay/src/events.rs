//! The events a replay records: `ReplayVerified` when every file and fact it produced equals what
//! the install recorded, `ReplayDiffered` otherwise, both appended to the replayed install's own
//! stream, so that an auditor's checks are themselves in the log. Wire formats: add only optional
//! fields; anything else bumps a version and adds an upcaster to [`SCHEMAS`].

use serde::{Deserialize, Serialize};
use windlass_state::{EventPayload, EventSchema};

/// One difference between a replay and the recorded install (wire format: `ReplayDiffered` and
/// `replay --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The stage.
    pub stage: String,
    /// The file, relative to the output directory, when the difference is in a file.
    pub file: Option<String>,
    /// `changed`, `added` (produced, not recorded), `removed` (recorded, not produced), `fact`
    /// (a recorded fact differs) or `failed` (the stage did not complete in the replay).
    pub kind: String,
    /// What differs: the first differing line of a file, the first differing field of a fact.
    pub detail: String,
}

/// `ReplayVerified` version 1: a replay produced exactly what the install recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayVerified {
    /// Files compared byte for byte.
    pub files_compared: u64,
    /// Files holding secrets compared by keyed fingerprint (with `--license`).
    pub secret_files_compared: u64,
    /// Files holding secrets not compared: their content derives from the license ID, which
    /// was not given.
    pub secret_files_unchecked: u64,
    /// Facts compared.
    pub facts_compared: u64,
    /// Keyed fingerprint of the license given with `--license`, if one was.
    pub license_fingerprint: Option<String>,
    /// How long the replay took.
    pub duration_ms: u64,
    /// What could not be verified, and why (e.g. files reading password values the replay was
    /// not given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<String>,
}

/// `ReplayDiffered` version 1: a replay produced something other than what the install recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayDiffered {
    /// How many differences there were.
    pub total: u64,
    /// The first of them (at most 100), in pipeline order.
    pub differences: Vec<Difference>,
    /// Keyed fingerprint of the license given with `--license`, if one was.
    pub license_fingerprint: Option<String>,
    /// How long the replay took.
    pub duration_ms: u64,
    /// What could not be verified, and why (e.g. files reading password values the replay was
    /// not given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<String>,
}

impl EventPayload for ReplayVerified {
    const EVENT_TYPE: &'static str = "ReplayVerified";
    const VERSION: u32 = 1;
}

impl EventPayload for ReplayDiffered {
    const EVENT_TYPE: &'static str = "ReplayDiffered";
    const VERSION: u32 = 1;
}

/// The replay's event types.
pub const SCHEMAS: &[EventSchema] = &[
    EventSchema::of::<ReplayVerified>(&[]),
    EventSchema::of::<ReplayDiffered>(&[]),
];
