//! The HelmCharts windlass hands to helm: after the plain manifests, each `useHelmInstall: true`
//! chart rendered to `rendered/this-cluster/charts/<directory>/` (see
//! `windlass_stages::helm_install`) and each `kots.io/v1beta2` chart as `write_base` wrote it to
//! `helm/<directory>/` go to the real `helm upgrade --install <release> <chart> --namespace <ns>`,
//! in ascending `weight` and then by HelmChart name, as KOTS installs them. A rendered chart is
//! handed over as it is: its images rewritten by its midstream's `images:`, its workloads patched
//! with `imagePullSecrets: [<slug>-<chart>-registry]` and that secret among its templates as a
//! `pre-install,pre-upgrade` hook, so no values and no post-renderer are passed and what the
//! cluster gets is exactly what `render_midstream` recorded. A `kots.io/v1beta2` chart is handed
//! over as KOTS hands it: the archive as shipped with `--values values.yaml` (its values and true
//! `optionalValues`, merged), nothing patched (its values name the proxy and the pull secret). helm runs bounded (`HelmTool`: a
//! deadline, an output cap, its own temporary directory, a cleared environment with only the
//! kubeconfig added) and without `--wait`. Each outcome is recorded as `HelmReleaseInstalled`,
//! without helm's output (a chart's NOTES may print anything). A chart whose HelmChart held a
//! password value gets its `helmUpgradeFlags` from the install's memory (they are recorded
//! redacted, and so are they among the recorded arguments) and its error is recorded without
//! helm's words; the flags themselves are still on helm's command line, as the vendor wrote them. The directory target writes
//! each chart under `charts/<release>/` instead.
//!
//! Before any chart is installed, each release the previous real apply of the app to the same
//! cluster installed and the release applied now no longer has is handed to `helm uninstall`,
//! higher `weight` first, as KOTS does; each outcome is recorded as `HelmReleaseUninstalled`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use windlass_engine::{StageContext, StageError};
use windlass_helm::{HelmTool, ReleaseRequest, UninstallOutcome, UpgradeRequest};

use crate::events::{
    HELM_RELEASE_INSTALLED, HelmReleaseInstalled, HelmReleaseOutcome, HelmReleaseUninstalled,
    HelmUninstallOutcome,
};
use crate::source::HelmChartSource;
use windlass_stages::credential_texts::{CredentialTexts, fetched_by, text_not_in_memory};

/// Most characters of helm's error kept in the record.
const MAX_ERROR_CHARS: usize = 4000;

/// The charts in install order: ascending `weight`, then HelmChart name.
pub fn install_order(charts: &[HelmChartSource]) -> Vec<&HelmChartSource> {
    let mut ordered: Vec<&HelmChartSource> = charts.iter().collect();
    ordered.sort_by(|a, b| (a.chart.weight, &a.chart.name).cmp(&(b.chart.weight, &b.chart.name)));
    ordered
}

/// The record of `chart` before helm runs.
pub fn record_of(chart: &HelmChartSource, namespace: &str) -> HelmReleaseInstalled {
    HelmReleaseInstalled {
        helm_chart: chart.chart.name.clone(),
        release_name: chart.chart.release_name.clone(),
        namespace: namespace.to_string(),
        weight: chart.chart.weight,
        chart: format!("{}-{}", chart.chart.chart_name, chart.chart.chart_version),
        chart_dir: chart.chart.chart_dir.clone(),
        chart_digest: chart.digest.clone(),
        outcome: HelmReleaseOutcome::NotRunDryRun,
        helm_version: None,
        arguments: Vec::new(),
        revision: None,
        status: None,
        written_to: None,
        error: None,
        elapsed_ms: 0,
        helm_stopped: false,
    }
}

impl HelmCluster<'_> {
    /// A command on `release_name` in `namespace` of this cluster.
    pub fn release<'a>(&'a self, release_name: &'a str, namespace: &'a str) -> ReleaseRequest<'a> {
        ReleaseRequest {
            release_name,
            namespace,
            kubeconfig: std::path::Path::new(self.kubeconfig),
            kube_context: self.context,
            timeout_seconds: self.timeout_seconds,
            held_open: self.held_open,
        }
    }
}

