//! `windlass diff`: two installs compared stage by stage from their recorded facts and blobs,
//! nothing re-run. Files the stages wrote (those listed in [`crate::compare::OUTPUT_FILES`]) are
//! added, removed or changed, a changed text file with a unified diff (files under `rendered/` are
//! the rendered objects); images whose probe outcome or decision changed, or that appeared or went;
//! kustomize image overrides added and removed; pull secrets by name, namespace and keyed
//! fingerprint, never content; objects the apply stage applied (added, no longer applied, or
//! applied with another configuration) and objects it pruned, from its `ObjectsApplied` and
//! `ObjectPruned` facts. Each change is attributed: `registry visibility changed` (an image's
//! probe answer changed, or a file mentions such an image), `upstream changed` (the release
//! differs), or `options changed` (the namespace or a stage's configuration differs). A summary
//! line counts files changed and lines added and removed, like KOTS's.

use std::collections::{BTreeMap, BTreeSet};

use crate::skim::{Skim, skimmed_events_of};
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;
use windlass_apply::events::{
    AppliedObject, ApplyOutcome, ObjectPruned, ObjectsApplied, PruneOutcome,
};
use windlass_apply::order::KeepReason;
use windlass_engine::events::InstallStarted;
use windlass_engine::{InstallState, fold_owned};
use windlass_stages::events::{BaseFetched, ImagesProbed, OverridesPlanned, SecretsProvisioned};
use windlass_state::{BlobId, BlobStore, EventLog, EventPayload, StoredEvent};

use crate::ReplayError;
use crate::compare::{OutputFile, output_files};
use crate::text_diff::unified_diff;

/// The change is explained by an image's registry answer.
pub const VISIBILITY: &str = "registry visibility changed";
/// The change is explained by the release.
pub const UPSTREAM: &str = "upstream changed";
/// The change is explained by the install's options.
pub const OPTIONS: &str = "options changed";

/// One change between two installs (wire format: `diff --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The stage whose facts changed.
    pub stage: String,
    /// `file_added`, `file_removed`, `file_changed`, `object_added`, `object_removed`,
    /// `object_changed` (files under `rendered/`), `image_added`, `image_removed`,
    /// `image_outcome_changed`, `override_added`, `override_removed`, `pull_secret_added`,
    /// `pull_secret_removed`, `pull_secret_changed`, `applied_object_added`,
    /// `applied_object_removed`, `applied_object_changed`, `pruned_object`, `helm_release_added`,
    /// `helm_release_removed`, `helm_release_changed`, `helm_release_uninstalled`.
    pub kind: String,
    /// The file, image, override or secret.
    pub subject: String,
    /// What changed, on one line.
    pub detail: String,
    /// For a changed text file: the unified diff.
    pub unified_diff: Option<String>,
    /// `registry visibility changed`, `upstream changed` or `options changed`.
    pub attribution: &'static str,
    /// For a changed text file: lines only in the newer install's version.
    pub lines_added: u64,
    /// For a changed text file: lines only in the older install's version.
    pub lines_removed: u64,
}

impl Change {
    /// A change without a text diff.
    pub fn of(
        stage: &str,
        kind: &str,
        subject: &str,
        detail: String,
        attribution: &'static str,
    ) -> Change {
        Change {
            stage: stage.to_string(),
            kind: kind.into(),
            subject: subject.to_string(),
            detail,
            unified_diff: None,
            attribution,
            lines_added: 0,
            lines_removed: 0,
        }
    }
}

/// Files changed and lines added and removed, like KOTS's diff summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffSummary {
    /// Files added, removed or changed.
    pub files_changed: u64,
    /// Lines only in the newer install's files.
    pub lines_added: u64,
    /// Lines only in the older install's files.
    pub lines_removed: u64,
}

impl DiffSummary {
    /// `3 files changed, 4 lines added, 2 lines removed`.
    pub fn line(&self) -> String {
        format!(
            "{} files changed, {} lines added, {} lines removed",
            self.files_changed, self.lines_added, self.lines_removed
        )
    }
}

