//! The facts the built-in stages record. These structs are wire formats stored for ever: add only
//! optional fields; anything else bumps the version and adds an upcaster to [`SCHEMAS`].

use serde::{Deserialize, Serialize};
use windlass_state::EventSchema;

/// `BaseFetched`: the release as read, with every file and document and their blobs.
pub const BASE_FETCHED: &str = "BaseFetched";
/// `BaseWritten`: the `upstream/` and `base/` files written to the output directory.
pub const BASE_WRITTEN: &str = "BaseWritten";

/// The built-in stages' event types.
pub const SCHEMAS: &[EventSchema] = &[
    EventSchema {
        event_type: BASE_FETCHED,
        current_version: 1,
        upcasters: &[],
    },
    EventSchema {
        event_type: BASE_WRITTEN,
        current_version: 1,
        upcasters: &[],
    },
];

/// How a release file was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileClass {
    /// YAML documents.
    Yaml,
    /// A chart archive (`.tgz`, `.tar.gz`).
    ChartArchive,
    /// A KOTS license: never stored, never copied.
    License,
    /// Anything else: stored and copied to `upstream/`, not part of `base/`.
    Other,
}

/// How a YAML document was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentClass {
    /// A Kubernetes object: goes to `base/`.
    KubernetesObject,
    /// A KOTS custom resource (`apiVersion: kots.io/...`): steers the pipeline, not deployed.
    KotsKind,
}

/// One release file in `BaseFetched`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedFile {
    /// Path relative to the release root, `/`-separated.
    pub path: String,
    /// Classification.
    pub class: FileClass,
    /// Size in bytes.
    pub size: u64,
    /// Blob of the contents; absent for license files.
    pub blob: Option<String>,
}

/// One YAML document in `BaseFetched`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedDocument {
    /// The file it came from.
    pub file: String,
    /// Its position among the file's documents, from 0 (empty documents are not counted).
    pub index: usize,
    /// The line of the file where it starts, from 1.
    pub line: usize,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, if set.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
    /// Classification.
    pub class: DocumentClass,
    /// Blob of the document's own text.
    pub blob: String,
}

/// `BaseFetched` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseFetched {
    /// Digest of the release (license files excluded).
    pub release_digest: String,
    /// Every file, in path order.
    pub files: Vec<FetchedFile>,
    /// Every YAML document of every non-license file, in file then document order.
    pub documents: Vec<FetchedDocument>,
}

/// One file written by `write_base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// Path relative to the output directory, `/`-separated.
    pub path: String,
    /// Blob of its contents.
    pub blob: String,
}

/// `BaseWritten` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseWritten {
    /// The output directory.
    pub out_dir: String,
    /// Every file written under `upstream/` and `base/`, in path order.
    pub files: Vec<WrittenFile>,
}