/// Where a cluster is, for helm.
pub struct HelmCluster<'a> {
    /// `KUBECONFIG` for helm.
    pub kubeconfig: &'a std::ffi::OsStr,
    /// The kubeconfig context.
    pub context: Option<&'a str>,
    /// helm's `--timeout`, in seconds.
    pub timeout_seconds: u64,
    /// The helm lock's file, handed to helm (see [`crate::helm_pending`]).
    pub held_open: Option<&'a std::fs::File>,
}

/// The releases install `previous_apply` recorded as installed (the newest record of each
/// release and namespace), read from the stage's fact history, each with that install.
pub fn installed_by(
    context: &StageContext,
    previous_apply: &str,
) -> Result<Vec<(String, HelmReleaseInstalled)>, StageError> {
    let mut seen = BTreeSet::new();
    let mut installed = Vec::new();
    context
        .history
        .visit_recent_facts(
            HELM_RELEASE_INSTALLED,
            time::OffsetDateTime::UNIX_EPOCH,
            &context.install_id,
            &mut |event| {
                if event.event.install_id != previous_apply {
                    return ControlFlow::Continue(());
                }
                let Ok(record) = event.decode::<HelmReleaseInstalled>() else {
                    return ControlFlow::Continue(());
                };
                if seen.insert((record.release_name.clone(), record.namespace.clone()))
                    && record.outcome == HelmReleaseOutcome::Installed
                {
                    installed.push((previous_apply.to_string(), record));
                }
                ControlFlow::Continue(())
            },
        )
        .map_err(StageError::permanent)?;
    Ok(installed)
}

/// The releases installed before this apply, each with the install that did: what the previous
/// apply (install `previous_apply`) installed, and what applies since that never completed
/// installed (`unfinished`; the newer record of a release and namespace wins).
pub fn installed_before(
    context: &StageContext,
    previous_apply: Option<&str>,
    unfinished: Vec<(String, HelmReleaseInstalled)>,
) -> Result<Vec<(String, HelmReleaseInstalled)>, StageError> {
    let mut installed = match previous_apply {
        Some(previous_apply) => installed_by(context, previous_apply)?,
        None => Vec::new(),
    };
    for (installer, release) in unfinished {
        installed.retain(|(_, known)| {
            (&known.release_name, &known.namespace) != (&release.release_name, &release.namespace)
        });
        installed.push((installer, release));
    }
    Ok(installed)
}

/// Of `previously_installed` (each with the install that installed it), the releases none of
/// `charts` installs now (a chart's release in its namespace, `namespace_of`), in uninstall
/// order: descending `weight`, then release name descending (the reverse of the install order).
pub fn dropped(
    previously_installed: Vec<(String, HelmReleaseInstalled)>,
    charts: &[HelmChartSource],
    namespace_of: impl Fn(&HelmChartSource) -> String,
) -> Vec<(String, HelmReleaseInstalled)> {
    let current: BTreeSet<(String, String)> = charts
        .iter()
        .map(|chart| (chart.chart.release_name.clone(), namespace_of(chart)))
        .collect();
    let mut dropped: Vec<(String, HelmReleaseInstalled)> = previously_installed
        .into_iter()
        .filter(|(_, record)| {
            !current.contains(&(record.release_name.clone(), record.namespace.clone()))
        })
        .collect();
    dropped.sort_by(|(_, a), (_, b)| (b.weight, &b.release_name).cmp(&(a.weight, &a.release_name)));
    dropped
}

/// The record of uninstalling `release` (installed by install `installed_by`) before helm runs.
pub fn uninstall_record_of(
    release: &HelmReleaseInstalled,
    installed_by: &str,
) -> HelmReleaseUninstalled {
    HelmReleaseUninstalled {
        helm_chart: release.helm_chart.clone(),
        release_name: release.release_name.clone(),
        namespace: release.namespace.clone(),
        weight: release.weight,
        installed_by: installed_by.to_string(),
        outcome: HelmUninstallOutcome::NotRunDryRun,
        helm_version: None,
        arguments: Vec::new(),
        error: None,
        elapsed_ms: 0,
    }
}

