//! The facts the apply stage records. These structs are wire formats stored for ever: add only
//! optional fields; anything else bumps the version and adds an upcaster to [`SCHEMAS`]. Objects
//! and waits are recorded as the stage goes (`ObjectsSending` before each group of objects is sent,
//! `ObjectsApplied` for each batch of objects the server answered, `WaitFinished` durable at once,
//! `ObjectPruned` in one commit per group of objects pruned together, so a resumed apply does not
//! send or prune again what was recorded), the app state
//! once it is known (`AppStateObserved`), each chart handed to helm (`useHelmInstall: true`, `kots.io/v1beta2`)
//! (`HelmReleaseInstalled`) or uninstalled because the release dropped it, or an undeploy
//! removes the app (`HelmReleaseUninstalled`), each handing to `helm upgrade --install` announced first
//! (`HelmUpgradeStarted`) and each release a killed run's helm left pending freed
//! (`HelmReleaseFreed`), and the inventory when the stage completes (`ApplyCompleted`), which the
//! next install of the same app prunes against. No event holds an object's content: secrets are
//! applied, never recorded.

use serde::{Deserialize, Serialize};
use windlass_state::{EventPayload, EventSchema};

use crate::order::{InventoryEntry, KeepReason, ObjectKey, Step};

/// `ObjectsApplied`: a batch of objects applied (or written, or found unchanged, or refused).
pub const OBJECTS_APPLIED: &str = "ObjectsApplied";
/// `ObjectsSending`: a group of objects about to be sent to the cluster, recorded durably before
/// the first of them is.
pub const OBJECTS_SENDING: &str = "ObjectsSending";
/// `ObjectsDeleting`: a group of objects of the previous inventory about to be deleted by a
/// prune, recorded durably before the first delete.
pub const OBJECTS_DELETING: &str = "ObjectsDeleting";
/// `WaitFinished`: one wait ended (met, timed out or failed).
pub const WAIT_FINISHED: &str = "WaitFinished";
/// `ObjectPruned`: one object of the previous install deleted, kept or left.
pub const OBJECT_PRUNED: &str = "ObjectPruned";
/// `AppStateObserved`: the app state from the status informers.
pub const APP_STATE_OBSERVED: &str = "AppStateObserved";
/// `ApplyCompleted`: the inventory of what this install applied.
pub const APPLY_COMPLETED: &str = "ApplyCompleted";
/// `ApplyStarted`: an apply to a cluster began (which app, cluster and namespace), recorded with
/// its first object record, so that an apply that never completes can be told apart.
pub const APPLY_STARTED: &str = "ApplyStarted";

/// `ObjectDeletedToRecreate`: one object deleted because a field that cannot change did, and the
/// object asked (`windlass.io/recreate-on-immutable`) to be created again, or is a Job finished as
/// its hook delete policy says (see `hook_jobs`).
pub const OBJECT_DELETED_TO_RECREATE: &str = "ObjectDeletedToRecreate";

/// `HelmReleaseInstalled`: one chart handed to helm (`useHelmInstall: true`, `kots.io/v1beta2`)
/// installed (or written, or refused).
pub const HELM_RELEASE_INSTALLED: &str = "HelmReleaseInstalled";

/// `HelmReleaseUninstalled`: one chart handed to helm that the previous apply installed and
/// the release no longer has, handed to `helm uninstall`.
pub const HELM_RELEASE_UNINSTALLED: &str = "HelmReleaseUninstalled";

/// `HelmUpgradeStarted`: a chart about to be handed to `helm upgrade --install`, recorded
/// durably before helm starts.
pub const HELM_UPGRADE_STARTED: &str = "HelmUpgradeStarted";

/// `HelmReleaseFreed`: a release a helm that windlass started and could not see finish left
/// pending, rolled back or uninstalled so that the chart can be installed again.
pub const HELM_RELEASE_FREED: &str = "HelmReleaseFreed";

