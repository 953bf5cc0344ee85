//! The order objects are applied in and pruned in, as pure functions over the rendered objects and
//! the previous inventory (no I/O, so every rule is unit-tested here). Applying goes in
//! [`Step`]s — pull secrets; then CRDs, Namespaces and ClusterRoles (after which the caller waits
//! for CRDs to be Established and Namespaces to be Active); then `*Class` kinds; then the rest —
//! and inside a step by `kots.io/creation-phase` ascending, then KOTS's kind order, with kinds KOTS
//! does not list last, sorted by kind and group (KOTS leaves those in Go map order), and manifest
//! order last. Pruning ([`plan_prune`]) deletes what the previous inventory holds and the new set
//! does not, by `kots.io/deletion-phase` ascending, then KOTS's deletion kind order (kinds it does
//! not list first), keeping `kots.io/keep: "true"` objects and namespaces listed in
//! `additionalNamespaces`. The inventory is keyed by group, kind, namespace and name — with the
//! group, unlike KOTS, so that a CRD moving API version is not "removed".

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `kots.io/creation-phase`.
pub const CREATION_PHASE: &str = "kots.io/creation-phase";
/// `kots.io/deletion-phase`.
pub const DELETION_PHASE: &str = "kots.io/deletion-phase";
/// `kots.io/keep`.
pub const KEEP: &str = "kots.io/keep";

/// KOTS's (Helm 3.15's) kind creation order.
pub const KIND_CREATION_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// The stages of an apply, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The pull secrets (and the `additionalNamespaces` they go to).
    PullSecrets,
    /// CustomResourceDefinitions, Namespaces and ClusterRoles; waited for before the next step.
    Foundations,
    /// `*Class` kinds (StorageClass, IngressClass, PriorityClass, ...).
    Classes,
    /// Everything else.
    Rest,
}

/// Which object: its API group and version, kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects (and, before discovery, for objects that name
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of Namespace `name`.
    pub fn namespace(name: &str) -> ObjectKey {
        ObjectKey {
            group: String::new(),
            version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: name.to_string(),
        }
    }

    /// The key of a rendered object, or what is missing.
    pub fn of(object: &Value) -> Result<ObjectKey, String> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or("no apiVersion")?;
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("no kind")?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or("no metadata.name")?;
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        Ok(ObjectKey {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: name.to_string(),
        })
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The inventory identity: group, kind, namespace and name (not the version: the same object
    /// read through another version is the same object).
    pub fn inventory_id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.group,
            self.kind,
            self.namespace.as_deref().unwrap_or(""),
            self.name
        )
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {}/{}", self.kind, namespace, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A phase annotation's value: an int64, `0` when absent or unparsable (as KOTS does).
pub fn phase(object: &Value, annotation: &str) -> i64 {
    annotation_of(object, annotation)
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// An annotation of `object`.
pub fn annotation_of<'a>(object: &'a Value, annotation: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(annotation))
        .and_then(Value::as_str)
}

/// Whether `object` is annotated `kots.io/keep: "true"`.
pub fn is_kept(object: &Value) -> bool {
    annotation_of(object, KEEP) == Some("true")
}

/// The step an object is applied in.
pub fn step_of(key: &ObjectKey, pull_secret: bool) -> Step {
    if pull_secret {
        return Step::PullSecrets;
    }
    match (key.group.as_str(), key.kind.as_str()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition")
        | ("", "Namespace")
        | ("rbac.authorization.k8s.io", "ClusterRole") => Step::Foundations,
        (_, kind) if kind.ends_with("Class") => Step::Classes,
        _ => Step::Rest,
    }
}

fn creation_rank(kind: &str) -> usize {
    KIND_CREATION_ORDER
        .iter()
        .position(|known| *known == kind)
        .unwrap_or(KIND_CREATION_ORDER.len())
}

/// KOTS's deletion rank: kinds it does not list first (0), then its creation order reversed with
/// Service moved up to right after Ingress and IngressClass (before the workloads).
pub fn deletion_rank(kind: &str) -> usize {
    if !KIND_CREATION_ORDER.contains(&kind) {
        return 0;
    }
    let mut order: Vec<&str> = KIND_CREATION_ORDER
        .iter()
        .rev()
        .copied()
        .filter(|known| *known != "Service")
        .collect();
    let after_ingress = order
        .iter()
        .position(|known| *known == "IngressClass")
        .map_or(0, |at| at + 1);
    order.insert(after_ingress, "Service");
    1 + order
        .iter()
        .position(|known| *known == kind)
        .expect("every listed kind is in the deletion order")
}