/// Runs `helm uninstall` for `release` (blocking: call it off the async runtime) and records how
/// it went.
pub fn uninstall_release(
    tool: &HelmTool,
    helm_version: &str,
    release: &HelmReleaseInstalled,
    installed_by: &str,
    cluster: &HelmCluster<'_>,
) -> HelmReleaseUninstalled {
    let mut record = uninstall_record_of(release, installed_by);
    record.helm_version = Some(helm_version.to_string());
    let started = Instant::now();
    let result = tool.uninstall(&cluster.release(&release.release_name, &release.namespace));
    record.elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok((outcome, arguments)) => {
            record.arguments = arguments;
            record.outcome = match outcome {
                UninstallOutcome::Uninstalled => HelmUninstallOutcome::Uninstalled,
                UninstallOutcome::NotFound => HelmUninstallOutcome::NotFound,
            };
        }
        Err(error) => {
            record.outcome = HelmUninstallOutcome::Failed;
            record.error = Some(recorded_message(error.to_string()));
        }
    }
    record
}

/// helm's `message` as recorded and printed: without the credentials it may quote (a chart's
/// hook pull secret, an API server's or a webhook's echo of a Secret; see
/// [`crate::credentials_in_text`]), cut to [`MAX_ERROR_CHARS`] characters.
pub(crate) fn recorded_message(message: String) -> String {
    let message = crate::credentials_in_text::redact_credentials(&message).into_owned();
    if message.chars().count() > MAX_ERROR_CHARS {
        message.chars().take(MAX_ERROR_CHARS).collect::<String>() + " …"
    } else {
        message
    }
}

/// The `helmUpgradeFlags` helm runs `chart` with: as recorded, or, for a chart holding a password
/// value (its flags recorded redacted), as the vendor wrote them, from the install's memory where
/// `fetch_base` kept them. A process that did not render the release (a resumed install, or
/// `windlass apply INSTALL_ID`) does not have them: that fails, marking `fetch_base` stale when it
/// is an input, so that the next `windlass install` of the same request renders them again.
pub fn upgrade_flags(
    context: &StageContext,
    chart: &HelmChartSource,
) -> Result<Vec<String>, StageError> {
    let Some(fingerprint) = &chart.chart.helm_upgrade_flags_fingerprint else {
        return Ok(chart.chart.helm_upgrade_flags.clone());
    };
    let texts = context.memo.get::<CredentialTexts>();
    let written = texts.get(fingerprint).ok_or_else(|| {
        text_not_in_memory(
            fetched_by(context),
            &format!("spec.helmUpgradeFlags of HelmChart {}", chart.chart.name),
        )
    })?;
    serde_json::from_str(&written).map_err(|error| {
        StageError::permanent(format!(
            "the helmUpgradeFlags of HelmChart {} kept in memory: {error}",
            chart.chart.name
        ))
    })
}

/// What KOTS adds to `helmUpgradeFlags` holding `--take-ownership`, `--force` or
/// `--force-replace`: helm 4 applies server-side by default, refuses `--force-replace` with it
/// ("cannot use server-side apply and force replace together") and meets a field manager conflict
/// where `--take-ownership` adopts an object another manager applied (KOTS's documented migration
/// from a `useHelmInstall: false` chart to `kots.io/v1beta2`). windlass passes it before the
/// flags, and not when the flags choose `--server-side` themselves.
pub const CLIENT_SIDE_APPLY: &str = "--server-side=false";

/// [`CLIENT_SIDE_APPLY`] when `flags` need it.
pub fn client_side_apply_for(flags: &[String]) -> Option<&'static str> {
    // helm reads a boolean flag's value as Go's strconv.ParseBool does.
    let named = |flag: &str, name: &str| {
        flag == name
            || flag
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .is_some_and(|value| ["1", "t", "T", "true", "TRUE", "True"].contains(&value))
    };
    let needs = flags.iter().any(|flag| {
        ["--take-ownership", "--force", "--force-replace"]
            .iter()
            .any(|name| named(flag, name))
    });
    let chosen = flags
        .iter()
        .any(|flag| flag == "--server-side" || flag.starts_with("--server-side="));
    (needs && !chosen).then_some(CLIENT_SIDE_APPLY)
}