/// Two installs compared (wire format: `diff --json`).
#[derive(Debug, Clone, Serialize)]
pub struct InstallDiff {
    /// The older install.
    pub from: String,
    /// The newer install.
    pub to: String,
    /// Whether the releases differ.
    pub upstream_changed: bool,
    /// Whether the namespace or a stage's configuration differs.
    pub options_changed: bool,
    /// The summary.
    pub summary: DiffSummary,
    /// Every change, stage by stage.
    pub changes: Vec<Change>,
}

/// One install's recorded facts, by stage.
struct Recorded {
    state: InstallState,
    started: InstallStarted,
}

/// What a diff never reads, left out when an install is loaded: the recorded release's documents
/// (base files are compared from `BaseWritten`) and every place each image was found.
fn diff_skim(event_type: &str) -> Option<Skim> {
    match event_type {
        BaseFetched::EVENT_TYPE => Some(Skim::Payload),
        ImagesProbed::EVENT_TYPE => Some(Skim::Emptied(&["uses"])),
        _ => None,
    }
}

fn load(log: &EventLog, install_id: &str) -> Result<Recorded, ReplayError> {
    let events = skimmed_events_of(log, install_id, diff_skim)?;
    if events.is_empty() {
        return Err(ReplayError::NotFound(install_id.to_string()));
    }
    let started = InstallStarted::deserialize(&events[0].payload)
        .map_err(|error| ReplayError::Recorded(format!("InstallStarted: {error}")))?;
    let state =
        fold_owned(install_id, events).map_err(|error| ReplayError::Recorded(error.to_string()))?;
    Ok(Recorded { state, started })
}

impl Recorded {
    /// `(stage, fact)` for every fact, in pipeline order.
    fn facts(&self) -> impl Iterator<Item = (&str, &StoredEvent)> {
        self.state.stages.iter().flat_map(|stage| {
            stage
                .fact_events
                .iter()
                .map(move |fact| (stage.name.as_str(), fact))
        })
    }

    fn fact<T: windlass_state::EventPayload + serde::de::DeserializeOwned>(
        &self,
    ) -> Option<(String, T)> {
        self.facts().find_map(|(stage, fact)| {
            fact.is::<T>()
                .then(|| T::deserialize(&fact.payload).ok())
                .flatten()
                .map(|value| (stage.to_string(), value))
        })
    }

    /// Every written file, by stage then path.
    fn files(&self) -> BTreeMap<(String, String), OutputFile<'_>> {
        let mut files = BTreeMap::new();
        for (stage, fact) in self.facts() {
            for file in output_files(&fact.event_type, &fact.payload) {
                files.insert((stage.to_string(), file.path.to_string()), file);
            }
        }
        files
    }

    /// Every object the apply stage applied (the last record of each), by `Kind namespace/name`,
    /// with the stage.
    fn applied(&self) -> BTreeMap<String, (String, AppliedObject)> {
        let mut applied = BTreeMap::new();
        for (stage, fact) in self.facts() {
            if !fact.is::<ObjectsApplied>() {
                continue;
            }
            let Ok(batch) = ObjectsApplied::deserialize(&fact.payload) else {
                continue;
            };
            for object in batch.objects {
                applied.insert(object.key.to_string(), (stage.to_string(), object));
            }
        }
        applied
    }

    /// Every object the apply stage pruned, with the stage, in recorded order.
    fn pruned(&self) -> Vec<(String, ObjectPruned)> {
        self.facts()
            .filter(|(_, fact)| fact.is::<ObjectPruned>())
            .filter_map(|(stage, fact)| {
                Some((
                    stage.to_string(),
                    ObjectPruned::deserialize(&fact.payload).ok()?,
                ))
            })
            .collect()
    }

    fn configs(&self) -> BTreeMap<String, Value> {
        self.started
            .pipeline
            .iter()
            .map(|stage| (stage.name.clone(), stage.config.clone()))
            .collect()
    }
}