/// The apply stage's event types.
pub const SCHEMAS: &[EventSchema] = &[
    EventSchema::of::<HelmReleaseInstalled>(&[]),
    EventSchema::of::<HelmReleaseUninstalled>(&[]),
    EventSchema::of::<HelmUpgradeStarted>(&[]),
    EventSchema::of::<HelmReleaseFreed>(&[]),
    EventSchema::of::<ObjectsApplied>(&[]),
    EventSchema::of::<ObjectsSending>(&[]),
    EventSchema::of::<ObjectsDeleting>(&[]),
    EventSchema::of::<WaitFinished>(&[]),
    EventSchema::of::<ObjectPruned>(&[]),
    EventSchema::of::<ObjectDeletedToRecreate>(&[]),
    EventSchema::of::<AppStateObserved>(&[]),
    EventSchema::of::<ApplyCompleted>(&[]),
    EventSchema::of::<ApplyStarted>(&[]),
];

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// It did not exist and was created.
    Created,
    /// It existed and was changed.
    Configured,
    /// It existed as the release has it: nothing was written.
    Unchanged,
    /// The server refused it (the error says why).
    Failed,
    /// Written to the directory target (no cluster involved).
    Written,
}

/// Another field manager owned a field windlass applies (found by the non-forced dry run; the
/// forced apply then took the field over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, as the server names it.
    pub field: String,
}

/// `ObjectsApplied` version 1: one batch (recorded as the apply goes, a batch at a time, so that
/// a thousand objects do not cost a thousand durable commits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectsApplied {
    /// The objects, in the order the server answered.
    pub objects: Vec<AppliedObject>,
}

/// The type of the daemon's record of the pull secrets it copied into a namespace created after
/// an install (`windlass watch`, `additionalNamespaces: ["*"]`; the event is the daemon's). The
/// prune reads it: those copies are the app's too.
pub const PULL_SECRETS_COPIED: &str = "PullSecretsCopied";

/// One pull secret the daemon copied, and the uid the server gave the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedPullSecret {
    /// The Secret's name.
    pub name: String,
    /// Its uid (empty when the server's answer had none).
    pub uid: String,
}

impl EventPayload for ObjectsApplied {
    const EVENT_TYPE: &'static str = OBJECTS_APPLIED;
    const VERSION: u32 = 1;
}

/// `ObjectsSending` version 1: the objects of one group, recorded durably before the first of
/// their apply requests goes out. The server may make an object and the answer never reach
/// windlass (windlass killed, the connection lost): no `ObjectsApplied` names it then, and
/// without this record a later install that drops it would never find it to prune. A later
/// install prunes such an object only while it still carries the digest sent
/// (`windlass.io/applied-digest`) and the app's ownership annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectsSending {
    /// The objects (up to 5,000 of one group's; a group's records share one durable commit), in
    /// the order the group sends them.
    pub objects: Vec<SentObject>,
}

impl EventPayload for ObjectsSending {
    const EVENT_TYPE: &'static str = OBJECTS_SENDING;
    const VERSION: u32 = 1;
}

/// `ObjectsDeleting` version 1: the objects of one prune group that are about to be read and,
/// if they are still the ones applied, deleted. Their outcomes follow as `ObjectPruned` in one
/// commit once the group is done; a run killed in between is resumed knowing that an object of
/// the group found gone was most likely deleted by it (recorded `deleted`, said so), not by
/// someone else (`gone`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectsDeleting {
    /// The objects (at most one prune group's), in the order the group takes them.
    pub objects: Vec<DeletingObject>,
}

impl EventPayload for ObjectsDeleting {
    const EVENT_TYPE: &'static str = OBJECTS_DELETING;
    const VERSION: u32 = 1;
}

/// One object in `ObjectsDeleting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletingObject {
    /// Which object.
    pub key: ObjectKey,
    /// The uid the inventory recorded (empty for an object known only by digests an apply that
    /// never heard back sent).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// One object in `ObjectsSending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentObject {
    /// Which object.
    pub key: ObjectKey,
    /// The apply step.
    pub step: Step,
    /// The digest it is sent with (as [`AppliedObject::digest`]; also its
    /// `windlass.io/applied-digest` annotation).
    pub digest: String,
    /// `kots.io/deletion-phase` as sent (absent: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deletion_phase: i64,
}

