//! The release's KOTS HelmCharts rendered with the real helm (through `windlass-helm`), for
//! `fetch_base` and `windlass images`. Every HelmChart document of the release that is neither set
//! aside for a `kots.io/v1beta2` one nor excluded (`spec.exclude`) is rendered:
//!
//! - `kots.io/v1beta1` with `useHelmInstall: false` (KOTS's default): with its `values` and true
//!   `optionalValues`; its output (hooks included, every `crds/`) becomes documents of the common
//!   base under `charts/<directory>/<path>` (`charts/<directory>/charts/<alias>/…` for a subchart),
//!   so its images are probed, planned and rewritten like any manifest's.
//! - `kots.io/v1beta1` with `useHelmInstall: true`: rendered the same way and recorded under
//!   `charts/<directory>/<path>`, but `write_base` keeps its bases apart from the common one:
//!   `render_midstream` gives each chart, subchart and `crds/` its own midstream and builds the
//!   chart that apply installs with `helm upgrade -i`.
//! - `kots.io/v1beta2`: never patched (as in KOTS). It is rendered with its `builder` values alone
//!   (as KOTS's `GetBuilderValues`; the chart's own defaults fill in the rest) only to list its
//!   images; the install reports each one with the values the vendor must set.
//!
//! helm's whole stdout is stored as a blob and named in `BaseFetched.helm_charts`; a replay
//! (`Services::recorded`) takes it from there and never runs helm. The exception is a HelmChart
//! whose file held a password value when rendered (`holds_password`): its values and output are
//! credentials, recorded by keyed fingerprint only (by `fetch_base`), so a replay runs helm again
//! for it, and helm's error for it is reported without helm's own words (they may quote a value).

use std::path::PathBuf;

use windlass_helm::{
    ArchiveLimits, ChartToRender, HelmTool, RenderedChart, ValuesFor, layout::split_output,
};
use windlass_kots::{HelmChartV1Beta1, HelmChartV1Beta2};
use windlass_manifest::documents::{
    Document, DocumentClass, ParsedCache, Reuse, parse_documents_with,
};

use crate::credential_texts::CredentialTexts;
use crate::events::HelmChartRendered;
use crate::release::{FileContents, Release};

/// One HelmChart of the release, rendered (or excluded).
#[derive(Debug)]
pub struct ChartRender {
    /// What is recorded of it.
    pub record: HelmChartRendered,
    /// helm's stdout (empty when excluded).
    pub output: String,
    /// Its documents, files named `charts/<directory>/<path>`; for a `kots.io/v1beta2` chart, the
    /// builder render (reported, never deployed), files named `helm/<directory>/<path>`.
    pub documents: Vec<Document>,
}

/// Reads a recorded blob (by its id) as text; `None` when it is missing or not text.
pub type ReadBlob<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// How to render: which helm, and what a replay recorded instead.
pub struct ChartRendering<'a> {
    /// The helm to run.
    pub tool: &'a HelmTool,
    /// The install's namespace (a HelmChart's `spec.namespace` wins).
    pub namespace: &'a str,
    /// What a replayed install recorded of its HelmCharts, and how to read a recorded blob as
    /// text: helm is then never run, its recorded output is used.
    pub recorded: Option<(&'a [HelmChartRendered], &'a ReadBlob<'a>)>,
    /// Where parsed documents are shared with later stages.
    pub parsed_cache: Option<&'a ParsedCache>,
    /// Whether the rendered text of a release file holds a password value
    /// ([`crate::templates::Templates::holds_password`]): a HelmChart in such a file is marked
    /// `holds_password`.
    pub holds_password: &'a dyn Fn(&str) -> bool,
    /// Told each document of a `kots.io/v1beta1` chart that `kots.io/exclude` or `kots.io/when`
    /// leaves out (its file, its index in the file, the annotation that decided).
    pub excluded: &'a dyn Fn(&str, usize, &str),
}

/// The helm `fetch_base` uses when its configuration names none (see [`HelmTool::default_path`]).
pub fn helm_tool(path: Option<&PathBuf>) -> HelmTool {
    HelmTool::new(path.cloned().unwrap_or_else(HelmTool::default_path))
}

