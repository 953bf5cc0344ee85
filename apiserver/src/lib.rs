//! A test double of the Kubernetes API server, for tests that need a cluster where no real API
//! server can run (no package on these machines ships kube-apiserver). It speaks HTTP+JSON on
//! loopback, so kube-rs and the real kubectl 1.33 reach it through a kubeconfig
//! ([`TestApiServer::write_kubeconfig`]); the binary `windlass-test-apiserver` serves it to any
//! client.
//!
//! # What it implements
//!
//! - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`, aggregated
//!   discovery (`apidiscovery.k8s.io` v2 and v2beta1), and OpenAPI v3 documents that declare the
//!   `fieldValidation` parameter (kubectl then validates on the server). A CRD's resources are
//!   served once it is Established, after [`Options::crd_established_delay`]; an update of an
//!   Established CRD (versions, schemas, `served`) is served at once, its storage version added
//!   to `status.storedVersions`. A group's versions are listed, and its preferred version
//!   chosen, by Kubernetes' version priority (GA, beta, alpha, higher numbers first; other
//!   names last, alphabetically).
//! - Verbs: get, list (label selectors with `=`, `==`, `!=`, `in`, `notin`, exists, `!key`,
//!   `>`, `<`, one that does not parse a 400 with the real parser's message; field selectors on
//!   the labels the real server supports per kind, any other a 400 `field label not supported`
//!   worded as the kind's conversion words it, `metadata.name` and `metadata.namespace` for
//!   most kinds, the few more of Pods, Nodes, Namespaces, Secrets, Services, Events,
//!   ReplicationControllers, ReplicaSets, Jobs and StatefulSets, and a CRD version's
//!   `selectableFields`; `limit`/`continue`, a continued page reporting its
//!   first page's resourceVersion, no `remainingItemCount` under a selector), watch, create
//!   (`generateName`, 409 AlreadyExists, 500 `resourceVersion should not be set on objects to
//!   be created` for a resourceVersion above 0 outside a dry run, as etcd storage refuses it),
//!   update (409 on a stale resourceVersion, and on a
//!   uid in the body other than the stored one's, which the registry takes as a precondition; a
//!   custom resource's 422 without one, as custom resources allow no unconditional update), patch (apply, merge, JSON,
//!   strategic merge for built-in types, whose maps merge key by key, a `null` deleting the key,
//!   even where apply treats the map as atomic (a Service's `spec.selector`); a patch or apply
//!   that changes the uid is 422 `metadata.uid: ... field is immutable`, an apply that creates
//!   with a uid 409 `uid mismatch`; a JSON patch operation that cannot be applied, a missing
//!   path or a failed `test`, is the bare 422 `the server rejected our request due to an error
//!   in our request`; `force` on any patch but apply is 422 `PatchOptions.meta.k8s.io "" is
//!   invalid: force: Forbidden: may not be specified for non-apply patch`; an apply that creates
//!   the object is answered 201 Created, one that updates it 200), delete (preconditions on uid and resourceVersion,
//!   `propagationPolicy`, finalizers; an object removed at once is answered with a `Status` of
//!   `Success`, except pods, serviceaccounts and storageclasses, answered with the object as the
//!   real registries do; with the garbage collector on, `Foreground` keeps the owner while a
//!   dependent with `blockOwnerDeletion` is held by a finalizer of its own; a CRD's delete
//!   deletes its custom resources and leaves it Terminating, held by
//!   `customresourcecleanup.apiextensions.k8s.io`, until the last is gone), deletecollection
//!   (in one namespace: across all namespaces it is 405, as the real routes serve only LIST and
//!   WATCH there; Namespaces serve none), `dryRun=All` (in the query, or `dryRun: ["All"]` in
//!   a DELETE's `DeleteOptions`; any other value is 422; a DELETE with a body reads its options
//!   from the body alone), `/status`, `Table`
//!   output for `kubectl get` (a LIST's items of a built-in type come without apiVersion and
//!   kind, as the real server sends them), and the metadata-only form of get and list
//!   (`Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`, the media
//!   ranges taken in order) that controllers and `windlass apply` ask for.
//! - Metadata: uid, one global monotonic resourceVersion, creationTimestamp, generation bumped
//!   only when something outside metadata and status changes (a Deployment's annotations count
//!   too; a custom resource's status counts unless its version has the status subresource), and
//!   when deletionTimestamp is first set on an object with a generation, deletionTimestamp with
//!   finalizers, namespaces Terminating with `spec.finalizers: [kubernetes]`; creating in a
//!   missing namespace is 404, in a Terminating one 403; deleting `default`, `kube-system` or
//!   `kube-public` is 403 `this namespace may not be deleted`, dry runs included, as the
//!   NamespaceLifecycle admission plugin answers.
//! - Server-side apply with real `managedFields` (`FieldsV1`), following structured-merge-diff:
//!   schema-driven merge (atomic/set/map lists with keys, granular/atomic maps) with
//!   hand-written schemas for the built-in types and CRD schemas read from
//!   `x-kubernetes-list-type`/`-list-map-keys`/`-map-type`; conflicts (409 with
//!   `FieldManagerConflict` causes, under the key `reason` as `StatusCause` has it); `force`; removal of fields no longer applied by their sole
//!   owner; Update operations taking over the fields they change; managedFields written
//!   directly by an update replace the recorded ones (kubectl's client-side to server-side
//!   migration relies on it), `[{}]` resets them, a malformed list is ignored; only the
//!   writer's entry gets a new `time`, and only when its write changed something; `before-first-apply`; the last-applied annotation kept in sync
//!   for manager `kubectl`.
//! - Immutable fields (422): Secret and ConfigMap with `immutable: true`, Secret `type`,
//!   Service `spec.clusterIP`, workload `spec.selector`, StatefulSet `spec` other than
//!   `replicas`, `ordinals`, `template`, `updateStrategy`,
//!   `persistentVolumeClaimRetentionPolicy` and `minReadySeconds`, PersistentVolumeClaim `spec`
//!   other than `resources.requests` and `volumeAttributesClassName` (and `volumeName` set once),
//!   RoleBinding and ClusterRoleBinding `roleRef`, Job `spec.selector` and `spec.template`, CRD
//!   `spec.scope`, and new finalizers on an object being deleted. A few defaults of the real server (Service type/clusterIP/ports, Deployment
//!   replicas/strategy, pod template defaults, Namespace phase) so objects read back look real.
//!   A Secret's `stringData` is written into `data` (base64, overwriting the same keys) and
//!   removed on every write, as the real conversion does; an apply's managedFields record the
//!   applier's `f:stringData` (taken from the applied configuration, as the real server does),
//!   any other write's record the `f:data` keys it changed.
//! - Custom resources pruned and defaulted by their version's `openAPIV3Schema` on create,
//!   update, merge and JSON patch and server-side apply, dry runs included ([`structural`]
//!   rules, as the apiextensions server's): fields the schema does not declare are dropped
//!   unless `x-kubernetes-preserve-unknown-fields` or `additionalProperties` keeps them (the
//!   root's and embedded resources' `apiVersion`, `kind` and `metadata` always stay; metadata
//!   is not pruned), then absent declared properties with a `default` are set to it,
//!   recursively (array items and `additionalProperties` values too); a declared `null` without
//!   `nullable: true` is defaulted, or dropped when it has no default. Server-side apply
//!   refuses a configuration with undeclared fields instead, as structured-merge-diff does
//!   (500 without a reason, `failed to create typed patch object (<ns>/<name>; <group>/<version>,
//!   Kind=<kind>): .spec.bogus: field not declared in schema`; list items named by index), and
//!   defaults the merged object after its managedFields are computed, so the applier owns none
//!   of the defaulted fields; a create or update defaults before, so its manager owns them. Only
//!   written objects are defaulted: a default added to a CRD later shows on an object's next
//!   write, not on reading it back. The fields a create, update or merge/JSON patch drops are
//!   handled by `fieldValidation`: `Strict` refuses the write (kubectl's default: for a create
//!   or update body 400 `<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding
//!   error: unknown field "spec.bogus"`; for a patch 422 `Invalid` on field `patch`, valued
//!   with the object the patch made, as the API server's patch handler answers), `Warn` (the default, and any
//!   other value) answers a `Warning: 299 - "unknown field \"spec.bogus\""` header each
//!   (sorted by path), `Ignore` drops them silently.
//! - Protobuf request bodies (`application/vnd.kubernetes.protobuf`, [`protobuf`]) for creates
//!   and updates of core/v1 Secrets and ConfigMaps and for `DeleteOptions`: what client-go's
//!   typed clients send for Helm 4's release storage. They are decoded into the JSON model;
//!   responses are always JSON (clients list JSON after protobuf in `Accept`). A protobuf body of
//!   any other kind is refused with 415 naming what is decoded.
//! - Watch (ndjson, bookmarks, `timeoutSeconds`, `sendInitialEvents`, 410 Expired past the kept
//!   history, an ERROR event with 504 Timeout `Too large resource version` past the current
//!   revision), `Status` errors as kube-rs and kubectl parse them, and fault injection
//!   ([`Fault`]): delays (before the request is served, or after it, holding an answer whose
//!   write was made), 429 with `Retry-After`, 5xx, refused requests (webhook-style).
//!
//! # What it does not implement
//!
//! No controllers: Deployments never become ready by themselves (tests call
//! [`TestApiServer::make_ready`] or [`TestApiServer::set_status`]), no Pods, no Endpoints or
//! EndpointSlices are derived from Services. Garbage collection and the namespace controller are
//! off unless enabled in [`Options`]. No authentication, authorization, admission webhooks
//! (beyond injected refusals), validation of object contents beyond names, the immutable
//! fields above and the string maps (labels, annotations, a ConfigMap's `data`/`binaryData`, a
//! Secret's `data`/`stringData`: a value other than a string is a 400 as the real decoder
//! answers it for a body, a 422 `Invalid` on field `patch` for a merge, JSON or strategic
//! patch (worded per kind of patch, `patch_refusal.rs`), or a 500 `failed to create typed patch
//! object` for a server-side apply, and a null is stored as `""`; base64 is not checked), unknown-field detection for built-in types (`fieldValidation` is ignored
//! there) or duplicate fields, a CRD schema's value validation (types, formats, enums, CEL rules), version
//! conversion (every served version of a CRD stores the same object), protobuf beyond the kinds
//! above, protobuf responses or CBOR, metadata-only watches,
//! `resourceVersionMatch` semantics, or consistent snapshots for `continue` (later pages reflect
//! current state). Strategic merge patch ignores `$setElementOrder`. A label selector's keys and values are not checked against the label syntax, and a field selector's values are compared as the fields' JSON text (a Pod's `status.podIPs` is not read as the real server reads it). Apply does not resolve
//! conflicts with `kubectl-client-side-apply` through the last-applied annotation as the real
//! server's `lastAppliedManager` does. Watches filtered by a selector do not report an object
//! leaving the selector as DELETED. Schemas of built-in types describe only the fields that
//! matter for merging; others are merged as structured-merge-diff's deduced type.

mod builtin_schemas;
mod catalog;
mod discovery;
mod error;
mod faults;
pub mod fieldset;
mod handlers;
pub mod managed;
mod objects;
mod patch;
mod patch_refusal;
pub mod protobuf;
mod requests;
pub mod schema;
mod selectors;
mod server;
mod store;
pub mod structural;
mod table;
pub mod typed;
mod watch;

pub use error::ApiError;
pub use faults::{Fault, FaultAction, FaultMatch};
pub use requests::{RequestCounts, RequestRecord};
pub use server::{Options, StartError, TestApiServer};

/// The merge schema of a built-in kind (group `""` for the core group), for data-driven tests
/// of the merge rules.
pub fn builtin_schema(group: &str, kind: &str) -> std::sync::Arc<schema::Schema> {
    builtin_schemas::schema_for(group, kind)
}