/// One object in `ObjectsApplied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedObject {
    /// Which object.
    pub key: ObjectKey,
    /// The rendered file it came from, relative to the output directory.
    pub file: String,
    /// The apply step.
    pub step: Step,
    /// What happened.
    pub outcome: ApplyOutcome,
    /// blake3 of the applied configuration (as sent, ownership annotation included): a resumed
    /// apply skips an object recorded with the same digest.
    pub digest: String,
    /// The server's uid (absent for the directory target, a dry run and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The server's resourceVersion after the apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Fields other managers owned, taken over by the forced apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    /// The object was last applied client-side by kubectl (KOTS's way) and was taken over: the
    /// kubectl managedFields entries were folded into windlass's and the
    /// `last-applied-configuration` annotation dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taken_over: bool,
    /// The server refused an immutable field change, and the object was deleted and created again
    /// because it is annotated to allow that.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recreated: bool,
    /// Where the directory target wrote it, relative to the target directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_to: Option<String>,
    /// The server's refusal (HTTP status and message) when the outcome is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Only a server-side dry run: nothing was written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The object carries `kots.io/wait-for-ready` or `kots.io/wait-for-properties` (recorded
    /// by applies to a cluster with a `body_version` in their `ApplyCompleted`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waits: bool,
    /// `kots.io/deletion-phase` as applied (absent: 0, and in records of windlass versions before
    /// it): the order in which a later install prunes the object when this apply never completed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deletion_phase: i64,
    /// The digest of the fields windlass owns in the object (the `fieldsV1` of its
    /// `managedFields` entry with manager `windlass` and operation `Apply`) as the server
    /// answered this apply, or as a dry run found it would answer, keys sorted
    /// (`kube_apply::owned_fields_digest`; keyed like `digest` for an object holding a secret).
    /// A later apply counts the object unchanged without a dry run only while its live entry
    /// still has this digest: another writer that only removes fields windlass applied leaves no
    /// entry of its own, but takes the fields out of windlass's. Absent in records of windlass
    /// versions before it and of failures (the next apply then asks the server); a dry run's
    /// record may hold one, which no later apply reads (dry-run records are never trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_fields_digest: Option<String>,
}

fn is_zero(phase: &i64) -> bool {
    *phase == 0
}

/// What was waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// A CustomResourceDefinition's `Established` condition.
    Established,
    /// A Namespace's `status.phase: Active`.
    Active,
    /// `kots.io/wait-for-ready`.
    Ready,
    /// `kots.io/wait-for-properties`.
    Properties,
    /// The app state from `statusInformers` reaching `ready`.
    AppReady,
    /// `windlass undeploy`: every object it deleted gone from the cluster (for the app as a
    /// whole: no key). (A variant added later: records before it never hold it.)
    Gone,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOutcome {
    /// The condition held.
    Met,
    /// The deadline passed first.
    TimedOut,
    /// Reading the object failed for a reason that waiting does not cure (a refusal); the
    /// detail says which. Absent from records of windlass versions before it.
    Failed,
}

/// `WaitFinished` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitFinished {
    /// The object waited for (absent for the app state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ObjectKey>,
    /// What was waited for.
    pub wait: WaitKind,
    /// How it ended.
    pub outcome: WaitOutcome,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
    /// The last thing seen (a state, a property's value), for a user.
    pub detail: String,
    /// The object's resourceVersion when the wait ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The uid of the object seen (absent for the app state, an object never seen, and in
    /// records of windlass versions before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl EventPayload for WaitFinished {
    const EVENT_TYPE: &'static str = WAIT_FINISHED;
    const VERSION: u32 = 1;
}

/// What prune did with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneOutcome {
    /// Deleted.
    Deleted,
    /// Left in place on purpose (see the reason); it stays in the inventory (left to another
    /// instance: marked so).
    Kept,
    /// Already gone.
    Gone,
    /// Not deleted: its uid changed (and it carries no digest an apply that never heard back
    /// sent) or it no longer carries the ownership annotation, so it is not the object windlass
    /// applied. Dropped from the inventory.
    NotOwned,
    /// The server refused the delete; it stays in the inventory.
    Refused,
}

/// `ObjectPruned` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPruned {
    /// Which object.
    pub key: ObjectKey,
    /// The uid the inventory recorded; for an object found to carry a digest an apply sent and
    /// never heard back about (the inventory's `sent_digests`), the uid read before the delete;
    /// empty for an object known by such digests alone when it could not be read.
    pub uid: String,
    /// What happened.
    pub outcome: PruneOutcome,
    /// Why it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_because: Option<KeepReason>,
    /// The server's refusal, or what differed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The resourceVersion read just before deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Only a server-side dry run: nothing was deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl EventPayload for ObjectPruned {
    const EVENT_TYPE: &'static str = OBJECT_PRUNED;
    const VERSION: u32 = 1;
}

