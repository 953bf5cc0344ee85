//! The events the daemon records, each in the stream of the release it is about
//! ([`release_stream`]): `ReleaseDetected` when a release is taken, committed before any work on it,
//! and `ReleaseFinished` when its install ended (or was refused before it began), and
//! `PullSecretsCopied` when it copied the install's pull secrets into a namespace created later. Wire formats:
//! add only optional fields; anything else bumps a version and adds an upcaster to [`SCHEMAS`].

use serde::{Deserialize, Serialize};
use windlass_state::{EventPayload, EventSchema};

/// The prefix of the streams the daemon records in. Install ids never start with it (they start
/// with a date), so readers that list installs leave these streams out.
pub const RELEASE_STREAM_PREFIX: &str = "release-";

/// The stream of the release with content digest `digest` (`sha256:<hex>`): the prefix and the
/// first 56 hex digits (a stream id holds at most 64 characters; the events carry the whole
/// digest).
pub fn release_stream(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let end = hex
        .char_indices()
        .nth(56)
        .map(|(index, _)| index)
        .unwrap_or(hex.len());
    format!("{RELEASE_STREAM_PREFIX}{}", &hex[..end])
}

/// Whether a stream id is one of the daemon's release streams rather than an install.
pub fn is_release_stream(stream: &str) -> bool {
    stream.starts_with(RELEASE_STREAM_PREFIX)
}

/// How a release in the watched directory is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    /// A subdirectory of the watched directory.
    Directory,
    /// A `.tar.gz` bundle in the watched directory, unpacked under the state directory.
    Bundle,
}

/// Why a release was judged complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakenBecause {
    /// It was moved into the watched directory by a rename (an atomic arrival).
    Renamed,
    /// A `.ready` marker was present.
    ReadyMarker,
    /// Its content digest stayed the same for the quiet period.
    QuietPeriod,
    /// An install of it was asked for again (`--reinstall` or the API).
    Reinstall,
}

/// `ReleaseDetected` version 1: the daemon took a release to install it. Committed before any
/// work on it, so that a digest is installed once only, and a restarted daemon knows which
/// install to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseDetected {
    /// The content digest: `sha256:` over the sorted `<path> <sha256>` lines of its files.
    pub digest: String,
    /// Its name in the watched directory.
    pub name: String,
    /// Its path when it was taken.
    pub path: String,
    /// Directory or bundle.
    pub kind: ReleaseKind,
    /// The version label it carries (`Installation.spec.versionLabel`, else the Application's
    /// `app.kubernetes.io/version` or `version` label), if any.
    pub version: Option<String>,
    /// Why it was judged complete.
    pub taken_because: TakenBecause,
    /// The install it runs as (a resumed install keeps this id).
    pub install_id: String,
    /// How many files its digest covers.
    pub files: u64,
}

/// How a release's install ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseResult {
    /// The install completed.
    Completed,
    /// The install failed, or was refused before it began.
    Failed,
}

/// `ReleaseFinished` version 1: the install of a taken release ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFinished {
    /// The release's content digest.
    pub digest: String,
    /// The install (absent from the log when the install was refused before it began).
    pub install_id: String,
    /// How it ended.
    pub result: ReleaseResult,
    /// Why it failed.
    pub error: Option<String>,
    /// From taking the release to this event.
    pub duration_ms: u64,
}

/// `PullSecretsCopied` version 1: the daemon copied an install's pull secrets into a namespace
/// created after that install (its Application lists `additionalNamespaces: ["*"]`). Names only,
/// never content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSecretsCopied {
    /// The release's content digest.
    pub digest: String,
    /// The install whose pull secrets were copied.
    pub install_id: String,
    /// The namespace they were copied into.
    pub namespace: String,
    /// The secrets' names.
    pub secrets: Vec<String>,
    /// Each copy made, with the uid the server gave it, for the prune of a later apply and an
    /// undeploy (an optional field added later: records before it have none, and their copies
    /// are left where they are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copied: Vec<windlass_apply::events::CopiedPullSecret>,
}

impl EventPayload for PullSecretsCopied {
    const EVENT_TYPE: &'static str = windlass_apply::events::PULL_SECRETS_COPIED;
    const VERSION: u32 = 1;
}

impl EventPayload for ReleaseDetected {
    const EVENT_TYPE: &'static str = "ReleaseDetected";
    const VERSION: u32 = 1;
}

impl EventPayload for ReleaseFinished {
    const EVENT_TYPE: &'static str = "ReleaseFinished";
    const VERSION: u32 = 1;
}

/// The daemon's event types.
pub const SCHEMAS: &[EventSchema] = &[
    EventSchema::of::<ReleaseDetected>(&[]),
    EventSchema::of::<ReleaseFinished>(&[]),
    EventSchema::of::<PullSecretsCopied>(&[]),
];
