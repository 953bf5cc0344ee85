//! The facts the built-in stages record. These structs are wire formats stored for ever: add only
//! optional fields; anything else bumps the version and adds an upcaster to [`SCHEMAS`].

use serde::{Deserialize, Serialize};
use windlass_registry::ProbeEvidence;
use windlass_state::EventSchema;

use crate::images::discovery::ImageUse;
use crate::images::policy::{Decision, ProbePolicy};
use crate::images::rules::ImageRule;

/// `BaseFetched`: the release as read, with every file and document and their blobs.
pub const BASE_FETCHED: &str = "BaseFetched";
/// `BaseWritten`: the `upstream/` and `base/` files written to the output directory.
pub const BASE_WRITTEN: &str = "BaseWritten";
/// `ImagesProbed`: every image of the release, where it was found, and whether it is private.
pub const IMAGES_PROBED: &str = "ImagesProbed";

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
    EventSchema {
        event_type: IMAGES_PROBED,
        current_version: 1,
        upcasters: &[],
    },
    EventSchema {
        event_type: crate::plan_overrides::OVERRIDES_PLANNED,
        current_version: 1,
        upcasters: &[],
    },
    EventSchema {
        event_type: crate::provision_secrets::SECRETS_PROVISIONED,
        current_version: 1,
        upcasters: &[],
    },
    EventSchema {
        event_type: crate::render_midstream::MIDSTREAM_RENDERED,
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
    /// A KOTS custom resource (`kots.io/v1beta1`, `kots.io/v1beta2`): steers the pipeline, never
    /// deployed.
    KotsKind,
    /// A document of a tool around KOTS that KOTS reads and never deploys (troubleshoot, kURL, the
    /// embedded cluster, `app.k8s.io`, Velero `Backup` and `Restore`; see
    /// [`windlass_kots::classify()`]). A new value: events recorded before it classified these
    /// documents as Kubernetes objects, and decode unchanged.
    NotDeployed,
}

impl DocumentClass {
    /// The class of a document with `api_version` and `kind`, as KOTS treats it.
    pub fn of(api_version: &str, kind: &str) -> DocumentClass {
        match windlass_kots::classify(api_version, kind) {
            windlass_kots::Classification::KubernetesObject => DocumentClass::KubernetesObject,
            windlass_kots::Classification::KotsKind => DocumentClass::KotsKind,
            windlass_kots::Classification::NotDeployed => DocumentClass::NotDeployed,
        }
    }
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
    /// Chart archives no KOTS `HelmChart` document refers to: stored and copied to `upstream/`,
    /// never deployed (an optional field: absent when there are none, and in events recorded
    /// before windlass looked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreferenced_charts: Vec<UnreferencedChart>,
    /// `kots.io/v1beta1` HelmCharts set aside because a `kots.io/v1beta2` HelmChart has the same
    /// release name, as KOTS does (an optional field: absent when there are none, and in events
    /// recorded before windlass looked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded_helm_charts: Vec<SupersededHelmChart>,
    /// What KOTS templating did: the files templated and the config items each read, the
    /// documents left out by `kots.io/exclude`/`kots.io/when`, and the time and random draws the
    /// renders used (an optional field: absent when the release holds no template, no Config and
    /// no excluded document, and in events recorded before windlass rendered templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<crate::templates::TemplatesRecord>,
}

/// A `kots.io/v1beta1` HelmChart in `BaseFetched` that a `kots.io/v1beta2` HelmChart with the same
/// release name supersedes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupersededHelmChart {
    /// The release name both have.
    pub release_name: String,
    /// The file of the v1beta1 HelmChart.
    pub file: String,
    /// Its position among the file's documents, from 0.
    pub index: usize,
    /// The file of the v1beta2 HelmChart used instead.
    pub superseded_by_file: String,
    /// Its position among that file's documents, from 0.
    pub superseded_by_index: usize,
}

/// A chart archive in `BaseFetched` that no `HelmChart` document refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreferencedChart {
    /// The archive, relative to the release root.
    pub path: String,
    /// `name` of its top-level `Chart.yaml`, if it has one.
    pub chart_name: Option<String>,
    /// `version` of its top-level `Chart.yaml`, if it has one.
    pub chart_version: Option<String>,
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

/// Where an image's result came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ResultSource {
    /// The registry was asked during this install.
    Probed,
    /// An earlier install's probe, younger than the cache TTL, was reused.
    Cache {
        /// The install that probed it.
        install_id: String,
        /// The global sequence of its `ImagesProbed`.
        global_seq: u64,
    },
    /// `--known-images` (a KOTS `Installation`'s `spec.knownImages`) said so.
    KnownImages,
    /// `Application.spec.proxyPublicImages` is true: private without asking.
    ProxyPublicImages,
    /// `--offline`: the registry was not asked; the policy for `unreachable` applied.
    Offline,
}

/// One image in `ImagesProbed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbedImage {
    /// The reference as written.
    pub image: String,
    /// `registry/repository`, normalised like Docker.
    pub normalized_name: String,
    /// The normalised registry host.
    pub registry: String,
    /// The normalised repository.
    pub repository: String,
    /// The probe outcome (`public`, `auth_required`, `denied`, `not_found`, `rate_limited`,
    /// `server_error`, `unreachable`), or `known` / `not_probed` when the registry was not asked.
    pub outcome: String,
    /// What the policy (or the known result) decided.
    pub decision: Decision,
    /// Whether the image is pulled through the proxy.
    pub private: bool,
    /// Where the result came from.
    pub source: ResultSource,
    /// When the deciding evidence was obtained (for a cached result, the original probe).
    pub probed_at: Option<String>,
    /// The manifest digest the registry reported, when public.
    pub digest: Option<String>,
    /// One line explaining the outcome.
    pub reason: String,
    /// The registry's evidence, when a probe (now or cached) produced the result.
    pub evidence: Option<ProbeEvidence>,
    /// Only listed in `Application.spec.additionalImages`: started at run time, never patched.
    pub runtime_only: bool,
    /// Every place the image was found.
    pub uses: Vec<ImageUse>,
}

/// `ImagesProbed` version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagesProbed {
    /// The policy that made the decisions.
    pub policy: ProbePolicy,
    /// Whether the network was off limits.
    pub offline: bool,
    /// Whether `Application.spec.proxyPublicImages` was set.
    pub proxy_public_images: bool,
    /// HTTP requests made to registries during this install.
    pub requests_made: u64,
    /// User image-field rules in force.
    pub rules: Vec<ImageRule>,
    /// Every distinct image, in the order first found.
    pub images: Vec<ProbedImage>,
}