/// One object to apply, with where it sorts.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedObject {
    /// The rendered file it came from, relative to the output directory.
    pub file: String,
    /// The object.
    pub object: Value,
    /// Its key.
    pub key: ObjectKey,
    /// Its step.
    pub step: Step,
    /// `kots.io/creation-phase`.
    pub creation_phase: i64,
    /// Position among the rendered objects.
    pub index: usize,
}

/// Orders `objects` (file, object) for applying. `is_pull_secret` says which are the pull secrets.
pub fn plan_apply(
    objects: Vec<(String, Value)>,
    is_pull_secret: impl Fn(&ObjectKey) -> bool,
) -> Result<Vec<PlannedObject>, String> {
    let mut planned = Vec::with_capacity(objects.len());
    for (index, (file, object)) in objects.into_iter().enumerate() {
        let key = ObjectKey::of(&object).map_err(|problem| format!("{file}: {problem}"))?;
        let step = step_of(&key, key.kind == "Secret" && is_pull_secret(&key));
        planned.push(PlannedObject {
            creation_phase: phase(&object, CREATION_PHASE),
            file,
            object,
            key,
            step,
            index,
        });
    }
    planned.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(planned)
}

type SortKey<'a> = (Step, i64, usize, &'a str, &'a str, usize);

fn sort_key(object: &PlannedObject) -> SortKey<'_> {
    let rank = creation_rank(&object.key.kind);
    let unknown = rank == KIND_CREATION_ORDER.len();
    (
        object.step,
        object.creation_phase,
        rank,
        if unknown { &object.key.kind } else { "" },
        if unknown { &object.key.group } else { "" },
        object.index,
    )
}

/// One object an install applied (wire format: part of `ApplyCompleted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEntry {
    /// Which object.
    pub key: ObjectKey,
    /// The server's uid when it was applied; empty for an object known only from sends whose
    /// answer was never heard (`sent_digests`).
    pub uid: String,
    /// The digests applies that never heard the answer sent it with, after its last recorded
    /// answer (the server may have made or remade it): the prune deletes it while it carries
    /// one of them in `windlass.io/applied-digest`, whatever its uid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_digests: Vec<String>,
    /// An object this install dropped and left to another instance of the app that still
    /// applied it (`kept`, `other_instance`): listed so that the next install looks at it
    /// again, and not counted as applied by this instance when another one asks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left_to_other_instance: bool,
    /// `kots.io/deletion-phase` as applied.
    #[serde(default)]
    pub deletion_phase: i64,
    /// Annotated `kots.io/keep: "true"` as applied.
    #[serde(default)]
    pub keep: bool,
    /// A namespace windlass created because the release listed it in `additionalNamespaces`:
    /// never pruned, even by a later release that no longer lists it (KOTS never deletes them;
    /// deleting one would delete everything in it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub additional_namespace: bool,
}

/// Why an object of the previous inventory is not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// Annotated `kots.io/keep: "true"`.
    KeepAnnotation,
    /// A namespace listed in `additionalNamespaces`.
    AdditionalNamespace,
    /// Objects this install applied depend on it: a Namespace they live in, a CRD whose kind
    /// they are; or, for a Namespace, objects of the previous apply in it that the prune did
    /// not delete. Deleting it would delete them.
    InUse,
    /// A CRD that custom resources the prune does not delete are instances of (another app's,
    /// made by hand, or this app's that it kept or could not delete): deleting it would delete
    /// them, in every namespace.
    HoldsOthers,
    /// An object that another instance of the app (in another app namespace of the same
    /// cluster) applies as well, by its newest completed apply or an apply there that never
    /// completed, or may apply (a record of its applies cannot be read), or that is that
    /// instance's app namespace: left to that instance, and marked
    /// so in this one's inventory (`left_to_other_instance`). (A variant added later: records
    /// before it never hold it.)
    OtherInstance,
    /// A Namespace, on `windlass undeploy`: deleting it would delete everything in it, what
    /// windlass did not apply as well, so an undeploy leaves namespaces (as KOTS's does). (A
    /// variant added later: records before it never hold it.)
    NamespaceOnUndeploy,
}