/// Renders every HelmChart of `release` that KOTS would render, in document order.
pub fn render_release_charts(
    release: &Release,
    rendering: &ChartRendering<'_>,
) -> Result<Vec<ChartRender>, String> {
    let superseded = release.superseded_helm_charts();
    let helm_charts: Vec<&Document> = release
        .documents()
        .filter(|document| {
            document.class == DocumentClass::KotsKind
                && document.kind == "HelmChart"
                && (document.api_version == "kots.io/v1beta1"
                    || document.api_version == "kots.io/v1beta2")
        })
        .filter(|document| {
            !superseded
                .iter()
                .any(|(old, _)| std::ptr::eq(*old, *document))
        })
        .collect();
    if helm_charts.is_empty() {
        return Ok(Vec::new());
    }
    let archives: Vec<(&str, &[u8])> = release
        .files
        .iter()
        .filter(|file| !matches!(file.contents, FileContents::License | FileContents::Yaml(_)))
        .map(|file| (file.path.as_str(), file.bytes.as_slice()))
        .collect();
    let mut renders = Vec::new();
    let mut helm_version: Option<String> = None;
    for document in helm_charts {
        let holds_password = (rendering.holds_password)(&document.file);
        let chart = chart_to_render(document, holds_password)?;
        let mut record = HelmChartRendered {
            file: document.file.clone(),
            index: document.index,
            api_version: chart.api_version.clone(),
            name: document.name.clone().unwrap_or_default(),
            chart_name: chart.chart_name.clone(),
            chart_version: chart.chart_version.clone(),
            directory: chart.directory.clone(),
            release_name: chart.release_name.clone(),
            namespace: chart.namespace.clone(),
            use_helm_install: chart.use_helm_install,
            weight: chart.weight,
            excluded: false,
            archive: None,
            values: None,
            values_fingerprint: None,
            rendered_with: None,
            helm_version: None,
            helm_arguments: Vec::new(),
            output_blob: None,
            output_fingerprint: None,
            helm_upgrade_flags: chart.helm_upgrade_flags.clone(),
            helm_upgrade_flags_fingerprint: None,
            holds_password,
        };
        if windlass_helm::is_excluded(&chart)
            .map_err(|error| render_failure(error, holds_password))?
        {
            record.excluded = true;
            renders.push(ChartRender {
                record,
                output: String::new(),
                documents: Vec::new(),
            });
            continue;
        }
        let values_for = if chart.is_v1beta2() {
            ValuesFor::Builder
        } else {
            ValuesFor::Install
        };
        let recorded = match rendering.recorded {
            Some((records, read_blob)) => {
                let before = records
                    .iter()
                    .find(|before| before.file == document.file && before.index == document.index)
                    .ok_or_else(|| {
                        format!(
                            "{}: the replayed install recorded no helm output for it",
                            chart.helm_chart
                        )
                    })?;
                if before.output_blob.is_none() && before.output_fingerprint.is_some() {
                    // Its output held a password value and was never stored: helm runs again.
                    None
                } else {
                    let stdout = before
                        .output_blob
                        .as_deref()
                        .and_then(read_blob)
                        .ok_or_else(|| {
                            format!(
                                "{}: the recorded helm output (blob {}) cannot be read",
                                chart.helm_chart,
                                before.output_blob.as_deref().unwrap_or("none")
                            )
                        })?;
                    helm_version = before.helm_version.clone();
                    Some((stdout, before.helm_arguments.clone()))
                }
            }
            None => None,
        };
        let rendered = match recorded {
            Some((stdout, arguments)) => {
                replayed(&chart, &archives, values_for, stdout, arguments)?
            }
            None => {
                if helm_version.is_none() {
                    helm_version = Some(
                        rendering
                            .tool
                            .version()
                            .map_err(|error| format!("{}: {error}", chart.helm_chart))?,
                    );
                }
                windlass_helm::render_chart(
                    &chart,
                    archives
                        .iter()
                        .map(|(path, bytes)| windlass_helm::ReleaseFile { path, bytes }),
                    rendering.namespace,
                    values_for,
                    rendering.tool,
                    &ArchiveLimits::default(),
                )
                .map_err(|error| render_failure(error, record.holds_password))?
            }
        };
        record.archive = Some(rendered.archive.path.clone());
        // The values it is installed with (for a v1beta2 chart, helm/<release>/values.yaml);
        // `builder` alone only listed its images.
        let install_values = match values_for {
            ValuesFor::Install => rendered.values.clone(),
            ValuesFor::Builder => chart.merged_values().map_err(|error| {
                render_failure(
                    windlass_helm::RenderError::Values {
                        helm_chart: chart.helm_chart.clone(),
                        error,
                    },
                    holds_password,
                )
            })?,
        };
        record.values = Some(serde_json::Value::Object(install_values));
        record.rendered_with = Some(
            match values_for {
                ValuesFor::Install => "values",
                ValuesFor::Builder => "builder",
            }
            .to_string(),
        );
        record.helm_version = helm_version.clone();
        record.helm_arguments = rendered.output.arguments.clone();
        let mut documents = Vec::new();
        let top = if chart.is_v1beta2() { "helm" } else { "charts" };
        for file in &rendered.files {
            let path = format!("{top}/{}/{}", chart.directory, file.path);
            let reuse = match rendering.parsed_cache {
                Some(cache) => Reuse::Share(cache),
                None => Reuse::Nothing,
            };
            let parsed =
                parse_documents_with(&path, file.text.as_bytes(), reuse).map_err(|error| {
                    if record.holds_password {
                        format!(
                            "{}: helm rendered {path}, which does not parse as YAML (the problem is not shown: the chart's values hold a password value)",
                            chart.helm_chart
                        )
                    } else {
                        format!("{}: helm rendered {error}", chart.helm_chart)
                    }
                })?;
            documents.extend(parsed);
        }
        if !chart.is_v1beta2() {
            documents = kept_by_annotations(
                &chart.helm_chart,
                record.holds_password,
                documents,
                rendering.excluded,
            )?;
        }
        renders.push(ChartRender {
            record,
            output: rendered.output.stdout,
            documents,
        });
    }
    Ok(renders)
}