/// `ObjectDeletedToRecreate` version 1: recorded as soon as the delete is answered, before the
/// object is created again, so that the log says the old object is gone even when creating it
/// again fails or the process dies in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDeletedToRecreate {
    /// Which object.
    pub key: ObjectKey,
    /// The rendered file it comes from.
    pub file: String,
    /// The uid of the object deleted.
    pub uid: String,
    /// Its resourceVersion when it was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The server's refusal that made the recreate necessary (for a finished hook Job, followed
    /// by `(a finished hook Job: <how it finished and its policy>)`).
    pub refusal: String,
}

impl EventPayload for ObjectDeletedToRecreate {
    const EVENT_TYPE: &'static str = OBJECT_DELETED_TO_RECREATE;
    const VERSION: u32 = 1;
}

/// An app or resource state, worst first (KOTS's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    /// The object does not exist (or its kind is not supported).
    Missing,
    /// Not serving.
    Unavailable,
    /// Serving, below the desired count.
    Degraded,
    /// Rolling out.
    Updating,
    /// As desired.
    Ready,
}

impl AppState {
    /// The name used on the wire and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Missing => "missing",
            AppState::Unavailable => "unavailable",
            AppState::Degraded => "degraded",
            AppState::Updating => "updating",
            AppState::Ready => "ready",
        }
    }
}

/// One status informer's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// The informer as written (`[namespace/]kind/name`).
    pub informer: String,
    /// Its state.
    pub state: AppState,
}

/// `AppStateObserved` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStateObserved {
    /// The app state: the worst of the resources' (`ready` when there are no informers).
    pub state: AppState,
    /// Each informer's state.
    pub resources: Vec<ResourceState>,
}

impl EventPayload for AppStateObserved {
    const EVENT_TYPE: &'static str = APP_STATE_OBSERVED;
    const VERSION: u32 = 1;
}

/// Where an apply went (wire format: part of `ApplyCompleted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TargetRecord {
    /// A directory.
    Dir {
        /// The directory, absolute.
        path: String,
    },
    /// A cluster.
    Kube {
        /// The kubeconfig context (absent: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
        /// The API server's URL.
        server: String,
        /// The uid of the cluster's `kube-system` namespace: it names the cluster whatever URL
        /// reaches it (absent when the server did not let it be read, and in records of windlass
        /// versions before it; the URL names the cluster then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster_uid: Option<String>,
    },
}

/// Counts of one apply, for a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyCounts {
    /// Created.
    pub created: u64,
    /// Configured.
    pub configured: u64,
    /// Unchanged.
    pub unchanged: u64,
    /// Written to a directory.
    pub written: u64,
    /// Pruned.
    pub pruned: u64,
    /// Kept by prune.
    pub kept: u64,
    /// Deletes the server refused.
    pub refused: u64,
}

/// `ApplyCompleted` version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyCompleted {
    /// The app.
    pub app_slug: String,
    /// Where it went.
    pub target: TargetRecord,
    /// The install whose rendered output was applied (this one, or the one `windlass apply`
    /// named); for `windlass undeploy`, which applies nothing, the install that named the app.
    pub rendered_by: String,
    /// What the cluster now holds for this app: every object applied, plus pruned objects that
    /// were kept or whose delete was refused. Empty for the directory target and a dry run.
    pub inventory: Vec<InventoryEntry>,
    /// Counts.
    pub counts: ApplyCounts,
    /// The app state at the end (absent for the directory target and a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_state: Option<AppState>,
    /// Only a server-side dry run: the inventory is not to be pruned against.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// How the objects' bodies and digests were built ([`crate::kube_apply::BODY_VERSION`]; a
    /// real apply to a cluster only): a later apply of the same rendering trusts the digests this
    /// apply recorded instead of parsing the rendered files again only when its own version is
    /// the same. Absent in records of windlass versions before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_version: Option<u32>,
    /// The app namespace the install applied into: the next install prunes against this apply
    /// only when it names the same one (two instances of an app in two namespaces of one
    /// cluster are independent). Absent in records of windlass versions before it, which match
    /// any namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_namespace: Option<String>,
    /// `windlass undeploy`: nothing was applied, and the previous inventory was pruned; the
    /// inventory lists what is still there (kept, a refused delete, left to another instance;
    /// not the Namespaces an undeploy leaves, which it forgets). Absent (false) in records of
    /// windlass versions before it, which never undeployed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undeployed: bool,
}

