//! `useHelmInstall: true` HelmCharts in `render_midstream`, laid out as KOTS lays them out
//! (`pkg/midstream/write.go`, `pkg/apparchive/helm-v1beta1.go`): every chart, subchart and `crds/`
//! base that `write_base` kept apart gets its own midstream under
//! `overlays/midstream/charts/<path>/` — `kustomization.yaml` over `base/charts/<path>` with the
//! `images:` of the images found in that base, `secret.yaml` (0600) holding the pull secret
//! `<slug>-<last path component>-registry` as a `pre-install,pre-upgrade` hook of weight −9999, and
//! `pullsecrets.yaml` patching that secret into the base's workloads. Each midstream is built
//! (the native build, the external kustomize when it must) into
//! `rendered/this-cluster/charts/<path>/templates/<name>-<kind>.yaml` (a `crds` base into
//! `…/crds/`), with `{{` and `}}` escaped so helm prints them as they are, and a `Chart.yaml`
//! beside each chart's and subchart's `templates/`: the chart apply installs with
//! `helm upgrade -i`.
//!
//! Unlike KOTS: a `crds/` base gets no pull secret (a Secret in `crds/` would be created by helm
//! as a CRD is, outside the release); the `Chart.yaml` written is generated (`name`, `version`,
//! no `dependencies`: every subchart is already rendered and sits in `charts/`, so helm has
//! nothing to resolve and no condition to evaluate); and there is no per-chart downstream overlay.

use serde_json::{Value, json};
use windlass_engine::StageError;

use crate::events::{HelmInstallBase, ImagesProbed, OverridesPlanned};

/// Where the per-chart midstreams go.
pub const CHART_MIDSTREAMS: &str = "overlays/midstream/charts";

/// One base of a chart (the chart, a subchart, a `crds/`), with what its midstream holds.
#[derive(Debug, Clone)]
pub struct ChartBase {
    /// The base's directory relative to `base/`, e.g. `charts/app/charts/database`.
    pub base: String,
    /// Whether it is a `crds/` directory.
    pub is_crds: bool,
    /// The pull secret's name (none for a `crds` base).
    pub secret: Option<String>,
}

impl ChartBase {
    /// Its midstream directory relative to the output directory.
    pub fn midstream(&self) -> String {
        format!("overlays/midstream/{}", self.base)
    }

    /// Where its built objects go, relative to `rendered/this-cluster/`: `<base>/templates` for
    /// a chart or subchart, `<base>` for a `crds/` directory.
    pub fn rendered_dir(&self) -> String {
        if self.is_crds {
            self.base.clone()
        } else {
            format!("{}/templates", self.base)
        }
    }
}

/// The bases of `chart`, with their pull secrets' names.
pub fn chart_bases(chart: &HelmInstallBase, app_slug: &str) -> Vec<ChartBase> {
    chart
        .bases
        .iter()
        .map(|base| {
            let last = base.rsplit('/').next().unwrap_or(base);
            let is_crds = last == "crds";
            ChartBase {
                base: base.clone(),
                is_crds,
                secret: (!is_crds).then(|| crate::secrets::chart_pull_secret_name(app_slug, last)),
            }
        })
        .collect()
}

/// The base (relative to `base/`) a document file `charts/<directory>/<path>` belongs to, among
/// `bases`: its deepest sub-base.
pub fn base_of_file<'a>(
    file: &str,
    chart: &HelmInstallBase,
    bases: &'a [ChartBase],
) -> Option<&'a ChartBase> {
    let top = format!("charts/{}", chart.directory);
    let inside = file.strip_prefix(&top)?.strip_prefix('/')?;
    let sub_base = windlass_helm::layout::sub_base_of(inside)?;
    let base = if sub_base.is_empty() {
        top
    } else {
        format!("{top}/{sub_base}")
    };
    bases.iter().find(|candidate| candidate.base == base)
}

/// The planned `images:` entries for the images found in `files` (the base's document files).
pub fn images_of(
    probed: &ImagesProbed,
    planned: &OverridesPlanned,
    in_base: impl Fn(&str) -> bool,
) -> Vec<Value> {
    let used: Vec<&str> = probed
        .images
        .iter()
        .filter(|image| image.uses.iter().any(|image_use| in_base(&image_use.file)))
        .map(|image| image.image.as_str())
        .collect();
    planned
        .plan
        .entries
        .iter()
        .filter(|entry| {
            used.iter().any(|image| {
                *image == entry.name
                    || image
                        .strip_prefix(entry.name.as_str())
                        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
            })
        })
        .map(|entry| json!({ "name": entry.name, "newName": entry.new_name }))
        .collect()
}

