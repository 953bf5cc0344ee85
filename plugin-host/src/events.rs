//! `PluginRan`: what one run of an exec plugin was given and returned — the executable's digest,
//! its arguments, the environment variable names it got, the `ResourceList` sent and received
//! (as blobs) and its results — so that a replay uses the recorded output instead of running the
//! plugin. A wire format: add only optional fields; anything else bumps the version and adds an
//! upcaster to [`SCHEMAS`].

use serde::{Deserialize, Serialize};
use windlass_state::{EventPayload, EventSchema};

/// Which documents a plugin transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentSet {
    /// The base documents `fetch_base` recorded (the Kubernetes objects of the release): every
    /// later stage (write_base, probe_images, plan_overrides, ...) sees what the plugin returns.
    Base,
    /// The objects `render_midstream` built into `rendered/this-cluster/` (secrets excepted).
    Rendered,
}

impl DocumentSet {
    /// `base` or `rendered`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentSet::Base => "base",
            DocumentSet::Rendered => "rendered",
        }
    }
}

/// One stream of a plugin run: the `ResourceList` it was sent or printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStream {
    /// What the blob holds, for `verify-log` (`stdin of <plugin>` / `stdout of <plugin>`).
    pub file: String,
    /// Blob of the bytes.
    pub blob: String,
    /// Their size.
    pub bytes: u64,
    /// How many items the `ResourceList` held.
    pub items: u64,
}

/// One result a plugin reported (the KRM function `Result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginResult {
    /// `error`, `warning` or `info` (an absent severity is recorded as `info`, as kustomize's
    /// framework prints it).
    pub severity: String,
    /// The message.
    pub message: String,
    /// `resourceRef`, as the plugin gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_ref: Option<serde_json::Value>,
    /// `field`, as the plugin gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<serde_json::Value>,
    /// `file`, as the plugin gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<serde_json::Value>,
    /// `tags`, as the plugin gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<serde_json::Value>,
}

/// `PluginRan` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRan {
    /// The plugin's name (its stage's name).
    pub plugin: String,
    /// What it transformed.
    pub documents: DocumentSet,
    /// The executable, absolute.
    pub executable: String,
    /// sha256 of the executable's bytes, hex.
    pub executable_sha256: String,
    /// The arguments it was given.
    pub args: Vec<String>,
    /// The names of the environment variables it was given (their values are not recorded).
    pub environment: Vec<String>,
    /// The `ResourceList` sent on its stdin.
    pub input: PluginStream,
    /// The `ResourceList` it printed on its stdout.
    pub output: PluginStream,
    /// The results it reported.
    pub results: Vec<PluginResult>,
}

impl EventPayload for PluginRan {
    const EVENT_TYPE: &'static str = "PluginRan";
    const VERSION: u32 = 1;
}

/// The plugin host's event types.
pub const SCHEMAS: &[EventSchema] = &[EventSchema::of::<PluginRan>(&[])];
