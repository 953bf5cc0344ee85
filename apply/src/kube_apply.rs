//! The kube target: server-side apply as field manager `windlass`, step by step in the order of
//! [`crate::order`], with the waits, the app state and the prune that follow.
//!
//! Per object: the live object is read (one LIST per collection when a kind has many objects,
//! else a GET). An object that carries windlass's digest annotation with the digest of what would
//! be sent now, whose only manager of the main resource is windlass, and whose windlass Apply
//! entry owns exactly the fields the newest record of that body names ([`owned_fields_digest`]),
//! is unchanged: no request writes it (a writer that adds or changes a field shows as a manager;
//! one that only removes fields windlass applied shows only in windlass's entry). An object last
//! applied client-side by kubectl (KOTS's way) is taken over first: its `kubectl` Update entries
//! are folded into windlass's Apply entry and `last-applied-configuration` is dropped, so fields a
//! later release removes are removed. Then a non-forced dry run: a conflict is recorded as
//! evidence (the other manager, the field), a result equal to the live object means unchanged;
//! otherwise the object is applied with `force`. A missing object is applied at once (nothing can
//! conflict). Immutable-field refusals recreate the object only when it is annotated
//! [`RECREATE_ANNOTATION`]`: "true"`, or is a Job finished as its hook delete policy says
//! ([`crate::hook_jobs`]); other refusals fail that object, naming it and its file.
//!
//! Every object carries [`OWNER_ANNOTATION`] naming the app and [`DIGEST_ANNOTATION`]. Results are
//! recorded in batches as the server answers ([`crate::events::ObjectsApplied`]); a resumed apply
//! skips what was recorded with the same digest. Before a group's first request goes out, the
//! keys and digests of what it may write are recorded durably ([`crate::events::ObjectsSending`]):
//! an object the server made whose answer never reached windlass is still found by a later
//! install's prune. Objects of one kind are applied concurrently, kinds one after another.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use windlass_engine::{Fact, StageContext, StageError};
use windlass_state::FingerprintKey;

use crate::cluster::{ApiFailure, Cluster, FIELD_MANAGER, ResourceInfo};
use crate::events::{
    AppState, AppStateObserved, AppliedObject, ApplyCounts, ApplyOutcome, Conflict, DeletingObject,
    OBJECT_PRUNED, OBJECTS_APPLIED, OBJECTS_DELETING, ObjectDeletedToRecreate, ObjectPruned,
    ObjectsApplied, ObjectsDeleting, ObjectsSending, PruneOutcome, ResourceState, SentObject,
    WaitFinished, WaitKind, WaitOutcome,
};
use crate::health;
use windlass_manifest::parallel::parallel_map_mut;

use crate::order::{
    DELETION_PHASE, InventoryEntry, ObjectKey, PlannedObject, PruneAction, Step, annotation_of,
    is_kept, phase,
};
use crate::prune_candidates::{ClusterIdentity, Holder, OtherInstance, held_by_other_instances};

mod unchanged;

pub use unchanged::Unchanged;

/// The ownership annotation: the app that applied the object.
pub const OWNER_ANNOTATION: &str = "windlass.io/app";
/// The digest of the applied configuration.
pub const DIGEST_ANNOTATION: &str = "windlass.io/applied-digest";
/// Opt-in to delete and create again an object whose immutable fields changed.
pub const RECREATE_ANNOTATION: &str = "windlass.io/recreate-on-immutable";
/// `kots.io/wait-for-ready`.
pub const WAIT_FOR_READY: &str = "kots.io/wait-for-ready";
/// `kots.io/wait-for-properties`.
pub const WAIT_FOR_PROPERTIES: &str = "kots.io/wait-for-properties";
/// kubectl's client-side apply annotation.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How windlass builds the body it sends from a rendered object (the annotations it adds, the
/// digest over the result). Recorded in `ApplyCompleted`; bump it with any change to
/// [`KubeApply`]'s `body_for` or to what a rendered file turns into, so that an unchanged apply
/// never trusts a digest built another way. Version 2: the digest of an object holding a secret
/// is keyed ([`object_digest`]).
pub const BODY_VERSION: u32 = 2;

/// How many objects are in flight at once.
const CONCURRENCY: usize = 16;
/// Objects recorded per `ObjectsApplied` batch at most.
const BATCH: usize = 1000;
/// How long an answered object waits at most to be recorded.
const BATCH_AGE: Duration = Duration::from_millis(250);
/// From how many objects in one collection a LIST replaces GETs.
const LIST_FROM: usize = 8;

/// What the kube apply is asked to do.
pub struct KubeApply<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The stage's context (recording, progress, clock).
    pub context: &'a StageContext,
    /// The app slug (the ownership annotation's value).
    pub app_slug: String,
    /// The app namespace (for namespaced objects that name none).
    pub app_namespace: String,
    /// Server-side dry run only.
    pub dry_run: bool,
    /// Every wait's deadline.
    pub wait_timeout: Duration,
    /// Named `additionalNamespaces` (created if missing before anything else).
    pub additional_namespaces: Vec<String>,
    /// `additionalNamespaces` holds `"*"`: pull secrets go to every existing namespace.
    pub every_namespace: bool,
    /// With `every_namespace`: the pull secret of each `useHelmInstall: true` chart
    /// (`<slug>-<directory>-registry`) and the namespace its own hook makes it in, where no copy
    /// goes; each other namespace gets a copy of `<slug>-registry` under that name, as KOTS
    /// copies every `overlays/midstream/charts/<directory>/secret.yaml`.
    pub chart_pull_secrets: Vec<(String, String)>,
    /// `statusInformers`.
    pub status_informers: Vec<String>,
    /// The previous inventory of this app on this cluster, to prune against (`None`: no prune).
    pub previous: Option<Vec<InventoryEntry>>,
    /// Which cluster this is (how other instances' applies to it are told apart).
    pub cluster_identity: ClusterIdentity,
    /// Prune even when the new set is empty.
    pub allow_empty_prune: bool,
    /// The rendered files that hold a secret (recorded by fingerprint, not as a blob).
    pub secret_files: BTreeSet<String>,
    /// `windlass undeploy` (nothing planned): Namespaces are left, not deleted
    /// ([`crate::order::leave_namespaces`]).
    pub undeploy: bool,
}

/// What the prune did about one object: its entry, the decision, and whether it was made now
/// (to be recorded) rather than taken from an earlier run's record.
type PruneDecision = (InventoryEntry, ObjectPruned, bool);

/// The `file` recorded for the app namespace when the apply creates it (it is in no file).
pub const APP_NAMESPACE_FILE: &str = "--namespace";

/// Prune decisions recorded per durable commit at most.
const PRUNE_BATCH: usize = 1000;

/// `actions` (in prune order) cut where the deletion phase or the kind changes: the objects of a
/// group are deleted together, groups one after another.
fn prune_groups(actions: Vec<PruneAction>) -> Vec<Vec<PruneAction>> {
    let mut groups: Vec<Vec<PruneAction>> = Vec::new();
    let group_of = |action: &PruneAction| match action {
        PruneAction::Delete(entry) | PruneAction::Keep(entry, _) => {
            (entry.deletion_phase, entry.key.kind.clone())
        }
    };
    for action in actions {
        match groups.last_mut() {
            Some(group) if group_of(&group[0]) == group_of(&action) => group.push(action),
            _ => groups.push(vec![action]),
        }
    }
    groups
}

/// What the kube apply ended with.
pub struct KubeApplied {
    /// What the cluster holds for the app now.
    pub inventory: Vec<InventoryEntry>,
    /// Counts.
    pub counts: ApplyCounts,
    /// Every object was found as this install (the previous apply of the same rendering) left
    /// it, compared by the digests it recorded: no rendered file was parsed.
    pub unchanged_since: Option<String>,
}

/// An object ready to send.
#[derive(Clone)]
struct Prepared {
    planned: PlannedObject,
    info: ResourceInfo,
    body: Value,
    digest: String,
    /// `body` serialized, as every apply request of it sends it (made once, with the digest,
    /// on every core, not on the thread that sends the requests).
    wire: Vec<u8>,
}

/// An object ready to send but for its digest ([`KubeApply::body_for`] in two steps, so that
/// the digests of a group are computed on every core).
struct Undigested {
    planned: PlannedObject,
    info: ResourceInfo,
    body: Value,
    /// The state's key, when the object holds a secret (its digest is then keyed).
    secret_key: Option<Arc<FingerprintKey>>,
}

impl Undigested {
    /// The object with its digest, the digest annotation, and the bytes to send.
    fn digested(self) -> Prepared {
        let Undigested {
            planned,
            info,
            mut body,
            secret_key,
        } = self;
        let digest = object_digest(&body, secret_key.as_deref());
        annotations_mut(&mut body).insert(DIGEST_ANNOTATION.into(), json!(digest));
        let wire = serde_json::to_vec(&body).expect("a JSON value always serializes");
        Prepared {
            planned,
            info,
            body,
            digest,
            wire,
        }
    }
}

fn api_error(key: &ObjectKey, file: &str, failure: &ApiFailure) -> String {
    format!("{key} ({file}): the server refused it: {failure}")
}

fn transient(failure: &ApiFailure, what: &str) -> StageError {
    StageError::transient(format!("{what}: {failure} (after retries)"))
}

/// A failed request (a read, a discovery, a list): transient when the server may answer next
/// time (429, 5xx, no answer, an expired `continue`, an answer that did not read), else
/// permanent (a refusal such as RBAC's 403, which retrying does not cure).
fn request_failure(failure: &ApiFailure, what: &str) -> StageError {
    // Also a LIST whose `continue` expired (410 Gone: compacted meanwhile) and an answer that
    // did not read as one (a 2xx): asked again from the start, they may well go through.
    if failure.is_transient() || failure.status == 410 || (200..300).contains(&failure.status) {
        transient(failure, what)
    } else {
        StageError::permanent(format!("{what}: {failure}"))
    }
}

/// An immutable-field refusal, with how to let windlass get past it.
fn with_recreate_hint(mut failure: ApiFailure) -> ApiFailure {
    failure.message.push_str(&format!(
        " (annotate the object {RECREATE_ANNOTATION}: \"true\" to let windlass delete and create it again)"
    ));
    failure
}

/// What a CRD's or Namespace's wait saw: a Namespace's phase, or a CRD's conditions that are not
/// true (`NamesAccepted=False: <message>`), else "ready".
fn foundation_detail(wait: WaitKind, live: &Value) -> String {
    if wait == WaitKind::Active {
        return live
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .map_or_else(
                || "no phase yet".to_string(),
                |phase| format!("phase {phase}"),
            );
    }
    let conditions = live
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let pending: Vec<String> = conditions
        .iter()
        .filter(|condition| condition.get("status").and_then(Value::as_str) != Some("True"))
        .map(|condition| {
            let text = |field: &str| condition.get(field).and_then(Value::as_str).unwrap_or("");
            let message = text("message");
            format!(
                "{}={}{}",
                text("type"),
                text("status"),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            )
        })
        .collect();
    match (conditions.is_empty(), pending.is_empty()) {
        (true, _) => "no conditions yet".to_string(),
        (false, true) => "ready".to_string(),
        (false, false) => pending.join("; "),
    }
}

/// How long past its deadline a wait's last check may take to answer.
const CHECK_GRACE: Duration = Duration::from_secs(2);

/// What a wait waits for, in words ("the app to be ready").
fn wait_words(wait: WaitKind) -> &'static str {
    match wait {
        WaitKind::Established => "established",
        WaitKind::Active => "active",
        WaitKind::Ready | WaitKind::AppReady => "ready",
        WaitKind::Properties => "as its kots.io/wait-for-properties asks",
        WaitKind::Gone => "gone",
    }
}

/// What earlier runs of this apply stage recorded about the prune: the decisions (by inventory
/// id), and the objects they recorded about to be deleted (inventory id → uid recorded).
#[derive(Debug, Default)]
struct EarlierPrunes {
    decided: HashMap<String, ObjectPruned>,
    deleting: HashMap<String, String>,
}

/// How many times a takeover reads the object again after its patch's resourceVersion test failed.
const TAKEOVER_READS: u32 = 3;

/// The digest of a configuration (without the digest annotation itself). An object holding a
/// secret (`secret_key` given: a Secret, or a file rendered from a password config item) gets a
/// digest keyed with the state's fingerprint key (`fp1:...`), so that the event log, where the
/// digest is recorded, cannot be used to check a guess of the secret; any other object gets the
/// plain BLAKE3 hash.
pub fn object_digest(body: &Value, secret_key: Option<&FingerprintKey>) -> String {
    let bytes = serde_json::to_vec(body).expect("a JSON value always serializes");
    match secret_key {
        Some(key) => key.fingerprint_bytes("applied-object", &bytes),
        None => blake3::hash(&bytes).to_hex().to_string(),
    }
}

fn annotations_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    let metadata = object
        .as_object_mut()
        .expect("an object")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let annotations = metadata
        .as_object_mut()
        .expect("just made an object")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations.as_object_mut().expect("just made an object")
}

/// The managers whose Update entries are kubectl's client-side apply, the way KOTS applied:
/// `kubectl-client-side-apply`, `kubectl` (what kubectl before 1.18 called itself) and
/// `before-first-apply` (the entry the API server makes for fields set before the first
/// server-side apply). Flux folds every manager starting with `kubectl`; windlass does not, on
/// purpose: `kubectl-rollout` (a restart), `kubectl-label`, `kubectl-edit` and the like are a
/// person's changes that KOTS's three-way merge would have kept, and folding them would make
/// windlass remove them.
const CLIENT_SIDE_APPLY_MANAGERS: [&str; 3] =
    ["kubectl-client-side-apply", "kubectl", "before-first-apply"];

/// Whether a managedFields entry is kubectl's client-side apply, which windlass takes over.
fn is_kubectl_update(entry: &Value) -> bool {
    let manager = entry.get("manager").and_then(Value::as_str).unwrap_or("");
    let operation = entry.get("operation").and_then(Value::as_str).unwrap_or("");
    let subresource = entry
        .get("subresource")
        .and_then(Value::as_str)
        .unwrap_or("");
    subresource.is_empty() && operation == "Update" && CLIENT_SIDE_APPLY_MANAGERS.contains(&manager)
}

fn managed_fields(object: &Value) -> &[Value] {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A `managedFields` entry as the checks below read it: its manager, operation and subresource.
type ManagerEntry<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn manager_entry(entry: &Value) -> ManagerEntry<'_> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    (field("manager"), field("operation"), field("subresource"))
}

fn is_windlass_apply_entry((manager, operation, subresource): ManagerEntry<'_>) -> bool {
    manager == Some(FIELD_MANAGER)
        && operation == Some("Apply")
        && subresource.unwrap_or("").is_empty()
}

fn is_windlass_apply(entry: &Value) -> bool {
    is_windlass_apply_entry(manager_entry(entry))
}

