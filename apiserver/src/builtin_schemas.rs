//! Hand-written merge schemas for the built-in types the tests use, with the list and map types
//! of the Kubernetes Go types (`+listType`, `+listMapKey`, `+mapType`, `patchMergeKey`):
//! containers, init containers, volumes and pull secrets keyed by `name`, container ports by
//! `containerPort` + `protocol`, Service ports by `port` + `protocol` (protocol defaults to
//! `TCP`), env by `name`, volume mounts by `mountPath`, finalizers a set, label selectors,
//! Service selectors and role refs atomic, conditions keyed by `type`.
//!
//! Only the fields that matter for merging are described; every other field is deduced
//! (granular maps, atomic lists), which is also how the API server treats leaves.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use serde_json::json;

use crate::schema::{
    Schema, atomic_list, atomic_object, keyed_list, object, optional_object, required_keyed_list,
    scalar, scalar_default, set_list, string_map,
};

/// `ObjectMeta`.
pub fn object_meta() -> Arc<Schema> {
    object(&[
        ("labels", string_map()),
        ("annotations", string_map()),
        ("finalizers", set_list()),
        (
            "ownerReferences",
            keyed_list(
                &["uid"],
                object(&[("uid", scalar()), ("name", scalar()), ("kind", scalar())]),
            ),
        ),
        ("managedFields", atomic_list()),
    ])
}

fn conditions() -> Arc<Schema> {
    keyed_list(&["type"], object(&[("type", scalar())]))
}

fn status() -> Arc<Schema> {
    optional_object(&[("conditions", conditions())])
}

fn label_selector() -> Arc<Schema> {
    atomic_object()
}

fn resources() -> Arc<Schema> {
    object(&[("limits", string_map()), ("requests", string_map())])
}

fn container() -> Arc<Schema> {
    object(&[
        ("name", scalar()),
        ("image", scalar()),
        ("command", atomic_list()),
        ("args", atomic_list()),
        (
            "ports",
            keyed_list(
                &["containerPort", "protocol"],
                object(&[
                    ("containerPort", scalar()),
                    ("protocol", scalar_default(json!("TCP"))),
                ]),
            ),
        ),
        ("env", keyed_list(&["name"], object(&[("name", scalar())]))),
        ("envFrom", atomic_list()),
        ("resources", resources()),
        (
            "volumeMounts",
            keyed_list(&["mountPath"], object(&[("mountPath", scalar())])),
        ),
        (
            "volumeDevices",
            keyed_list(&["devicePath"], object(&[("devicePath", scalar())])),
        ),
        ("securityContext", optional_object(&[])),
        ("livenessProbe", optional_object(&[])),
        ("readinessProbe", optional_object(&[])),
        ("startupProbe", optional_object(&[])),
    ])
}

fn pod_spec() -> Arc<Schema> {
    object(&[
        ("containers", required_keyed_list(&["name"], container())),
        ("initContainers", keyed_list(&["name"], container())),
        ("ephemeralContainers", keyed_list(&["name"], container())),
        (
            "volumes",
            keyed_list(&["name"], object(&[("name", scalar())])),
        ),
        (
            "imagePullSecrets",
            keyed_list(&["name"], object(&[("name", scalar())])),
        ),
        ("nodeSelector", string_map()),
        ("tolerations", atomic_list()),
        (
            "hostAliases",
            keyed_list(&["ip"], object(&[("ip", scalar())])),
        ),
        (
            "topologySpreadConstraints",
            keyed_list(
                &["topologyKey", "whenUnsatisfiable"],
                object(&[("topologyKey", scalar()), ("whenUnsatisfiable", scalar())]),
            ),
        ),
        ("readinessGates", atomic_list()),
        ("affinity", optional_object(&[])),
        ("securityContext", optional_object(&[])),
    ])
}

fn pod_template() -> Arc<Schema> {
    object(&[("metadata", object_meta()), ("spec", pod_spec())])
}

fn with_meta(fields: &[(&str, Arc<Schema>)]) -> Arc<Schema> {
    let mut all: Vec<(&str, Arc<Schema>)> = vec![
        ("apiVersion", scalar()),
        ("kind", scalar()),
        ("metadata", object_meta()),
    ];
    all.extend(fields.iter().cloned());
    object(&all)
}

fn workload(extra: &[(&str, Arc<Schema>)]) -> Arc<Schema> {
    let mut spec: Vec<(&str, Arc<Schema>)> = vec![
        ("selector", label_selector()),
        ("template", pod_template()),
        (
            "strategy",
            object(&[("rollingUpdate", optional_object(&[]))]),
        ),
        (
            "updateStrategy",
            object(&[("rollingUpdate", optional_object(&[]))]),
        ),
    ];
    spec.extend(extra.iter().cloned());
    with_meta(&[("spec", object(&spec)), ("status", status())])
}

fn service() -> Arc<Schema> {
    with_meta(&[
        (
            "spec",
            object(&[
                (
                    "ports",
                    keyed_list(
                        &["port", "protocol"],
                        object(&[
                            ("port", scalar()),
                            ("protocol", scalar_default(json!("TCP"))),
                        ]),
                    ),
                ),
                ("selector", atomic_object()),
                ("clusterIPs", atomic_list()),
                ("externalIPs", atomic_list()),
                ("ipFamilies", atomic_list()),
            ]),
        ),
        (
            "status",
            optional_object(&[
                ("conditions", conditions()),
                (
                    "loadBalancer",
                    optional_object(&[("ingress", atomic_list())]),
                ),
            ]),
        ),
    ])
}

