//! `BaseFetched` and `BaseWritten`: the release as `fetch_base` read it (every file and document
//! with its blob) and the `upstream/` and `base/` files `write_base` wrote.

use serde::{Deserialize, Serialize};
use windlass_manifest::documents::DocumentClass;
use windlass_state::EventPayload;

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
    /// Blob of the document's own text; absent (since version 2) when its text holds a password
    /// value, which is never stored: then `fingerprint` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Keyed fingerprint of the document's text when it holds a password value (its file's
    /// rendering read a password item or the local registry's password), since version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl FetchedDocument {
    /// The blob id or, for a document holding a password value, the fingerprint: what names its
    /// text.
    pub fn content_key(&self) -> &str {
        self.blob
            .as_deref()
            .or(self.fingerprint.as_deref())
            .unwrap_or_default()
    }
}

/// `BaseFetched` version 3. Version 1 always stored a document's text as a blob
/// (`documents[].blob` was a string); version 2 records a document holding a password value by
/// keyed fingerprint instead (`documents[].fingerprint`, no `blob`); version 3 does the same for
/// a HelmChart whose file holds a password value (`helm_charts[].holds_password`): its values
/// and helm's output are named by keyed fingerprint (`values_fingerprint`,
/// `output_fingerprint`), `values` and `output_blob` are null, and its `helm_upgrade_flags` are
/// recorded redacted. Version 1 and 2 records decode unchanged.
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
    pub templates: Option<super::TemplatesRecord>,
    /// The release's KOTS HelmCharts as rendered with helm: the archive, the values, helm's
    /// version and arguments and its whole output as a blob (so a replay never runs helm). The
    /// documents of a `kots.io/v1beta1` chart are in `documents` under `charts/<directory>/`
    /// (an optional field: absent when the release has no HelmChart, and in events recorded
    /// before windlass rendered charts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_charts: Vec<HelmChartRendered>,
}