/// What to do with one object no longer in the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneAction {
    /// Delete it (after re-reading it: same uid, still carrying the ownership annotation).
    Delete(InventoryEntry),
    /// Leave it.
    Keep(InventoryEntry, KeepReason),
}

/// Pruning was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneRefusal {
    /// The new set is empty and the previous one is not.
    #[error(
        "refusing to prune all {0} objects of the previous install not annotated kots.io/keep: the new release has no object windlass applies itself (the pull secrets and namespaces windlass provides, and charts helm installs, do not count); pass --allow-empty-prune to delete them"
    )]
    EmptySet(usize),
}

/// Plans the prune: every object of `previous` whose inventory id is not in `current`, in
/// deletion order, kept when annotated `kots.io/keep`, or a namespace in `additional_namespaces`
/// or created for an earlier release's.
/// `release_objects` counts the objects of `current` the release itself rendered (not the pull
/// secrets and namespaces windlass provides on its own, which every install applies): when it is
/// 0 and something not annotated `kots.io/keep` would be deleted, pruning is refused unless
/// `allow_empty`. A Namespace that an object of `current` lives in
/// (`current_namespaces`) is kept, whatever the release says about the Namespace itself.
pub fn plan_prune(
    previous: &[InventoryEntry],
    current: &BTreeSet<String>,
    current_namespaces: &BTreeSet<String>,
    release_objects: usize,
    additional_namespaces: &[String],
    allow_empty: bool,
) -> Result<Vec<PruneAction>, PruneRefusal> {
    let mut gone: Vec<&InventoryEntry> = previous
        .iter()
        .filter(|entry| !current.contains(&entry.key.inventory_id()))
        .collect();
    // Objects annotated `kots.io/keep` are not deleted, so they alone are no reason to refuse:
    // KOTS's migration of every manifest into a `kots.io/v1beta2` chart keeps them so.
    let deleted = gone.iter().filter(|entry| !entry.keep).count();
    if release_objects == 0 && deleted > 0 && !allow_empty {
        return Err(PruneRefusal::EmptySet(deleted));
    }
    gone.sort_by(|a, b| {
        (a.deletion_phase, deletion_rank(&a.key.kind), &a.key).cmp(&(
            b.deletion_phase,
            deletion_rank(&b.key.kind),
            &b.key,
        ))
    });
    Ok(gone
        .into_iter()
        .map(|entry| {
            if entry.keep {
                PruneAction::Keep(entry.clone(), KeepReason::KeepAnnotation)
            } else if entry.key.group.is_empty()
                && entry.key.kind == "Namespace"
                && (entry.additional_namespace || additional_namespaces.contains(&entry.key.name))
            {
                PruneAction::Keep(entry.clone(), KeepReason::AdditionalNamespace)
            } else if entry.key.group.is_empty()
                && entry.key.kind == "Namespace"
                && current_namespaces.contains(&entry.key.name)
            {
                PruneAction::Keep(entry.clone(), KeepReason::InUse)
            } else {
                PruneAction::Delete(entry.clone())
            }
        })
        .collect())
}

