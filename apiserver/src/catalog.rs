//! The resource types the server serves: the built-in ones the tests need, and one per served
//! version of every Established CustomResourceDefinition. Each type knows its group, version,
//! kind, plural, scope, short names, whether it has a `/status` subresource, whether its
//! `metadata.generation` is tracked, and its merge schema.

use std::sync::Arc;

use serde_json::Value;

use crate::builtin_schemas;
use crate::schema::{self, Schema};

/// One served resource type.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group (`""` for the core group).
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Plural resource name (`deployments`).
    pub plural: String,
    /// Singular resource name (`deployment`).
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource (status is then reset on main-resource writes).
    pub status_subresource: bool,
    /// Whether `metadata.generation` is set and bumped on spec changes.
    pub tracks_generation: bool,
    /// The merge schema.
    pub schema: Arc<Schema>,
    /// The CRD version's `openAPIV3Schema`, which custom resources are pruned and defaulted by
    /// ([`crate::structural`]); None for built-in types and for a CRD with
    /// `preserveUnknownFields: true`.
    pub openapi_schema: Option<Arc<Value>>,
    /// The CRD that defines it, for custom resources.
    pub crd: Option<String>,
    /// The field labels a field selector may name beyond `metadata.name` and
    /// `metadata.namespace`: a CRD version's `selectableFields` (their `jsonPath` without the
    /// leading dot); empty for built-in types, whose labels `selectors.rs` lists.
    pub selectable_fields: Vec<String>,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The verbs discovery lists (Namespaces serve no deletecollection, as on a real server).
    pub fn verbs(&self) -> Vec<&'static str> {
        let mut verbs = vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        if !self.serves_deletecollection() {
            verbs.retain(|verb| *verb != "deletecollection");
        }
        verbs
    }

    /// Whether a DELETE of the collection is served: not for Namespaces.
    pub fn serves_deletecollection(&self) -> bool {
        !(self.group.is_empty() && self.plural == "namespaces")
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short_names: &[&str],
    status_subresource: bool,
    tracks_generation: bool,
    all_category: bool,
) -> ResourceType {
    ResourceType {
        group: group.to_owned(),
        version: "v1".to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short_names.iter().map(|name| (*name).to_owned()).collect(),
        categories: if all_category {
            vec!["all".to_owned()]
        } else {
            Vec::new()
        },
        status_subresource,
        tracks_generation,
        schema: builtin_schemas::schema_for(group, kind),
        openapi_schema: None,
        crd: None,
        selectable_fields: Vec::new(),
    }
}

/// Every served type, in discovery order.
#[derive(Clone, Debug)]
pub struct Catalog {
    types: Vec<ResourceType>,
}

impl Catalog {
    /// The built-in types.
    pub fn builtin() -> Self {
        let types = vec![
            builtin(
                "",
                "Namespace",
                "namespaces",
                false,
                &["ns"],
                true,
                false,
                false,
            ),
            builtin(
                "",
                "ConfigMap",
                "configmaps",
                true,
                &["cm"],
                false,
                false,
                false,
            ),
            builtin("", "Secret", "secrets", true, &[], false, false, false),
            builtin("", "Service", "services", true, &["svc"], true, false, true),
            builtin(
                "",
                "ServiceAccount",
                "serviceaccounts",
                true,
                &["sa"],
                false,
                false,
                false,
            ),
            builtin(
                "",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                true,
                &["pvc"],
                true,
                false,
                false,
            ),
            builtin("", "Pod", "pods", true, &["po"], true, false, true),
            builtin(
                "",
                "Endpoints",
                "endpoints",
                true,
                &["ep"],
                false,
                false,
                false,
            ),
            builtin("", "Event", "events", true, &["ev"], false, false, false),
            builtin(
                "apps",
                "Deployment",
                "deployments",
                true,
                &["deploy"],
                true,
                true,
                true,
            ),
            builtin(
                "apps",
                "StatefulSet",
                "statefulsets",
                true,
                &["sts"],
                true,
                true,
                true,
            ),
            builtin(
                "apps",
                "DaemonSet",
                "daemonsets",
                true,
                &["ds"],
                true,
                true,
                true,
            ),
            builtin(
                "apps",
                "ReplicaSet",
                "replicasets",
                true,
                &["rs"],
                true,
                true,
                true,
            ),
            builtin("batch", "Job", "jobs", true, &[], true, true, true),
            builtin(
                "batch",
                "CronJob",
                "cronjobs",
                true,
                &["cj"],
                true,
                true,
                true,
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "Role",
                "roles",
                true,
                &[],
                false,
                false,
                false,
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                "clusterroles",
                false,
                &[],
                false,
                false,
                false,
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "RoleBinding",
                "rolebindings",
                true,
                &[],
                false,
                false,
                false,
            ),
            builtin(
                "rbac.authorization.k8s.io",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
                &[],
                false,
                false,
                false,
            ),
            builtin(
                "networking.k8s.io",
                "Ingress",
                "ingresses",
                true,
                &["ing"],
                true,
                true,
                false,
            ),
            builtin(
                "networking.k8s.io",
                "IngressClass",
                "ingressclasses",
                false,
                &[],
                false,
                true,
                false,
            ),
            builtin(
                "networking.k8s.io",
                "NetworkPolicy",
                "networkpolicies",
                true,
                &["netpol"],
                false,
                true,
                false,
            ),
            builtin(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
                &["crd", "crds"],
                true,
                true,
                false,
            ),
            builtin(
                "discovery.k8s.io",
                "EndpointSlice",
                "endpointslices",
                true,
                &[],
                false,
                false,
                false,
            ),
            builtin(
                "storage.k8s.io",
                "StorageClass",
                "storageclasses",
                false,
                &["sc"],
                false,
                false,
                false,
            ),
            builtin(
                "policy",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
                &["pdb"],
                true,
                true,
                false,
            ),
            builtin(
                "scheduling.k8s.io",
                "PriorityClass",
                "priorityclasses",
                false,
                &["pc"],
                false,
                false,
                false,
            ),
            builtin(
                "coordination.k8s.io",
                "Lease",
                "leases",
                true,
                &[],
                false,
                false,
                false,
            ),
        ];
        Self { types }
    }