/// `ApplyStarted` version 1: an apply to a cluster began. Recorded once per install (again only
/// when a resumed apply goes to another cluster or namespace), in the same commit as the first
/// fact the apply records after it (its first object record). An install with this record and no
/// `ApplyCompleted` applied objects that no inventory lists: the next completed apply of the same
/// app to the same cluster and namespace prunes them as it prunes the previous inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyStarted {
    /// The app.
    pub app_slug: String,
    /// The cluster (always [`TargetRecord::Kube`]).
    pub target: TargetRecord,
    /// The app namespace it applies into.
    pub app_namespace: String,
    /// A server-side dry run: nothing is written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl EventPayload for ApplyStarted {
    const EVENT_TYPE: &'static str = APPLY_STARTED;
    const VERSION: u32 = 1;
}

impl EventPayload for ApplyCompleted {
    const EVENT_TYPE: &'static str = APPLY_COMPLETED;
    const VERSION: u32 = 1;
}

/// What became of one chart handed to helm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelmReleaseOutcome {
    /// `helm upgrade --install` succeeded.
    Installed,
    /// `helm upgrade --install` failed (the error says how).
    Failed,
    /// Written to the directory target for a GitOps tool to install.
    Written,
    /// A server-side dry run: helm was not run.
    NotRunDryRun,
}

/// `HelmReleaseInstalled` version 1: one `useHelmInstall: true` HelmChart's chart, as rendered
/// under `rendered/this-cluster/charts/<directory>/`, or one `kots.io/v1beta2` HelmChart's
/// archive and values as `write_base` wrote them to `helm/<directory>/`, handed to `helm upgrade
/// --install` after the plain manifests (or written to the directory target). Neither the chart's contents nor
/// helm's output are recorded (they may hold secrets): its digest is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmReleaseInstalled {
    /// The HelmChart's `metadata.name`.
    pub helm_chart: String,
    /// The Helm release name.
    pub release_name: String,
    /// The namespace it was installed in.
    pub namespace: String,
    /// `spec.weight` (charts go in ascending weight, then by name).
    pub weight: i64,
    /// `spec.chart.name` and `spec.chart.chartVersion`, as `name-version`.
    pub chart: String,
    /// The chart's directory, relative to the output directory: `rendered/this-cluster/charts/…`
    /// (rendered) or `helm/…` (a `kots.io/v1beta2` chart's archive and values).
    pub chart_dir: String,
    /// blake3 over the chart's files (each path, a NUL, its bytes, a NUL, in path order); for a
    /// chart holding a password value, a keyed fingerprint (`fp1:…`) of the same bytes.
    pub chart_digest: String,
    /// What happened.
    pub outcome: HelmReleaseOutcome,
    /// `helm version --short` of the helm that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_version: Option<String>,
    /// The arguments helm ran with (the chart as `chart`, relative to its working directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The release revision helm reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The release status helm reported (`deployed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Where the directory target wrote the chart, relative to the target directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_to: Option<String>,
    /// helm's error when the outcome is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long helm ran, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// windlass stopped helm (past its deadline, or printing past the cap), so helm may have left
    /// the release pending for the next apply to free (see `HelmUpgradeStarted`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub helm_stopped: bool,
}

impl EventPayload for HelmReleaseInstalled {
    const EVENT_TYPE: &'static str = HELM_RELEASE_INSTALLED;
    const VERSION: u32 = 1;
}

/// What became of a chart the previous apply installed that the release no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelmUninstallOutcome {
    /// `helm uninstall` deleted the release and what it installed.
    Uninstalled,
    /// helm knew no such release there any more (uninstalled by someone else, or by an
    /// interrupted run of this apply).
    NotFound,
    /// `helm uninstall` failed (the error says how).
    Failed,
    /// A server-side dry run: helm was not run.
    NotRunDryRun,
}

