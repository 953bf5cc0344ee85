//! The charts handed to helm (`useHelmInstall: true`, `kots.io/v1beta2`) in a diff of two installs: `helm_release_added` (installed
//! by the newer install's apply only), `helm_release_removed` (installed by the older one's only
//! and not uninstalled by the newer one), `helm_release_changed` (the chart's digest differs) and
//! `helm_release_uninstalled` (the newer apply's `helm uninstall` of a release the release
//! dropped). A chart's change takes the attribution of the change to a rendered file under its
//! chart directory, and `otherwise` when none changed.

use std::collections::BTreeMap;

use serde::Deserialize;
use windlass_apply::events::{
    HelmReleaseInstalled, HelmReleaseOutcome, HelmReleaseUninstalled, HelmUninstallOutcome,
};
use windlass_state::{EventPayload, StoredEvent};

use crate::diff::Change;

/// The charts each install handed to helm (the last record of each release and namespace,
/// `release <name> in <namespace>`), with the stage.
fn installed<'a>(
    facts: impl Iterator<Item = (&'a str, &'a StoredEvent)>,
) -> BTreeMap<String, (String, HelmReleaseInstalled)> {
    facts
        .filter(|(_, fact)| fact.event_type == HelmReleaseInstalled::EVENT_TYPE)
        .filter_map(|(stage, fact)| {
            let record = HelmReleaseInstalled::deserialize(&fact.payload).ok()?;
            matches!(
                record.outcome,
                HelmReleaseOutcome::Installed | HelmReleaseOutcome::Written
            )
            .then(|| {
                (
                    subject(&record.release_name, &record.namespace),
                    (stage.to_string(), record),
                )
            })
        })
        .collect()
}

fn subject(release: &str, namespace: &str) -> String {
    format!("release {release} in {namespace}")
}

/// The changes to the charts handed to helm between `old`'s facts and `new`'s.
pub fn helm_changes<'a>(
    old: impl Iterator<Item = (&'a str, &'a StoredEvent)>,
    new: &[(&'a str, &'a StoredEvent)],
    file_attribution: &BTreeMap<String, &'static str>,
    otherwise: &'static str,
) -> Vec<Change> {
    let before = installed(old);
    let after = installed(new.iter().copied());
    let uninstalled: Vec<(String, HelmReleaseUninstalled)> = new
        .iter()
        .filter(|(_, fact)| fact.event_type == HelmReleaseUninstalled::EVENT_TYPE)
        .filter_map(|(stage, fact)| {
            Some((
                stage.to_string(),
                HelmReleaseUninstalled::deserialize(&fact.payload).ok()?,
            ))
        })
        .collect();
    // The attribution of the first changed rendered file under the chart's directory.
    let attribution = |chart_dir: &str| {
        let prefix = format!("{chart_dir}/");
        file_attribution
            .range(prefix.clone()..)
            .take_while(|(file, _)| file.starts_with(&prefix))
            .map(|(_, attribution)| *attribution)
            .next()
            .unwrap_or(otherwise)
    };
    let change = Change::of;
    let mut changes = Vec::new();
    for (key, (stage, was)) in &before {
        match after.get(key) {
            Some((stage, now)) if now.chart_digest != was.chart_digest => changes.push(change(
                stage,
                "helm_release_changed",
                key,
                format!(
                    "HelmChart {}: chart {} → {}, digest {} → {}",
                    now.helm_chart, was.chart, now.chart, was.chart_digest, now.chart_digest
                ),
                attribution(&now.chart_dir),
            )),
            Some(_) => {}
            None if uninstalled
                .iter()
                .any(|(_, gone)| subject(&gone.release_name, &gone.namespace) == *key) => {}
            None => changes.push(change(
                stage,
                "helm_release_removed",
                key,
                format!(
                    "HelmChart {} (chart {}) is no longer handed to helm, and was not uninstalled",
                    was.helm_chart, was.chart
                ),
                attribution(&was.chart_dir),
            )),
        }
    }
    for (key, (stage, now)) in &after {
        if !before.contains_key(key) {
            changes.push(change(
                stage,
                "helm_release_added",
                key,
                format!("HelmChart {} (chart {})", now.helm_chart, now.chart),
                attribution(&now.chart_dir),
            ));
        }
    }
    for (stage, gone) in &uninstalled {
        let outcome = match gone.outcome {
            HelmUninstallOutcome::Uninstalled => "uninstalled".to_string(),
            HelmUninstallOutcome::NotFound => "already gone".to_string(),
            HelmUninstallOutcome::Failed => format!(
                "helm uninstall failed: {}",
                gone.error.as_deref().unwrap_or("")
            ),
            HelmUninstallOutcome::NotRunDryRun => "would be uninstalled (dry run)".to_string(),
        };
        let key = subject(&gone.release_name, &gone.namespace);
        let dropped_from = before
            .get(&key)
            .map(|(_, was)| attribution(&was.chart_dir))
            .unwrap_or(otherwise);
        changes.push(change(
            stage,
            "helm_release_uninstalled",
            &key,
            format!("HelmChart {}: {outcome}", gone.helm_chart),
            dropped_from,
        ));
    }
    changes
}