    /// Every type, in discovery order.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `group`/`version`/`plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The type of `apiVersion` + `kind`.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Whether any type is served in `group`/`version`.
    pub fn serves(&self, group: &str, version: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    /// The groups with their versions, in order (preferred version first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(group, _)| *group == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by(|a, b| compare_versions(a, b));
        }
        groups
    }

    /// Adds the served versions of an Established CRD (replacing earlier ones of that CRD).
    pub fn add_crd(&mut self, crd: &Value) {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        self.remove_crd(&name);
        let spec = &crd["spec"];
        let text = |pointer: &str| {
            spec.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let list = |pointer: &str| -> Vec<String> {
            spec.pointer(pointer)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let kind = text("/names/kind");
        let plural = text("/names/plural");
        let mut singular = text("/names/singular");
        if singular.is_empty() {
            singular = kind.to_lowercase();
        }
        let namespaced = text("/scope") != "Cluster";
        let preserves_unknown =
            spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true);
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for version in versions {
            if version.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(version_name) = version.get("name").and_then(Value::as_str) else {
                continue;
            };
            let schema = version
                .pointer("/schema/openAPIV3Schema")
                .map(|root| schema::from_openapi_v3(root, builtin_schemas::object_meta()))
                .unwrap_or_else(|| {
                    schema::from_openapi_v3(
                        &serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                        builtin_schemas::object_meta(),
                    )
                });
            self.types.push(ResourceType {
                group: text("/group"),
                version: version_name.to_owned(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: list("/names/shortNames"),
                categories: list("/names/categories"),
                status_subresource: version.pointer("/subresources/status").is_some(),
                tracks_generation: true,
                schema,
                openapi_schema: version
                    .pointer("/schema/openAPIV3Schema")
                    .filter(|root| root.is_object() && !preserves_unknown)
                    .map(|root| Arc::new(root.clone())),
                crd: Some(name.clone()),
                selectable_fields: version
                    .get("selectableFields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|field| field.get("jsonPath").and_then(Value::as_str))
                    .map(|path| path.trim_start_matches('.').to_owned())
                    .collect(),
            });
        }
    }

    /// Removes the types a CRD defined.
    pub fn remove_crd(&mut self, name: &str) {
        self.types.retain(|t| t.crd.as_deref() != Some(name));
    }
}

/// A Kubernetes-like version (`v2`, `v1beta1`, `v1alpha3`) as (stability, major, minor), the
/// stability 2 for GA, 1 for beta, 0 for alpha; None for any other name.
fn kube_version(name: &str) -> Option<(u8, u64, u64)> {
    let rest = name.strip_prefix('v')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let major: u64 = rest[..digits].parse().ok().filter(|major| *major > 0)?;
    let suffix = &rest[digits..];
    if suffix.is_empty() {
        return Some((2, major, 0));
    }
    let (stability, minor) = if let Some(minor) = suffix.strip_prefix("beta") {
        (1, minor)
    } else {
        (0, suffix.strip_prefix("alpha")?)
    };
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stability, major, minor.parse().ok()?))
}

/// Kubernetes' version priority, highest first: GA, then beta, then alpha, a higher major and
/// then a higher minor first; names that are not Kubernetes-like last, alphabetically (the
/// order the real apiextensions server picks a CRD group's preferred version by).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (kube_version(a), kube_version(b)) {
        (Some(a), Some(b)) => b.cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// `("apps", "v1")` from `apps/v1`, `("", "v1")` from `v1`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_kubernetes_priority() {
        let mut versions = vec![
            "v1alpha1",
            "foo",
            "v1",
            "v2beta1",
            "v11alpha2",
            "v2",
            "v1beta2",
            "bar",
            "v10",
            "v12alpha1",
            "v3beta1",
        ];
        versions.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            versions,
            [
                "v10",
                "v2",
                "v1",
                "v3beta1",
                "v2beta1",
                "v1beta2",
                "v12alpha1",
                "v11alpha2",
                "v1alpha1",
                "bar",
                "foo"
            ]
        );
    }
}
