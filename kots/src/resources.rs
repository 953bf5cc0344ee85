//! The KOTS custom resources windlass reads, as typed structs: the fields windlass uses and the
//! obvious spec fields, every one optional or defaulted, and unknown fields ignored (KOTS adds
//! fields; a release written for a newer KOTS must still read). Read one from a parsed document
//! with [`from_value`]; only deserialisation is offered, these are not wire formats of windlass.
//! [`yaml_1_1_bool`] reads a boolean field the way KOTS does when windlass's parser left it a word.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Reads a resource from a parsed document.
pub fn from_value<T: for<'de> Deserialize<'de>>(
    value: &serde_json::Value,
) -> Result<T, serde_json::Error> {
    T::deserialize(value)
}

/// A boolean field of a KOTS kind written as a string: the YAML 1.1 boolean words (`yes`, `no`,
/// `on`, `off`, `y`, `n`, `true`, `false`, any case). windlass reads YAML as kustomize does, where
/// these words are strings; KOTS reads its own kinds as YAML 1.1, where they are booleans, so a KOTS
/// file written that way still means what it meant to KOTS. Any other word is `None`.
pub fn yaml_1_1_bool(word: &str) -> Option<bool> {
    match word.to_ascii_lowercase().as_str() {
        "yes" | "on" | "y" | "true" => Some(true),
        "no" | "off" | "n" | "false" => Some(false),
        _ => None,
    }
}

/// The `metadata` fields windlass reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
}

/// `kots.io/v1beta1` `Application`: the app itself. Its `metadata.name` is the app slug.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Application {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: ApplicationSpec,
}

/// `Application.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// `title`: the app's display name.
    pub title: Option<String>,
    /// `icon`: the app's icon URL.
    pub icon: Option<String>,
    /// `proxyPublicImages`: every image is rewritten to the proxy, public ones included.
    pub proxy_public_images: Option<bool>,
    /// `additionalImages`: images to include besides those the manifests name.
    pub additional_images: Vec<String>,
    /// `additionalNamespaces`: namespaces the app also deploys to.
    pub additional_namespaces: Vec<String>,
    /// `statusInformers`: the objects whose readiness is the app's status.
    pub status_informers: Vec<String>,
    /// `targetKotsVersion`.
    pub target_kots_version: Option<String>,
    /// `minKotsVersion`.
    pub min_kots_version: Option<String>,
}

/// `kots.io/v1beta1` `Installation`: facts about a release's build.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Installation {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: InstallationSpec,
}

/// `Installation.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstallationSpec {
    /// `knownImages`: the images the vendor's build found, and whether each is private.
    pub known_images: Vec<InstallationImage>,
    /// `versionLabel`.
    pub version_label: Option<String>,
    /// `channelID`.
    #[serde(rename = "channelID")]
    pub channel_id: Option<String>,
    /// `channelName`.
    pub channel_name: Option<String>,
    /// `releaseSequence`.
    pub release_sequence: Option<i64>,
}

/// One entry of `Installation.spec.knownImages`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstallationImage {
    /// `image`: the reference.
    pub image: String,
    /// `isPrivate`.
    pub is_private: bool,
}

/// `kots.io/v1beta1` `HelmChart`: how KOTS templates one chart archive of the release.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HelmChartV1Beta1 {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: HelmChartV1Beta1Spec,
}

/// `HelmChart.spec` (`kots.io/v1beta1`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HelmChartV1Beta1Spec {
    /// `chart`: which archive, and (here) the release name.
    pub chart: ChartIdentifier,
    /// `exclude`: a template that, true, leaves the chart out.
    pub exclude: Option<serde_json::Value>,
    /// `weight`: lower weights are deployed first.
    pub weight: Option<i64>,
    /// `namespace`: where the chart is deployed.
    pub namespace: Option<String>,
    /// `values`: Helm values.
    pub values: BTreeMap<String, serde_json::Value>,
    /// `builder`: values for building the air-gap bundle.
    pub builder: BTreeMap<String, serde_json::Value>,
    /// `useHelmInstall`: deploy with `helm install` instead of `kubectl apply`.
    pub use_helm_install: Option<bool>,
    /// `optionalValues`: values merged over `values` when their `when` is true.
    pub optional_values: Vec<OptionalValues>,
    /// `helmVersion`: `v2`, or `v3`/`v4`/empty (all Helm 4 today).
    pub helm_version: Option<String>,
    /// `helmUpgradeFlags`: extra flags for `helm upgrade`.
    pub helm_upgrade_flags: Vec<String>,
}

/// One entry of `HelmChart.spec.optionalValues` (both versions).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OptionalValues {
    /// `when`: a (templated) boolean as Go's `strconv.ParseBool` reads it; KOTS keeps it as a
    /// string, a YAML boolean is accepted too.
    pub when: Option<serde_json::Value>,
    /// `recursiveMerge`: merge maps recursively instead of replacing top-level keys.
    pub recursive_merge: bool,
    /// `values`: the values merged when `when` is true.
    pub values: BTreeMap<String, serde_json::Value>,
}

/// `kots.io/v1beta2` `HelmChart`: the Helm-native form.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HelmChartV1Beta2 {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: HelmChartV1Beta2Spec,
}