/// `HelmReleaseUninstalled` version 1: a chart handed to helm that the previous real
/// apply of the app to the same cluster installed and the release applied now no longer has,
/// handed to `helm uninstall` before any chart is installed, higher `weight` first (as KOTS does).
/// helm's output is not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmReleaseUninstalled {
    /// The HelmChart's `metadata.name` when it was installed.
    pub helm_chart: String,
    /// The Helm release name.
    pub release_name: String,
    /// The namespace it was installed in.
    pub namespace: String,
    /// `spec.weight` when it was installed.
    pub weight: i64,
    /// The install whose apply installed it (its `HelmReleaseInstalled`).
    pub installed_by: String,
    /// What happened.
    pub outcome: HelmUninstallOutcome,
    /// `helm version --short` of the helm that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_version: Option<String>,
    /// The arguments helm ran with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// helm's error when the outcome is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long helm ran, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: u64,
}

impl EventPayload for HelmReleaseUninstalled {
    const EVENT_TYPE: &'static str = HELM_RELEASE_UNINSTALLED;
    const VERSION: u32 = 1;
}

/// `HelmUpgradeStarted` version 1: windlass is about to run `helm upgrade --install` for a chart,
/// recorded (durably) before helm starts. helm marks the release pending within moments of
/// starting and done when it finishes; a helm killed in between (with windlass, a crash, a
/// machine gone, or by windlass at its deadline) leaves it pending, and every later `helm
/// upgrade` of it refused. This record, the newest start of the release before the pending
/// revision began (and at most two minutes before), with no `HelmReleaseInstalled` of the same
/// install after it (or one saying windlass stopped helm), is how a later apply knows the
/// pending revision is one of windlass's own, so that it may free the release
/// (`HelmReleaseFreed`) rather than interrupt someone else's helm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmUpgradeStarted {
    /// The HelmChart's `metadata.name`.
    pub helm_chart: String,
    /// The Helm release name.
    pub release_name: String,
    /// The namespace it goes into.
    pub namespace: String,
    /// The cluster (always [`TargetRecord::Kube`]).
    pub target: TargetRecord,
    /// helm's deadline, in seconds: its `--timeout` (the wait deadline), or a longer `--timeout`
    /// among the chart's `helmUpgradeFlags`; windlass stops helm at this and a minute more.
    pub timeout_seconds: u64,
}

impl EventPayload for HelmUpgradeStarted {
    const EVENT_TYPE: &'static str = HELM_UPGRADE_STARTED;
    const VERSION: u32 = 1;
}

/// How a pending release was freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelmFreeAction {
    /// `helm rollback` to the newest revision that was deployed.
    RolledBack,
    /// `helm uninstall`: no revision was ever deployed (a first install that never finished).
    Uninstalled,
}

/// `HelmReleaseFreed` version 1: a release whose newest revision a helm that windlass started
/// left pending (`HelmUpgradeStarted` of `interrupted_install`, with no outcome recorded after
/// it) and that no helm windlass started holds any more (its helm lock was free), freed before
/// its chart is handed to `helm upgrade --install` again. helm's output is not recorded (for a
/// chart holding a password value, not in `error` either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmReleaseFreed {
    /// The HelmChart's `metadata.name`.
    pub helm_chart: String,
    /// The Helm release name.
    pub release_name: String,
    /// The release's namespace.
    pub namespace: String,
    /// The install whose helm left it pending.
    pub interrupted_install: String,
    /// The pending revision.
    pub pending_revision: u64,
    /// Its status (`pending-install`, `pending-upgrade`, `pending-rollback`).
    pub pending_status: String,
    /// When its operation began, as helm recorded it.
    pub pending_since: String,
    /// How it was freed.
    pub action: HelmFreeAction,
    /// The revision rolled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<u64>,
    /// `helm version --short` of the helm that ran.
    pub helm_version: String,
    /// The arguments helm ran with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// helm's error when freeing it failed (the apply then fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long helm ran, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: u64,
}

impl EventPayload for HelmReleaseFreed {
    const EVENT_TYPE: &'static str = HELM_RELEASE_FREED;
    const VERSION: u32 = 1;
}