/// What an object windlass applied and nobody touched since looks like, as the newest record of
/// its apply ([`AppliedObject`]) says: the digest of the body (its [`DIGEST_ANNOTATION`]) and the
/// digest of the fields windlass's Apply entry owned once the server answered
/// ([`owned_fields_digest`]).
#[derive(Debug, Clone, Copy)]
struct AsApplied<'a> {
    /// The digest of the body sent now, which the record applied too.
    digest: &'a str,
    /// [`AppliedObject::owned_fields_digest`] of the record.
    owned_fields_digest: &'a str,
    /// The key the owned fields digest is keyed with (an object holding a secret).
    secret_key: Option<&'a FingerprintKey>,
}

impl<'a> AsApplied<'a> {
    /// What an object sent now with `digest` looks like untouched, when `recorded` (the newest
    /// record of its apply) applied the same body and holds the digest of windlass's owned
    /// fields; `None` otherwise (no record, another body, or a record of a windlass version
    /// before that digest): only the server can say then whether it is unchanged.
    fn of(
        digest: &'a str,
        recorded: Option<&'a AppliedObject>,
        secret_key: Option<&'a FingerprintKey>,
    ) -> Option<AsApplied<'a>> {
        let recorded = recorded.filter(|recorded| recorded.digest == digest)?;
        Some(AsApplied {
            digest,
            owned_fields_digest: recorded.owned_fields_digest.as_deref()?,
            secret_key,
        })
    }
}

/// Whether an object whose digest annotation is `annotated`, whose field managers are `managers`
/// and whose windlass Apply entry owns the fields `expected` names (`owns_as_applied` says) is
/// exactly what windlass applied last, untouched by anyone else, as `expected` says it was left
/// (the one rule, for a whole object and for [`LiveObject`]'s light read alike). Anyone who adds
/// or changes a field shows as a manager; anyone who only removes fields (`kubectl label ... app-`, an edit
/// deleting an env entry) leaves no entry of their own (the server drops an empty one), but takes
/// the fields out of windlass's entry, whose digest then differs from the recorded one. Only
/// writers of the `status` subresource may share the object: a controller reporting status
/// changes nothing windlass applies, while any other subresource (`scale` above all: `kubectl
/// scale`, an autoscaler) writes the object's own fields, which the full apply's dry run then
/// finds changed. `owns_as_applied` is asked last, once everything else holds.
fn untouched_since_applied<'a>(
    annotated: Option<&str>,
    managers: impl Iterator<Item = ManagerEntry<'a>> + Clone,
    owns_as_applied: impl FnOnce(&AsApplied<'_>) -> bool,
    expected: &AsApplied<'_>,
) -> bool {
    annotated == Some(expected.digest)
        && managers.clone().any(is_windlass_apply_entry)
        && managers
            .into_iter()
            .all(|entry| is_windlass_apply_entry(entry) || entry.2 == Some("status"))
        && owns_as_applied(expected)
}

/// Whether `live` is exactly what windlass applied last, untouched by anyone else, as `expected`
/// says it was left.
fn unchanged_without_asking(live: &Value, expected: &AsApplied<'_>) -> bool {
    untouched_since_applied(
        annotation_of(live, DIGEST_ANNOTATION),
        managed_fields(live).iter().map(manager_entry),
        |expected| {
            owned_fields_of(live, expected.secret_key).as_deref()
                == Some(expected.owned_fields_digest)
        },
        expected,
    )
}

/// The digest of a field set (a `managedFields` entry's `fieldsV1`) that does not depend on the
/// order the server wrote its keys in, nor on its spacing: the set written again as JSON with
/// every object's keys sorted, hashed with BLAKE3, or keyed like [`object_digest`] for an object
/// holding a secret (a field set names the keys of a Secret's data, and the values of a set
/// list's items).
pub fn owned_fields_digest(fields_v1: &Value, secret_key: Option<&FingerprintKey>) -> String {
    let mut canonical = Vec::with_capacity(256);
    write_sorted(fields_v1, &mut canonical);
    digest_of_sorted_fields(&canonical, secret_key)
}

/// The hash [`owned_fields_digest`] makes of a field set written with its keys sorted.
fn digest_of_sorted_fields(canonical: &[u8], secret_key: Option<&FingerprintKey>) -> String {
    match secret_key {
        Some(key) => key.fingerprint_bytes("owned-fields", canonical),
        None => blake3::hash(canonical).to_hex().to_string(),
    }
}

/// Whether the field set `text` (a `fieldsV1` as the server wrote it) has the
/// [`owned_fields_digest`] `expected`. A server that writes it compact with its keys sorted (the
/// usual case) already wrote the bytes that digest hashes: they are hashed as they are, and only
/// text that does not match that way is decoded and sorted (an unchanged apply reads a
/// thousand field sets).
fn fields_text_has_digest(text: &str, expected: &str, secret_key: Option<&FingerprintKey>) -> bool {
    digest_of_sorted_fields(text.as_bytes(), secret_key) == expected
        || serde_json::from_str::<Value>(text)
            .is_ok_and(|fields_v1| owned_fields_digest(&fields_v1, secret_key) == expected)
}

/// `value` as compact JSON with every object's keys in byte order.
fn write_sorted(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(fields) => {
            let mut sorted: Vec<(&String, &Value)> = fields.iter().collect();
            sorted.sort_unstable_by(|left, right| left.0.cmp(right.0));
            out.push(b'{');
            for (index, (key, child)) in sorted.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string always serializes");
                out.push(b':');
                write_sorted(child, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_sorted(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a JSON value always serializes"),
    }
}

/// [`owned_fields_digest`] of windlass's Apply entry in `object` (a whole object read, a write's
/// answer); `None` when it has no such entry.
fn owned_fields_of(object: &Value, secret_key: Option<&FingerprintKey>) -> Option<String> {
    managed_fields(object)
        .iter()
        .find(|entry| is_windlass_apply(entry))
        .map(|entry| owned_fields_digest(entry.get("fieldsV1").unwrap_or(&Value::Null), secret_key))
}

/// What the unchanged check reads of a live object: its metadata without the field sets
/// (decoding a page of a thousand whole objects into [`Value`]s cost more than the rest of an
/// unchanged apply's reading).
#[derive(Debug, Default, serde::Deserialize)]
struct LiveObject {
    #[serde(default)]
    metadata: LiveMetadata,
}

#[derive(Debug, Default, serde::Deserialize)]
struct LiveMetadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default, rename = "resourceVersion")]
    resource_version: Option<String>,
    #[serde(default)]
    annotations: Option<HashMap<String, Value>>,
    #[serde(default, rename = "managedFields")]
    managed_fields: Option<Vec<LiveManager>>,
}

#[derive(Debug, serde::Deserialize)]
struct LiveManager {
    #[serde(default)]
    manager: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    subresource: Option<String>,
    /// The field set as sent, decoded only for windlass's Apply entry
    /// ([`LiveObject::owned_fields_digest`]).
    #[serde(default, rename = "fieldsV1")]
    fields_v1: Option<Box<serde_json::value::RawValue>>,
}

impl LiveManager {
    fn entry(&self) -> ManagerEntry<'_> {
        (
            self.manager.as_deref(),
            self.operation.as_deref(),
            self.subresource.as_deref(),
        )
    }
}

impl LiveObject {
    /// [`unchanged_without_asking`] on what was read.
    fn unchanged(&self, expected: &AsApplied<'_>) -> bool {
        let metadata = &self.metadata;
        untouched_since_applied(
            metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(DIGEST_ANNOTATION))
                .and_then(Value::as_str),
            metadata
                .managed_fields
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(LiveManager::entry),
            |expected| self.owns_as_applied(expected),
            expected,
        )
    }

    /// Whether windlass's Apply entry owns the fields `expected` names by digest (the only field
    /// set looked at; see [`fields_text_has_digest`]).
    fn owns_as_applied(&self, expected: &AsApplied<'_>) -> bool {
        let Some(entry) = self.windlass_entry() else {
            return false;
        };
        match &entry.fields_v1 {
            Some(text) => fields_text_has_digest(
                text.get(),
                expected.owned_fields_digest,
                expected.secret_key,
            ),
            None => {
                owned_fields_digest(&Value::Null, expected.secret_key)
                    == expected.owned_fields_digest
            }
        }
    }

    /// windlass's Apply entry.
    fn windlass_entry(&self) -> Option<&LiveManager> {
        self.metadata
            .managed_fields
            .as_deref()?
            .iter()
            .find(|entry| is_windlass_apply_entry(entry.entry()))
    }

    /// [`owned_fields_digest`] of windlass's Apply entry (the only field set decoded); `None`
    /// when there is no such entry or its field set does not read as JSON.
    fn owned_fields_digest(&self, secret_key: Option<&FingerprintKey>) -> Option<String> {
        let entry = self.windlass_entry()?;
        let fields_v1: Value = match &entry.fields_v1 {
            Some(text) => serde_json::from_str(text.get()).ok()?,
            None => Value::Null,
        };
        Some(owned_fields_digest(&fields_v1, secret_key))
    }
}

/// A live object as the server sent it: from a LIST, its text, looked at through
/// [`LiveObject`] and decoded whole only when it must be compared or patched; from a GET, decoded.
struct Live {
    /// What the unchanged check reads (absent when it does not read as that shape).
    seen: Option<LiveObject>,
    body: LiveBody,
}

enum LiveBody {
    Text(Box<serde_json::value::RawValue>),
    Value(Value),
}

impl Live {
    fn from_text(text: Box<serde_json::value::RawValue>) -> Live {
        Live {
            seen: serde_json::from_str(text.get()).ok(),
            body: LiveBody::Text(text),
        }
    }

    fn from_value(value: Value) -> Live {
        Live {
            seen: serde::Deserialize::deserialize(&value).ok(),
            body: LiveBody::Value(value),
        }
    }

    /// Its name (decoding it when the light read failed).
    fn name(&self) -> Option<String> {
        match &self.seen {
            Some(seen) => seen.metadata.name.clone(),
            None => meta(&self.value().ok()?, "name"),
        }
    }

    /// Its uid (decoding it when the light read failed).
    fn uid(&self) -> Option<String> {
        match &self.seen {
            Some(seen) => seen.metadata.uid.clone(),
            None => meta(&self.value().ok()?, "uid"),
        }
    }

    /// Whether it is exactly what windlass applied last, untouched, as `expected` says it was
    /// left (see [`unchanged_without_asking`], which a light read that failed falls back to).
    fn unchanged(&self, expected: &AsApplied<'_>) -> bool {
        match &self.seen {
            Some(seen) => seen.unchanged(expected),
            None => self
                .value()
                .is_ok_and(|value| unchanged_without_asking(&value, expected)),
        }
    }

    fn value(&self) -> Result<Value, ApiFailure> {
        match &self.body {
            LiveBody::Value(value) => Ok(value.clone()),
            LiveBody::Text(text) => decode_live(text),
        }
    }

    /// The whole object.
    fn into_value(self) -> Result<Value, ApiFailure> {
        match self.body {
            LiveBody::Value(value) => Ok(value),
            LiveBody::Text(text) => decode_live(&text),
        }
    }
}

fn decode_live(text: &serde_json::value::RawValue) -> Result<Value, ApiFailure> {
    serde_json::from_str(text.get()).map_err(|error| ApiFailure {
        status: 0,
        reason: "BadResponse".into(),
        message: format!("a listed object is not JSON: {error}"),
        causes: Vec::new(),
    })
}

fn needs_takeover(live: &Value) -> bool {
    annotation_of(live, LAST_APPLIED).is_some()
        || managed_fields(live).iter().any(is_kubectl_update)
}

/// The union of two FieldsV1 sets.
fn union_fields(into: &mut Value, from: &Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else {
        return;
    };
    for (key, value) in from {
        match into.get_mut(key) {
            Some(existing) => union_fields(existing, value),
            None => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The JSON patch that takes `live` over from kubectl.
fn takeover_patch(live: &Value, api_version: &str, now: &str) -> Value {
    let mut merged = json!({});
    let mut kept = Vec::new();
    for entry in managed_fields(live) {
        if is_kubectl_update(entry) || is_windlass_apply(entry) {
            union_fields(&mut merged, entry.get("fieldsV1").unwrap_or(&Value::Null));
        } else {
            kept.push(entry.clone());
        }
    }
    if let Some(annotations) = merged
        .pointer_mut("/f:metadata/f:annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(&format!("f:{LAST_APPLIED}"));
        if annotations.is_empty()
            && let Some(metadata) = merged
                .pointer_mut("/f:metadata")
                .and_then(Value::as_object_mut)
        {
            metadata.remove("f:annotations");
        }
    }
    kept.push(json!({
        "manager": FIELD_MANAGER,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": merged,
    }));
    let mut patch = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion",
               "value": live.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)}),
        json!({"op": "replace", "path": "/metadata/managedFields", "value": kept}),
    ];
    if annotation_of(live, LAST_APPLIED).is_some() {
        patch.push(json!({"op": "remove",
            "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"}));
    }
    Value::Array(patch)
}

/// `object` without what changes on every write (managedFields, resourceVersion), and without
/// `apiVersion` and `kind`, which name the resource asked for and cannot differ: a real API
/// server leaves them off the items of a LIST of a built-in type, and puts them on the answer
/// to a write.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object.as_object_mut() {
        fields.remove("apiVersion");
        fields.remove("kind");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
        metadata.remove("resourceVersion");
    }
    object
}

fn conflicts_of(failure: &ApiFailure) -> Vec<Conflict> {
    let mut conflicts: Vec<Conflict> = failure
        .causes
        .iter()
        // The real server writes a cause's type under `reason` (metav1.StatusCause); `type` is
        // accepted too.
        .filter(|cause| {
            ["reason", "type"].iter().any(|field| {
                cause.get(*field).and_then(Value::as_str) == Some("FieldManagerConflict")
            })
        })
        .map(|cause| {
            let message = cause.get("message").and_then(Value::as_str).unwrap_or("");
            Conflict {
                manager: message.split('"').nth(1).unwrap_or(message).to_string(),
                field: cause
                    .get("field")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }
        })
        .collect();
    if conflicts.is_empty() {
        conflicts.push(Conflict {
            manager: String::new(),
            field: failure.message.clone(),
        });
    }
    conflicts
}

fn meta(object: &Value, field: &str) -> Option<String> {
    object
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Which object a wait saw, and at which version: what `WaitFinished` records.
#[derive(Debug, Clone, Default)]
struct SeenVersion {
    /// `metadata.uid`.
    uid: Option<String>,
    /// `metadata.resourceVersion`.
    resource_version: Option<String>,
}

/// The uid and resourceVersion of `live`.
fn seen_version(live: &Value) -> Option<SeenVersion> {
    Some(SeenVersion {
        uid: meta(live, "uid"),
        resource_version: meta(live, "resourceVersion"),
    })
}

/// Collects applied objects and records them in batches.
struct Recorder<'a> {
    context: &'a StageContext,
    pending: Vec<AppliedObject>,
    oldest: Instant,
}

impl Recorder<'_> {
    async fn push(&mut self, object: AppliedObject) -> Result<(), StageError> {
        if self.pending.is_empty() {
            self.oldest = Instant::now();
        }
        self.pending.push(object);
        if self.pending.len() >= BATCH || self.oldest.elapsed() >= BATCH_AGE {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let objects = std::mem::take(&mut self.pending);
        self.context
            .record_fact(Fact::of(&ObjectsApplied { objects })?)
            .await?;
        Ok(())
    }
}