/// What a failed render of a chart says: for a chart holding a password value, helm's own error
/// output is left out (a template's `fail` or a parse error may quote a value).
fn render_failure(error: windlass_helm::RenderError, holds_password: bool) -> String {
    match error {
        windlass_helm::RenderError::Helm {
            helm_chart,
            error: windlass_helm::HelmError::Failed { what, status, .. },
        } if holds_password => format!(
            "{helm_chart}: {what} failed ({status}); helm's error is not shown because the chart's values hold a password value (run helm template on the chart with the same values to see it)"
        ),
        windlass_helm::RenderError::Values { helm_chart, error } if holds_password => {
            format!("{helm_chart}: {}", error.message_without_value())
        }
        other => other.to_string(),
    }
}

/// A HelmChart document as `windlass-helm` takes it. For a document holding a password value,
/// what is wrong is said without the values serde quotes (a field the password was rendered into
/// would show it).
fn chart_to_render(document: &Document, holds_password: bool) -> Result<ChartToRender, String> {
    let value = serde_json::Value::clone(&document.value);
    let problem = |error: &dyn std::fmt::Display| {
        if holds_password {
            format!(
                "{}: not a valid HelmChart: {} (values not shown: the document holds a password value)",
                document.location(),
                without_quoted(&error.to_string())
            )
        } else {
            format!("{}: not a valid HelmChart: {error}", document.location())
        }
    };
    if document.api_version == "kots.io/v1beta2" {
        let chart: HelmChartV1Beta2 =
            serde_json::from_value(value).map_err(|error| problem(&error))?;
        ChartToRender::from_v1beta2(&chart, &document.file).map_err(|error| error.to_string())
    } else {
        let chart: HelmChartV1Beta1 =
            serde_json::from_value(value).map_err(|error| problem(&error))?;
        ChartToRender::from_v1beta1(&chart, &document.file).map_err(|error| error.to_string())
    }
}

/// `message` with every quoted part (`"..."`, with its escapes, and `` `...` ``, as serde quotes
/// the values it did not expect) replaced by `…`.
fn without_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut escaped = false;
                for inner in chars.by_ref() {
                    match inner {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
                out.push('…');
            }
            '`' => {
                for inner in chars.by_ref() {
                    if inner == '`' {
                        break;
                    }
                }
                out.push('…');
            }
            other => out.push(other),
        }
    }
    out
}