/// `actions` as `windlass undeploy` takes them: every Namespace it would delete is left instead
/// ([`KeepReason::NamespaceOnUndeploy`]); what is in it and windlass applied is still deleted.
pub fn leave_namespaces(actions: Vec<PruneAction>) -> Vec<PruneAction> {
    actions
        .into_iter()
        .map(|action| match action {
            PruneAction::Delete(entry)
                if entry.key.group.is_empty() && entry.key.kind == "Namespace" =>
            {
                PruneAction::Keep(entry, KeepReason::NamespaceOnUndeploy)
            }
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(api_version: &str, kind: &str, name: &str, phase: Option<&str>) -> (String, Value) {
        let mut value =
            json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        if let Some(phase) = phase {
            value["metadata"]["annotations"] = json!({ CREATION_PHASE: phase });
        }
        (format!("{name}-{}.yaml", kind.to_lowercase()), value)
    }

    fn names(planned: &[PlannedObject]) -> Vec<String> {
        planned
            .iter()
            .map(|object| format!("{}/{}", object.key.kind, object.key.name))
            .collect()
    }

    #[test]
    fn steps_come_first_then_phases_then_kind_order() {
        let planned = plan_apply(
            vec![
                object("apps/v1", "Deployment", "web", None),
                object("example.com/v1", "Widget", "w", None),
                object("v1", "Service", "web", None),
                object("networking.k8s.io/v1", "IngressClass", "nginx", None),
                object("v1", "ConfigMap", "late", Some("10")),
                object("v1", "ConfigMap", "early", Some("-5")),
                object(
                    "rbac.authorization.k8s.io/v1",
                    "ClusterRole",
                    "reader",
                    None,
                ),
                object(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    "widgets.example.com",
                    None,
                ),
                object("v1", "Namespace", "tools", None),
                object("v1", "Secret", "my-app-registry", None),
                object("v1", "Secret", "other", None),
            ],
            |key| key.name == "my-app-registry",
        )
        .unwrap();
        assert_eq!(
            names(&planned),
            [
                "Secret/my-app-registry",
                "Namespace/tools",
                "CustomResourceDefinition/widgets.example.com",
                "ClusterRole/reader",
                "IngressClass/nginx",
                "ConfigMap/early",
                "Secret/other",
                "Service/web",
                "Deployment/web",
                "Widget/w",
                "ConfigMap/late",
            ]
        );
        assert_eq!(planned[0].step, Step::PullSecrets);
        assert_eq!(planned[4].step, Step::Classes);
    }

    #[test]
    fn unknown_kinds_go_last_by_kind_then_group_then_manifest_order() {
        let planned = plan_apply(
            vec![
                object("z.example.com/v1", "Widget", "b", None),
                object("a.example.com/v1", "Widget", "a", None),
                object("example.com/v1", "Gadget", "g", None),
                object("z.example.com/v1", "Widget", "c", None),
                object("v1", "ConfigMap", "config", None),
            ],
            |_| false,
        )
        .unwrap();
        assert_eq!(
            names(&planned),
            [
                "ConfigMap/config",
                "Gadget/g",
                "Widget/a",
                "Widget/b",
                "Widget/c"
            ]
        );
    }

    #[test]
    fn unparsable_phases_count_as_zero() {
        let planned = plan_apply(
            vec![
                object("v1", "ConfigMap", "b", Some("soon")),
                object("v1", "ConfigMap", "a", Some("-1")),
            ],
            |_| false,
        )
        .unwrap();
        assert_eq!(names(&planned), ["ConfigMap/a", "ConfigMap/b"]);
    }

    #[test]
    fn an_object_without_a_name_is_refused_naming_its_file() {
        let error = plan_apply(
            vec![(
                "x.yaml".into(),
                json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            )],
            |_| false,
        )
        .unwrap_err();
        assert_eq!(error, "x.yaml: no metadata.name");
    }

    fn entry(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> InventoryEntry {
        InventoryEntry {
            key: ObjectKey {
                group: group.into(),
                version: "v1".into(),
                kind: kind.into(),
                namespace: namespace.map(str::to_string),
                name: name.into(),
            },
            uid: format!("uid-{name}"),
            deletion_phase: 0,
            keep: false,
            additional_namespace: false,
            sent_digests: Vec::new(),
            left_to_other_instance: false,
        }
    }

    fn pruned(actions: &[PruneAction]) -> Vec<String> {
        actions
            .iter()
            .map(|action| match action {
                PruneAction::Delete(entry) => {
                    format!("delete {}/{}", entry.key.kind, entry.key.name)
                }
                PruneAction::Keep(entry, reason) => {
                    format!("keep {}/{} {reason:?}", entry.key.kind, entry.key.name)
                }
            })
            .collect()
    }

    #[test]
    fn prune_deletes_what_is_gone_in_deletion_order_and_keeps_what_it_must() {
        let mut kept = entry("", "ConfigMap", Some("default"), "kept");
        kept.keep = true;
        let mut first = entry("", "ConfigMap", Some("default"), "first");
        first.deletion_phase = -1;
        let previous = vec![
            entry("apps", "Deployment", Some("default"), "web"),
            entry("", "Service", Some("default"), "web"),
            entry("example.com", "Widget", Some("default"), "w"),
            entry("", "Namespace", None, "tools"),
            entry("", "Namespace", None, "scratch"),
            entry("", "ConfigMap", Some("default"), "stays"),
            kept,
            first,
        ];
        let current: BTreeSet<String> = [entry("", "ConfigMap", Some("default"), "stays")
            .key
            .inventory_id()]
        .into();
        let actions = plan_prune(
            &previous,
            &current,
            &BTreeSet::new(),
            current.len(),
            &["tools".into()],
            false,
        )
        .unwrap();
        assert_eq!(
            pruned(&actions),
            [
                "delete ConfigMap/first",
                "delete Widget/w",
                "delete Service/web",
                "delete Deployment/web",
                "keep ConfigMap/kept KeepAnnotation",
                "delete Namespace/scratch",
                "keep Namespace/tools AdditionalNamespace",
            ]
        );
    }

    #[test]
    fn the_group_is_part_of_the_inventory_key() {
        let previous = vec![entry("a.example.com", "Widget", None, "w")];
        let mut moved = entry("b.example.com", "Widget", None, "w");
        moved.key.version = "v2".into();
        let same_group_new_version = {
            let mut key = previous[0].key.clone();
            key.version = "v2".into();
            key.inventory_id()
        };
        let actions = plan_prune(
            &previous,
            &[same_group_new_version].into(),
            &BTreeSet::new(),
            1,
            &[],
            false,
        )
        .unwrap();
        assert!(actions.is_empty(), "a version bump is not a removal");
        let actions = plan_prune(
            &previous,
            &[moved.key.inventory_id()].into(),
            &BTreeSet::new(),
            1,
            &[],
            false,
        )
        .unwrap();
        assert_eq!(pruned(&actions), ["delete Widget/w"]);
    }

    #[test]
    fn pruning_everything_needs_allow_empty() {
        let previous = vec![entry("", "ConfigMap", Some("default"), "a")];
        assert_eq!(
            plan_prune(&previous, &BTreeSet::new(), &BTreeSet::new(), 0, &[], false).unwrap_err(),
            PruneRefusal::EmptySet(1)
        );
        assert_eq!(
            pruned(
                &plan_prune(&previous, &BTreeSet::new(), &BTreeSet::new(), 0, &[], true).unwrap()
            ),
            ["delete ConfigMap/a"]
        );
        assert!(
            plan_prune(&[], &BTreeSet::new(), &BTreeSet::new(), 0, &[], false)
                .unwrap()
                .is_empty()
        );
        // The pull secret every install applies is not the release applying something.
        let secret = entry("", "Secret", Some("default"), "app-registry");
        let previous = vec![secret.clone(), entry("", "ConfigMap", Some("default"), "a")];
        let only_the_secret: BTreeSet<String> = [secret.key.inventory_id()].into();
        assert_eq!(
            plan_prune(&previous, &only_the_secret, &BTreeSet::new(), 0, &[], false).unwrap_err(),
            PruneRefusal::EmptySet(1)
        );
        assert_eq!(
            pruned(
                &plan_prune(&previous, &only_the_secret, &BTreeSet::new(), 0, &[], true).unwrap()
            ),
            ["delete ConfigMap/a"]
        );
        // Objects annotated kots.io/keep are not deleted: no reason to refuse (KOTS's migration
        // of every manifest into a kots.io/v1beta2 chart); one that would be deleted still is.
        let mut kept = entry("", "ConfigMap", Some("default"), "kept");
        kept.keep = true;
        let only_kept = plan_prune(
            std::slice::from_ref(&kept),
            &BTreeSet::new(),
            &BTreeSet::new(),
            0,
            &[],
            false,
        )
        .unwrap();
        assert_eq!(pruned(&only_kept), ["keep ConfigMap/kept KeepAnnotation"]);
        let previous = vec![kept, entry("", "ConfigMap", Some("default"), "a")];
        assert_eq!(
            plan_prune(&previous, &BTreeSet::new(), &BTreeSet::new(), 0, &[], false).unwrap_err(),
            PruneRefusal::EmptySet(1)
        );
    }

    #[test]
    fn an_undeploy_leaves_namespaces_and_deletes_what_is_in_them() {
        let previous = vec![
            entry("", "Namespace", None, "tools"),
            entry("", "ConfigMap", Some("tools"), "c"),
            entry("example.com", "Namespace", None, "not-core"),
        ];
        let actions =
            plan_prune(&previous, &BTreeSet::new(), &BTreeSet::new(), 0, &[], true).unwrap();
        assert_eq!(
            pruned(&leave_namespaces(actions)),
            [
                "delete ConfigMap/c",
                "keep Namespace/tools NamespaceOnUndeploy",
                "delete Namespace/not-core"
            ]
        );
    }
}
