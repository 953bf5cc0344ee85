//! Objects as kustomize identifies, scopes and orders them: a [`ResId`] (group, version, kind, name,
//! namespace) with kustomize's "effective namespace", the table of cluster-scoped types kustomize
//! takes from its embedded Kubernetes 1.21 OpenAPI data, the `namespace:` transformer, and the
//! legacy output order `kubectl kustomize` applies at the end of a build.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use windlass_manifest::parallel::parallel_map;

/// One object of a build, with the identities it had before a `namespace:` moved it (kustomize's
/// `PrevIds`, which patches in outer overlays may still name).
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub value: Value,
    pub previous: Vec<ResId>,
    /// "file (document N)", for messages.
    pub origin: String,
}

impl Resource {
    pub fn id(&self) -> ResId {
        ResId::of(&self.value)
    }

    /// `self.id().key()`, taking the identity's strings instead of copying them (ten thousand
    /// objects are keyed several times in a build).
    pub fn key(&self) -> IdKey {
        self.id().into_key()
    }
}

/// kustomize's `resid.ResId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResId {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// What kustomize uses as the namespace of cluster-scoped objects when comparing identities.
const CLUSTER: &str = "_non_namespaceable_";

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl ResId {
    pub fn of(value: &Value) -> ResId {
        let (group, version) = split_api_version(text(value, &["apiVersion"]));
        ResId {
            group: group.to_string(),
            version: version.to_string(),
            kind: text(value, &["kind"]).to_string(),
            name: text(value, &["metadata", "name"]).to_string(),
            namespace: text(value, &["metadata", "namespace"]).to_string(),
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped(&self.group, &self.version, &self.kind)
    }

    /// kustomize's `EffectiveNamespace`: cluster-scoped objects share one marker, an empty
    /// namespace is `default`.
    pub fn effective_namespace(&self) -> &str {
        if self.is_cluster_scoped() {
            CLUSTER
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// The key under which kustomize's `ResId.Equals` considers two identities the same.
    pub fn key(&self) -> IdKey {
        IdKey {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: self.effective_namespace().to_string(),
        }
    }

    /// [`ResId::key`], taking the identity's strings.
    pub fn into_key(self) -> IdKey {
        let namespace = self.effective_namespace().to_string();
        IdKey {
            group: self.group,
            version: self.version,
            kind: self.kind,
            name: self.name,
            namespace,
        }
    }
}

impl std::fmt::Display for ResId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} {} `{}`",
            self.api_version(),
            self.kind,
            self.name
        )?;
        if !self.namespace.is_empty() {
            write!(formatter, " in namespace `{}`", self.namespace)?;
        }
        Ok(())
    }
}

/// An identity with its namespace made effective, for hashing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct IdKey {
    group: String,
    version: String,
    kind: String,
    name: String,
    namespace: String,
}

/// kustomize's `ParseGroupVersion` (the old `builtin` apiVersion is not a version).
fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None if api_version == "builtin" => (api_version, ""),
        None => ("", api_version),
    }
}

/// Types kustomize v5.6 knows to be cluster-scoped: those its embedded OpenAPI data (Kubernetes
/// 1.21) marks so, by group, version and kind. Everything else (custom resources, alpha versions)
/// counts as namespaced, even when called `ClusterRole`. Verified against `kubectl kustomize` v5.6.
fn is_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    let v1_v1beta1 = matches!(version, "v1" | "v1beta1");
    match group {
        "" => {
            version == "v1"
                && matches!(
                    kind,
                    "Namespace" | "Node" | "PersistentVolume" | "ComponentStatus"
                )
        }
        "admissionregistration.k8s.io" => {
            v1_v1beta1
                && matches!(
                    kind,
                    "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration"
                )
        }
        "apiextensions.k8s.io" => v1_v1beta1 && kind == "CustomResourceDefinition",
        "apiregistration.k8s.io" => v1_v1beta1 && kind == "APIService",
        "certificates.k8s.io" => v1_v1beta1 && kind == "CertificateSigningRequest",
        "flowcontrol.apiserver.k8s.io" => {
            version == "v1beta1" && matches!(kind, "FlowSchema" | "PriorityLevelConfiguration")
        }
        "networking.k8s.io" => v1_v1beta1 && kind == "IngressClass",
        "node.k8s.io" => v1_v1beta1 && kind == "RuntimeClass",
        "policy" => version == "v1beta1" && kind == "PodSecurityPolicy",
        "rbac.authorization.k8s.io" => {
            v1_v1beta1 && matches!(kind, "ClusterRole" | "ClusterRoleBinding")
        }
        "scheduling.k8s.io" => v1_v1beta1 && kind == "PriorityClass",
        "storage.k8s.io" => {
            v1_v1beta1
                && matches!(
                    kind,
                    "CSIDriver" | "CSINode" | "StorageClass" | "VolumeAttachment"
                )
        }
        _ => false,
    }
}