/// The chart as a replay sees it: the archive and values found again (no helm), helm's recorded
/// output laid out again.
fn replayed(
    chart: &ChartToRender,
    archives: &[(&str, &[u8])],
    values_for: ValuesFor,
    stdout: String,
    arguments: Vec<String>,
) -> Result<RenderedChart, String> {
    let values = match values_for {
        ValuesFor::Install => chart
            .merged_values()
            .map_err(|error| format!("{}: {error}", chart.helm_chart))?,
        ValuesFor::Builder => chart.builder_values(),
    };
    let archive = windlass_helm::archive::find_chart_archive(
        archives
            .iter()
            .map(|(path, bytes)| windlass_helm::ReleaseFile { path, bytes }),
        &windlass_helm::ChartWanted {
            helm_chart: chart.helm_chart.clone(),
            name: chart.chart_name.clone(),
            version: chart.chart_version.clone(),
        },
        &ArchiveLimits::default(),
    )
    .map_err(|error| error.to_string())?;
    let files = split_output(&stdout).map_err(|error| format!("{}: {error}", chart.helm_chart))?;
    Ok(RenderedChart {
        archive,
        values,
        output: windlass_helm::TemplateOutput { stdout, arguments },
        files,
    })
}

/// A chart's values as `helm/<directory>/values.yaml` holds them (YAML); for a chart holding a
/// password value, what `BaseFetched.helm_charts[].values_fingerprint` names.
pub fn values_yaml(values: Option<&serde_json::Value>) -> Result<String, String> {
    serde_saphyr::to_string(values.unwrap_or(&serde_json::json!({})))
        .map_err(|error| error.to_string())
}

/// The documents of a `kots.io/v1beta1` chart (`chart`, holding a password value when
/// `holds_password`) that `kots.io/exclude` and `kots.io/when` keep, the others told to `excluded`
/// ([`crate::release::kept_by_annotations`]): KOTS judges every file a chart renders, as it judges
/// the release's. KOTS templates those files first and windlass does not (see the README), so a
/// value must be a boolean as helm printed it; anything else is refused naming the document.
fn kept_by_annotations(
    chart: &str,
    holds_password: bool,
    documents: Vec<Document>,
    excluded: &dyn Fn(&str, usize, &str),
) -> Result<Vec<Document>, String> {
    crate::release::kept_by_annotations(
        documents,
        &|_| holds_password.then_some("the chart's values hold a password value"),
        &|document, annotation| excluded(&document.file, document.index, annotation),
    )
    .map_err(|problem| {
        format!(
            "{chart}: helm rendered {problem} (windlass does not template a chart's rendered documents again, as KOTS does: the chart must print true or false)"
        )
    })
}

/// Whether `documents` (of a render) are recorded as base documents under `charts/<directory>/`:
/// `kots.io/v1beta1` charts only (with `useHelmInstall: false` they join the common base; with
/// `true`, `write_base` keeps their bases apart).
pub fn joins_common_base(render: &ChartRender) -> bool {
    render.record.api_version == "kots.io/v1beta1" && !render.record.excluded
}

/// Whether `render` is a `kots.io/v1beta2` chart that is not excluded: one the apply stage
/// installs as shipped, with helm.
pub fn installed_as_shipped(render: &ChartRender) -> bool {
    render.record.installed_as_shipped()
}

/// What `fetch_base`'s summary says of the HelmCharts: each one rendered (or excluded), with the
/// documents it added to the base.
pub fn summary(
    records: &[HelmChartRendered],
    documents: &[crate::events::FetchedDocument],
) -> String {
    let mut summary = String::new();
    for record in records {
        let chart = format!(
            "HelmChart {} ({} {})",
            record.name, record.file, record.api_version
        );
        if record.excluded {
            summary.push_str(&format!("; {chart}: excluded by spec.exclude"));
            continue;
        }
        let archive = record.archive.as_deref().unwrap_or("?");
        let holding = if record.holds_password {
            " (holding password values: its values, helm's output and its documents recorded by keyed fingerprint, never stored)"
        } else {
            ""
        };
        if record.api_version == "kots.io/v1beta2" {
            summary.push_str(&format!(
                "; {chart}: chart {} {} from {archive} templated with its builder values to list its images{holding}; not patched (kots.io/v1beta2 charts are installed as shipped)",
                record.chart_name, record.chart_version
            ));
            continue;
        }
        let prefix = format!("charts/{}/", record.directory);
        let count = documents
            .iter()
            .filter(|document| document.file.starts_with(&prefix))
            .count();
        summary.push_str(&format!(
            "; {chart}: chart {} {} from {archive} rendered by helm into {count} document(s) under base/{prefix}{holding}",
            record.chart_name, record.chart_version
        ));
    }
    summary
}