/// Records the objects answered on `answered` as they come, in [`ObjectsApplied`] batches of at
/// most [`BATCH`] objects, none waiting longer than [`BATCH_AGE`], until the channel closes.
async fn record_as_answered(
    context: &StageContext,
    mut answered: tokio::sync::mpsc::UnboundedReceiver<AppliedObject>,
) -> Result<(), StageError> {
    let mut pending: Vec<AppliedObject> = Vec::new();
    let mut due: Option<tokio::time::Instant> = None;
    loop {
        let next = match due {
            Some(at) => match tokio::time::timeout_at(at, answered.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    record_batch(context, &mut pending).await?;
                    due = None;
                    continue;
                }
            },
            None => answered.recv().await,
        };
        let Some(object) = next else {
            return record_batch(context, &mut pending).await;
        };
        if pending.is_empty() {
            due = Some(tokio::time::Instant::now() + BATCH_AGE);
        }
        pending.push(object);
        if pending.len() >= BATCH {
            record_batch(context, &mut pending).await?;
            due = None;
        }
    }
}

/// Records `pending` (emptied) as one [`ObjectsApplied`], if it holds any.
async fn record_batch(
    context: &StageContext,
    pending: &mut Vec<AppliedObject>,
) -> Result<(), StageError> {
    if pending.is_empty() {
        return Ok(());
    }
    let objects = std::mem::take(pending);
    context
        .record_fact(Fact::of(&ObjectsApplied { objects })?)
        .await?;
    Ok(())
}

