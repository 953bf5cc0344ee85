//! The unchanged apply: `windlass apply` of the rendering that the previous apply of the app to
//! the same cluster applied. Every rendered file has been read and checked against its recorded
//! blob hash or secret fingerprint (as always), so each holds exactly the objects that apply
//! recorded, with the digests it recorded ([`BODY_VERSION`] the same, the same app and
//! namespace). Instead of parsing the files and building every body again, the live objects are
//! read (a LIST per collection) and compared with those digests as [`KubeApply::run`] compares
//! them. Only when every object is as that apply left it (its digest annotation, windlass the
//! only manager of its main resource, the fields windlass's entry owns those the record of that
//! apply names by digest) is the result `unchanged` for all, with no write; at the
//! first object that differs, is missing, or anything this path does not cover (waits, additional
//! namespaces, a resumed run, a dry run, a resource discovery no longer matches, a record of a
//! windlass that did not record the owned fields' digest), it answers
//! `None` and the stage does the full apply, which finds and re-applies what drifted.

use std::collections::HashSet;
use std::ops::ControlFlow;

use super::*;
use crate::events::ApplyCompleted;
use crate::source::ApplySource;

/// Objects recorded per `ObjectsApplied` batch at most by the unchanged apply.
const UNCHANGED_BATCH: usize = 5000;

impl KubeApply<'_> {
    /// The objects of the rendering `source` applies (its files not read yet: that can go on
    /// meanwhile) when the previous apply (`installer`, which completed with `previous`) applied
    /// the same rendering and the cluster still holds every object as it left it; `None` when
    /// the full apply must run. Reads only: [`KubeApply::record_unchanged`] records the result
    /// once the files are read and checked.
    pub async fn find_unchanged(
        &self,
        source: &ApplySource,
        installer: &str,
        previous: &ApplyCompleted,
    ) -> Result<Option<Unchanged>, StageError> {
        if self.dry_run
            || previous.dry_run
            || previous.undeployed
            || previous.body_version != Some(BODY_VERSION)
            || previous.rendered_by != source.rendered_by
            || !self.additional_namespaces.is_empty()
            || self.every_namespace
            || !self.context.recorded_facts().await.is_empty()
        {
            return Ok(None);
        }
        let expected =
            previous.counts.created + previous.counts.configured + previous.counts.unchanged;
        let Some(records) = recorded_objects(self.context, installer, expected)? else {
            return Ok(None);
        };
        tracing::debug!(
            records = records.len(),
            "apply: the previous apply's records read"
        );
        let files: HashSet<&str> = source.file_paths.iter().map(String::as_str).collect();
        // (The app namespace, when the previous apply created it, is in no file.)
        let covered: HashSet<&str> = records
            .iter()
            .map(|record| record.file.as_str())
            .filter(|file| *file != APP_NAMESPACE_FILE)
            .collect();
        if files != covered || records.iter().any(|record| record.waits) {
            return Ok(None);
        }
        let inventory: HashMap<String, &InventoryEntry> = previous
            .inventory
            .iter()
            .map(|entry| (entry.key.inventory_id(), entry))
            .collect();
        let mut infos = Vec::with_capacity(records.len());
        for record in &records {
            let key = &record.key;
            let info = self
                .cluster
                .resource(key)
                .await
                .map_err(|failure| transient(&failure, &format!("discovery for {key}")))?;
            let Some(info) = info else {
                return Ok(None);
            };
            if info.namespaced != key.namespace.is_some()
                || !inventory.contains_key(&key.inventory_id())
            {
                return Ok(None);
            }
            infos.push(info);
        }
        let targets: Vec<(&ObjectKey, &ResourceInfo)> = records
            .iter()
            .map(|record| &record.key)
            .zip(&infos)
            .collect();
        tracing::debug!("apply: resources found");
        // The metadata alone: whether each object is as the previous apply left it is read from
        // its digest annotation and its managers (with the field set of windlass's entry).
        let live = self.read_live(&targets, true).await?;
        drop(targets);
        tracing::debug!(found = live.len(), "apply: live objects read");
        let mut applied: BTreeMap<String, (AppliedObject, InventoryEntry)> = BTreeMap::new();
        let mut found = Vec::with_capacity(records.len());
        for record in records {
            let id = record.key.inventory_id();
            let Some(object) = live.get(&id) else {
                return Ok(None);
            };
            let secret_key =
                crate::source::holds_secret(&record.key, &record.file, &self.secret_files)
                    .then_some(&*self.context.fingerprint_key);
            let as_applied = AsApplied::of(&record.digest, Some(&record), secret_key);
            if !as_applied.is_some_and(|expected| object.unchanged(&expected)) {
                tracing::debug!(object = %record.key, "apply: changed in the cluster since the previous apply: applying everything");
                return Ok(None);
            }
            let entry = inventory[&id];
            let (uid, resource_version) = match &object.seen {
                Some(seen) => (
                    seen.metadata.uid.clone(),
                    seen.metadata.resource_version.clone(),
                ),
                None => {
                    let value = object.value().map_err(|failure| {
                        transient(&failure, &format!("reading {}", record.key))
                    })?;
                    (meta(&value, "uid"), meta(&value, "resourceVersion"))
                }
            };
            let now = AppliedObject {
                outcome: ApplyOutcome::Unchanged,
                uid,
                resource_version,
                conflicts: Vec::new(),
                taken_over: false,
                recreated: false,
                written_to: None,
                error: None,
                dry_run: false,
                waits: false,
                ..record
            };
            let inventory_entry = InventoryEntry {
                key: now.key.clone(),
                uid: now.uid.clone().unwrap_or_default(),
                deletion_phase: entry.deletion_phase,
                keep: entry.keep,
                additional_namespace: entry.additional_namespace,
                sent_digests: Vec::new(),
                left_to_other_instance: false,
            };
            applied.insert(id, (now.clone(), inventory_entry));
            found.push(now);
        }
        tracing::debug!("apply: live objects compared");
        Ok(Some(Unchanged {
            installer: installer.to_string(),
            found,
            applied,
        }))
    }

    /// The records of the objects install `installer` applied (which completed with
    /// `previous`), by inventory id, for [`KubeApply::run`] to know what it left; empty when
    /// they are not all found (every object is then compared by a dry run).
    pub fn records_of(
        &self,
        installer: &str,
        previous: &ApplyCompleted,
    ) -> Result<HashMap<String, AppliedObject>, StageError> {
        let expected =
            previous.counts.created + previous.counts.configured + previous.counts.unchanged;
        let records = recorded_objects(self.context, installer, expected)?.unwrap_or_default();
        Ok(records
            .into_iter()
            .map(|record| (record.key.inventory_id(), record))
            .collect())
    }

    /// Records what [`KubeApply::find_unchanged`] found (the rendered files read and checked
    /// since), then the waits for CRDs and namespaces and the prune as [`KubeApply::run`] ends.
    pub async fn record_unchanged(&self, unchanged: Unchanged) -> Result<KubeApplied, StageError> {
        let Unchanged {
            installer,
            found,
            applied,
        } = unchanged;
        let total = found.len() as u64;
        // Nothing waits on a server here: recorded in as few durable commits as the size of an
        // event allows (an `ObjectsApplied` of 5,000 objects is about 2 MB).
        let mut found = found.into_iter().peekable();
        while found.peek().is_some() {
            let objects: Vec<AppliedObject> = found.by_ref().take(UNCHANGED_BATCH).collect();
            self.context
                .record_fact(Fact::of(&ObjectsApplied { objects })?)
                .await?;
        }
        tracing::debug!("apply: recorded");
        self.context
            .progress
            .stage_advanced(&self.context.stage_name, total, total);
        self.wait_for_foundations(&applied).await?;
        let counts = ApplyCounts {
            unchanged: total,
            ..ApplyCounts::default()
        };
        let mut result = self
            .finish(applied, counts, &EarlierPrunes::default())
            .await?;
        result.unchanged_since = Some(installer);
        Ok(result)
    }
}