/// `HelmChart.spec` (`kots.io/v1beta2`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HelmChartV1Beta2Spec {
    /// `chart`: which archive.
    pub chart: ChartIdentifier,
    /// `releaseName`: the Helm release (defaults to `chart.name`).
    pub release_name: Option<String>,
    /// `exclude`: a template that, true, leaves the chart out.
    pub exclude: Option<serde_json::Value>,
    /// `weight`: lower weights are deployed first.
    pub weight: Option<i64>,
    /// `namespace`: where the chart is deployed.
    pub namespace: Option<String>,
    /// `values`: Helm values.
    pub values: BTreeMap<String, serde_json::Value>,
    /// `builder`: values for building the air-gap bundle.
    pub builder: BTreeMap<String, serde_json::Value>,
    /// `helmUpgradeFlags`: extra flags for `helm upgrade`.
    pub helm_upgrade_flags: Vec<String>,
    /// `optionalValues`: values merged over `values` when their `when` is true.
    pub optional_values: Vec<OptionalValues>,
}

/// `HelmChart.spec.chart`: the chart archive a HelmChart refers to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ChartIdentifier {
    /// `name`: the `name` of the archive's `Chart.yaml`.
    pub name: Option<String>,
    /// `chartVersion`: the `version` of the archive's `Chart.yaml`, if pinned.
    pub chart_version: Option<String>,
    /// `releaseName` (`kots.io/v1beta1` only).
    pub release_name: Option<String>,
}

/// `kots.io/v1beta1` `Config`: the configuration screen.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: ConfigSpec,
}

/// `Config.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigSpec {
    /// `groups`.
    pub groups: Vec<ConfigGroup>,
}

/// One group of `Config.spec.groups`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigGroup {
    /// `name`.
    pub name: String,
    /// `title`.
    pub title: Option<String>,
    /// `when`: a template that, false, hides the group.
    pub when: Option<serde_json::Value>,
    /// `description`.
    pub description: Option<String>,
    /// `items`.
    pub items: Vec<ConfigItem>,
}

/// One item of a [`ConfigGroup`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigItem {
    /// `name`: what `ConfigOption` looks up.
    pub name: String,
    /// `type`: `text`, `password`, `bool`, `select_one`, `file`, ...
    #[serde(rename = "type")]
    pub item_type: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `default`.
    pub default: Option<serde_json::Value>,
    /// `value`.
    pub value: Option<serde_json::Value>,
    /// `required`.
    pub required: Option<bool>,
    /// `hidden`.
    pub hidden: Option<bool>,
    /// `when`: a template that, false, hides the item.
    pub when: Option<serde_json::Value>,
    /// `readonly`: the value is the vendor's `value`, recomputed on every render.
    pub readonly: Option<bool>,
    /// `help_text`.
    pub help_text: Option<String>,
    /// `filename`: the file name of a `file` item (a template).
    pub filename: Option<String>,
    /// `recommended`.
    pub recommended: Option<bool>,
    /// `repeatable`: the item may be given several times (not supported by windlass).
    pub repeatable: Option<bool>,
    /// `items`: the choices of a `radio`, `dropdown` or `select_one` item.
    pub items: Vec<ConfigChildItem>,
    /// `validation`: a check of the value.
    pub validation: Option<ConfigValidation>,
}

/// One choice of a `radio`, `dropdown` or `select_one` [`ConfigItem`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigChildItem {
    /// `name`: what the item's value is when this choice is taken.
    pub name: String,
    /// `title`.
    pub title: Option<String>,
    /// `default`.
    pub default: Option<serde_json::Value>,
    /// `value`.
    pub value: Option<serde_json::Value>,
}

/// `ConfigItem.validation`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigValidation {
    /// `regex`: the value must match `pattern`.
    pub regex: Option<ConfigRegexValidation>,
}

/// `ConfigItem.validation.regex`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigRegexValidation {
    /// `pattern` (RE2 syntax).
    pub pattern: String,
    /// `message`: shown when the value does not match.
    pub message: Option<String>,
}

/// `kots.io/v1beta1` `ConfigValues`: the values given for a `Config`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigValues {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: ConfigValuesSpec,
}

/// `ConfigValues.spec`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ConfigValuesSpec {
    /// `values`: item name → value.
    pub values: BTreeMap<String, ConfigValue>,
}

/// One entry of `ConfigValues.spec.values`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConfigValue {
    /// `value`.
    pub value: Option<String>,
    /// `default`.
    pub default: Option<String>,
    /// `valuePlaintext`: a password given in the clear.
    pub value_plaintext: Option<String>,
    /// `filename`: for `file` items.
    pub filename: Option<String>,
    /// `repeatableItem`: for repeatable items (not supported by windlass).
    pub repeatable_item: Option<String>,
}

/// `kots.io/v1beta1` `License`, without its ID: the fields of a License that are not credentials.
/// The ID is read only by [`crate::license`], into a `SecretString`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LicenseResource {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`, without `licenseID`.
    pub spec: LicenseSpec,
}

/// `License.spec`, without `licenseID` (never deserialised into a plain `String`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LicenseSpec {
    /// `appSlug`: the only app the license is for.
    pub app_slug: Option<String>,
    /// `licenseSequence`.
    pub license_sequence: Option<i64>,
    /// `customerName`.
    pub customer_name: Option<String>,
    /// `channelName`.
    pub channel_name: Option<String>,
    /// `licenseType`.
    pub license_type: Option<String>,
    /// `endpoint`.
    pub endpoint: Option<String>,
}