impl KubeApply<'_> {
    /// Runs the apply, waits and prune over `planned` (in apply order). `recorded_before` holds
    /// the previous apply's records by inventory id ([`KubeApply::records_of`]; empty when there
    /// is none): an object found exactly as its record says that apply left it is unchanged
    /// without a dry run.
    pub async fn run(
        &self,
        mut planned: Vec<PlannedObject>,
        recorded_before: HashMap<String, AppliedObject>,
    ) -> Result<KubeApplied, StageError> {
        // What earlier runs of this stage recorded: objects applied, prunes done.
        let mut done: HashMap<String, AppliedObject> = HashMap::new();
        let mut pruned_before = EarlierPrunes::default();
        for event in self.context.recorded_facts().await {
            match event.event_type.as_str() {
                OBJECTS_APPLIED => {
                    let batch: ObjectsApplied = serde_json::from_value(event.payload)
                        .map_err(|error| StageError::permanent(error.to_string()))?;
                    for object in batch.objects {
                        if object.outcome != ApplyOutcome::Failed && !object.dry_run {
                            done.insert(object.key.inventory_id(), object);
                        }
                    }
                }
                OBJECT_PRUNED => {
                    let pruned: ObjectPruned = serde_json::from_value(event.payload)
                        .map_err(|error| StageError::permanent(error.to_string()))?;
                    pruned_before
                        .decided
                        .insert(pruned.key.inventory_id(), pruned);
                }
                OBJECTS_DELETING => {
                    let group: ObjectsDeleting = serde_json::from_value(event.payload)
                        .map_err(|error| StageError::permanent(error.to_string()))?;
                    for object in group.objects {
                        pruned_before
                            .deleting
                            .insert(object.key.inventory_id(), object.uid);
                    }
                }
                _ => {}
            }
        }
        // The newest record of each object: this install's earlier runs', else the previous
        // apply's.
        let mut newest_records = recorded_before;
        newest_records.extend(done.iter().map(|(id, record)| (id.clone(), record.clone())));
        let newest_records = &newest_records;
        let mut counts = ApplyCounts::default();
        let mut recorder = Recorder {
            context: self.context,
            pending: Vec::new(),
            oldest: Instant::now(),
        };
        let mut applied: BTreeMap<String, (AppliedObject, InventoryEntry)> = BTreeMap::new();
        // Namespaces an earlier apply created for `additionalNamespaces` or `--namespace`: the
        // release's own Namespace of that name keeps the mark (never pruned), apply after apply.
        let marked_made_for_namespaces: HashSet<String> = self
            .previous
            .iter()
            .flatten()
            .filter(|entry| entry.additional_namespace)
            .map(|entry| entry.key.inventory_id())
            .collect();
        let marked_made_for_namespaces = &marked_made_for_namespaces;

        self.prepare_namespaces(
            &mut planned,
            &mut recorder,
            &mut applied,
            &done,
            &mut counts,
        )
        .await?;

        // Kinds the release's own CRDs define: in a dry run those CRDs are not created, so
        // their objects cannot be sent; they are reported as to be created.
        let release_kinds: BTreeSet<(String, String)> = planned
            .iter()
            .filter(|object| {
                object.key.group == "apiextensions.k8s.io"
                    && object.key.kind == "CustomResourceDefinition"
            })
            .filter_map(|crd| {
                Some((
                    crd.object.pointer("/spec/group")?.as_str()?.to_string(),
                    crd.object
                        .pointer("/spec/names/kind")?
                        .as_str()?
                        .to_string(),
                ))
            })
            .collect();
        let total = planned.len() as u64;
        let mut finished = 0u64;
        let mut failures: Vec<String> = Vec::new();
        let mut index = 0;
        let mut previous_step: Option<Step> = None;
        while index < planned.len() {
            let first = &planned[index];
            if previous_step == Some(Step::Foundations) && first.step != Step::Foundations {
                self.wait_for_foundations(&applied).await?;
            }
            previous_step = Some(first.step);
            // A group is the objects of one step, creation phase and kind, applied together;
            // an object that is waited for ends its group, so that nothing after it is applied
            // before its wait is met (KOTS applies one object at a time and waits after each).
            let same_group = |object: &PlannedObject| {
                (object.step, object.creation_phase, &object.key.kind)
                    == (first.step, first.creation_phase, &first.key.kind)
            };
            let mut group_end = index;
            while group_end < planned.len() && same_group(&planned[group_end]) {
                group_end += 1;
                if !self.dry_run && has_waits(&planned[group_end - 1].object) {
                    break;
                }
            }
            let kind = first.key.kind.clone();
            let group = &mut planned[index..group_end];
            index = group_end;
            // In a dry run, the namespaces it would create (the release's, the additional ones)
            // do not exist: what goes into them can only be reported as to be created with them.
            let new_namespaces: BTreeSet<&str> = if self.dry_run {
                applied
                    .values()
                    .filter(|(record, _)| {
                        record.key.group.is_empty()
                            && record.key.kind == "Namespace"
                            && record.outcome == ApplyOutcome::Created
                    })
                    .map(|(record, _)| record.key.name.as_str())
                    .collect()
            } else {
                BTreeSet::new()
            };
            let mut bodies = Vec::with_capacity(group.len());
            for object in group {
                match self
                    .prepare(object, &release_kinds, &new_namespaces)
                    .await?
                {
                    Ok(object) => bodies.push(object),
                    Err(record) => {
                        if record.outcome == ApplyOutcome::Failed {
                            failures.push(record.error.clone().unwrap_or_default());
                        } else {
                            count(&mut counts, record.outcome);
                        }
                        recorder.push(record).await?;
                    }
                }
            }
            recorder.flush().await?;
            // The digests and the bytes to send (two serializations and a hash of each body)
            // on every core.
            let mut owned: Vec<Option<Undigested>> = bodies.into_iter().map(Some).collect();
            let prepared: Vec<Prepared> = parallel_map_mut(
                &mut owned,
                64,
                || (),
                |(), object| object.take().expect("each object once").digested(),
            );
            let targets: Vec<(&ObjectKey, &ResourceInfo)> = prepared
                .iter()
                .map(|object| (&object.planned.key, &object.info))
                .collect();
            let mut live = self.read_live(&targets, false).await?;
            drop(targets);
            tracing::debug!(%kind, found = live.len(), "apply: live objects read");
            // What an earlier run of this stage recorded as applied is not sent again while the
            // cluster still holds it: the same uid, so not deleted since nor another cluster
            // (the install key does not name the kubeconfig, so a run resumed with another one
            // finds the first one's records).
            let (skipped, to_send): (Vec<Prepared>, Vec<Prepared>) =
                prepared.into_iter().partition(|object| {
                    let id = object.planned.key.inventory_id();
                    done.get(&id).is_some_and(|recorded| {
                        recorded.digest == object.digest
                            && recorded.uid.is_some()
                            && live
                                .get(&id)
                                .is_some_and(|found| found.uid() == recorded.uid)
                    })
                });
            let mut waits = Vec::new();
            for object in skipped {
                let recorded = done[&object.planned.key.inventory_id()].clone();
                count(&mut counts, recorded.outcome);
                applied.insert(
                    object.planned.key.inventory_id(),
                    (recorded.clone(), inventory_entry(&object, &recorded)),
                );
                finished += 1;
                // Not sent again, but still waited for: the run that sent it may have stopped
                // before (or because) its wait was met.
                if recorded.waits {
                    waits.push(object);
                }
            }
            tracing::debug!(%kind, objects = to_send.len(), "apply: group prepared");
            // What may be written is recorded before it is sent (an object the cluster holds
            // as this apply would leave it is not written).
            let may_write: Vec<&Prepared> = to_send
                .iter()
                .filter(|object| {
                    let id = object.planned.key.inventory_id();
                    let expected = self.as_applied(object, newest_records.get(&id));
                    !live.get(&id).is_some_and(|found| {
                        expected.is_some_and(|expected| found.unchanged(&expected))
                    })
                })
                .collect();
            if !self.dry_run {
                self.record_sending(&may_write).await?;
            }
            // Answers are recorded while the next requests go out: the requests never wait for
            // the log's durable writes (an object answered but not yet recorded when the process
            // dies is sent again by the resumed apply, as before).
            let (answered, to_record) = tokio::sync::mpsc::unbounded_channel();
            let answers = async {
                let answered = answered;
                let mut results = futures_util::stream::iter(to_send.into_iter().map(|object| {
                    // Moved out, not copied: each is a whole live object.
                    let id = object.planned.key.inventory_id();
                    let live = live.remove(&id);
                    let recorded = newest_records.get(&id);
                    async move {
                        let result = self.apply_one(&object, live, recorded).await;
                        (object, result)
                    }
                }))
                .buffer_unordered(CONCURRENCY);
                while let Some((object, result)) = results.next().await {
                    let record = result.map_err(|failure| {
                        request_failure(
                            &failure,
                            &format!("{} ({})", object.planned.key, object.planned.file),
                        )
                    })?;
                    count(&mut counts, record.outcome);
                    if record.outcome == ApplyOutcome::Failed {
                        failures.push(record.error.clone().unwrap_or_default());
                    } else {
                        if record.waits {
                            waits.push(object.clone());
                        }
                        let id = object.planned.key.inventory_id();
                        let mut entry = inventory_entry(&object, &record);
                        // A Namespace the release ships that windlass also created for
                        // `additionalNamespaces` stays marked so: it is never pruned.
                        entry.additional_namespace |= applied
                            .get(&id)
                            .is_some_and(|(_, earlier)| earlier.additional_namespace)
                            || marked_made_for_namespaces.contains(&id);
                        applied.insert(id, (record.clone(), entry));
                    }
                    // The recorder stops only on an error, which `try_join!` reports.
                    let _ = answered.send(record);
                    finished += 1;
                    self.context
                        .progress
                        .stage_advanced(&self.context.stage_name, finished, total);
                }
                tracing::debug!("apply: group answered");
                Ok::<(), StageError>(())
            };
            tokio::try_join!(answers, record_as_answered(self.context, to_record))?;
            tracing::debug!("apply: group recorded");
            if !failures.is_empty() {
                return Err(StageError::invalid_input(format!(
                    "{} object(s) refused; first: {}",
                    failures.len(),
                    failures[0]
                )));
            }
            if !self.dry_run {
                for object in waits {
                    self.wait_for_annotated(&object).await?;
                }
            }
        }
        if previous_step == Some(Step::Foundations) {
            self.wait_for_foundations(&applied).await?;
        }
        self.finish(applied, counts, &pruned_before).await
    }

    /// What follows the objects: the prune against the previous inventory (prunes
    /// `pruned_before`, recorded by an earlier run of this stage, are not done again). The app
    /// state is observed later, once the charts are handed to helm ([`KubeApply::app_state`]).
    async fn finish(
        &self,
        applied: BTreeMap<String, (AppliedObject, InventoryEntry)>,
        mut counts: ApplyCounts,
        pruned_before: &EarlierPrunes,
    ) -> Result<KubeApplied, StageError> {
        let mut inventory: Vec<InventoryEntry> =
            applied.values().map(|(_, entry)| entry.clone()).collect();
        if let Some(previous) = &self.previous {
            let current: BTreeSet<String> = applied.keys().cloned().collect();
            let release_objects = applied
                .values()
                .filter(|(record, _)| record.step != Step::PullSecrets)
                .count();
            // The namespaces the release's objects live in (not windlass's pull-secret copies,
            // which with `"*"` are in every namespace).
            let current_namespaces: BTreeSet<String> = applied
                .values()
                .filter(|(record, _)| record.step != Step::PullSecrets)
                .filter_map(|(record, _)| record.key.namespace.clone())
                .collect();
            let actions = crate::order::plan_prune(
                previous,
                &current,
                &current_namespaces,
                release_objects,
                &self.additional_namespaces,
                self.allow_empty_prune,
            )
            .map_err(|refusal| StageError::invalid_input(refusal.to_string()))?;
            let actions = if self.undeploy {
                crate::order::leave_namespaces(actions)
            } else {
                actions
            };
            let others = self
                .other_instances_holding(&actions, &pruned_before.decided)
                .await?;
            let mut decided = Vec::with_capacity(actions.len());
            for group in prune_groups(actions) {
                // Recorded every `PRUNE_BATCH` decisions at most: a kill loses no more.
                let mut group = group.into_iter().peekable();
                while group.peek().is_some() {
                    let batch: Vec<PruneAction> = group.by_ref().take(PRUNE_BATCH).collect();
                    let now = self
                        .prune_group(batch, pruned_before, &others, &applied, &decided)
                        .await?;
                    decided.extend(now);
                }
            }
            for (entry, pruned) in decided {
                // An object known by a digest sent without an answer is known by its uid once
                // read (the read found it is the object that apply made).
                let mut entry = entry;
                if !entry.sent_digests.is_empty()
                    && !pruned.uid.is_empty()
                    && pruned.uid != entry.uid
                {
                    entry.uid.clone_from(&pruned.uid);
                    entry.sent_digests.clear();
                }
                match pruned.outcome {
                    PruneOutcome::Deleted => counts.pruned += 1,
                    // Listed, marked, so that the next install looks at it again, and the
                    // other instance does not count it as this one's.
                    // Left by an undeploy and forgotten: no later apply deletes it on the
                    // strength of this record (the undeploy leaves it to the user).
                    PruneOutcome::Kept
                        if pruned.kept_because
                            == Some(crate::order::KeepReason::NamespaceOnUndeploy) =>
                    {
                        counts.kept += 1;
                    }
                    PruneOutcome::Kept
                        if pruned.kept_because == Some(crate::order::KeepReason::OtherInstance) =>
                    {
                        counts.kept += 1;
                        entry.left_to_other_instance = true;
                        // With its digests: an object a lost answer remade has another uid.
                        inventory.push(entry);
                    }
                    PruneOutcome::Kept => {
                        counts.kept += 1;
                        inventory.push(entry);
                    }
                    PruneOutcome::Refused => {
                        counts.refused += 1;
                        inventory.push(entry);
                    }
                    PruneOutcome::Gone | PruneOutcome::NotOwned => {}
                }
            }
        }
        Ok(KubeApplied {
            inventory,
            counts,
            unchanged_since: None,
        })
    }

    /// The objects `actions` would delete (but for those `done` already) that another instance
    /// of the app (in another app namespace of this cluster) still applies, by inventory id,
    /// with the first such instance: its app namespace itself, cluster-scoped objects, objects
    /// in a namespace a release names, and objects in this app namespace that the other
    /// instance's release names. An instance whose app namespace is gone (or Terminating) is
    /// gone with it: what it applied is not left to it (the app namespace of each instance that
    /// would hold something is read to know, once).
    async fn other_instances_holding(
        &self,
        actions: &[PruneAction],
        done: &HashMap<String, ObjectPruned>,
    ) -> Result<HashMap<String, OtherInstance>, StageError> {
        let deletes: HashMap<String, ObjectKey> = actions
            .iter()
            .filter_map(|action| match action {
                PruneAction::Delete(entry) => Some((entry.key.inventory_id(), entry.key.clone())),
                PruneAction::Keep(..) => None,
            })
            .filter(|(id, _)| done.get(id).is_none_or(|pruned| pruned.dry_run))
            .collect();
        if deletes.is_empty() {
            return Ok(HashMap::new());
        }
        let held = held_by_other_instances(
            self.context,
            &self.app_slug,
            &self.app_namespace,
            &self.cluster_identity,
            &deletes,
        )?;
        let mut gone: HashMap<String, bool> = HashMap::new();
        let mut first_holders: HashMap<String, OtherInstance> = HashMap::new();
        for (id, holders) in held {
            for holder in holders {
                let is_gone = match gone.get(&holder.namespace) {
                    Some(is_gone) => *is_gone,
                    None => {
                        let is_gone = self.instance_gone(&holder.namespace).await?;
                        if is_gone {
                            self.context.progress.note(&format!(
                                "namespace {}, where another instance of {} was applied, is gone: what it applied is not left to it",
                                holder.namespace, self.app_slug
                            ));
                        }
                        gone.insert(holder.namespace.clone(), is_gone);
                        is_gone
                    }
                };
                if !is_gone {
                    first_holders.insert(id, holder);
                    break;
                }
            }
        }
        Ok(first_holders)
    }

    /// Whether the app namespace of another instance is gone: absent, or Terminating. A
    /// server that does not let it be read leaves the instance in place.
    async fn instance_gone(&self, namespace: &str) -> Result<bool, StageError> {
        let key = ObjectKey::namespace(namespace);
        match self.cluster.get(&key, &ResourceInfo::namespaces()).await {
            Ok(None) => Ok(true),
            Ok(Some(live)) => {
                Ok(live.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating"))
            }
            Err(failure) if failure.is_transient() => {
                Err(request_failure(&failure, &format!("reading {key}")))
            }
            Err(_) => Ok(false),
        }
    }

    /// The record of `entry` left to the other instance that still applies it.
    fn left_to(&self, entry: &InventoryEntry, holder: &OtherInstance) -> ObjectPruned {
        ObjectPruned {
            key: entry.key.clone(),
            uid: entry.uid.clone(),
            outcome: PruneOutcome::Kept,
            kept_because: Some(crate::order::KeepReason::OtherInstance),
            detail: Some(match &holder.by {
                Holder::AppNamespace => format!(
                    "it is the app namespace of the instance of {} in namespace {}: left to it",
                    self.app_slug, holder.namespace
                ),
                Holder::Completed(install_id) => format!(
                    "the instance of {} in namespace {} applies it too (install {install_id}): left to it",
                    self.app_slug, holder.namespace
                ),
                Holder::Unfinished => format!(
                    "the instance of {} in namespace {} applies it too (an apply there that never completed): left to it",
                    self.app_slug, holder.namespace
                ),
                Holder::Unreadable(record) => format!(
                    "the instance of {} in namespace {} may apply it (record {record} of its applies cannot be read): left to it",
                    self.app_slug, holder.namespace
                ),
            }),
            resource_version: None,
            dry_run: self.dry_run,
        }
    }

    /// Creates the app namespace and the named additional namespaces that are missing (as
    /// `kubectl kots install` creates its namespace; never pruned) and, for `"*"`, adds a copy
    /// of each app-namespace pull secret for every other existing namespace.
    async fn prepare_namespaces(
        &self,
        planned: &mut Vec<PlannedObject>,
        recorder: &mut Recorder<'_>,
        applied: &mut BTreeMap<String, (AppliedObject, InventoryEntry)>,
        done: &HashMap<String, AppliedObject>,
        counts: &mut ApplyCounts,
    ) -> Result<(), StageError> {
        let info = ResourceInfo::namespaces();
        // (Not on an undeploy: it would make the namespace it is removing the app from.)
        let app_namespace = (!self.undeploy).then_some(&self.app_namespace);
        let named = app_namespace.into_iter().chain(
            self.additional_namespaces
                .iter()
                .filter(|name| *name != "*" && **name != self.app_namespace),
        );
        for name in named {
            let key = ObjectKey::namespace(name);
            if let Some(recorded) = done.get(&key.inventory_id()) {
                applied.insert(
                    key.inventory_id(),
                    (
                        recorded.clone(),
                        InventoryEntry {
                            key: key.clone(),
                            uid: recorded.uid.clone().unwrap_or_default(),
                            deletion_phase: 0,
                            keep: false,
                            additional_namespace: true,
                            sent_digests: Vec::new(),
                            left_to_other_instance: false,
                        },
                    ),
                );
                continue;
            }
            if self
                .cluster
                .get(&key, &info)
                .await
                .map_err(|failure| request_failure(&failure, &format!("reading {key}")))?
                .is_some()
            {
                continue;
            }
            let object = PlannedObject {
                file: if *name == self.app_namespace {
                    APP_NAMESPACE_FILE
                } else {
                    "additionalNamespaces"
                }
                .into(),
                object: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
                key: key.clone(),
                step: Step::PullSecrets,
                creation_phase: i64::MIN,
                index: 0,
            };
            let prepared = self.body_for(object, info.clone());
            let record = self
                .apply_one(&prepared, None, None)
                .await
                .map_err(|failure| transient(&failure, &format!("creating {key}")))?;
            if record.outcome == ApplyOutcome::Failed {
                return Err(StageError::invalid_input(record.error.unwrap_or_default()));
            }
            count(counts, record.outcome);
            applied.insert(
                key.inventory_id(),
                (
                    record.clone(),
                    InventoryEntry {
                        additional_namespace: true,
                        ..inventory_entry(&prepared, &record)
                    },
                ),
            );
            recorder.push(record).await?;
        }
        recorder.flush().await?;
        if self.every_namespace {
            let namespaces = self
                .cluster
                .list("/api/v1/namespaces")
                .await
                .map_err(|failure| request_failure(&failure, "listing namespaces"))?;
            let secrets: Vec<PlannedObject> = planned
                .iter()
                .filter(|object| {
                    object.step == Step::PullSecrets
                        && object
                            .key
                            .namespace
                            .as_deref()
                            .unwrap_or(&self.app_namespace)
                            == self.app_namespace
                })
                .cloned()
                .collect();
            let app_secret = windlass_stages::secrets::app_pull_secret_name(&self.app_slug);
            let base = secrets.iter().find(|secret| secret.key.name == app_secret);
            // Another instance of the app makes its charts' pull secrets in its own app
            // namespace with its hooks: a copy there would take helm's Secret over.
            let other_instances = if self.chart_pull_secrets.is_empty() {
                BTreeSet::new()
            } else {
                crate::prune_candidates::other_instance_namespaces(
                    self.context,
                    &self.app_slug,
                    &self.app_namespace,
                    &self.cluster_identity,
                )?
            };
            let mut taken: HashSet<String> = planned
                .iter()
                .map(|object| object.key.inventory_id())
                .collect();
            let mut copies: Vec<PlannedObject> = Vec::new();
            // A namespace being deleted takes no new object (the server answers 403): it gets
            // no copy, and does not fail the apply.
            let live_namespaces = namespaces.iter().filter(|namespace| {
                namespace.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating")
            });
            for namespace in live_namespaces.filter_map(|object| meta(object, "name")) {
                if namespace == self.app_namespace {
                    continue;
                }
                let charts = base
                    .filter(|_| !other_instances.contains(&namespace))
                    .into_iter()
                    .flat_map(|base| {
                        self.chart_pull_secrets
                            .iter()
                            .filter(|(_, hook_namespace)| *hook_namespace != namespace)
                            .map(move |(name, _)| (base, name.as_str()))
                    });
                let each = secrets
                    .iter()
                    .map(|secret| (secret, secret.key.name.as_str()))
                    .chain(charts);
                for (secret, name) in each {
                    let mut copy = secret.clone();
                    copy.object["metadata"]["namespace"] = json!(namespace);
                    copy.object["metadata"]["name"] = json!(name);
                    copy.key.namespace = Some(namespace.clone());
                    copy.key.name = name.to_string();
                    if taken.insert(copy.key.inventory_id()) {
                        copies.push(copy);
                    }
                }
            }
            let at = planned
                .iter()
                .position(|object| object.step != Step::PullSecrets)
                .unwrap_or(planned.len());
            planned.splice(at..at, copies);
        }
        Ok(())
    }

    /// The object's resource, namespace and body, or its record when it cannot be sent (a kind
    /// the server does not serve: failed, or in a dry run to be created with its CRD; in a dry
    /// run, an object of a namespace the dry run would create: to be created with it).
    /// (The object is moved out of `object`, which is left `null`: a thousand objects are not
    /// copied.)
    async fn prepare(
        &self,
        object: &mut PlannedObject,
        release_kinds: &BTreeSet<(String, String)>,
        new_namespaces: &BTreeSet<&str>,
    ) -> Result<Result<Undigested, AppliedObject>, StageError> {
        // An unreadable wait path fails the object before anything is sent, in a dry run too.
        if let Some(text) = annotation_of(&object.object, WAIT_FOR_PROPERTIES)
            && let Err(problem) = health::read_property_waits(text)
        {
            return Ok(Err(self.failed(
                object,
                String::new(),
                format!("{} ({}): {problem}", object.key, object.file),
            )));
        }
        let info = self
            .cluster
            .resource(&object.key)
            .await
            .map_err(|failure| {
                request_failure(&failure, &format!("discovery for {}", object.key))
            })?;
        let Some(info) = info else {
            if self.dry_run
                && release_kinds.contains(&(object.key.group.clone(), object.key.kind.clone()))
            {
                let mut record = self.failed(object, String::new(), String::new());
                record.outcome = ApplyOutcome::Created;
                record.error = None;
                return Ok(Err(record));
            }
            return Ok(Err(self.failed(
                object,
                String::new(),
                format!(
                    "{} ({}): the server has no resource for kind {} in {} (is its CustomResourceDefinition installed?)",
                    object.key,
                    object.file,
                    object.key.kind,
                    object.key.api_version()
                ),
            )));
        };
        let value = std::mem::take(&mut object.object);
        let mut object = PlannedObject {
            object: value,
            ..object.clone()
        };
        if info.namespaced && object.key.namespace.is_none() {
            object.key.namespace = Some(self.app_namespace.clone());
            object.object["metadata"]["namespace"] = json!(self.app_namespace);
        } else if !info.namespaced && object.key.namespace.is_some() {
            object.key.namespace = None;
            if let Some(metadata) = object
                .object
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
            {
                metadata.remove("namespace");
            }
        }
        if let Some(namespace) = &object.key.namespace
            && new_namespaces.contains(namespace.as_str())
        {
            let mut record = self.failed(&object, String::new(), String::new());
            record.outcome = ApplyOutcome::Created;
            record.error = None;
            return Ok(Err(record));
        }
        Ok(Ok(self.body_without_digest(object, info)))
    }

    /// Whether `planned` holds a secret: a Secret, or a file rendered from a password item.
    fn holds_secret(&self, planned: &PlannedObject) -> bool {
        crate::source::holds_secret(&planned.key, &planned.file, &self.secret_files)
    }

    /// The body to send for `planned` (moved into it: `planned.object` is left `null`, nothing
    /// reads it after this).
    fn body_for(&self, planned: PlannedObject, info: ResourceInfo) -> Prepared {
        self.body_without_digest(planned, info).digested()
    }

    /// [`KubeApply::body_for`] but for the digest: the object with the ownership annotation.
    fn body_without_digest(&self, mut planned: PlannedObject, info: ResourceInfo) -> Undigested {
        let mut body = std::mem::take(&mut planned.object);
        annotations_mut(&mut body).insert(OWNER_ANNOTATION.into(), json!(self.app_slug));
        let holds_secret = self.holds_secret(&planned);
        Undigested {
            secret_key: holds_secret.then(|| self.context.fingerprint_key.clone()),
            planned,
            info,
            body,
        }
    }

    fn failed(&self, object: &PlannedObject, digest: String, error: String) -> AppliedObject {
        AppliedObject {
            key: object.key.clone(),
            file: object.file.clone(),
            step: object.step,
            outcome: ApplyOutcome::Failed,
            digest,
            uid: None,
            resource_version: None,
            conflicts: Vec::new(),
            taken_over: false,
            recreated: false,
            written_to: None,
            error: Some(error),
            dry_run: self.dry_run,
            waits: false,
            deletion_phase: 0,
            owned_fields_digest: None,
        }
    }

    /// The live objects of `objects`, by inventory id: a LIST per collection holding many of
    /// them, a GET each otherwise. With `metadata_only`, a LIST reads only the objects'
    /// metadata (all that [`Live::unchanged`] and the uid and resourceVersion need; not enough
    /// to compare a dry run's result with).
    async fn read_live(
        &self,
        objects: &[(&ObjectKey, &ResourceInfo)],
        metadata_only: bool,
    ) -> Result<HashMap<String, Live>, StageError> {
        let mut by_collection: BTreeMap<String, Vec<(&ObjectKey, &ResourceInfo)>> = BTreeMap::new();
        for (key, info) in objects {
            by_collection
                .entry(Cluster::collection_path(
                    key,
                    info,
                    key.namespace.as_deref(),
                ))
                .or_default()
                .push((key, info));
        }
        let mut live = HashMap::new();
        let mut singles = Vec::new();
        for (collection, members) in by_collection {
            if members.len() < LIST_FROM {
                singles.extend(members);
                continue;
            }
            let items = self
                .cluster
                .list_raw(&collection, metadata_only)
                .await
                .map_err(|failure| request_failure(&failure, &format!("listing {collection}")))?;
            let wanted: HashMap<&str, &ObjectKey> = members
                .iter()
                .map(|(key, _)| (key.name.as_str(), *key))
                .collect();
            for item in items {
                let item = Live::from_text(item);
                if let Some(name) = item.name()
                    && let Some(key) = wanted.get(name.as_str())
                {
                    live.insert(key.inventory_id(), item);
                }
            }
        }
        let singles: Vec<(ObjectKey, ResourceInfo)> = singles
            .into_iter()
            .map(|(key, info)| (key.clone(), info.clone()))
            .collect();
        let cluster = self.cluster;
        let found: Vec<Result<Option<(String, Value)>, StageError>> =
            futures_util::stream::iter(singles.into_iter().map(|(key, info)| async move {
                cluster
                    .get(&key, &info)
                    .await
                    .map(|found| found.map(|found| (key.inventory_id(), found)))
                    .map_err(|failure| request_failure(&failure, &format!("reading {key}")))
            }))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for result in found {
            if let Some((id, object)) = result? {
                live.insert(id, Live::from_value(object));
            }
        }
        Ok(live)
    }

    /// What `object` looks like when nobody touched it since `recorded` (its newest record)
    /// applied it (see [`AsApplied::of`]).
    fn as_applied<'a>(
        &'a self,
        object: &'a Prepared,
        recorded: Option<&'a AppliedObject>,
    ) -> Option<AsApplied<'a>> {
        let secret_key = self
            .holds_secret(&object.planned)
            .then_some(&*self.context.fingerprint_key);
        AsApplied::of(&object.digest, recorded, secret_key)
    }

    /// Applies one object (`recorded`: its newest record, of the previous apply or of an earlier
    /// run of this one); `Err` only for transient failures that outlasted the retries.
    async fn apply_one(
        &self,
        object: &Prepared,
        live: Option<Live>,
        recorded: Option<&AppliedObject>,
    ) -> Result<AppliedObject, ApiFailure> {
        let key = &object.planned.key;
        let file = &object.planned.file;
        let mut record = AppliedObject {
            key: key.clone(),
            file: file.clone(),
            step: object.planned.step,
            outcome: ApplyOutcome::Created,
            digest: object.digest.clone(),
            uid: None,
            resource_version: None,
            conflicts: Vec::new(),
            taken_over: false,
            recreated: false,
            written_to: None,
            error: None,
            dry_run: self.dry_run,
            waits: has_waits(&object.body),
            deletion_phase: phase(&object.body, DELETION_PHASE),
            owned_fields_digest: None,
        };
        let holds_secret = self.holds_secret(&object.planned);
        let secret_key = holds_secret.then_some(&*self.context.fingerprint_key);
        let expected = self.as_applied(object, recorded);
        let redact =
            |text: &str| crate::redact::redact_secret_values(&object.body, holds_secret, text);
        let refused = |mut record: AppliedObject, failure: &ApiFailure| {
            if failure.is_transient() {
                let mut failure = failure.clone();
                failure.message = redact(&failure.message);
                return Err(failure);
            }
            record.outcome = ApplyOutcome::Failed;
            record.error = Some(redact(&api_error(key, file, failure)));
            Ok(record)
        };
        // Besides its own annotation, why an object may be deleted and created again when a
        // field of it that cannot change did: a Job finished as its hook delete policy says.
        let mut finished_hook: Option<String> = None;
        if let Some(live) = live {
            record.outcome = ApplyOutcome::Configured;
            if let Some(expected) = &expected
                && let Some(seen) = live.seen.as_ref().filter(|seen| seen.unchanged(expected))
            {
                record.outcome = ApplyOutcome::Unchanged;
                record.uid = seen.metadata.uid.clone();
                record.resource_version = seen.metadata.resource_version.clone();
                record.owned_fields_digest = Some(expected.owned_fields_digest.to_string());
                return Ok(record);
            }
            let mut live = live.into_value()?;
            finished_hook = crate::hook_jobs::finished_as_its_policy_says(&object.body, &live);
            record.uid = meta(&live, "uid");
            record.resource_version = meta(&live, "resourceVersion");
            // (`kotsadm-replicated-registry` is exempt: with --kots-compat every app writes the
            // same one.)
            if let Some(owner) = annotation_of(&live, OWNER_ANNOTATION).filter(|owner| {
                *owner != self.app_slug
                    && !(object.planned.step == Step::PullSecrets
                        && key.name == windlass_stages::secrets::KOTS_COMPAT_PULL_SECRET)
            }) {
                // Every app applies as the same field manager, so the server would hand it
                // over without a conflict, and this app's next release could prune it.
                record.outcome = ApplyOutcome::Failed;
                record.error = Some(format!(
                    "{key} ({file}): it belongs to app {owner:?} (its {OWNER_ANNOTATION} annotation); windlass does not take another app's object over: delete it, or remove the annotation, to let {:?} own it",
                    self.app_slug
                ));
                return Ok(record);
            }
            if let Some(expected) = &expected
                && unchanged_without_asking(&live, expected)
            {
                record.outcome = ApplyOutcome::Unchanged;
                record.owned_fields_digest = Some(expected.owned_fields_digest.to_string());
                return Ok(record);
            }
            if !self.dry_run && needs_takeover(&live) {
                let now = self
                    .context
                    .services
                    .clock
                    .now()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                // The patch holds only if the object did not move since it was read: another
                // writer in between (or this very patch answered too late and retried) fails
                // its test, and the object is read again and the patch made anew.
                let mut reads = 0;
                loop {
                    let patch = takeover_patch(&live, &key.api_version(), &now);
                    match self.cluster.json_patch(key, &object.info, &patch).await {
                        Ok(patched) => {
                            live = patched;
                            record.taken_over = true;
                            break;
                        }
                        Err(failure)
                            if matches!(failure.status, 409 | 422) && reads < TAKEOVER_READS =>
                        {
                            reads += 1;
                            let Some(fresh) = self.cluster.get(key, &object.info).await? else {
                                // Transient: the stage runs again and creates it.
                                return Err(ApiFailure {
                                    status: 0,
                                    reason: "Gone".into(),
                                    message: format!(
                                        "{key} was deleted while windlass took it over ({failure})"
                                    ),
                                    causes: Vec::new(),
                                });
                            };
                            live = fresh;
                            record.uid = meta(&live, "uid");
                            record.resource_version = meta(&live, "resourceVersion");
                            if !needs_takeover(&live) {
                                break;
                            }
                        }
                        Err(failure) => return refused(record, &failure),
                    }
                }
            }
            match self
                .cluster
                .apply(key, &object.info, &object.wire, false, true)
                .await
            {
                Ok(result) => {
                    if comparable(&result) == comparable(&live) {
                        // A takeover already wrote the object (its resourceVersion moved).
                        record.outcome = if record.taken_over {
                            ApplyOutcome::Configured
                        } else {
                            ApplyOutcome::Unchanged
                        };
                        record.resource_version = meta(&live, "resourceVersion");
                        // The fields an apply would leave windlass owning, not those its live
                        // entry owns: fields windlass applies that another manager owns alone
                        // now (set back after someone removed them) would otherwise pass for
                        // windlass's once that manager removes them again.
                        record.owned_fields_digest = owned_fields_of(&result, secret_key);
                        return Ok(record);
                    }
                }
                Err(failure) if failure.status == 409 => {
                    record.conflicts = conflicts_of(&failure)
                        .into_iter()
                        .map(|conflict| Conflict {
                            manager: redact(&conflict.manager),
                            field: redact(&conflict.field),
                        })
                        .collect();
                }
                Err(failure) if failure.is_immutable_field() && self.dry_run => {
                    // What the real apply would meet: a delete and a create when the object
                    // allows it, else the refusal.
                    if annotation_of(&object.body, RECREATE_ANNOTATION) == Some("true")
                        || finished_hook.is_some()
                    {
                        record.recreated = true;
                        return Ok(record);
                    }
                    return refused(record, &with_recreate_hint(failure));
                }
                Err(failure) if failure.is_immutable_field() => {}
                Err(failure) => return refused(record, &failure),
            }
            if self.dry_run {
                return Ok(record);
            }
        }
        // Only the uid, the resourceVersion and windlass's owned fields of the answer are read.
        match self
            .cluster
            .apply_as::<LiveObject>(key, &object.info, &object.wire, true, self.dry_run)
            .await
        {
            Ok(result) => {
                record.owned_fields_digest = result.owned_fields_digest(secret_key);
                record.uid = result.metadata.uid;
                record.resource_version = result.metadata.resource_version;
                Ok(record)
            }
            Err(failure)
                if failure.is_immutable_field()
                    && (annotation_of(&object.body, RECREATE_ANNOTATION) == Some("true")
                        || finished_hook.is_some())
                    && !self.dry_run =>
            {
                let uid = record.uid.clone().unwrap_or_default();
                match self.cluster.delete(key, &object.info, &uid, false).await {
                    Ok(_) => {}
                    Err(failure) if failure.status == 404 => {}
                    Err(failure) => return refused(record, &failure),
                }
                let deleted = ObjectDeletedToRecreate {
                    key: key.clone(),
                    file: file.clone(),
                    uid: uid.clone(),
                    resource_version: record.resource_version.clone(),
                    refusal: redact(&match &finished_hook {
                        Some(why) => format!("{failure} (a finished hook Job: {why})"),
                        None => failure.to_string(),
                    }),
                };
                let recorded = match Fact::of(&deleted) {
                    Ok(fact) => self
                        .context
                        .record_fact(fact)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                if let Err(error) = recorded {
                    // Counted as transient: the stage runs again, finds the object gone and
                    // creates it.
                    return Err(ApiFailure {
                        status: 0,
                        reason: "NotRecorded".into(),
                        message: format!(
                            "{key}: deleted to recreate it, but recording that failed: {error}"
                        ),
                        causes: Vec::new(),
                    });
                }
                let deadline = Instant::now() + self.wait_timeout;
                while self.cluster.get(key, &object.info).await?.is_some() {
                    if Instant::now() >= deadline {
                        record.outcome = ApplyOutcome::Failed;
                        record.error = Some(format!(
                            "{key} ({file}): deleted to recreate it (immutable field changed), but it was still there after {}s",
                            self.wait_timeout.as_secs()
                        ));
                        return Ok(record);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                match self
                    .cluster
                    .apply(key, &object.info, &object.wire, true, false)
                    .await
                {
                    Ok(result) => {
                        record.recreated = true;
                        record.owned_fields_digest = owned_fields_of(&result, secret_key);
                        record.uid = meta(&result, "uid");
                        record.resource_version = meta(&result, "resourceVersion");
                        Ok(record)
                    }
                    Err(mut failure) => {
                        failure.message = format!(
                            "deleted (uid {uid}) to recreate it (immutable field changed), but creating it again failed: {}",
                            failure.message
                        );
                        record.uid = None;
                        record.resource_version = None;
                        refused(record, &failure)
                    }
                }
            }
            Err(failure) if failure.is_immutable_field() => {
                refused(record, &with_recreate_hint(failure))
            }
            Err(failure) => refused(record, &failure),
        }
    }

    async fn record_wait(&self, wait: WaitFinished) -> Result<(), StageError> {
        self.context.record_fact(Fact::of(&wait)?).await?;
        Ok(())
    }

    /// Polls `check` (which returns whether the condition holds and what it saw) until it holds
    /// or the deadline passes; records the outcome.
    async fn wait_until<F, Fut>(
        &self,
        key: Option<ObjectKey>,
        wait: WaitKind,
        mut check: F,
    ) -> Result<WaitFinished, StageError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, String, Option<SeenVersion>), StageError>>,
    {
        let started = Instant::now();
        let deadline = started
            .checked_add(self.wait_timeout)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600));
        let mut delay = Duration::from_millis(50);
        let mut announced = false;
        let what = key
            .as_ref()
            .map_or_else(|| "the app".to_string(), ToString::to_string);
        let mut last_seen: Option<SeenVersion> = None;
        loop {
            // Each check gets what is left of the deadline (and a moment more to answer): a
            // server that does not answer, or answers 429 and 5xx, is "not yet" until then, so
            // that no wait outlives its deadline by more than that moment.
            let left = deadline.saturating_duration_since(Instant::now()) + CHECK_GRACE;
            let (met, detail, seen) = match tokio::time::timeout(left, check()).await {
                Ok(Ok(seen)) => seen,
                Ok(Err(error)) if error.class == windlass_engine::FailureClass::Transient => {
                    (false, format!("could not read it: {}", error.message), None)
                }
                Ok(Err(error)) => {
                    let last_seen = last_seen.unwrap_or_default();
                    let failed = WaitFinished {
                        key,
                        wait,
                        outcome: WaitOutcome::Failed,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                        detail: error.message.clone(),
                        resource_version: last_seen.resource_version,
                        uid: last_seen.uid,
                    };
                    self.record_wait(failed).await?;
                    return Err(error);
                }
                Err(_) => (
                    false,
                    "the API server did not answer in time".to_string(),
                    None,
                ),
            };
            last_seen = seen.or(last_seen);
            let elapsed = started.elapsed();
            if !met {
                // Said once, on the terminal, when a wait does not hold at once; then the
                // stage's line shows what each check saw.
                if !announced {
                    announced = true;
                    self.context.progress.note(&format!(
                        "{}: waiting up to {}s for {what} to be {} (now {detail})",
                        self.context.stage_name,
                        self.wait_timeout.as_secs(),
                        wait_words(wait),
                    ));
                }
                self.context.progress.stage_status(
                    &self.context.stage_name,
                    &format!(
                        "waiting for {what} to be {}: {detail} ({}s of {}s)",
                        wait_words(wait),
                        elapsed.as_secs(),
                        self.wait_timeout.as_secs()
                    ),
                );
            }
            let timed_out = !met && Instant::now() >= deadline;
            if met || timed_out {
                let finished = WaitFinished {
                    key,
                    wait,
                    outcome: if met {
                        WaitOutcome::Met
                    } else {
                        WaitOutcome::TimedOut
                    },
                    elapsed_ms: elapsed.as_millis() as u64,
                    detail,
                    resource_version: last_seen
                        .as_ref()
                        .and_then(|seen| seen.resource_version.clone()),
                    uid: last_seen.as_ref().and_then(|seen| seen.uid.clone()),
                };
                if announced {
                    self.context.progress.note(&format!(
                        "{}: {what} {} after {:.1}s ({})",
                        self.context.stage_name,
                        if met {
                            format!("is {}", wait_words(wait))
                        } else {
                            format!("was not {} by the deadline", wait_words(wait))
                        },
                        elapsed.as_secs_f64(),
                        finished.detail
                    ));
                    self.context
                        .progress
                        .stage_status(&self.context.stage_name, "");
                }
                self.record_wait(finished.clone()).await?;
                return Ok(finished);
            }
            tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    fn timed_out(finished: &WaitFinished, what: &str, wait_timeout: Duration) -> StageError {
        StageError::permanent(format!(
            "{what}: not met after {}s (--wait-timeout); last seen: {}",
            wait_timeout.as_secs(),
            finished.detail
        ))
    }

    /// After an undeploy's prune: waits until every object it recorded as deleted (in this run
    /// or an earlier one of the stage) is gone — not found, or found under another uid — and
    /// records the wait (`gone`, for the app as a whole), failing the stage at the deadline.
    /// PersistentVolumeClaims are not waited for: one a pod still mounts stays until the pod
    /// goes (KOTS never waits on them either).
    pub async fn wait_until_gone(&self) -> Result<(), StageError> {
        let mut deleted: BTreeMap<String, (ObjectKey, String)> = BTreeMap::new();
        for event in self.context.recorded_facts().await {
            if event.event_type != OBJECT_PRUNED {
                continue;
            }
            let pruned: ObjectPruned = serde_json::from_value(event.payload)
                .map_err(|error| StageError::permanent(error.to_string()))?;
            let claim = pruned.key.group.is_empty() && pruned.key.kind == "PersistentVolumeClaim";
            if pruned.outcome == PruneOutcome::Deleted && !pruned.dry_run && !claim {
                deleted.insert(pruned.key.inventory_id(), (pruned.key, pruned.uid));
            }
        }
        let mut targets: Vec<(ObjectKey, ResourceInfo, String)> = Vec::new();
        for (key, uid) in deleted.into_values() {
            // A kind the server no longer serves in any version has no objects left.
            if let Some((served, info)) = self
                .cluster
                .resource_served(&key)
                .await
                .map_err(|failure| request_failure(&failure, &format!("discovery for {key}")))?
            {
                targets.push((served, info, uid));
            }
        }
        if targets.is_empty() {
            return Ok(());
        }
        let targets = &targets;
        let finished = self
            .wait_until(None, WaitKind::Gone, || async move {
                let keys: Vec<(&ObjectKey, &ResourceInfo)> =
                    targets.iter().map(|(key, info, _)| (key, info)).collect();
                let live = self.read_live(&keys, true).await?;
                let left: Vec<&ObjectKey> = targets
                    .iter()
                    .filter(|(key, _, uid)| {
                        live.get(&key.inventory_id()).is_some_and(|found| {
                            uid.is_empty() || found.uid().as_ref() == Some(uid)
                        })
                    })
                    .map(|(key, _, _)| key)
                    .collect();
                let detail = match left.first() {
                    None => format!("all {} deleted objects gone", targets.len()),
                    Some(first) => format!(
                        "{} of {} deleted objects still there, {first} first",
                        left.len(),
                        targets.len()
                    ),
                };
                Ok((left.is_empty(), detail, None))
            })
            .await?;
        if finished.outcome != WaitOutcome::Met {
            return Err(Self::timed_out(
                &finished,
                "the objects the undeploy deleted to be gone",
                self.wait_timeout,
            ));
        }
        Ok(())
    }

    /// Waits for the CRDs applied to be Established and the Namespaces Active.
    async fn wait_for_foundations(
        &self,
        applied: &BTreeMap<String, (AppliedObject, InventoryEntry)>,
    ) -> Result<(), StageError> {
        if self.dry_run {
            return Ok(());
        }
        for (record, _) in applied.values() {
            let key = &record.key;
            let (wait, info, holds): (WaitKind, ResourceInfo, fn(&Value) -> bool) =
                match (key.group.as_str(), key.kind.as_str()) {
                    ("apiextensions.k8s.io", "CustomResourceDefinition") => (
                        WaitKind::Established,
                        ResourceInfo {
                            plural: "customresourcedefinitions".into(),
                            namespaced: false,
                        },
                        health::crd_established,
                    ),
                    ("", "Namespace") => (
                        WaitKind::Active,
                        ResourceInfo::namespaces(),
                        health::namespace_active,
                    ),
                    _ => continue,
                };
            let finished = self
                .wait_until(Some(key.clone()), wait, || {
                    let info = info.clone();
                    async move {
                        let live =
                            self.cluster.get(key, &info).await.map_err(|failure| {
                                request_failure(&failure, &format!("reading {key}"))
                            })?;
                        let Some(live) = live else {
                            return Ok((false, "missing".into(), None));
                        };
                        if wait == WaitKind::Active
                            && live.pointer("/status/phase").and_then(Value::as_str)
                                == Some("Terminating")
                        {
                            // It will never be Active again: it is being deleted.
                            return Err(StageError::permanent(format!(
                                "{key} is Terminating (being deleted): it cannot be used until it is gone and applied again"
                            )));
                        }
                        Ok((
                            holds(&live),
                            foundation_detail(wait, &live),
                            seen_version(&live),
                        ))
                    }
                })
                .await?;
            if finished.outcome == WaitOutcome::TimedOut {
                return Err(Self::timed_out(
                    &finished,
                    &format!("waiting for {key} to be {wait:?}"),
                    self.wait_timeout,
                ));
            }
        }
        Ok(())
    }

    /// `kots.io/wait-for-ready` and `kots.io/wait-for-properties` of one applied object.
    async fn wait_for_annotated(&self, object: &Prepared) -> Result<(), StageError> {
        let key = &object.planned.key;
        if annotation_of(&object.body, WAIT_FOR_READY) == Some("true") {
            let finished = self
                .wait_until(Some(key.clone()), WaitKind::Ready, || async {
                    let state = self.object_state(key, &object.info).await?;
                    Ok((
                        state.0 == AppState::Ready,
                        state.0.as_str().to_string(),
                        state.1,
                    ))
                })
                .await?;
            if finished.outcome == WaitOutcome::TimedOut {
                return Err(Self::timed_out(
                    &finished,
                    &format!("{key} ({}): {WAIT_FOR_READY}", object.planned.file),
                    self.wait_timeout,
                ));
            }
        }
        if let Some(text) = annotation_of(&object.body, WAIT_FOR_PROPERTIES) {
            let wanted = health::read_property_waits(text).map_err(|problem| {
                StageError::permanent(format!("{key} ({}): {problem}", object.planned.file))
            })?;
            let finished = self
                .wait_until(Some(key.clone()), WaitKind::Properties, || async {
                    let live = self
                        .cluster
                        .get(key, &object.info)
                        .await
                        .map_err(|failure| request_failure(&failure, &format!("reading {key}")))?;
                    let Some(live) = live else {
                        return Ok((false, "missing".to_string(), None));
                    };
                    let mut seen = Vec::new();
                    let mut met = true;
                    for pair in &wanted {
                        let value = health::property(&live, &pair.path);
                        met &= value.as_deref() == Some(pair.value.as_str());
                        seen.push(format!("{}={}", pair.path, value.unwrap_or_default()));
                    }
                    Ok((met, seen.join(","), seen_version(&live)))
                })
                .await?;
            if finished.outcome == WaitOutcome::TimedOut {
                return Err(Self::timed_out(
                    &finished,
                    &format!(
                        "{key} ({}): {WAIT_FOR_PROPERTIES} {text:?}",
                        object.planned.file
                    ),
                    self.wait_timeout,
                ));
            }
        }
        Ok(())
    }

    /// The KOTS state of one object (and its uid and resourceVersion); kinds without rules are
    /// ready once they exist.
    async fn object_state(
        &self,
        key: &ObjectKey,
        info: &ResourceInfo,
    ) -> Result<(AppState, Option<SeenVersion>), StageError> {
        let read = |failure: ApiFailure| request_failure(&failure, &format!("reading {key}"));
        let Some(live) = self.cluster.get(key, info).await.map_err(read)? else {
            return Ok((AppState::Missing, None));
        };
        let resource_version = seen_version(&live);
        let state = match key.kind.as_str() {
            "Deployment" => health::deployment_state(&live),
            "StatefulSet" => health::statefulset_state(&live),
            "DaemonSet" => health::daemonset_state(&live),
            "PersistentVolumeClaim" => health::pvc_state(&live),
            "Service" => health::service_state(&live, &self.endpoint_slices(key).await?),
            "Ingress" => {
                let mut backends = Vec::new();
                for backend in health::ingress_backends(&live) {
                    let service_key = ObjectKey {
                        group: String::new(),
                        version: "v1".into(),
                        kind: "Service".into(),
                        namespace: key.namespace.clone(),
                        name: backend,
                    };
                    let service_info = ResourceInfo {
                        plural: "services".into(),
                        namespaced: true,
                    };
                    backends.push(
                        match self
                            .cluster
                            .get(&service_key, &service_info)
                            .await
                            .map_err(read)?
                        {
                            Some(service) => (
                                health::endpoints_state(
                                    &service,
                                    &self.endpoint_slices(&service_key).await?,
                                ),
                                Some(service),
                            ),
                            None => (AppState::Missing, None),
                        },
                    );
                }
                health::ingress_state(&live, &backends)
            }
            _ => AppState::Ready,
        };
        Ok((state, resource_version))
    }

    /// The EndpointSlices of Service `key`.
    async fn endpoint_slices(&self, key: &ObjectKey) -> Result<Vec<Value>, StageError> {
        let namespace = key.namespace.as_deref().unwrap_or(&self.app_namespace);
        let path = format!(
            "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D{}",
            key.name
        );
        let slices = match self
            .cluster
            .call(http::Method::GET, &path, None, None)
            .await
        {
            Ok(list) => list
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            Err(failure) if failure.status == 404 => Vec::new(),
            Err(failure) => {
                return Err(request_failure(
                    &failure,
                    &format!("listing endpoint slices of {key}"),
                ));
            }
        };
        Ok(slices)
    }

    /// The app state from the status informers, waited for until ready or the wait deadline (a
    /// deadline passing is recorded and noted, not a failure: the app is installed, not ready;
    /// `None` for a dry run), with notes on what timed out or could not be watched: the last
    /// thing the apply does, after the objects, the prune and the charts handed to helm, whose
    /// workloads the informers often name.
    pub async fn app_state(&self) -> Result<(Option<AppState>, Vec<String>), StageError> {
        let mut notes = Vec::new();
        if self.dry_run {
            return Ok((None, notes));
        }
        let state = self.observe_app_state(&mut notes).await?;
        Ok((Some(state), notes))
    }

    async fn observe_app_state(&self, notes: &mut Vec<String>) -> Result<AppState, StageError> {
        let mut informers: Vec<health::Informer> = Vec::new();
        // Entries that name nothing windlass can watch: counted as missing (KOTS sends no state
        // for an app whose informers do not parse), and said why.
        let mut unreadable: Vec<ResourceState> = Vec::new();
        for text in self.status_informers.iter().map(|text| text.trim()) {
            if text.is_empty() {
                continue;
            }
            match health::parse_informer(text, &self.app_namespace) {
                Some(informer) => {
                    if informer.kind.is_none() {
                        notes.push(format!(
                            "statusInformers entry {text:?}: KOTS's status informers do not watch this kind (Deployment, StatefulSet, DaemonSet, Service, Ingress, PersistentVolumeClaim); it counts as missing"
                        ));
                    }
                    informers.push(informer);
                }
                None => {
                    notes.push(format!(
                        "statusInformers entry {text:?} is not [namespace/]kind/name; it counts as missing"
                    ));
                    unreadable.push(ResourceState {
                        informer: text.to_string(),
                        state: AppState::Missing,
                    });
                }
            }
        }
        let last: Arc<tokio::sync::Mutex<Vec<ResourceState>>> = Arc::default();
        let finished = self
            .wait_until(None, WaitKind::AppReady, || {
                let informers = informers.clone();
                let last = last.clone();
                let unreadable = unreadable.clone();
                async move {
                    let mut states = unreadable;
                    for informer in &informers {
                        let state = match informer.kind {
                            None => AppState::Missing,
                            Some(kind) => {
                                let (group, version, plural) = match kind {
                                    "Deployment" => ("apps", "v1", "deployments"),
                                    "StatefulSet" => ("apps", "v1", "statefulsets"),
                                    "DaemonSet" => ("apps", "v1", "daemonsets"),
                                    "Service" => ("", "v1", "services"),
                                    "Ingress" => ("networking.k8s.io", "v1", "ingresses"),
                                    _ => ("", "v1", "persistentvolumeclaims"),
                                };
                                let key = ObjectKey {
                                    group: group.into(),
                                    version: version.into(),
                                    kind: kind.into(),
                                    namespace: Some(informer.namespace.clone()),
                                    name: informer.name.clone(),
                                };
                                let info = ResourceInfo {
                                    plural: plural.into(),
                                    namespaced: true,
                                };
                                match self.object_state(&key, &info).await {
                                    Ok((state, _)) => state,
                                    // A read that failed (a refusal, or a server that is not
                                    // answering) does not fail the install, nor hide the other
                                    // informers: this resource counts as unavailable, as KOTS
                                    // counts it, and the next check asks again.
                                    Err(error) => {
                                        tracing::debug!(%key, error = %error.message, "informer unreadable");
                                        AppState::Unavailable
                                    }
                                }
                            }
                        };
                        states.push(ResourceState {
                            informer: informer.text.clone(),
                            state,
                        });
                    }
                    let app = states
                        .iter()
                        .map(|state| state.state)
                        .min()
                        .unwrap_or(AppState::Ready);
                    let detail = states
                        .iter()
                        .map(|state| format!("{} {}", state.informer, state.state.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    *last.lock().await = states;
                    Ok((
                        app == AppState::Ready,
                        format!("app {}; {detail}", app.as_str()),
                        None,
                    ))
                }
            })
            .await?;
        let mut resources = std::mem::take(&mut *last.lock().await);
        if resources.is_empty() {
            // No check finished (the server never answered in time): every informer is
            // unavailable, not the app ready.
            resources = unreadable
                .iter()
                .cloned()
                .chain(informers.iter().map(|informer| ResourceState {
                    informer: informer.text.clone(),
                    state: AppState::Unavailable,
                }))
                .collect();
        }
        let state = resources
            .iter()
            .map(|state| state.state)
            .min()
            .unwrap_or(AppState::Ready);
        self.context
            .record_fact(Fact::of(&AppStateObserved { state, resources })?)
            .await?;
        if finished.outcome == WaitOutcome::TimedOut {
            notes.push(format!(
                "the app is {} after {}s (--wait-timeout): {}",
                state.as_str(),
                self.wait_timeout.as_secs(),
                finished.detail
            ));
        }
        Ok(state)
    }

    /// Carries out prune actions of one group (one deletion phase and kind) concurrently, then
    /// records the decisions made now in one durable commit: a decision an earlier run of this
    /// stage recorded (`pruned_before`) about the same object (the same uid: not one an apply
    /// since made again) is taken as recorded, an object another instance holds (`others`) is
    /// left to it. Answers each action's entry with its decision, in order. Once an action fails
    /// (a server that kept failing), no other starts, and the decisions made are recorded before
    /// the error is returned. Before the first delete, the objects about to be deleted are
    /// recorded (`ObjectsDeleting`), so that a process killed before the decisions' commit,
    /// having deleted objects without recording it, is resumed knowing: the resumed run records
    /// such an object, found gone, as deleted.
    async fn prune_group(
        &self,
        group: Vec<PruneAction>,
        earlier: &EarlierPrunes,
        others: &HashMap<String, OtherInstance>,
        applied: &BTreeMap<String, (AppliedObject, InventoryEntry)>,
        settled: &[(InventoryEntry, ObjectPruned)],
    ) -> Result<Vec<(InventoryEntry, ObjectPruned)>, StageError> {
        let pruned_before = &earlier.decided;
        let decided_before = |entry: &InventoryEntry| {
            pruned_before
                .get(&entry.key.inventory_id())
                .filter(|pruned| {
                    !pruned.dry_run && (entry.uid.is_empty() || pruned.uid == entry.uid)
                })
                .cloned()
        };
        // The deletes about to be tried, recorded durably first.
        if !self.dry_run {
            let deleting: Vec<DeletingObject> = group
                .iter()
                .filter_map(|action| match action {
                    PruneAction::Delete(entry) => Some(entry),
                    PruneAction::Keep(..) => None,
                })
                .filter(|entry| {
                    decided_before(entry).is_none()
                        && !others.contains_key(&entry.key.inventory_id())
                })
                .map(|entry| DeletingObject {
                    key: entry.key.clone(),
                    uid: entry.uid.clone(),
                })
                .collect();
            if !deleting.is_empty() {
                self.context
                    .record_fact(Fact::of(&ObjectsDeleting { objects: deleting })?)
                    .await?;
            }
        }
        let decided_before = &decided_before;
        let failed = std::sync::atomic::AtomicBool::new(false);
        let failed = &failed;
        let results: Vec<Result<Option<PruneDecision>, StageError>> =
            futures_util::stream::iter(group.into_iter().map(|action| async move {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(None);
                }
                let entry = match &action {
                    PruneAction::Delete(entry) | PruneAction::Keep(entry, _) => entry.clone(),
                };
                let id = entry.key.inventory_id();
                if let Some(pruned) = decided_before(&entry) {
                    return Ok(Some((entry, pruned, false)));
                }
                let deleting_before = earlier
                    .deleting
                    .get(&id)
                    .is_some_and(|uid| *uid == entry.uid);
                let pruned = match others.get(&id) {
                    Some(holder) => self.left_to(&entry, holder),
                    None => match self
                        .prune_one(&action, applied, settled, deleting_before)
                        .await
                    {
                        Ok(pruned) => pruned,
                        Err(error) => {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed);
                            return Err(error);
                        }
                    },
                };
                Ok(Some((entry, pruned, true)))
            }))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut decided = Vec::with_capacity(results.len());
        let mut failure = None;
        for result in results {
            match result {
                Ok(Some(decision)) => decided.push(decision),
                Ok(None) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        let mut new_facts = Vec::new();
        for (_, pruned, new) in &decided {
            if *new {
                new_facts.push(Fact::of(pruned)?);
            }
        }
        if let Some(last) = new_facts.pop() {
            for fact in new_facts {
                self.context.defer_fact(fact).await;
            }
            self.context.record_fact(last).await?;
        }
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(decided
            .into_iter()
            .map(|(entry, pruned, _)| (entry, pruned))
            .collect())
    }

    /// Carries out one prune action: re-reads the object and deletes it only if it is still the
    /// one applied (same uid, or a digest an apply that never heard back sent) and still carries
    /// the ownership annotation.
    async fn prune_one(
        &self,
        action: &PruneAction,
        applied: &BTreeMap<String, (AppliedObject, InventoryEntry)>,
        settled: &[(InventoryEntry, ObjectPruned)],
        deleting_before: bool,
    ) -> Result<ObjectPruned, StageError> {
        let (entry, kept_because) = match action {
            PruneAction::Delete(entry) => (entry, None),
            PruneAction::Keep(entry, reason) => (entry, Some(*reason)),
        };
        let mut pruned = ObjectPruned {
            key: entry.key.clone(),
            uid: entry.uid.clone(),
            outcome: PruneOutcome::Kept,
            kept_because,
            detail: None,
            resource_version: None,
            dry_run: self.dry_run,
        };
        if kept_because.is_some() {
            return Ok(pruned);
        }
        let recorded_key = &entry.key;
        // A read the server refuses leaves the object where it is, in the inventory, as a
        // refused delete does: the next install tries again.
        let refused_read = |mut pruned: ObjectPruned, failure: &ApiFailure| {
            pruned.outcome = PruneOutcome::Refused;
            pruned.detail = Some(format!("reading it before the delete: {failure}"));
            pruned
        };
        // Read and deleted in the version the server serves now, if not the one applied.
        let (served_key, info) = match self.cluster.resource_served(recorded_key).await {
            Ok(Some(served)) => served,
            Ok(None) => {
                pruned.outcome = PruneOutcome::Gone;
                pruned.detail = Some(format!(
                    "the server no longer serves {} in any version of {}",
                    recorded_key.kind,
                    recorded_key.api_version()
                ));
                return Ok(pruned);
            }
            Err(failure) if failure.is_transient() => {
                return Err(transient(&failure, &format!("reading {recorded_key}")));
            }
            Err(failure) => return Ok(refused_read(pruned, &failure)),
        };
        let key = &served_key;
        let live = match self.cluster.get(key, &info).await {
            Ok(Some(live)) => live,
            // An earlier run of this stage recorded it about to be deleted and was stopped before
            // it recorded the outcome: most likely its own delete.
            Ok(None) if deleting_before => {
                pruned.outcome = PruneOutcome::Deleted;
                pruned.detail = Some(
                    "found gone: an earlier run of this apply was deleting it and stopped before it recorded the delete".into(),
                );
                return Ok(pruned);
            }
            Ok(None) => {
                pruned.outcome = PruneOutcome::Gone;
                return Ok(pruned);
            }
            Err(failure) if failure.is_transient() => {
                return Err(transient(&failure, &format!("reading {key}")));
            }
            Err(failure) => return Ok(refused_read(pruned, &failure)),
        };
        pruned.resource_version = meta(&live, "resourceVersion");
        let live_uid = meta(&live, "uid").unwrap_or_default();
        // The object recorded, or one an apply that never heard back made: it carries what
        // that apply sent.
        let recorded = !entry.uid.is_empty() && live_uid == entry.uid;
        let sent_unanswered = annotation_of(&live, DIGEST_ANNOTATION)
            .is_some_and(|digest| entry.sent_digests.iter().any(|sent| sent == digest));
        if !recorded && !sent_unanswered {
            pruned.outcome = PruneOutcome::NotOwned;
            pruned.detail = Some(if entry.uid.is_empty() {
                format!(
                    "its {DIGEST_ANNOTATION} is none that an apply which never heard back sent: not the object it made"
                )
            } else {
                format!("its uid is now {live_uid}: another object of the same name")
            });
            return Ok(pruned);
        }
        pruned.uid.clone_from(&live_uid);
        if annotation_of(&live, OWNER_ANNOTATION) != Some(self.app_slug.as_str()) {
            pruned.outcome = PruneOutcome::NotOwned;
            pruned.detail = Some(format!(
                "it no longer carries {OWNER_ANNOTATION}: {}",
                self.app_slug
            ));
            return Ok(pruned);
        }
        if is_kept(&live) {
            pruned.kept_because = Some(crate::order::KeepReason::KeepAnnotation);
            return Ok(pruned);
        }
        if key.group.is_empty()
            && key.kind == "Namespace"
            && let Some(detail) = self.namespace_still_holds(&key.name, applied, settled)
        {
            pruned.kept_because = Some(crate::order::KeepReason::InUse);
            pruned.detail = Some(detail);
            return Ok(pruned);
        }
        if key.group == "apiextensions.k8s.io" && key.kind == "CustomResourceDefinition" {
            match self.crd_still_needed(&live, applied, settled).await? {
                Some(CrdVerdict::Keep(reason, detail)) => {
                    pruned.kept_because = Some(reason);
                    pruned.detail = Some(detail);
                    return Ok(pruned);
                }
                Some(CrdVerdict::Refused(detail)) => {
                    pruned.outcome = PruneOutcome::Refused;
                    pruned.detail = Some(detail);
                    return Ok(pruned);
                }
                None => {}
            }
        }
        match self
            .cluster
            .delete(key, &info, &live_uid, self.dry_run)
            .await
        {
            Ok(_) => pruned.outcome = PruneOutcome::Deleted,
            Err(failure) if failure.status == 404 => pruned.outcome = PruneOutcome::Gone,
            Err(failure) if failure.status == 409 => {
                pruned.outcome = PruneOutcome::NotOwned;
                pruned.detail = Some(failure.to_string());
            }
            Err(failure) if failure.is_transient() => {
                return Err(transient(&failure, &format!("deleting {key}")));
            }
            Err(failure) => {
                pruned.outcome = PruneOutcome::Refused;
                pruned.detail = Some(failure.to_string());
            }
        }
        Ok(pruned)
    }
}

impl KubeApply<'_> {
    /// Why the Namespace `name` the release dropped must stay: objects of the previous apply
    /// in it that this prune did not delete (kept, refused, left to another instance, or not
    /// come to yet), which its delete would delete with it; `None` when there are none. (Objects this apply applied there are only pull-secret copies:
    /// any other would have kept it in use. They go with it.)
    fn namespace_still_holds(
        &self,
        name: &str,
        applied: &BTreeMap<String, (AppliedObject, InventoryEntry)>,
        settled: &[(InventoryEntry, ObjectPruned)],
    ) -> Option<String> {
        // (An object found not to be the one applied, `not_owned`, is no longer the app's: it
        // holds the namespace no more than anything else in it does, as the inventory forgets
        // it.)
        let removed: BTreeSet<String> = settled
            .iter()
            .filter(|(_, pruned)| {
                matches!(
                    pruned.outcome,
                    PruneOutcome::Deleted | PruneOutcome::Gone | PruneOutcome::NotOwned
                )
            })
            .map(|(entry, _)| entry.key.inventory_id())
            .collect();
        let held: Vec<String> = self
            .previous
            .iter()
            .flatten()
            .filter(|entry| entry.key.namespace.as_deref() == Some(name))
            .filter(|entry| {
                let id = entry.key.inventory_id();
                !removed.contains(&id) && !applied.contains_key(&id)
            })
            .map(|entry| format!("{} {}", entry.key.kind, entry.key.name))
            .collect();
        if held.is_empty() {
            return None;
        }
        Some(format!(
            "{} object(s) of the previous apply in it were not deleted and would go with it: {}{}",
            held.len(),
            held.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if held.len() > 5 { ", ..." } else { "" }
        ))
    }
}

/// Why a CRD the release dropped is not deleted.
enum CrdVerdict {
    /// Kept, for this reason (with the objects that need it).
    Keep(crate::order::KeepReason, String),
    /// Its instances could not be listed: treated as a refused delete (it stays in the
    /// inventory, and the next install tries again).
    Refused(String),
}

impl KubeApply<'_> {
    /// Why a CRD the release dropped must stay, if it must: objects this install applied are of
    /// its kind, or custom resources the previous apply did not apply (another app's, this
    /// app's in another namespace, made by hand) are — deleting a CRD deletes every instance of
    /// it, in every namespace; or their list was refused, so that is not known.
    async fn crd_still_needed(
        &self,
        crd: &Value,
        applied: &BTreeMap<String, (AppliedObject, InventoryEntry)>,
        settled: &[(InventoryEntry, ObjectPruned)],
    ) -> Result<Option<CrdVerdict>, StageError> {
        let text = |pointer: &str| crd.pointer(pointer).and_then(Value::as_str).unwrap_or("");
        let (group, kind, plural) = (
            text("/spec/group"),
            text("/spec/names/kind"),
            text("/spec/names/plural"),
        );
        if applied
            .values()
            .any(|(record, _)| record.key.group == group && record.key.kind == kind)
        {
            return Ok(Some(CrdVerdict::Keep(
                crate::order::KeepReason::InUse,
                format!("this install applied objects of its kind {kind}"),
            )));
        }
        let version = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|versions| {
                versions
                    .iter()
                    .find(|version| version.get("served") == Some(&Value::Bool(true)))
            })
            .and_then(|version| version.get("name"))
            .and_then(Value::as_str);
        let Some(version) = version else {
            return Ok(None);
        };
        let collection = format!("/apis/{group}/{version}/{plural}");
        // Their metadata is enough: which they are, not what they hold.
        let instances = match self.cluster.list_raw(&collection, true).await {
            Ok(instances) => instances,
            Err(failure) if failure.status == 404 => return Ok(None),
            Err(failure) if failure.is_transient() => {
                return Err(transient(
                    &failure,
                    &format!("listing the {kind} objects before deleting their CRD"),
                ));
            }
            Err(failure) => {
                return Ok(Some(CrdVerdict::Refused(format!(
                    "listing the {kind} objects before deleting their CRD: {failure}"
                ))));
            }
        };
        /// What is read of each instance.
        #[derive(serde::Deserialize, Default)]
        struct Instance {
            #[serde(default)]
            metadata: InstanceMetadata,
        }
        #[derive(serde::Deserialize, Default)]
        struct InstanceMetadata {
            #[serde(default)]
            name: String,
            #[serde(default)]
            namespace: Option<String>,
            #[serde(default)]
            uid: String,
        }
        // Ours are the instances of the previous inventory this prune deleted or found gone
        // (by uid); any other would go with the CRD: one of another app, of this app in
        // another namespace, and one of ours the prune kept, could not delete, or has not come
        // to yet (a later deletion phase).
        let ours: BTreeSet<&str> = settled
            .iter()
            .filter(|(entry, pruned)| {
                !entry.left_to_other_instance
                    && matches!(pruned.outcome, PruneOutcome::Deleted | PruneOutcome::Gone)
            })
            .map(|(_, pruned)| pruned.uid.as_str())
            .filter(|uid| !uid.is_empty())
            .collect();
        let others: Vec<String> = instances
            .iter()
            .map(|raw| {
                serde_json::from_str::<Instance>(raw.get())
                    .unwrap_or_default()
                    .metadata
            })
            .filter(|metadata| !ours.contains(metadata.uid.as_str()))
            .map(|metadata| match metadata.namespace {
                Some(namespace) => format!("{namespace}/{}", metadata.name),
                None => metadata.name,
            })
            .collect();
        if others.is_empty() {
            return Ok(None);
        }
        Ok(Some(CrdVerdict::Keep(
            crate::order::KeepReason::HoldsOthers,
            format!(
                "{} {kind} object(s) this prune does not delete would go with it: {}{}",
                others.len(),
                others
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if others.len() > 5 { ", ..." } else { "" }
            ),
        )))
    }
}