/// The install `install_id` upgrades, as it recorded.
pub fn upgraded_by(log: &EventLog, install_id: &str) -> Result<Option<String>, ReplayError> {
    Ok(load(log, install_id)?.started.upgrades)
}

/// Compares install `from` (older) with `to` (newer); only `stage`'s changes when given.
pub fn diff_installs(
    log: &EventLog,
    blobs: &BlobStore,
    from: &str,
    to: &str,
    stage: Option<&str>,
) -> Result<InstallDiff, ReplayError> {
    // The two installs are read and decoded side by side: decoding their facts is most of a
    // diff's work.
    let (old, new) = std::thread::scope(|scope| {
        let old = scope.spawn(|| load(log, from));
        let new = load(log, to);
        (
            old.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            new,
        )
    });
    let (old, new) = (old?, new?);
    let upstream_changed = old.started.release_digest != new.started.release_digest;
    let options_changed =
        old.started.namespace != new.started.namespace || old.configs() != new.configs();
    let mut changes = Vec::new();

    // Images.
    let old_probed = old.fact::<ImagesProbed>();
    let new_probed = new.fact::<ImagesProbed>();
    let mut visibility_changed: BTreeSet<String> = BTreeSet::new();
    let mut release_images: (BTreeSet<String>, BTreeSet<String>) = Default::default();
    if let (Some((_, old_probed)), Some((probe_stage, new_probed))) = (&old_probed, &new_probed) {
        let before: BTreeMap<&str, _> = old_probed
            .images
            .iter()
            .map(|image| (image.image.as_str(), image))
            .collect();
        let after: BTreeMap<&str, _> = new_probed
            .images
            .iter()
            .map(|image| (image.image.as_str(), image))
            .collect();
        release_images = (
            before.keys().map(|image| image.to_string()).collect(),
            after.keys().map(|image| image.to_string()).collect(),
        );
        for (image, was) in &before {
            match after.get(image) {
                Some(now) if now.outcome != was.outcome || now.decision != was.decision => {
                    visibility_changed.insert(image.to_string());
                    changes.push(Change {
                        stage: probe_stage.clone(),
                        kind: "image_outcome_changed".into(),
                        subject: image.to_string(),
                        detail: format!(
                            "{} ({}) → {} ({}): {}",
                            was.outcome,
                            if was.private { "private" } else { "public" },
                            now.outcome,
                            if now.private { "private" } else { "public" },
                            now.reason
                        ),
                        unified_diff: None,
                        lines_added: 0,
                        lines_removed: 0,
                        attribution: if now.outcome != was.outcome {
                            VISIBILITY
                        } else {
                            OPTIONS
                        },
                    });
                }
                Some(_) => {}
                None => changes.push(Change {
                    stage: probe_stage.clone(),
                    kind: "image_removed".into(),
                    subject: image.to_string(),
                    detail: "no longer in the release".into(),
                    unified_diff: None,
                    lines_added: 0,
                    lines_removed: 0,
                    attribution: UPSTREAM,
                }),
            }
        }
        for (image, now) in &after {
            if !before.contains_key(image) {
                changes.push(Change {
                    stage: probe_stage.clone(),
                    kind: "image_added".into(),
                    subject: image.to_string(),
                    detail: format!(
                        "{} ({})",
                        now.outcome,
                        if now.private { "private" } else { "public" }
                    ),
                    unified_diff: None,
                    lines_added: 0,
                    lines_removed: 0,
                    attribution: UPSTREAM,
                });
            }
        }
    }
    let attribute_image = |image: &str| {
        if visibility_changed.contains(image) {
            VISIBILITY
        } else if release_images.0.contains(image) != release_images.1.contains(image) {
            UPSTREAM
        } else if options_changed {
            OPTIONS
        } else {
            UPSTREAM
        }
    };

    // Overrides.
    if let (Some((_, old_plan)), Some((plan_stage, new_plan))) = (
        old.fact::<OverridesPlanned>(),
        new.fact::<OverridesPlanned>(),
    ) {
        let entry = |entry: &windlass_stages::events::PlannedEntry| {
            (
                format!("{} → {}", entry.name, entry.new_name),
                entry.image.clone(),
            )
        };
        let before: BTreeMap<String, String> = old_plan.plan.entries.iter().map(entry).collect();
        let after: BTreeMap<String, String> = new_plan.plan.entries.iter().map(entry).collect();
        for (subject, image) in &before {
            if !after.contains_key(subject) {
                changes.push(Change {
                    stage: plan_stage.clone(),
                    kind: "override_removed".into(),
                    subject: subject.clone(),
                    detail: format!("for {image}"),
                    unified_diff: None,
                    lines_added: 0,
                    lines_removed: 0,
                    attribution: attribute_image(image),
                });
            }
        }
        for (subject, image) in &after {
            if !before.contains_key(subject) {
                changes.push(Change {
                    stage: plan_stage.clone(),
                    kind: "override_added".into(),
                    subject: subject.clone(),
                    detail: format!("for {image}"),
                    unified_diff: None,
                    lines_added: 0,
                    lines_removed: 0,
                    attribution: attribute_image(image),
                });
            }
        }
    }

    // Pull secrets: names, namespaces, fingerprints.
    if let (Some((_, old_secrets)), Some((secret_stage, new_secrets))) = (
        old.fact::<SecretsProvisioned>(),
        new.fact::<SecretsProvisioned>(),
    ) {
        let attribution = if options_changed && !upstream_changed {
            OPTIONS
        } else if upstream_changed {
            UPSTREAM
        } else {
            OPTIONS
        };
        let key = |secret: &windlass_stages::events::SecretRecord| {
            format!("{}/{}", secret.namespace, secret.name)
        };
        let before: BTreeMap<String, _> = old_secrets
            .secrets
            .iter()
            .map(|secret| (key(secret), secret))
            .collect();
        let after: BTreeMap<String, _> = new_secrets
            .secrets
            .iter()
            .map(|secret| (key(secret), secret))
            .collect();
        for (subject, was) in &before {
            match after.get(subject) {
                None => changes.push(Change {
                    stage: secret_stage.clone(),
                    kind: "pull_secret_removed".into(),
                    subject: subject.clone(),
                    detail: format!("fingerprint {}", was.content_fingerprint),
                    unified_diff: None,
                    lines_added: 0,
                    lines_removed: 0,
                    attribution,
                }),
                Some(now) if now != was => changes.push(Change {
                    stage: secret_stage.clone(),
                    kind: "pull_secret_changed".into(),
                    subject: subject.clone(),
                    detail: format!(
                        "fingerprint {} → {}, hosts {} → {}",
                        was.content_fingerprint,
                        now.content_fingerprint,
                        was.hosts.join(","),
                        now.hosts.join(",")
                    ),
                    unified_diff: None,
                    lines_added: 0,
                    lines_removed: 0,
                    attribution,
                }),
                Some(_) => {}
            }
        }
        for (subject, now) in &after {
            if !before.contains_key(subject) {
                changes.push(Change {
                    stage: secret_stage.clone(),
                    kind: "pull_secret_added".into(),
                    subject: subject.clone(),
                    detail: format!("fingerprint {}", now.content_fingerprint),
                    unified_diff: None,
                    lines_added: 0,
                    lines_removed: 0,
                    attribution,
                });
            }
        }
    }

    // Files.
    let old_files = old.files();
    let new_files = new.files();
    let mut changed: Vec<(&(String, String), &OutputFile<'_>, &OutputFile<'_>)> = Vec::new();
    for (key, was) in &old_files {
        match new_files.get(key) {
            Some(now) if now.blob != was.blob || now.fingerprint != was.fingerprint => {
                changed.push((key, was, now));
            }
            Some(_) => {}
            None => {
                changes.push(file_change(
                    key,
                    "removed",
                    "only in the older install".into(),
                    None,
                    UPSTREAM,
                ));
            }
        }
    }
    for key in new_files.keys() {
        if !old_files.contains_key(key) {
            changes.push(file_change(
                key,
                "added",
                "only in the newer install".into(),
                None,
                UPSTREAM,
            ));
        }
    }
    let with_text: Vec<_> = changed
        .iter()
        .filter(|(_, was, now)| was.blob.is_some() && now.blob.is_some())
        .collect();
    let ids = with_text
        .iter()
        .flat_map(|(_, was, now)| [was.blob, now.blob])
        .map(|blob| {
            BlobId::parse(blob.unwrap_or_default())
                .map_err(|_| ReplayError::Recorded("a fact names an invalid blob id".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bodies = crate::scratch::read_blobs(blobs, &ids, "diff", |index| {
        with_text[index / 2].0.1.clone()
    })?;
    for ((key, _, _), pair) in with_text.iter().zip(bodies.chunks(2)) {
        let (before, after) = (
            String::from_utf8_lossy(&pair[0]),
            String::from_utf8_lossy(&pair[1]),
        );
        let text = unified_diff(
            &format!("{from}/{}", key.1),
            &format!("{to}/{}", key.1),
            &before,
            &after,
        );
        let attribution = if visibility_changed
            .iter()
            .any(|image| before.contains(image.as_str()) || after.contains(image.as_str()))
        {
            VISIBILITY
        } else if upstream_changed {
            UPSTREAM
        } else {
            OPTIONS
        };
        let mut change = file_change(
            key,
            "changed",
            format!("{} lines added, {} lines removed", text.added, text.removed),
            Some(text.unified),
            attribution,
        );
        change.lines_added = text.added;
        change.lines_removed = text.removed;
        changes.push(change);
    }
    for (key, _, _) in changed
        .iter()
        .filter(|(_, was, now)| was.blob.is_none() || now.blob.is_none())
    {
        changes.push(file_change(
            key,
            "changed",
            "holds secrets: its keyed fingerprint changed".into(),
            None,
            if upstream_changed { UPSTREAM } else { OPTIONS },
        ));
    }
    // Applied and pruned objects.
    let file_attribution: BTreeMap<String, &'static str> = changes
        .iter()
        .filter(|change| change.kind.starts_with("object_"))
        .map(|change| (change.subject.clone(), change.attribution))
        .collect();
    changes.extend(applied_changes(
        &old,
        &new,
        &file_attribution,
        if upstream_changed { UPSTREAM } else { OPTIONS },
    ));
    changes.extend(crate::helm_diff::helm_changes(
        old.facts(),
        &new.facts().collect::<Vec<_>>(),
        &file_attribution,
        if upstream_changed { UPSTREAM } else { OPTIONS },
    ));
    if let Some(stage) = stage {
        changes.retain(|change| change.stage == stage);
    }
    let mut summary = DiffSummary::default();
    for change in changes
        .iter()
        .filter(|change| change.kind.starts_with("file_") || change.kind.starts_with("object_"))
    {
        summary.files_changed += 1;
        summary.lines_added += change.lines_added;
        summary.lines_removed += change.lines_removed;
    }
    let order: BTreeMap<&str, usize> = new
        .state
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| (stage.name.as_str(), index))
        .collect();
    changes.sort_by_key(|change| {
        order
            .get(change.stage.as_str())
            .copied()
            .unwrap_or(usize::MAX)
    });
    Ok(InstallDiff {
        from: from.to_string(),
        to: to.to_string(),
        upstream_changed,
        options_changed,
        summary,
        changes,
    })
}

/// The objects the apply stage applied in either install, by object, and the objects `new`'s
/// apply pruned: `applied_object_added`, `applied_object_removed` (no longer applied and not
/// pruned either), `applied_object_changed` (the applied configuration's digest differs) and
/// `pruned_object` (what prune did with it). An object's change takes the attribution of the
/// change to the rendered file it came from, and `otherwise` when that file did not change (the
/// object changed without its file: the options did) or for pruned objects.
fn applied_changes(
    old: &Recorded,
    new: &Recorded,
    file_attribution: &BTreeMap<String, &'static str>,
    otherwise: &'static str,
) -> Vec<Change> {
    let before = old.applied();
    let after = new.applied();
    let pruned = new.pruned();
    let pruned_keys: BTreeSet<String> = pruned
        .iter()
        .map(|(_, pruned)| pruned.key.to_string())
        .collect();
    let attribution = |file: &str| file_attribution.get(file).copied().unwrap_or(otherwise);
    let change = Change::of;
    let mut changes = Vec::new();
    for (key, (stage, was)) in &before {
        match after.get(key) {
            Some((stage, now)) if now.digest != was.digest => changes.push(change(
                stage,
                "applied_object_changed",
                key,
                format!(
                    "from {}: applied configuration {} → {} ({})",
                    now.file,
                    was.digest,
                    now.digest,
                    outcome(now.outcome)
                ),
                attribution(&now.file),
            )),
            Some(_) => {}
            None if pruned_keys.contains(key) => {}
            None => changes.push(change(
                stage,
                "applied_object_removed",
                key,
                format!(
                    "was applied from {}; no longer applied, not pruned",
                    was.file
                ),
                attribution(&was.file),
            )),
        }
    }
    for (key, (stage, now)) in &after {
        if !before.contains_key(key) {
            changes.push(change(
                stage,
                "applied_object_added",
                key,
                format!("from {} ({})", now.file, outcome(now.outcome)),
                attribution(&now.file),
            ));
        }
    }
    for (stage, pruned) in &pruned {
        let mut detail = match pruned.outcome {
            PruneOutcome::Deleted => "deleted".into(),
            PruneOutcome::Kept => format!(
                "kept{}",
                match pruned.kept_because {
                    Some(KeepReason::KeepAnnotation) => " (annotated kots.io/keep)",
                    Some(KeepReason::AdditionalNamespace) => " (an additionalNamespaces namespace)",
                    Some(KeepReason::InUse) => " (objects this install applied depend on it)",
                    Some(KeepReason::OtherInstance) => {
                        " (another instance of the app, in another namespace, applies it)"
                    }
                    Some(KeepReason::HoldsOthers) =>
                        " (custom resources windlass did not apply are instances of it)",
                    Some(KeepReason::NamespaceOnUndeploy) => " (a namespace: undeploy leaves them)",
                    None => "",
                }
            ),
            PruneOutcome::Gone => "already gone".into(),
            PruneOutcome::NotOwned => "not deleted: no longer the object windlass applied".into(),
            PruneOutcome::Refused => "the server refused the delete".into(),
        } + &pruned
            .detail
            .as_deref()
            .map(|detail| format!(": {detail}"))
            .unwrap_or_default();
        if pruned.dry_run {
            detail.push_str(" (dry run)");
        }
        changes.push(change(
            stage,
            "pruned_object",
            &pruned.key.to_string(),
            detail,
            otherwise,
        ));
    }
    changes
}

fn outcome(outcome: ApplyOutcome) -> &'static str {
    match outcome {
        ApplyOutcome::Created => "created",
        ApplyOutcome::Configured => "configured",
        ApplyOutcome::Unchanged => "unchanged",
        ApplyOutcome::Failed => "failed",
        ApplyOutcome::Written => "written",
    }
}

fn file_change(
    (stage, path): &(String, String),
    what: &str,
    detail: String,
    unified: Option<String>,
    attribution: &'static str,
) -> Change {
    let noun = if path.starts_with("rendered/") {
        "object"
    } else {
        "file"
    };
    Change {
        stage: stage.clone(),
        kind: format!("{noun}_{what}"),
        subject: path.clone(),
        detail,
        unified_diff: unified,
        attribution,
        lines_added: 0,
        lines_removed: 0,
    }
}