/// The deadline the last `--timeout` of `flags` gives helm (`--timeout 30m`, `--timeout=1h30m`),
/// read as Go's `time.ParseDuration` reads it; `None` when there is none or it does not read.
pub fn flags_timeout(flags: &[String]) -> Option<Duration> {
    let mut last = None;
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let value = match flag.strip_prefix("--timeout") {
            Some("") => flags.next().map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(value) = value {
            last = go_duration(value);
        }
    }
    last
}

/// helm's deadline for a chart, in seconds: `wait_timeout_seconds`, or the longer `--timeout` of
/// its `upgrade_flags` ([`flags_timeout`], at most a week, as `--wait-timeout` is).
pub fn helm_timeout_seconds(wait_timeout_seconds: u64, upgrade_flags: &[String]) -> u64 {
    let flagged = flags_timeout(upgrade_flags).map_or(0, |flagged| {
        flagged
            .as_secs()
            .min(crate::stage::MAX_WAIT_TIMEOUT_SECONDS)
    });
    wait_timeout_seconds.max(flagged)
}

/// A Go duration (`90s`, `10m`, `1h30m`, `1.5h`, `500ms`): numbers, each with a unit.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|end| *end > 0)?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// What helm gets after windlass's own arguments: [`client_side_apply_for`] the flags, then
/// the flags.
fn after_windlass_arguments(upgrade_flags: &[String]) -> Vec<String> {
    client_side_apply_for(upgrade_flags)
        .map(str::to_string)
        .into_iter()
        .chain(upgrade_flags.iter().cloned())
        .collect()
}

/// The arguments helm ran `chart` with, as recorded: for a chart whose flags are recorded
/// redacted, the `upgrade_flags` at their end replaced by the redacted ones.
fn recorded_arguments(
    mut arguments: Vec<String>,
    chart: &HelmChartSource,
    upgrade_flags: &[String],
) -> Vec<String> {
    if chart.chart.helm_upgrade_flags_fingerprint.is_some() {
        arguments.truncate(arguments.len().saturating_sub(upgrade_flags.len()));
        arguments.extend(chart.chart.helm_upgrade_flags.iter().cloned());
    }
    arguments
}

/// helm's error as recorded: for a chart holding a password value (`holds_password`), without
/// helm's own output (an API server's or a hook's message may quote a value of the chart), with
/// `run_by_hand` (e.g. `helm upgrade --install on <chart directory>`) as the way to see it.
pub(crate) fn recorded_error(
    error: windlass_helm::HelmError,
    holds_password: bool,
    run_by_hand: &str,
) -> String {
    match error {
        windlass_helm::HelmError::Failed { what, status, .. } if holds_password => {
            format!(
                "{what} failed ({status}); helm's error is not shown because the chart holds a password value (run {run_by_hand} to see it)"
            )
        }
        other => recorded_message(other.to_string()),
    }
}

/// Runs `helm upgrade --install` for `chart` in `namespace` with `upgrade_flags` (see
/// [`upgrade_flags`]) after windlass's arguments (blocking: call it off the async runtime) and
/// records how it went, the flags redacted when the chart's are; with whether helm refused
/// because a revision of the release is pending (see [`crate::helm_pending`]).
pub fn install_chart(
    tool: &HelmTool,
    helm_version: &str,
    chart: &HelmChartSource,
    upgrade_flags: &[String],
    namespace: &str,
    cluster: &HelmCluster<'_>,
) -> (HelmReleaseInstalled, bool) {
    let mut record = record_of(chart, namespace);
    record.helm_version = Some(helm_version.to_string());
    let files: Vec<(String, Vec<u8>)> = chart
        .files
        .iter()
        .map(|(path, bytes, _)| (path.clone(), bytes.clone()))
        .collect();
    let extra_arguments = after_windlass_arguments(upgrade_flags);
    let values_files: &[&str] = if chart.shipped_archive.is_some() {
        &[crate::source::SHIPPED_VALUES]
    } else {
        &[]
    };
    let started = Instant::now();
    let result = tool.upgrade_install(&UpgradeRequest {
        release_name: &chart.chart.release_name,
        namespace,
        files: &files,
        archive: chart.shipped_archive.as_deref(),
        values_files,
        kubeconfig: std::path::Path::new(cluster.kubeconfig),
        kube_context: cluster.context,
        timeout_seconds: cluster.timeout_seconds,
        extra_arguments: &extra_arguments,
        held_open: cluster.held_open,
    });
    record.elapsed_ms = started.elapsed().as_millis() as u64;
    let mut pending = false;
    match result {
        Ok(output) => {
            record.outcome = HelmReleaseOutcome::Installed;
            record.arguments = recorded_arguments(output.arguments, chart, upgrade_flags);
            record.revision = output.revision;
            record.status = output.status;
        }
        Err(error) => {
            pending = error.is_pending_operation();
            record.helm_stopped = matches!(
                error,
                windlass_helm::HelmError::TimedOut { .. }
                    | windlass_helm::HelmError::OutputTooLarge { .. }
            );
            record.outcome = HelmReleaseOutcome::Failed;
            record.error = Some(recorded_error(
                error,
                chart.chart.holds_password,
                &format!("helm upgrade --install on {}", chart.chart.chart_dir),
            ));
        }
    }
    (record, pending)
}