/// The midstream `kustomization.yaml` of one base.
pub fn kustomization(base: &ChartBase, images: Vec<Value>, has_patches: bool) -> Value {
    let depth = base.base.split('/').count() + 2;
    let mut kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "bases": [format!("{}base/{}", "../".repeat(depth), base.base)],
    });
    if base.secret.is_some() {
        kustomization["resources"] = json!(["secret.yaml"]);
    }
    if !images.is_empty() {
        kustomization["images"] = Value::Array(images);
    }
    if has_patches {
        kustomization["patches"] = json!([{ "path": "pullsecrets.yaml" }]);
    }
    kustomization
}

/// The generated `Chart.yaml` of a chart or subchart base.
pub fn chart_yaml(chart: &HelmInstallBase, base: &ChartBase) -> Value {
    let top = format!("charts/{}", chart.directory);
    let name = if base.base == top {
        chart.chart_name.clone()
    } else {
        base.base
            .rsplit('/')
            .next()
            .unwrap_or(&base.base)
            .to_string()
    };
    let version = if chart.chart_version.is_empty() {
        "0.0.0".to_string()
    } else {
        chart.chart_version.clone()
    };
    json!({
        "apiVersion": "v2",
        "name": name,
        "version": version,
        "description": format!(
            "rendered by windlass from HelmChart {} (chart {} {}) for helm upgrade -i",
            chart.name, chart.chart_name, chart.chart_version
        ),
    })
}

/// `text` with `{{` and `}}` escaped as KOTS escapes them, so helm prints them unchanged.
pub fn escape_braces(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            escaped.push_str("{{`{{`}}");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            escaped.push_str("{{`}}`}}");
            rest = after;
        } else {
            let next = rest.chars().next().expect("not empty");
            escaped.push(next);
            rest = &rest[next.len_utf8()..];
        }
    }
    escaped
}

/// Refuses two charts installed under one release name in one namespace.
pub fn check_release_names(
    charts: &[HelmInstallBase],
    app_namespace: &str,
) -> Result<(), StageError> {
    for (position, chart) in charts.iter().enumerate() {
        let namespace = chart.namespace.as_deref().unwrap_or(app_namespace);
        if let Some(other) = charts[..position].iter().find(|other| {
            other.release_name == chart.release_name
                && other.namespace.as_deref().unwrap_or(app_namespace) == namespace
        }) {
            return Err(StageError::invalid_input(format!(
                "HelmCharts {} and {} are both installed as helm release {} in namespace {namespace}: give one a different spec.chart.releaseName",
                other.name, chart.name, chart.release_name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_are_escaped_once() {
        assert_eq!(escape_braces("a {{ b }} c"), "a {{`{{`}} b {{`}}`}} c");
        assert_eq!(escape_braces("é}}"), "é{{`}}`}}");
    }

    #[test]
    fn bases_get_secrets_named_by_their_last_component() {
        let chart = HelmInstallBase {
            name: "app".into(),
            directory: "app".into(),
            release_name: "app".into(),
            namespace: None,
            weight: 0,
            chart_name: "app".into(),
            chart_version: "1.0.0".into(),
            helm_upgrade_flags: Vec::new(),
            helm_upgrade_flags_fingerprint: None,
            holds_password: false,
            bases: vec![
                "charts/app".into(),
                "charts/app/charts/database".into(),
                "charts/app/crds".into(),
            ],
        };
        let bases = chart_bases(&chart, "my-app");
        let secrets: Vec<Option<&str>> = bases.iter().map(|base| base.secret.as_deref()).collect();
        assert_eq!(
            secrets,
            [
                Some("my-app-app-registry"),
                Some("my-app-database-registry"),
                None
            ]
        );
        assert_eq!(
            kustomization(&bases[1], Vec::new(), false)["bases"][0],
            "../../../../../../base/charts/app/charts/database"
        );
        assert_eq!(
            base_of_file(
                "charts/app/charts/database/templates/s.yaml",
                &chart,
                &bases
            )
            .unwrap()
            .base,
            "charts/app/charts/database"
        );
        assert_eq!(bases[2].rendered_dir(), "charts/app/crds");
    }
}
