//! Which documents of a release KOTS deploys. KOTS reads its own custom resources
//! (`kots.io/v1beta1`, `kots.io/v1beta2`) and those of the tools around it — troubleshoot's
//! preflights, support bundles and redactors, kURL installers, the embedded cluster's config, the
//! `app.k8s.io` Application, and Velero's `Backup` and `Restore` (which drive snapshots) — and
//! never applies any of them to the cluster. Every other document is a Kubernetes object to deploy
//! (other Velero kinds, a `Schedule` say, are deployed).

/// The `apiVersion`s of KOTS's own custom resources.
pub const KOTS_API_VERSIONS: [&str; 2] = ["kots.io/v1beta1", "kots.io/v1beta2"];

/// `apiVersion`s whose every kind KOTS reads and never deploys (besides [`KOTS_API_VERSIONS`]).
const NEVER_DEPLOYED_API_VERSIONS: [&str; 6] = [
    "troubleshoot.sh/v1beta2",
    "troubleshoot.replicated.com/v1beta1",
    "kurl.sh/v1beta1",
    "cluster.kurl.sh/v1beta1",
    "embeddedcluster.replicated.com/v1beta1",
    "app.k8s.io/v1beta1",
];

/// The `velero.io/v1` kinds KOTS reads and never deploys; the others are deployed.
const NEVER_DEPLOYED_VELERO_KINDS: [&str; 2] = ["Backup", "Restore"];

/// The KOTS kinds (`kots.io/...`) a release holds at most once: KOTS keeps one of each.
const SINGLE_INSTANCE_KOTS_KINDS: [&str; 4] =
    ["Application", "Config", "ConfigValues", "Installation"];

/// How KOTS treats a document, from its `apiVersion` and `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// A Kubernetes object: deployed.
    KubernetesObject,
    /// A KOTS custom resource (`kots.io/v1beta1` or `kots.io/v1beta2`): steers the install, never
    /// deployed.
    KotsKind,
    /// A document of a tool around KOTS (troubleshoot, kURL, the embedded cluster, `app.k8s.io`,
    /// Velero `Backup`/`Restore`): read by KOTS, never deployed.
    NotDeployed,
}

impl Classification {
    /// Whether KOTS applies such a document to the cluster.
    pub fn is_deployed(self) -> bool {
        self == Classification::KubernetesObject
    }
}

/// How KOTS treats a document with `api_version` and `kind`.
pub fn classify(api_version: &str, kind: &str) -> Classification {
    if KOTS_API_VERSIONS.contains(&api_version) {
        Classification::KotsKind
    } else if NEVER_DEPLOYED_API_VERSIONS.contains(&api_version)
        || (api_version == "velero.io/v1" && NEVER_DEPLOYED_VELERO_KINDS.contains(&kind))
    {
        Classification::NotDeployed
    } else {
        Classification::KubernetesObject
    }
}

/// Whether a release may hold at most one document of `api_version` and `kind` (KOTS keeps one
/// `Application`, `Config`, `ConfigValues` and `Installation`; a second would silently replace the
/// first).
pub fn is_single_instance(api_version: &str, kind: &str) -> bool {
    KOTS_API_VERSIONS.contains(&api_version) && SINGLE_INSTANCE_KOTS_KINDS.contains(&kind)
}

/// The Helm release name of a `HelmChart` document as KOTS takes it: `spec.chart.releaseName`
/// (`kots.io/v1beta1`) or `spec.releaseName` (`kots.io/v1beta2`) when set, else
/// `spec.chart.name`. `None` for other documents and for a HelmChart with neither.
pub fn helm_chart_release_name<'a>(
    api_version: &str,
    kind: &str,
    value: &'a serde_json::Value,
) -> Option<&'a str> {
    if kind != "HelmChart" {
        return None;
    }
    let explicit = match api_version {
        "kots.io/v1beta1" => value.pointer("/spec/chart/releaseName"),
        "kots.io/v1beta2" => value.pointer("/spec/releaseName"),
        _ => return None,
    };
    explicit
        .and_then(serde_json::Value::as_str)
        .filter(|name| !name.is_empty())
        .or_else(|| {
            value
                .pointer("/spec/chart/name")
                .and_then(serde_json::Value::as_str)
                .filter(|name| !name.is_empty())
        })
}