/// The HelmChart a document file of a rendered chart belongs to (`charts/<directory>/…` or
/// `helm/<directory>/…`), if any.
pub fn chart_of<'a>(file: &str, records: &'a [HelmChartRendered]) -> Option<&'a HelmChartRendered> {
    records
        .iter()
        .filter(|record| !record.excluded)
        .find(|record| {
            let top = if record.api_version == "kots.io/v1beta2" {
                "helm"
            } else {
                "charts"
            };
            file.strip_prefix(top)
                .and_then(|rest| rest.strip_prefix('/'))
                .and_then(|rest| rest.strip_prefix(record.directory.as_str()))
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// Why an image found only in `files` is not patched: every file is in a `kots.io/v1beta2`
/// chart's builder render. `slug` names the pull secret the vendor must reference.
pub fn not_patched_reason<'a>(
    mut files: impl Iterator<Item = &'a str>,
    records: &[HelmChartRendered],
    slug: &str,
) -> Option<String> {
    let mut charts: Vec<&str> = Vec::new();
    let all = files.all(|file| match chart_of(file, records) {
        Some(record) if record.api_version == "kots.io/v1beta2" => {
            if !charts.contains(&record.name.as_str()) {
                charts.push(record.name.as_str());
            }
            true
        }
        _ => false,
    });
    (all && !charts.is_empty()).then(|| {
        format!(
            "in kots.io/v1beta2 HelmChart {}: installed as shipped, not patched; the vendor's values must set this image to its proxied reference and imagePullSecrets to [{{name: {slug}-registry}}] (ImagePullSecretName)",
            charts.join(", ")
        )
    })
}

/// The documents of every `kots.io/v1beta2` HelmChart's builder render, read back from helm's
/// recorded output (or, for a chart holding a password value, from the `texts` this process
/// kept), files named `helm/<directory>/<path>`.
pub fn builder_documents(
    records: &[HelmChartRendered],
    read_blob: &ReadBlob<'_>,
    texts: &CredentialTexts,
    parsed_cache: Option<&ParsedCache>,
) -> Result<Vec<Document>, String> {
    let mut documents = Vec::new();
    for record in records
        .iter()
        .filter(|record| record.installed_as_shipped())
    {
        let chart = format!("HelmChart {} ({})", record.name, record.file);
        let stdout = match (&record.output_blob, &record.output_fingerprint) {
            (Some(blob), _) => read_blob(blob).ok_or_else(|| {
                format!("{chart}: the recorded helm output (blob {blob}) is missing or damaged")
            })?,
            (None, Some(fingerprint)) => texts.get(fingerprint).map(|text| text.to_string()).ok_or_else(|| {
                format!(
                    "{chart}: helm's output holds a password value, which windlass never stores, and this process did not render it: run the same `windlass install` again (with the same --config-values) to render the release again"
                )
            })?,
            (None, None) => continue,
        };
        let files = split_output(&stdout).map_err(|error| format!("{chart}: {error}"))?;
        for file in files {
            let path = format!("helm/{}/{}", record.directory, file.path);
            let reuse = match parsed_cache {
                Some(cache) => Reuse::Share(cache),
                None => Reuse::Nothing,
            };
            documents.extend(
                parse_documents_with(&path, file.text.as_bytes(), reuse)
                    .map_err(|error| format!("{chart}: helm rendered {error}"))?,
            );
        }
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::without_quoted;

    #[test]
    fn quoted_values_are_left_out_of_a_message() {
        assert_eq!(
            without_quoted(r#"invalid type: string "pw\"x`y", expected i64"#),
            "invalid type: string …, expected i64"
        );
        assert_eq!(
            without_quoted("invalid type: integer `48151623429`, expected a string"),
            "invalid type: integer …, expected a string"
        );
        assert_eq!(without_quoted("no quotes here"), "no quotes here");
        assert_eq!(without_quoted("open \"never closed"), "open …");
    }
}