/// Applies a kustomization's `namespace:` the way kustomize's `NamespaceTransformer` with its
/// default field specs does (`api/filters/namespace`, `builtinpluginconsts/namespace.go`):
/// `metadata.namespace` of every namespaced object (replacing any other), the name of a `v1`
/// `Namespace`, `subjects[].namespace` of (Cluster)RoleBindings for subjects named `default`,
/// `spec.service.namespace` of an `APIService`, and an existing
/// `spec.conversion.webhook.clientConfig.service.namespace` of a CustomResourceDefinition.
pub(crate) fn set_namespace(resource: &mut Resource, namespace: &str) {
    let id = resource.id();
    resource.previous.push(id.clone());
    let Some(object) = resource.value.as_object_mut() else {
        return;
    };
    let set = |map: &mut Map<String, Value>, key: &str| {
        map.insert(key.to_string(), Value::String(namespace.to_string()));
    };
    if !id.is_cluster_scoped() {
        set(child_map(object, "metadata"), "namespace");
    }
    if id.kind == "Namespace" && id.group.is_empty() && id.version == "v1" {
        set(child_map(object, "metadata"), "name");
    }
    if matches!(id.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
        && let Some(Value::Array(subjects)) = object.get_mut("subjects")
    {
        for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
            if subject.get("name").and_then(Value::as_str) == Some("default") {
                set(subject, "namespace");
            }
        }
    }
    if id.kind == "APIService" && id.group == "apiregistration.k8s.io" {
        let spec = child_map(object, "spec");
        set(child_map(spec, "service"), "namespace");
    }
    if id.kind == "CustomResourceDefinition" && id.group == "apiextensions.k8s.io" {
        let service = ["spec", "conversion", "webhook", "clientConfig", "service"]
            .iter()
            .try_fold(&mut *object, |map, key| {
                map.get_mut(*key).and_then(Value::as_object_mut)
            });
        if let Some(service) = service
            && service.contains_key("namespace")
        {
            set(service, "namespace");
        }
    }
}

/// The map under `key`, created (replacing a non-map) when missing.
fn child_map<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = object
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made a map")
}

/// kustomize's default legacy order (`SortOrderTransformer`: `defaultOrderFirst`,
/// `defaultOrderLast`), which `kubectl kustomize` applies when a kustomization sets no
/// `sortOptions`.
const ORDER_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn type_order(kind: &str) -> i64 {
    if let Some(index) = ORDER_FIRST.iter().position(|first| *first == kind) {
        index as i64 - ORDER_FIRST.len() as i64
    } else if let Some(index) = ORDER_LAST.iter().position(|last| *last == kind) {
        1 + index as i64
    } else {
        0
    }
}

fn or_marker<'a>(value: &'a str, marker: &'a str) -> &'a str {
    if value.is_empty() { marker } else { value }
}

/// `legacyGVKSortString`: `group_version_kind` with `~G`, `~V`, `~K` for empty parts.
fn gvk_sort_string(id: &ResId) -> String {
    format!(
        "{}_{}_{}",
        or_marker(&id.group, "~G"),
        or_marker(&id.version, "~V"),
        or_marker(&id.kind, "~K")
    )
}

/// `legacyResIDSortString`: kyaml's `Gvk.String()` (`kind.version.group`), the namespace as
/// written (`~X` when empty) and the name (`~N`), joined by `|`.
fn id_sort_string(id: &ResId) -> String {
    format!(
        "{}.{}.{}|{}|{}",
        or_marker(&id.kind, "[noKind]"),
        or_marker(&id.version, "[noVer]"),
        or_marker(&id.group, "[noGrp]"),
        or_marker(&id.namespace, "~X"),
        or_marker(&id.name, "~N")
    )
}

/// Sorts objects into kustomize's legacy order (`legacyIDSorter.Less`).
pub(crate) fn sort_legacy(resources: &mut Vec<Resource>) {
    // The sort keys of ten thousand objects are worth building on every core.
    let keys = parallel_map(resources, crate::OBJECTS_PER_THREAD, |resource| {
        let id = resource.id();
        (
            type_order(&id.kind),
            gvk_sort_string(&id),
            id_sort_string(&id),
        )
    });
    let mut keyed: Vec<(i64, String, String, Resource)> = keys
        .into_iter()
        .zip(resources.drain(..))
        .map(|((order, gvk, id), resource)| (order, gvk, id, resource))
        .collect();
    keyed.sort_by(|left, right| {
        // Objects of one type compare by identity; of different types by rank, then type.
        if left.1 == right.1 {
            left.2.cmp(&right.2)
        } else {
            match left.0.cmp(&right.0) {
                Ordering::Equal => left.1.cmp(&right.1),
                other => other,
            }
        }
    });
    resources.extend(keyed.into_iter().map(|(_, _, _, resource)| resource));
}