/// One KOTS HelmChart in `BaseFetched`, as rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmChartRendered {
    /// The file of the HelmChart document.
    pub file: String,
    /// Its position among the file's documents, from 0.
    pub index: usize,
    /// `kots.io/v1beta1` or `kots.io/v1beta2`.
    pub api_version: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.chart.name`.
    pub chart_name: String,
    /// `spec.chart.chartVersion`.
    pub chart_version: String,
    /// The directory its files are under (`charts/<directory>/`, `helm/<directory>/`).
    pub directory: String,
    /// The Helm release name.
    pub release_name: String,
    /// `spec.namespace`, if set.
    pub namespace: Option<String>,
    /// `spec.useHelmInstall` (always true for `kots.io/v1beta2`).
    pub use_helm_install: bool,
    /// `spec.weight`.
    pub weight: i64,
    /// Whether `spec.exclude` left it out (then nothing below is set).
    pub excluded: bool,
    /// The release file of its archive.
    pub archive: Option<String>,
    /// Its values and true `optionalValues`, merged: what it is installed with (for a
    /// `kots.io/v1beta2` chart, `helm/<directory>/values.yaml`; helm listed its images with
    /// `builder` alone; installs recorded by earlier builds, with `builder` merged over these).
    /// Null (since version 3) when the chart holds a password
    /// value: then `values_fingerprint` names them.
    pub values: Option<serde_json::Value>,
    /// Keyed fingerprint of its values as `helm/<directory>/values.yaml` holds them (YAML), when
    /// the chart holds a password value (since version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_fingerprint: Option<String>,
    /// `values` (its values and true optionalValues) or `builder` (its `builder` values alone, or
    /// in installs recorded by earlier builds those values with `builder` over them: a
    /// `kots.io/v1beta2` chart, rendered only to list its images).
    pub rendered_with: Option<String>,
    /// `helm version --short` of the helm that rendered it.
    pub helm_version: Option<String>,
    /// The arguments helm ran with.
    pub helm_arguments: Vec<String>,
    /// Blob of helm's whole stdout. Null (since version 3) when the chart holds a password
    /// value: then `output_fingerprint` names it.
    pub output_blob: Option<String>,
    /// Keyed fingerprint of helm's whole stdout when the chart holds a password value (since
    /// version 3): the text is kept in the install's memory only, never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_fingerprint: Option<String>,
    /// `spec.helmUpgradeFlags`, passed to `helm upgrade --install` (absent in older records);
    /// when the chart holds a password value, redacted (see [`redacted_flags`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_upgrade_flags: Vec<String>,
    /// Keyed fingerprint of the flags as written, when they are recorded redacted (since
    /// version 3): the flags themselves are kept in the install's memory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_upgrade_flags_fingerprint: Option<String>,
    /// The HelmChart's file held a password value when rendered (it read a password item with a
    /// value): its values, helm's output, its documents and its flags are recorded by keyed
    /// fingerprint or redacted, never stored (since version 3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_password: bool,
}

impl HelmChartRendered {
    /// A `kots.io/v1beta2` chart that is not excluded: `write_base` writes it to
    /// `helm/<directory>/` and the apply stage installs it from there, as shipped.
    pub fn installed_as_shipped(&self) -> bool {
        self.api_version == "kots.io/v1beta2" && !self.excluded
    }
}

/// What a redacted flag value is recorded as.
pub const REDACTED: &str = "<redacted>";

/// `flags` as recorded for a HelmChart holding a password value: every value redacted, option
/// names kept (`--set`, `<redacted>`; `--set=<redacted>`; `-f`, `<redacted>`), since any value
/// may have been rendered from a password item. Only what is spelled as helm spells its options
/// (`--` and lowercase letters, digits and dashes, or `-` and one letter) counts as a name.
pub fn redacted_flags(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .map(|flag| match flag.split_once('=') {
            Some((name, _)) if is_option_name(name) => format!("{name}={REDACTED}"),
            None if is_option_name(flag) => flag.clone(),
            _ => REDACTED.to_string(),
        })
        .collect()
}

/// `--name` (lowercase letters, digits and dashes) or `-n`.
fn is_option_name(text: &str) -> bool {
    match text.strip_prefix("--") {
        Some(name) => {
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }
        None => {
            let mut chars = text.chars();
            chars.next() == Some('-')
                && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.next().is_none()
        }
    }
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
    /// Blob of its contents; absent (since version 2) for a `base/` file holding a password value
    /// (then `fingerprint` is set and the file is mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Keyed fingerprint of its contents when they hold a password value (since version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// `BaseWritten` version 2. Version 1 listed every file with a blob (`files[].blob` was a
/// string); version 2 lists a file holding a password value by keyed fingerprint instead. A
/// version 1 record decodes unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseWritten {
    /// The output directory.
    pub out_dir: String,
    /// Every file written under `upstream/` and `base/`, in path order.
    pub files: Vec<WrittenFile>,
    /// The `kots.io/v1beta1` HelmCharts with `useHelmInstall: true`, whose bases stand apart
    /// from `base/kustomization.yaml` (absent in records written before they were supported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_install_charts: Vec<HelmInstallBase>,
}

/// A `useHelmInstall: true` HelmChart as `write_base` laid it out: one kustomization per chart,
/// subchart and `crds/` directory, none of them listed by `base/kustomization.yaml` or by each
/// other (each gets its own midstream and is installed with `helm upgrade -i`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmInstallBase {
    /// The HelmChart's `metadata.name`.
    pub name: String,
    /// The directory under `base/charts/`.
    pub directory: String,
    /// The Helm release name.
    pub release_name: String,
    /// `spec.namespace`, if set.
    pub namespace: Option<String>,
    /// `spec.weight`.
    pub weight: i64,
    /// `spec.chart.name`.
    pub chart_name: String,
    /// `spec.chart.chartVersion`.
    pub chart_version: String,
    /// `spec.helmUpgradeFlags` (redacted when the chart holds a password value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_upgrade_flags: Vec<String>,
    /// Keyed fingerprint of the flags as written, when they are recorded redacted (absent
    /// otherwise): the flags themselves are in the install's memory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_upgrade_flags_fingerprint: Option<String>,
    /// Its HelmChart's file held a password value (see [`HelmChartRendered::holds_password`]):
    /// its documents are written 0600 and listed by fingerprint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_password: bool,
    /// Its kustomization directories relative to `base/`, parents first: `charts/<directory>`,
    /// `charts/<directory>/charts/<alias>`, `charts/<directory>/crds`, ...
    pub bases: Vec<String>,
}

impl EventPayload for BaseFetched {
    const EVENT_TYPE: &'static str = "BaseFetched";
    const VERSION: u32 = 3;
}

impl EventPayload for BaseWritten {
    const EVENT_TYPE: &'static str = "BaseWritten";
    const VERSION: u32 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_flags_keep_option_names_and_hide_every_value() {
        let flags: Vec<String> = [
            "--set",
            "db.password=s3cret",
            "--timeout=10m",
            "-f",
            "x",
            "-dash-first",
            "--Not-An=Option",
        ]
        .map(String::from)
        .to_vec();
        let redacted = redacted_flags(&flags);
        assert_eq!(
            redacted,
            [
                "--set",
                "<redacted>",
                "--timeout=<redacted>",
                "-f",
                "<redacted>",
                "<redacted>",
                "<redacted>"
            ]
        );
        assert_eq!(
            redacted_flags(&redacted),
            redacted,
            "redacting is idempotent"
        );
    }
}