fn crd() -> Arc<Schema> {
    with_meta(&[
        (
            "spec",
            object(&[
                (
                    "names",
                    object(&[("shortNames", atomic_list()), ("categories", atomic_list())]),
                ),
                ("versions", atomic_list()),
                ("conversion", optional_object(&[])),
            ]),
        ),
        (
            "status",
            optional_object(&[
                ("conditions", conditions()),
                ("acceptedNames", optional_object(&[])),
                ("storedVersions", atomic_list()),
            ]),
        ),
    ])
}

fn namespace() -> Arc<Schema> {
    with_meta(&[
        ("spec", optional_object(&[("finalizers", atomic_list())])),
        ("status", status()),
    ])
}

fn data_object() -> Arc<Schema> {
    with_meta(&[
        ("data", string_map()),
        ("binaryData", string_map()),
        ("stringData", string_map()),
    ])
}

fn rbac_role() -> Arc<Schema> {
    with_meta(&[
        ("rules", atomic_list()),
        ("aggregationRule", optional_object(&[])),
    ])
}

fn rbac_binding() -> Arc<Schema> {
    with_meta(&[("subjects", atomic_list()), ("roleRef", atomic_object())])
}

fn generic_with_spec() -> Arc<Schema> {
    with_meta(&[("spec", object(&[])), ("status", status())])
}

static SCHEMAS: LazyLock<HashMap<(&'static str, &'static str), Arc<Schema>>> =
    LazyLock::new(|| {
        let mut schemas: HashMap<(&'static str, &'static str), Arc<Schema>> = HashMap::new();
        schemas.insert(("", "Namespace"), namespace());
        schemas.insert(("", "ConfigMap"), data_object());
        schemas.insert(("", "Secret"), data_object());
        schemas.insert(("", "Service"), service());
        schemas.insert(
            ("", "ServiceAccount"),
            with_meta(&[
                (
                    "secrets",
                    keyed_list(&["name"], object(&[("name", scalar())])),
                ),
                ("imagePullSecrets", atomic_list()),
            ]),
        );
        schemas.insert(
            ("", "PersistentVolumeClaim"),
            with_meta(&[
                (
                    "spec",
                    object(&[("accessModes", atomic_list()), ("resources", resources())]),
                ),
                ("status", status()),
            ]),
        );
        schemas.insert(
            ("", "Pod"),
            with_meta(&[("spec", pod_spec()), ("status", status())]),
        );
        schemas.insert(("", "Endpoints"), with_meta(&[("subsets", atomic_list())]));
        schemas.insert(("apps", "Deployment"), workload(&[]));
        schemas.insert(("apps", "ReplicaSet"), workload(&[]));
        schemas.insert(("apps", "DaemonSet"), workload(&[]));
        schemas.insert(
            ("apps", "StatefulSet"),
            workload(&[("volumeClaimTemplates", atomic_list())]),
        );
        schemas.insert(("batch", "Job"), workload(&[]));
        schemas.insert(
            ("batch", "CronJob"),
            with_meta(&[
                (
                    "spec",
                    object(&[(
                        "jobTemplate",
                        object(&[(
                            "spec",
                            object(&[("selector", label_selector()), ("template", pod_template())]),
                        )]),
                    )]),
                ),
                ("status", status()),
            ]),
        );
        schemas.insert(("rbac.authorization.k8s.io", "Role"), rbac_role());
        schemas.insert(("rbac.authorization.k8s.io", "ClusterRole"), rbac_role());
        schemas.insert(("rbac.authorization.k8s.io", "RoleBinding"), rbac_binding());
        schemas.insert(
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            rbac_binding(),
        );
        schemas.insert(
            ("networking.k8s.io", "Ingress"),
            with_meta(&[
                (
                    "spec",
                    object(&[("rules", atomic_list()), ("tls", atomic_list())]),
                ),
                ("status", status()),
            ]),
        );
        schemas.insert(("networking.k8s.io", "IngressClass"), generic_with_spec());
        schemas.insert(
            ("networking.k8s.io", "NetworkPolicy"),
            with_meta(&[(
                "spec",
                object(&[
                    ("podSelector", label_selector()),
                    ("ingress", atomic_list()),
                    ("egress", atomic_list()),
                    ("policyTypes", atomic_list()),
                ]),
            )]),
        );
        schemas.insert(("apiextensions.k8s.io", "CustomResourceDefinition"), crd());
        schemas.insert(
            ("discovery.k8s.io", "EndpointSlice"),
            with_meta(&[("endpoints", atomic_list()), ("ports", atomic_list())]),
        );
        schemas.insert(
            ("storage.k8s.io", "StorageClass"),
            with_meta(&[
                ("parameters", string_map()),
                ("mountOptions", atomic_list()),
            ]),
        );
        schemas.insert(
            ("policy", "PodDisruptionBudget"),
            with_meta(&[
                ("spec", object(&[("selector", label_selector())])),
                ("status", status()),
            ]),
        );
        schemas.insert(("scheduling.k8s.io", "PriorityClass"), with_meta(&[]));
        schemas.insert(("coordination.k8s.io", "Lease"), generic_with_spec());
        schemas.insert(("", "Event"), with_meta(&[]));
        schemas
    });

/// The schema of a built-in kind, or a generic one (metadata described, the rest deduced).
pub fn schema_for(group: &str, kind: &str) -> Arc<Schema> {
    SCHEMAS
        .get(&(group, kind))
        .cloned()
        .unwrap_or_else(|| with_meta(&[("spec", object(&[])), ("status", status())]))
}