#[cfg(test)]
mod tests {
    use windlass_stages::events::RenderedHelmChart;

    use super::*;

    fn installed(release: &str, namespace: &str, weight: i64) -> HelmReleaseInstalled {
        let mut record = record_of(&chart(release, Some(namespace), weight), namespace);
        record.outcome = HelmReleaseOutcome::Installed;
        record
    }

    fn chart(release: &str, namespace: Option<&str>, weight: i64) -> HelmChartSource {
        HelmChartSource {
            chart: RenderedHelmChart {
                name: format!("{release}-chart"),
                release_name: release.into(),
                namespace: namespace.map(str::to_string),
                weight,
                chart_name: release.into(),
                chart_version: "1.0.0".into(),
                helm_upgrade_flags: Vec::new(),
                helm_upgrade_flags_fingerprint: None,
                holds_password: false,
                chart_dir: format!("rendered/this-cluster/charts/{release}"),
                pull_secrets: Vec::new(),
                patched_workloads: Vec::new(),
                files: Vec::new(),
            },
            files: Vec::new(),
            digest: String::new(),
            shipped_archive: None,
        }
    }

    #[test]
    fn a_chart_holding_a_password_is_recorded_with_its_flags_redacted_and_without_helms_words() {
        let mut holding = chart("db", None, 0);
        holding.chart.holds_password = true;
        holding.chart.helm_upgrade_flags = vec!["--description".into(), "<redacted>".into()];
        holding.chart.helm_upgrade_flags_fingerprint = Some("fp1:0123".into());
        let flags = ["--description".to_string(), "pw-s3cret".to_string()];
        let ran: Vec<String> = ["upgrade", "--install", "db", "chart"]
            .iter()
            .map(|argument| argument.to_string())
            .chain(flags.iter().cloned())
            .collect();
        assert_eq!(
            recorded_arguments(ran.clone(), &holding, &flags),
            [
                "upgrade",
                "--install",
                "db",
                "chart",
                "--description",
                "<redacted>"
            ]
        );
        let failed = || windlass_helm::HelmError::Failed {
            what: "helm upgrade --install db".into(),
            status: "exit status: 1".into(),
            stderr: "Error: bad value pw-s3cret".into(),
        };
        let error = recorded_error(
            failed(),
            holding.chart.holds_password,
            &format!("helm upgrade --install on {}", holding.chart.chart_dir),
        );
        assert!(!error.contains("pw-s3cret"), "{error}");
        assert!(error.starts_with("helm upgrade --install db failed (exit status: 1)"));
        // Any other chart is recorded as helm ran it.
        let plain = chart("web", None, 0);
        assert_eq!(recorded_arguments(ran.clone(), &plain, &flags), ran);
        assert!(recorded_error(failed(), plain.chart.holds_password, "helm").contains("bad value"));
    }