/// Whether `body` carries a wait windlass carries out after applying it.
fn has_waits(body: &Value) -> bool {
    annotation_of(body, WAIT_FOR_READY) == Some("true")
        || annotation_of(body, WAIT_FOR_PROPERTIES).is_some()
}

fn count(counts: &mut ApplyCounts, outcome: ApplyOutcome) {
    match outcome {
        ApplyOutcome::Created => counts.created += 1,
        ApplyOutcome::Configured => counts.configured += 1,
        ApplyOutcome::Unchanged => counts.unchanged += 1,
        ApplyOutcome::Written => counts.written += 1,
        ApplyOutcome::Failed => {}
    }
}

/// Objects per `ObjectsSending` record at most (about 150 bytes each: far below the largest
/// record).
const SENDING_BATCH: usize = 5000;

impl KubeApply<'_> {
    /// Records `objects` as about to be sent, in one durable commit (a record per
    /// [`SENDING_BATCH`] objects), before the first of them is.
    async fn record_sending(&self, objects: &[&Prepared]) -> Result<(), StageError> {
        let mut batches = sending_records(objects).into_iter().peekable();
        while let Some(batch) = batches.next() {
            let fact = Fact::of(&batch)?;
            if batches.peek().is_some() {
                self.context.defer_fact(fact).await;
            } else {
                self.context.record_fact(fact).await?;
            }
        }
        Ok(())
    }
}

