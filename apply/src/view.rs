//! What `windlass show` says about an apply: every object applied (outcome, uid, resourceVersion),
//! every object sent whose answer was never recorded, every object pruned or deleted to be created
//! again, the waits, the app state, and the charts handed to helm (installed,
//! uninstalled, or freed from a killed helm), folded from the apply stage's facts. Part of
//! `show --json` (a wire format: add fields only).

use serde::{Deserialize, Serialize};
use windlass_state::StoredEvent;

use crate::events::{
    APP_STATE_OBSERVED, APPLY_COMPLETED, AppState, AppStateObserved, AppliedObject, ApplyCompleted,
    HELM_RELEASE_FREED, HELM_RELEASE_INSTALLED, HELM_RELEASE_UNINSTALLED, HelmReleaseFreed,
    HelmReleaseInstalled, HelmReleaseUninstalled, OBJECT_DELETED_TO_RECREATE, OBJECT_PRUNED,
    OBJECTS_APPLIED, OBJECTS_SENDING, ObjectDeletedToRecreate, ObjectPruned, ObjectsApplied,
    ObjectsSending, SentObject, WAIT_FINISHED, WaitFinished,
};

/// The apply of one install, as `show` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyView {
    /// Every object, latest record per object, in the order first recorded.
    pub objects: Vec<AppliedObject>,
    /// Every object announced as being sent (`ObjectsSending`) with no answer recorded after it,
    /// in the order announced: it may have been sent, so the cluster may hold it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unanswered: Vec<SentObject>,
    /// Every prune decision.
    pub pruned: Vec<ObjectPruned>,
    /// Every wait.
    pub waits: Vec<WaitFinished>,
    /// Every object deleted to be created again (a field that cannot change did), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_to_recreate: Vec<ObjectDeletedToRecreate>,
    /// The latest app state observed.
    pub app_state: Option<AppStateObserved>,
    /// The completion record (absent while the apply has not completed).
    pub completed: Option<ApplyCompleted>,
    /// Every `helm uninstall` of a release the release dropped, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_uninstalled: Vec<HelmReleaseUninstalled>,
    /// Every release a killed helm that windlass started left pending, freed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_freed: Vec<HelmReleaseFreed>,
    /// Every chart handed to helm (`useHelmInstall: true`, `kots.io/v1beta2`; or written), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_releases: Vec<HelmReleaseInstalled>,
}

impl ApplyView {
    /// The app state, if known.
    pub fn state(&self) -> Option<AppState> {
        self.app_state.as_ref().map(|observed| observed.state)
    }
}

/// Folds the apply facts among `events`; `None` when there are none.
pub fn apply_view<'a>(events: impl IntoIterator<Item = &'a StoredEvent>) -> Option<ApplyView> {
    let mut view = ApplyView::default();
    let mut seen = false;
    let mut position: std::collections::HashMap<String, usize> = Default::default();
    // Sent and not answered since, by inventory id, with the order sent.
    let mut unanswered: std::collections::HashMap<String, (usize, SentObject)> = Default::default();
    let mut sent = 0usize;
    for event in events {
        // Decoded where it lies: an ObjectsApplied of a thousand objects is big.
        let payload = &event.payload;
        match event.event_type.as_str() {
            OBJECTS_APPLIED => {
                let Ok(batch) = ObjectsApplied::deserialize(payload) else {
                    continue;
                };
                for object in batch.objects {
                    let id = object.key.inventory_id();
                    unanswered.remove(&id);
                    match position.get(&id) {
                        Some(at) => view.objects[*at] = object,
                        None => {
                            position.insert(id, view.objects.len());
                            view.objects.push(object);
                        }
                    }
                }
            }
            OBJECTS_SENDING => {
                let Ok(sending) = ObjectsSending::deserialize(payload) else {
                    continue;
                };
                for object in sending.objects {
                    sent += 1;
                    unanswered.insert(object.key.inventory_id(), (sent, object));
                }
            }
            OBJECT_PRUNED => view.pruned.extend(Deserialize::deserialize(payload).ok()),
            WAIT_FINISHED => view.waits.extend(Deserialize::deserialize(payload).ok()),
            OBJECT_DELETED_TO_RECREATE => view
                .deleted_to_recreate
                .extend(Deserialize::deserialize(payload).ok()),
            APP_STATE_OBSERVED => view.app_state = Deserialize::deserialize(payload).ok(),
            APPLY_COMPLETED => view.completed = Deserialize::deserialize(payload).ok(),
            HELM_RELEASE_INSTALLED => view
                .helm_releases
                .extend(Deserialize::deserialize(payload).ok()),
            HELM_RELEASE_FREED => view
                .helm_freed
                .extend(Deserialize::deserialize(payload).ok()),
            HELM_RELEASE_UNINSTALLED => {
                view.helm_uninstalled
                    .extend(Deserialize::deserialize(payload).ok());
            }
            _ => continue,
        }
        seen = true;
    }
    let mut unanswered: Vec<(usize, SentObject)> = unanswered.into_values().collect();
    unanswered.sort_by_key(|(order, _)| *order);
    view.unanswered = unanswered.into_iter().map(|(_, object)| object).collect();
    seen.then_some(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ApplyOutcome, OBJECTS_APPLIED, OBJECTS_SENDING};
    use crate::order::{ObjectKey, Step};
    use serde_json::json;

    fn event(event_type: &str, payload: serde_json::Value) -> StoredEvent {
        StoredEvent {
            envelope_version: 1,
            global_seq: 1,
            install_id: "i".into(),
            install_seq: 1,
            recorded_at: "2026-11-28T00:00:00Z".into(),
            actor: "test".into(),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            prev_hash: String::new(),
        }
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("default".into()),
            name: name.into(),
        }
    }

    fn sending(names: &[&str]) -> StoredEvent {
        let objects: Vec<SentObject> = names
            .iter()
            .map(|name| SentObject {
                key: key(name),
                step: Step::Rest,
                digest: format!("d-{name}"),
                deletion_phase: 0,
            })
            .collect();
        event(
            OBJECTS_SENDING,
            serde_json::to_value(ObjectsSending { objects }).unwrap(),
        )
    }

    fn answered(names: &[&str]) -> StoredEvent {
        let objects: Vec<serde_json::Value> = names
            .iter()
            .map(|name| {
                json!({"key": key(name), "file": format!("{name}.yaml"), "step": "rest",
                       "outcome": "created", "digest": format!("d-{name}"), "uid": format!("u-{name}")})
            })
            .collect();
        event(OBJECTS_APPLIED, json!({ "objects": objects }))
    }

    fn unanswered(events: &[StoredEvent]) -> Vec<String> {
        apply_view(events)
            .unwrap()
            .unanswered
            .into_iter()
            .map(|object| object.key.name)
            .collect()
    }

    #[test]
    fn an_object_is_unanswered_from_its_announcement_until_an_answer_is_recorded() {
        // The first run announced a, b, c and recorded the answers of a and c before it stopped.
        let first = [sending(&["a", "b", "c"]), answered(&["a", "c"])];
        assert_eq!(unanswered(&first), ["b"]);
        // The resumed run announced b and c again (c changed since) and was answered for b only.
        let resumed: Vec<StoredEvent> = first
            .into_iter()
            .chain([sending(&["b", "c"]), answered(&["b"])])
            .collect();
        assert_eq!(unanswered(&resumed), ["c"]);
        let view = apply_view(&resumed).unwrap();
        assert_eq!(view.objects.len(), 3);
        assert!(
            view.objects
                .iter()
                .all(|object| object.outcome == ApplyOutcome::Created)
        );
    }
}