/// What [`KubeApply::find_unchanged`] found: every object as the previous apply left it.
pub struct Unchanged {
    /// The previous apply.
    installer: String,
    /// Each object's record, in the order that apply recorded them.
    found: Vec<AppliedObject>,
    /// The same with their inventory entries, by inventory id.
    applied: BTreeMap<String, (AppliedObject, InventoryEntry)>,
}

/// The objects install `installer` applied (`expected` of them, each its newest record that did
/// not fail), in the order it recorded them; `None` when they are not all found.
fn recorded_objects(
    context: &StageContext,
    installer: &str,
    expected: u64,
) -> Result<Option<Vec<AppliedObject>>, StageError> {
    let mut batches: Vec<ObjectsApplied> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut unreadable = false;
    if expected > 0 {
        context
            .history
            .visit_recent_facts(
                OBJECTS_APPLIED,
                time::OffsetDateTime::UNIX_EPOCH,
                &context.install_id,
                &mut |event| {
                    if event.event.install_id != installer {
                        return ControlFlow::Continue(());
                    }
                    let Ok(batch) = event.decode::<ObjectsApplied>() else {
                        unreadable = true;
                        return ControlFlow::Break(());
                    };
                    for object in &batch.objects {
                        if object.outcome != ApplyOutcome::Failed && !object.dry_run {
                            seen.insert(object.key.inventory_id());
                        }
                    }
                    batches.push(batch);
                    if seen.len() as u64 >= expected {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .map_err(StageError::permanent)?;
    }
    if unreadable || seen.len() as u64 != expected {
        return Ok(None);
    }
    // Oldest batch first; a later record of the same object replaces an earlier one.
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut records: Vec<Option<AppliedObject>> = Vec::new();
    for batch in batches.into_iter().rev() {
        for object in batch.objects {
            if object.outcome == ApplyOutcome::Failed || object.dry_run {
                continue;
            }
            let id = object.key.inventory_id();
            if let Some(earlier) = position.insert(id, records.len()) {
                records[earlier] = None;
            }
            records.push(Some(object));
        }
    }
    Ok(Some(records.into_iter().flatten().collect()))
}