    #[test]
    fn the_client_side_flag_is_recorded_as_passed_before_the_redacted_flags() {
        let mut holding = chart("db", None, 0);
        holding.chart.holds_password = true;
        holding.chart.helm_upgrade_flags = vec![
            "--take-ownership".into(),
            "--description".into(),
            "<redacted>".into(),
        ];
        holding.chart.helm_upgrade_flags_fingerprint = Some("fp1:0123".into());
        let flags = [
            "--take-ownership".to_string(),
            "--description".to_string(),
            "pw-s3cret".to_string(),
        ];
        let ran: Vec<String> = ["upgrade", "--install", "db", "chart"]
            .iter()
            .map(|argument| argument.to_string())
            .chain(after_windlass_arguments(&flags))
            .collect();
        assert_eq!(
            recorded_arguments(ran, &holding, &flags),
            [
                "upgrade",
                "--install",
                "db",
                "chart",
                "--server-side=false",
                "--take-ownership",
                "--description",
                "<redacted>"
            ]
        );
    }

    #[test]
    fn the_last_timeout_of_the_flags_reads_as_go_reads_a_duration() {
        let flags = |list: &[&str]| list.iter().map(|flag| flag.to_string()).collect::<Vec<_>>();
        let minutes = |m: u64| Some(Duration::from_secs(m * 60));
        assert_eq!(flags_timeout(&flags(&["--timeout", "30m"])), minutes(30));
        assert_eq!(flags_timeout(&flags(&["--timeout=1h30m"])), minutes(90));
        assert_eq!(flags_timeout(&flags(&["--timeout=1.5h"])), minutes(90));
        assert_eq!(
            flags_timeout(&flags(&["--timeout=10m", "--wait", "--timeout", "2h"])),
            minutes(120)
        );
        assert_eq!(
            flags_timeout(&flags(&["--timeout=90s"])),
            Some(Duration::from_secs(90))
        );
        // The deadline helm gets: the longer, at most a week.
        assert_eq!(helm_timeout_seconds(600, &flags(&["--timeout=30m"])), 1800);
        assert_eq!(helm_timeout_seconds(600, &flags(&["--timeout=1m"])), 600);
        assert_eq!(helm_timeout_seconds(600, &[]), 600);
        assert_eq!(
            helm_timeout_seconds(600, &flags(&["--timeout=10000h"])),
            crate::stage::MAX_WAIT_TIMEOUT_SECONDS
        );
        for none in [
            &["--description", "x"][..],
            &["--timeout"],
            &["--timeout=soon"],
            &["--timeout=10"],
            &["--timeouts=10m"],
        ] {
            assert_eq!(flags_timeout(&flags(none)), None, "{none:?}");
        }
    }

    #[test]
    fn flags_that_need_client_side_apply_get_it_unless_they_choose() {
        let flags = |list: &[&str]| list.iter().map(|flag| flag.to_string()).collect::<Vec<_>>();
        for needing in [
            &["--take-ownership"][..],
            &["--description", "x", "--force"],
            &["--force-replace"],
            &["--force=true"],
            &["--take-ownership=1"],
            &["--take-ownership=T"],
        ] {
            assert_eq!(
                client_side_apply_for(&flags(needing)),
                Some(CLIENT_SIDE_APPLY),
                "{needing:?}"
            );
        }
        for not_needing in [
            &[][..],
            &["--description", "x"],
            &["--force-conflicts"],
            &["--force=false"],
            &["--take-ownership=0"],
            &["--take-ownership", "--server-side=true"],
            &["--server-side", "false", "--force-replace"],
        ] {
            assert_eq!(
                client_side_apply_for(&flags(not_needing)),
                None,
                "{not_needing:?}"
            );
        }
    }

    #[test]
    fn releases_no_chart_installs_now_go_higher_weight_first() {
        let previous: Vec<(String, HelmReleaseInstalled)> = [
            installed("low", "default", -5),
            installed("kept", "default", 0),
            installed("high", "default", 20),
            installed("moved", "old", 1),
            installed("also-high", "default", 20),
        ]
        .into_iter()
        .map(|record| ("install-1".to_string(), record))
        .collect();
        // `moved` is now installed in another namespace: the old one is dropped.
        let current = [chart("kept", None, 0), chart("moved", Some("new"), 1)];
        let dropped = dropped(previous, &current, |chart| {
            chart
                .chart
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into())
        });
        let order: Vec<(&str, &str)> = dropped
            .iter()
            .map(|(_, record)| (record.release_name.as_str(), record.namespace.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("high", "default"),
                ("also-high", "default"),
                ("moved", "old"),
                ("low", "default")
            ]
        );
    }
}