/// The records of `objects` about to be sent, [`SENDING_BATCH`] objects each at most, in order.
fn sending_records(objects: &[&Prepared]) -> Vec<ObjectsSending> {
    let sent: Vec<SentObject> = objects
        .iter()
        .map(|object| SentObject {
            key: object.planned.key.clone(),
            step: object.planned.step,
            digest: object.digest.clone(),
            deletion_phase: phase(&object.body, DELETION_PHASE),
        })
        .collect();
    in_sending_batches(sent)
}

/// `objects` in [`ObjectsSending`] records of [`SENDING_BATCH`] objects at most, in order.
fn in_sending_batches(objects: Vec<SentObject>) -> Vec<ObjectsSending> {
    let mut records = Vec::with_capacity(objects.len().div_ceil(SENDING_BATCH));
    let mut objects = objects.into_iter().peekable();
    while objects.peek().is_some() {
        records.push(ObjectsSending {
            objects: objects.by_ref().take(SENDING_BATCH).collect(),
        });
    }
    records
}

fn inventory_entry(object: &Prepared, record: &AppliedObject) -> InventoryEntry {
    InventoryEntry {
        key: record.key.clone(),
        uid: record.uid.clone().unwrap_or_default(),
        deletion_phase: phase(&object.body, DELETION_PHASE),
        keep: is_kept(&object.body),
        additional_namespace: false,
        sent_digests: Vec::new(),
        left_to_other_instance: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_request_is_permanent_and_an_expired_list_or_a_busy_server_is_not() {
        use windlass_engine::FailureClass;
        let failure = |status: u16, message: &str| ApiFailure {
            status,
            reason: String::new(),
            message: message.into(),
            causes: Vec::new(),
        };
        for (status, message, class) in [
            (403, "configmaps is forbidden", FailureClass::Permanent),
            (404, "not found", FailureClass::Permanent),
            (
                410,
                "The provided continue parameter is too old",
                FailureClass::Transient,
            ),
            (200, "the answer did not read", FailureClass::Transient),
            (429, "slow down", FailureClass::Transient),
            (503, "unavailable", FailureClass::Transient),
            (0, "connection refused", FailureClass::Transient),
            (
                500,
                "failed to create typed patch object (a/b; v1, Kind=X): .x: field not declared in schema",
                FailureClass::Permanent,
            ),
        ] {
            assert_eq!(
                request_failure(&failure(status, message), "listing").class,
                class,
                "{status} {message}"
            );
        }
    }

    #[test]
    fn prune_groups_cut_where_the_deletion_phase_or_the_kind_changes() {
        let delete = |phase: i64, kind: &str, name: &str| {
            PruneAction::Delete(InventoryEntry {
                key: ObjectKey {
                    group: String::new(),
                    version: "v1".into(),
                    kind: kind.into(),
                    namespace: Some("default".into()),
                    name: name.into(),
                },
                uid: String::new(),
                deletion_phase: phase,
                keep: false,
                additional_namespace: false,
                sent_digests: Vec::new(),
                left_to_other_instance: false,
            })
        };
        let names = |group: &[PruneAction]| -> Vec<String> {
            group
                .iter()
                .map(|action| match action {
                    PruneAction::Delete(entry) | PruneAction::Keep(entry, _) => {
                        entry.key.name.clone()
                    }
                })
                .collect()
        };
        let groups = prune_groups(vec![
            delete(0, "ConfigMap", "a"),
            delete(0, "ConfigMap", "b"),
            delete(0, "Secret", "c"),
            delete(1, "Secret", "d"),
            delete(1, "Secret", "e"),
            delete(1, "ConfigMap", "f"),
        ]);
        let groups: Vec<Vec<String>> = groups.iter().map(|group| names(group)).collect();
        assert_eq!(
            groups,
            [vec!["a", "b"], vec!["c"], vec!["d", "e"], vec!["f"]]
        );
        assert!(prune_groups(Vec::new()).is_empty());
    }

    #[test]
    fn a_group_is_announced_in_records_of_at_most_five_thousand_objects() {
        let objects: Vec<SentObject> = (0..12_001)
            .map(|index| SentObject {
                key: ObjectKey {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some("default".into()),
                    name: format!("cm-{index}"),
                },
                step: Step::Rest,
                digest: format!("d{index}"),
                deletion_phase: 0,
            })
            .collect();
        let records = in_sending_batches(objects);
        let sizes: Vec<usize> = records.iter().map(|record| record.objects.len()).collect();
        assert_eq!(sizes, [5000, 5000, 2001]);
        assert_eq!(records[1].objects[0].key.name, "cm-5000");
        assert_eq!(records[2].objects[2000].digest, "d12000");
        assert!(in_sending_batches(Vec::new()).is_empty());
    }

    /// The field set windlass's Apply entry owns in these tests' objects.
    fn owned_fields() -> Value {
        json!({"f:data": {".": {}, "f:value": {}},
               "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    }

    /// windlass's Apply entry owning [`owned_fields`].
    fn windlass_entry() -> Value {
        json!({"manager": "windlass", "operation": "Apply", "fieldsV1": owned_fields()})
    }

    /// What an apply of a body with `digest` left, owning fields with `owned_fields_digest`.
    fn as_applied<'a>(digest: &'a str, owned_fields_digest: &'a str) -> AsApplied<'a> {
        AsApplied {
            digest,
            owned_fields_digest,
            secret_key: None,
        }
    }

    #[test]
    fn an_object_is_untouched_only_when_windlass_alone_writes_more_than_status() {
        let live = |managers: Value| {
            json!({"metadata": {
                "annotations": {DIGEST_ANNOTATION: "d1"},
                "managedFields": managers,
            }})
        };
        let owned = owned_fields_digest(&owned_fields(), None);
        let left = as_applied("d1", &owned);
        let windlass = windlass_entry();
        let status = json!({"manager": "kube-controller-manager", "operation": "Update",
                            "subresource": "status"});
        let scale = json!({"manager": "kubectl", "operation": "Update", "subresource": "scale"});
        let edit = json!({"manager": "kubectl-edit", "operation": "Update"});
        assert!(unchanged_without_asking(&live(json!([windlass])), &left));
        assert!(unchanged_without_asking(
            &live(json!([windlass, status])),
            &left
        ));
        assert!(
            !unchanged_without_asking(&live(json!([windlass])), &as_applied("d2", &owned)),
            "another rendering"
        );
        assert!(
            !unchanged_without_asking(&live(json!([windlass, scale])), &left),
            "`kubectl scale` wrote spec.replicas"
        );
        assert!(!unchanged_without_asking(
            &live(json!([windlass, edit])),
            &left
        ));
        assert!(
            !unchanged_without_asking(&live(json!([status])), &left),
            "windlass no longer applies it"
        );
    }

    #[test]
    fn an_object_whose_owned_fields_shrank_is_not_unchanged_without_asking() {
        let recorded = owned_fields_digest(&owned_fields(), None);
        let left = as_applied("d", &recorded);
        let live = |fields_v1: &str| {
            format!(
                r#"{{"metadata": {{"name": "web", "annotations": {{"{DIGEST_ANNOTATION}": "d"}},
                   "managedFields": [{{"manager": "windlass", "operation": "Apply",
                                       "fieldsType": "FieldsV1", "fieldsV1": {fields_v1}}}]}}}}"#
            )
        };
        // Read from a LIST page (the light read), from a GET (whole), and as a Value: the same
        // answer each way.
        let unchanged = |text: &str| {
            let listed =
                Live::from_text(serde_json::value::RawValue::from_string(text.into()).unwrap());
            assert!(listed.seen.is_some(), "{text}");
            let whole: Value = serde_json::from_str(text).unwrap();
            let answers = [
                listed.unchanged(&left),
                Live::from_value(whole.clone()).unchanged(&left),
                unchanged_without_asking(&whole, &left),
            ];
            assert!(
                answers.iter().all(|answer| *answer == answers[0]),
                "{text}: {answers:?}"
            );
            answers[0]
        };
        // The same set compact with its keys sorted is hashed as it is, without decoding.
        let sorted = owned_fields().to_string();
        assert_eq!(digest_of_sorted_fields(sorted.as_bytes(), None), recorded);
        assert!(unchanged(&live(&sorted)));
        // The same set with its keys in another order and spaced out (a real server writes
        // them in its own order): unchanged.
        assert!(unchanged(&live(
            r#"{"f:metadata": {"f:labels": {"f:app": {}, ".": {}}}, "f:data": {"f:value": {}, ".": {}}}"#
        )));
        // `kubectl label ... app-`: the label left windlass's set, and the editor left no entry.
        assert!(!unchanged(&live(
            r#"{"f:data": {".": {}, "f:value": {}}, "f:metadata": {"f:labels": {".": {}}}}"#
        )));
        assert!(!unchanged(&live(r#"{"f:data": {".": {}, "f:value": {}}}"#)));
        assert!(!unchanged(&live("null")));
        // The digest is keyed for an object holding a secret, and compared keyed.
        let key = FingerprintKey::from_bytes([7; 32]);
        let keyed = owned_fields_digest(&owned_fields(), Some(&key));
        assert!(keyed.starts_with("fp1:") && keyed != recorded, "{keyed}");
        let secret = AsApplied {
            secret_key: Some(&key),
            ..as_applied("d", &keyed)
        };
        let whole: Value = serde_json::from_str(&live(&owned_fields().to_string())).unwrap();
        assert!(unchanged_without_asking(&whole, &secret));
        assert!(!unchanged_without_asking(&whole, &as_applied("d", &keyed)));
    }

    #[test]
    fn only_a_record_of_the_same_body_with_owned_fields_says_what_untouched_looks_like() {
        // A record of a windlass version before the owned fields digest reads, and says nothing.
        let old: AppliedObject = serde_json::from_value(json!({
            "key": {"group": "", "version": "v1", "kind": "ConfigMap",
                    "namespace": "default", "name": "web"},
            "file": "manifests/web.yaml", "step": "rest", "outcome": "created", "digest": "d",
            "uid": "u1", "resource_version": "5"
        }))
        .unwrap();
        assert_eq!(old.owned_fields_digest, None);
        assert!(AsApplied::of("d", Some(&old), None).is_none());
        let recorded = AppliedObject {
            owned_fields_digest: Some("fields".into()),
            ..old.clone()
        };
        let found = AsApplied::of("d", Some(&recorded), None).expect("the same body");
        assert_eq!((found.digest, found.owned_fields_digest), ("d", "fields"));
        assert!(
            AsApplied::of("d2", Some(&recorded), None).is_none(),
            "recorded for another body"
        );
        assert!(AsApplied::of("d", None, None).is_none());
        // Written back, it reads the same; without it, the record is written as before.
        let written = serde_json::to_value(&recorded).unwrap();
        assert_eq!(written["owned_fields_digest"], "fields");
        assert!(
            serde_json::to_value(&old)
                .unwrap()
                .get("owned_fields_digest")
                .is_none()
        );
    }

    #[test]
    fn a_listed_object_compares_equal_to_the_write_answer_without_kind_and_api_version() {
        // A real API server leaves apiVersion and kind off a LIST's items of a built-in type.
        let listed = json!({"metadata": {"name": "a", "resourceVersion": "5",
                            "managedFields": []}, "data": {"k": "v"}});
        let answered = json!({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "a", "resourceVersion": "6"},
                              "data": {"k": "v"}});
        assert_eq!(comparable(&listed), comparable(&answered));
        let changed = json!({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "a"}, "data": {"k": "w"}});
        assert_ne!(comparable(&listed), comparable(&changed));
    }

    #[test]
    fn takeover_folds_kubectl_entries_and_drops_the_annotation() {
        let live = json!({
            "metadata": {
                "resourceVersion": "7",
                "annotations": {LAST_APPLIED: "{}", "keep": "x"},
                "managedFields": [
                    {"manager": "kubectl-client-side-apply", "operation": "Update",
                     "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                                  "f:data": {"f:a": {}, "f:b": {}}}},
                    {"manager": "other", "operation": "Update", "fieldsV1": {"f:data": {"f:c": {}}}},
                ]
            }
        });
        assert!(needs_takeover(&live));
        let patch = takeover_patch(&live, "v1", "2026-01-01T00:00:00Z");
        let entries = patch[1]["value"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["manager"], "other");
        assert_eq!(entries[1]["manager"], "windlass");
        assert_eq!(entries[1]["operation"], "Apply");
        assert_eq!(
            entries[1]["fieldsV1"],
            json!({"f:metadata": {"f:annotations": {".": {}}}, "f:data": {"f:a": {}, "f:b": {}}})
        );
        assert_eq!(patch[0]["value"], "7");
        assert_eq!(patch[2]["op"], "remove");
    }

    #[test]
    fn only_an_object_nobody_else_touched_is_unchanged_without_asking() {
        let live = |managers: Value| json!({"metadata": {"annotations": {DIGEST_ANNOTATION: "d"}, "managedFields": managers}});
        let owned = owned_fields_digest(&owned_fields(), None);
        let left = as_applied("d", &owned);
        let elsewhere = as_applied("other", &owned);
        let windlass = windlass_entry();
        let status =
            json!({"manager": "controller", "operation": "Update", "subresource": "status"});
        let editor = json!({"manager": "kubectl-edit", "operation": "Update"});
        assert!(unchanged_without_asking(
            &live(json!([windlass, status])),
            &left
        ));
        assert!(!unchanged_without_asking(
            &live(json!([windlass, editor])),
            &left
        ));
        assert!(!unchanged_without_asking(
            &live(json!([windlass])),
            &elsewhere
        ));
        assert!(!unchanged_without_asking(&live(json!([])), &left));
        // The light read of a listed object answers as the whole object does.
        let cases = [
            (live(json!([windlass, status])), left),
            (live(json!([windlass, editor])), left),
            (live(json!([windlass])), elsewhere),
            (live(json!([])), left),
            (
                live(
                    json!([{"manager": "windlass", "operation": "Apply", "subresource": "",
                             "fieldsV1": owned_fields()}]),
                ),
                left,
            ),
            (
                live(
                    json!([{"manager": "windlass", "operation": "Update", "fieldsV1": owned_fields()}]),
                ),
                left,
            ),
            (
                live(json!([{"manager": "windlass", "operation": "Apply"}])),
                left,
            ),
            (json!({"metadata": {"managedFields": [windlass]}}), left),
            (
                json!({"metadata": {"annotations": {DIGEST_ANNOTATION: 7}, "managedFields": [windlass]}}),
                left,
            ),
        ];
        for (object, expected) in cases {
            let text = serde_json::value::to_raw_value(&object).unwrap();
            let listed = Live::from_text(text);
            assert!(listed.seen.is_some(), "{object}");
            assert_eq!(
                listed.unchanged(&expected),
                unchanged_without_asking(&object, &expected),
                "{object}"
            );
            assert_eq!(
                Live::from_value(object.clone()).unchanged(&expected),
                unchanged_without_asking(&object, &expected),
                "{object}"
            );
        }
        // A shape the light read does not take is decoded whole.
        let odd = json!({"metadata": {"name": 3, "annotations": {DIGEST_ANNOTATION: "d"}, "managedFields": [windlass]}});
        let listed = Live::from_text(serde_json::value::to_raw_value(&odd).unwrap());
        assert!(listed.seen.is_none());
        assert!(listed.unchanged(&left));
    }
}
