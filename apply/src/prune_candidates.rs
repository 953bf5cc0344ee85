//! What an apply to a cluster prunes against: the inventory of the newest completed apply of the
//! same app into the same namespace of the same cluster ([`previous_apply`]), plus the objects
//! (and releases of charts handed to helm) that applies which never completed (refused objects, a failed
//! wait or chart, a kill) applied since then (`unfinished_applies`). Without the second part,
//! an object created by a failed apply and dropped by the next release would stay in the cluster
//! for ever: no inventory lists it. That includes objects such an apply sent and never heard
//! back about (killed while the server answered): each group is recorded as `ObjectsSending`
//! before it is sent, and those objects are pruned when they carry a digest sent that no
//! recorded answer followed. Each apply to a cluster records `ApplyStarted`
//! ([`record_start`], in the same commit as its first record), which is how an apply that never
//! completed is found; the stage holds the app's apply lock meanwhile, so such an apply is not
//! one still running in another process. The delete itself is guarded as always (uid, or a
//! digest sent, and the ownership annotation read again; `kots.io/keep` honoured). Objects
//! another instance of the app (another app namespace) still applies are found by
//! [`held_by_other_instances`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;

use windlass_engine::{Fact, StageContext, StageError};

use windlass_state::LazyEvent;

use crate::events::{
    APPLY_COMPLETED, APPLY_STARTED, ApplyCompleted, ApplyOutcome, ApplyStarted,
    HELM_RELEASE_INSTALLED, HelmReleaseInstalled, HelmReleaseOutcome, OBJECTS_APPLIED,
    OBJECTS_SENDING, ObjectsApplied, ObjectsSending, SentObject, TargetRecord,
};
use crate::order::{InventoryEntry, ObjectKey, Step};

/// The newest completed apply found by [`previous_apply`].
pub struct PreviousApply {
    /// The install that applied.
    pub installer: String,
    /// What it completed with.
    pub completed: ApplyCompleted,
    /// Where its `ApplyCompleted` sits in the log.
    global_seq: u64,
}

/// Which cluster an apply goes to: its URL, and its uid when the server let it be read
/// ([`crate::cluster::Cluster::identity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    /// The API server's URL.
    pub server: String,
    /// The uid of its `kube-system` namespace.
    pub uid: Option<String>,
}

impl ClusterIdentity {
    /// The record of an apply to this cluster through kubeconfig context `context`.
    pub fn record(&self, context: Option<String>) -> TargetRecord {
        TargetRecord::Kube {
            context,
            server: self.server.clone(),
            cluster_uid: self.uid.clone(),
        }
    }

    /// Whether `target` is this cluster: the same uid when both are known (one cluster reached
    /// through two URLs is one cluster; another cluster at a URL this one had is not), else the
    /// same URL.
    pub fn is(&self, target: &TargetRecord) -> bool {
        let TargetRecord::Kube {
            server,
            cluster_uid,
            ..
        } = target
        else {
            return false;
        };
        match (&self.uid, cluster_uid) {
            (Some(uid), Some(known)) => uid == known,
            _ => *server == self.server,
        }
    }
}

/// Hands `visit` each completed, real (not dry-run) apply of `app_slug` to `cluster` by another
/// install, newest first, with the app namespace it recorded (none in records of versions
/// before that field), until it breaks. Only what says whose apply it is gets decoded here, not
/// the inventory.
fn visit_completed_applies(
    context: &StageContext,
    app_slug: &str,
    cluster: &ClusterIdentity,
    visit: &mut dyn FnMut(Option<String>, LazyEvent) -> ControlFlow<()>,
) -> Result<(), StageError> {
    /// What tells whose apply an `ApplyCompleted` is.
    #[derive(serde::Deserialize)]
    struct Whose {
        app_slug: String,
        target: TargetRecord,
        #[serde(default)]
        app_namespace: Option<String>,
        #[serde(default)]
        dry_run: bool,
    }
    visit_others_facts(context, APPLY_COMPLETED, &mut |event| {
        let Ok(whose) = event.decode::<Whose>() else {
            return ControlFlow::Continue(());
        };
        if whose.app_slug != app_slug || whose.dry_run || !cluster.is(&whose.target) {
            return ControlFlow::Continue(());
        }
        visit(whose.app_namespace, event)
    })
}

/// The newest completed, real apply of `app_slug` into `app_namespace` of `cluster` by another
/// install, if any.
pub fn previous_apply(
    context: &StageContext,
    app_slug: &str,
    app_namespace: &str,
    cluster: &ClusterIdentity,
) -> Result<Option<PreviousApply>, StageError> {
    let mut found = None;
    visit_completed_applies(context, app_slug, cluster, &mut |namespace, event| {
        if namespace.is_some_and(|namespace| namespace != app_namespace) {
            return ControlFlow::Continue(());
        }
        let Ok(completed) = event.decode::<ApplyCompleted>() else {
            return ControlFlow::Continue(());
        };
        found = Some(PreviousApply {
            installer: event.event.install_id,
            completed,
            global_seq: event.event.global_seq,
        });
        ControlFlow::Break(())
    })?;
    Ok(found)
}

/// What an apply of `app_slug` into `app_namespace` of `cluster` prunes against and uninstalls
/// from: the newest completed apply there ([`previous_apply`]) and what applies since that never
/// completed left (`unfinished_applies`).
pub fn applied_before(
    context: &StageContext,
    app_slug: &str,
    app_namespace: &str,
    cluster: &ClusterIdentity,
) -> Result<(Option<PreviousApply>, Unfinished), StageError> {
    let previous = previous_apply(context, app_slug, app_namespace, cluster)?;
    // Read once, for the unfinished applies and the daemon's copies.
    let starts = AppliesStarted::read(context, app_slug, cluster)?;
    let mut unfinished = unfinished_applies(context, &starts, app_namespace, previous.as_ref())?;
    if let Some(previous) = &previous {
        let earlier_installs = starts.installs_into(app_namespace);
        // The daemon copies for the newest completed install it knows of: the previous one,
        // and, while that one was still applying, an earlier one of the app.
        let previous_started = starts
            .first_start(&previous.installer, app_namespace)
            .unwrap_or(previous.global_seq);
        unfinished.objects.extend(copies_the_daemon_made(
            context,
            &|install_id, global_seq| {
                install_id == previous.installer
                    || (global_seq > previous_started && earlier_installs.contains(install_id))
            },
        )?);
    }
    Ok((previous, unfinished))
}

/// The pull secrets `windlass watch` copied into namespaces created after an apply
/// (`additionalNamespaces: ["*"]`), recorded by the installs `counted` accepts (by install id
/// and where the record sits in the log), as inventory entries, oldest first (a later copy of
/// the same name is the one to find): they are the app's as much as the copies the apply made,
/// and go when a later release drops `"*"` or the app is undeployed. A copy recorded without
/// its uid (by a daemon before uids were recorded) is left out: nothing proves the Secret found
/// is the one the daemon made.
fn copies_the_daemon_made(
    context: &StageContext,
    counted: &dyn Fn(&str, u64) -> bool,
) -> Result<Vec<InventoryEntry>, StageError> {
    /// What is read of the daemon's record.
    #[derive(serde::Deserialize)]
    struct CopiesRecorded {
        install_id: String,
        namespace: String,
        #[serde(default)]
        copied: Vec<crate::events::CopiedPullSecret>,
    }
    let mut entries = Vec::new();
    visit_others_facts(context, crate::events::PULL_SECRETS_COPIED, &mut |event| {
        if let Ok(recorded) = event.decode::<CopiesRecorded>()
            && counted(&recorded.install_id, event.event.global_seq)
        {
            for copy in recorded
                .copied
                .into_iter()
                .filter(|copy| !copy.uid.is_empty())
            {
                entries.push(InventoryEntry {
                    key: ObjectKey {
                        group: String::new(),
                        version: "v1".into(),
                        kind: "Secret".into(),
                        namespace: Some(recorded.namespace.clone()),
                        name: copy.name,
                    },
                    uid: copy.uid,
                    deletion_phase: 0,
                    keep: false,
                    additional_namespace: false,
                    sent_digests: Vec::new(),
                    left_to_other_instance: false,
                });
            }
        }
        ControlFlow::Continue(())
    })?;
    // Visited newest first.
    entries.reverse();
    Ok(entries)
}

/// The name under which the stage holds its apply lock.
const APPLY_LOCK: &str = "apply-lock";

/// Takes the lock of applies of `app_slug` into `app_namespace` in this state directory (held
/// until the stage's outcome is recorded, across retried attempts), or fails saying another
/// process holds it: the prune counts an apply started earlier and not completed as one that
/// never will, which holds only while no other process is still running it. Without locks (a
/// test, a replay) there is nothing to take.
pub async fn take_apply_lock(
    context: &StageContext,
    app_slug: &str,
    app_namespace: &str,
) -> Result<(), StageError> {
    let Some(locks) = context.services.locks.as_ref() else {
        return Ok(());
    };
    if context.holds(APPLY_LOCK).await {
        return Ok(());
    }
    // The slug's length keeps `my-app` in `default` apart from `my` in `app-default`.
    let name = format!("apply-{}-{app_slug}-{app_namespace}", app_slug.len());
    match locks.try_lock(&name) {
        Ok(Some(lock)) => {
            context.hold_until_recorded(APPLY_LOCK, lock).await;
            Ok(())
        }
        Ok(None) => Err(StageError::permanent(format!(
            "another windlass process is applying {app_slug} into namespace {app_namespace} from this state directory; run this again once it has finished"
        ))),
        Err(error) => Err(StageError::permanent(format!(
            "taking the apply lock of {app_slug} in namespace {app_namespace}: {error}"
        ))),
    }
}

/// Records `ApplyStarted` for this install (with the next fact the stage records), unless the
/// newest one an earlier run of the stage (a resumed apply) recorded says the same (a resumed
/// apply may go to another cluster).
pub async fn record_start(
    context: &StageContext,
    started: &ApplyStarted,
) -> Result<(), StageError> {
    let newest = windlass_engine::recorded_payload::<ApplyStarted>(
        &context.recorded_facts().await,
        APPLY_STARTED,
    )
    .ok();
    if newest.as_ref() != Some(started) {
        // Recorded with the first object record (or the stage's end): without an object
        // recorded after it, it names nothing to prune, so it needs no durable commit of its own.
        context.defer_fact(Fact::of(started)?).await;
    }
    Ok(())
}

/// What applies that never completed left in the cluster (`unfinished_applies`).
#[derive(Debug, Default)]
pub struct Unfinished {
    /// The objects they recorded as applied (not failed), one entry per object, oldest first,
    /// then the objects they only sent; each with the digests of its sends (`ObjectsSending`)
    /// that no recorded answer covers (`sent_digests`; an object never answered has no uid).
    pub objects: Vec<InventoryEntry>,
    /// The releases of charts handed to helm (`useHelmInstall: true`, `kots.io/v1beta2`) they recorded as installed, with the install that did,
    /// newest record per release and namespace.
    pub helm_releases: Vec<(String, HelmReleaseInstalled)>,
    /// Where the records that did not decode sit in the log (what they name is not known).
    pub unreadable: Vec<u64>,
}

/// What other installs' real applies of `app_slug` into `app_namespace` of `cluster` recorded
/// as applied (objects) or installed (helm releases) after `previous` completed (any time,
/// without one): an install that recorded anything since then has not completed (it would be
/// the previous apply), and the apply lock says it is not running. Each record belongs to the
/// newest `ApplyStarted` of its install before it (a resumed apply may have gone elsewhere).
/// Newest record first wins; the digests of objects they sent (`ObjectsSending`) that no answer
/// recorded after the send covers are added to each object's entry (`sent_digests`; an object
/// never answered has no uid). Applies recorded before windlass recorded
/// `ApplyStarted` are not found; a record that cannot be read is skipped, with a warning.
/// (`starts`: every other install's `ApplyStarted`, judged for the app and the cluster.)
fn unfinished_applies(
    context: &StageContext,
    starts: &AppliesStarted,
    app_namespace: &str,
    previous: Option<&PreviousApply>,
) -> Result<Unfinished, StageError> {
    let since = HashMap::from([(app_namespace.to_string(), Since::of(previous))]);
    Ok(unfinished_by_namespace(context, starts, &since, true)?
        .remove(app_namespace)
        .unwrap_or_default())
}

/// Every start other installs recorded, by install: where it sits in the log, and the app
/// namespace when it was a real apply of the app asked about to the cluster asked about (a
/// resumed apply may have gone elsewhere, so the others count too).
struct AppliesStarted(HashMap<String, Vec<(u64, Option<String>)>>);

impl AppliesStarted {
    /// Reads every `ApplyStarted` of other installs, judged for `app_slug` on `cluster`.
    fn read(
        context: &StageContext,
        app_slug: &str,
        cluster: &ClusterIdentity,
    ) -> Result<AppliesStarted, StageError> {
        let mut starts: HashMap<String, Vec<(u64, Option<String>)>> = HashMap::new();
        visit_others_facts(context, APPLY_STARTED, &mut |event| {
            let namespace = event.decode::<ApplyStarted>().ok().and_then(|started| {
                (started.app_slug == app_slug && cluster.is(&started.target) && !started.dry_run)
                    .then_some(started.app_namespace)
            });
            starts
                .entry(event.event.install_id)
                .or_default()
                .push((event.event.global_seq, namespace));
            ControlFlow::Continue(())
        })?;
        Ok(AppliesStarted(starts))
    }

    /// The installs that started an apply of the app into `app_namespace`.
    fn installs_into(&self, app_namespace: &str) -> HashSet<String> {
        self.0
            .iter()
            .filter(|(_, starts)| {
                starts
                    .iter()
                    .any(|(_, namespace)| namespace.as_deref() == Some(app_namespace))
            })
            .map(|(install_id, _)| install_id.clone())
            .collect()
    }

    /// Where install `install_id` first started an apply of the app into `app_namespace` in
    /// the log.
    fn first_start(&self, install_id: &str, app_namespace: &str) -> Option<u64> {
        self.0
            .get(install_id)?
            .iter()
            .filter(|(_, namespace)| namespace.as_deref() == Some(app_namespace))
            .map(|(global_seq, _)| *global_seq)
            .min()
    }

    /// The app namespaces other than `app_namespace` applies of the app started in: the other
    /// instances of the app (one whose applies all predate `ApplyStarted` is not seen).
    fn other_namespaces(&self, app_namespace: &str) -> BTreeSet<String> {
        self.0
            .values()
            .flatten()
            .filter_map(|(_, namespace)| namespace.clone())
            .filter(|namespace| namespace != app_namespace)
            .collect()
    }
}

/// The app namespaces of the app's other instances on `cluster` (not `app_namespace`), as the
/// `ApplyStarted` records of this state directory name them.
pub fn other_instance_namespaces(
    context: &StageContext,
    app_slug: &str,
    app_namespace: &str,
    cluster: &ClusterIdentity,
) -> Result<BTreeSet<String>, StageError> {
    Ok(AppliesStarted::read(context, app_slug, cluster)?.other_namespaces(app_namespace))
}

/// Where the unfinished applies of one app namespace are looked for: after its newest completed
/// apply, whose install's own records are not looked at.
struct Since {
    /// Where that `ApplyCompleted` sits in the log (0: none).
    after: u64,
    /// The install that completed.
    installer: Option<String>,
}

impl Since {
    fn of(previous: Option<&PreviousApply>) -> Since {
        Since {
            after: previous.map_or(0, |previous| previous.global_seq),
            installer: previous.map(|previous| previous.installer.clone()),
        }
    }
}

/// What [`unfinished_by_namespace`] gathers for one app namespace as it reads.
#[derive(Default)]
struct Gathered {
    unfinished: Unfinished,
    seen: HashSet<String>,
    answers: Answers,
    sends: Vec<Send>,
    releases: HashSet<(String, String)>,
}

/// [`unfinished_applies`] for each app namespace of `since` at once, by namespace, each kind of
/// record read in one pass back to the oldest point where one may start (a namespace's
/// completion, or its first `ApplyStarted` when later; the helm releases only `with_helm`); a
/// namespace without any is absent.
fn unfinished_by_namespace(
    context: &StageContext,
    starts: &AppliesStarted,
    since: &HashMap<String, Since>,
    with_helm: bool,
) -> Result<BTreeMap<String, Unfinished>, StageError> {
    // Every start of every install, by install: (global_seq, the app namespace of `since` it
    // started in, if any).
    let mut starts: HashMap<&str, Vec<(u64, Option<&String>)>> = starts
        .0
        .iter()
        .map(|(install, starts)| {
            let starts = starts
                .iter()
                .map(|(seq, namespace)| {
                    let here = namespace
                        .as_ref()
                        .filter(|namespace| since.contains_key(*namespace));
                    (*seq, here)
                })
                .collect();
            (install.as_str(), starts)
        })
        .collect();
    // An install that completed in a namespace: what it applied there is in its own records.
    starts.retain(|install, starts| {
        starts.iter().any(|(_, here)| {
            here.is_some_and(|namespace| since[namespace].installer.as_deref() != Some(*install))
        })
    });
    if starts.is_empty() {
        return Ok(BTreeMap::new());
    }
    // The namespace a record belongs to: that of the newest start of its install before it,
    // when the record is newer than that namespace's completion.
    let belongs_to = |event: &LazyEvent| -> Option<String> {
        let seq = event.event.global_seq;
        let install = &event.event.install_id;
        let namespace = starts
            .get(install.as_str())?
            .iter()
            .filter(|(start, _)| *start < seq)
            .max_by_key(|(start, _)| *start)?
            .1?
            .clone();
        let since = &since[&namespace];
        (seq > since.after && since.installer.as_deref() != Some(install.as_str()))
            .then_some(namespace)
    };
    // A record belongs to a namespace only after its completion and after an apply there
    // started: the log is read back to the oldest such point.
    let mut first_start: HashMap<&String, u64> = HashMap::new();
    for (seq, here) in starts.values().flatten() {
        if let Some(namespace) = here {
            let first = first_start.entry(namespace).or_insert(*seq);
            *first = (*first).min(*seq);
        }
    }
    let oldest = first_start
        .iter()
        .map(|(namespace, first)| since[namespace.as_str()].after.max(*first))
        .min()
        .unwrap_or(0);
    let mut gathered: HashMap<String, Gathered> = HashMap::new();
    visit_since(context, OBJECTS_APPLIED, oldest, &mut |event| {
        let namespace = belongs_to(event)?;
        let here = gathered.entry(namespace).or_default();
        let batch: ObjectsApplied =
            decode_or_warn(&*context.progress, event, &mut here.unfinished.unreadable)?;
        let seq = event.event.global_seq;
        // Newest first across batches; within a batch, a later object is the newer.
        for object in batch.objects.into_iter().rev() {
            if object.outcome == ApplyOutcome::Failed && !object.dry_run {
                here.answers.refused.push(Refusal {
                    seq,
                    install: event.event.install_id.clone(),
                    id: object.key.inventory_id(),
                    digest: object.digest.clone(),
                });
            }
            let Some(uid) = object.uid.filter(|uid| !uid.is_empty()) else {
                continue;
            };
            if object.outcome == ApplyOutcome::Failed
                || object.dry_run
                || !here.seen.insert(object.key.inventory_id())
            {
                continue;
            }
            here.answers.applied.insert(object.key.inventory_id(), seq);
            here.unfinished.objects.push(InventoryEntry {
                additional_namespace: is_additional_namespace(object.step, &object.key),
                key: object.key,
                uid,
                deletion_phase: object.deletion_phase,
                keep: false,
                sent_digests: Vec::new(),
                left_to_other_instance: false,
            });
        }
        Some(())
    })?;
    // Objects sent with no answer recorded after the send: the server may have made (or
    // remade) them.
    visit_since(context, OBJECTS_SENDING, oldest, &mut |event| {
        let namespace = belongs_to(event)?;
        let here = gathered.entry(namespace).or_default();
        let sending: ObjectsSending =
            decode_or_warn(&*context.progress, event, &mut here.unfinished.unreadable)?;
        here.sends
            .extend(sending.objects.into_iter().map(|object| Send {
                seq: event.event.global_seq,
                install: event.event.install_id.clone(),
                object,
            }));
        Some(())
    })?;
    if with_helm {
        visit_since(context, HELM_RELEASE_INSTALLED, oldest, &mut |event| {
            let namespace = belongs_to(event)?;
            let here = gathered.entry(namespace).or_default();
            let record: HelmReleaseInstalled =
                decode_or_warn(&*context.progress, event, &mut here.unfinished.unreadable)?;
            // A failed `helm upgrade --install` leaves the release in the cluster, failed
            // (windlass does not pass --atomic): it goes when dropped as an installed one does
            // (helm answers "not found" when there is none).
            if here
                .releases
                .insert((record.release_name.clone(), record.namespace.clone()))
                && matches!(
                    record.outcome,
                    HelmReleaseOutcome::Installed | HelmReleaseOutcome::Failed
                )
            {
                here.unfinished
                    .helm_releases
                    .push((event.event.install_id.clone(), record));
            }
            Some(())
        })?;
    }
    Ok(gathered
        .into_iter()
        .map(|(namespace, mut here)| {
            here.unfinished.objects.reverse();
            add_unanswered_sends(&mut here.unfinished.objects, &here.answers, here.sends);
            (namespace, here.unfinished)
        })
        .collect())
}

/// Which of `keys` (objects this instance is about to delete, by inventory id) the other
/// instances of `app_slug` on `cluster` (the other app namespaces an apply of the app started
/// in; one whose applies all predate `ApplyStarted` is not seen) still apply, by id, each with
/// every instance that does and what says so, strongest first: an instance's app namespace itself, then what the inventory of
/// its newest completed, real apply lists (not entries it left to yet another instance), then
/// what its applies that never completed recorded since (a failed or killed apply there will be
/// resumed or followed, and may be running now under its own lock), then, where one of those
/// records of objects cannot be read, every one of `keys` outside `app_namespace` (what this
/// instance applies in its own app namespace stays its own to prune); instances in namespace
/// order within each, so the one named first is the same every time. Read only when objects
/// are about to be deleted: deleting one would take it from them too.
pub fn held_by_other_instances(
    context: &StageContext,
    app_slug: &str,
    app_namespace: &str,
    cluster: &ClusterIdentity,
    keys: &HashMap<String, ObjectKey>,
) -> Result<BTreeMap<String, Vec<OtherInstance>>, StageError> {
    let mut held: BTreeMap<String, Vec<OtherInstance>> = BTreeMap::new();
    if keys.is_empty() {
        return Ok(held);
    }
    let starts = AppliesStarted::read(context, app_slug, cluster)?;
    let instances = &starts.other_namespaces(app_namespace);
    if instances.is_empty() {
        return Ok(held);
    }
    let mut hold = |id: String, namespace: &str, by: Holder| {
        held.entry(id).or_default().push(OtherInstance {
            namespace: namespace.to_string(),
            by,
        });
    };
    for namespace in instances {
        let own = ObjectKey::namespace(namespace);
        if keys.contains_key(&own.inventory_id()) {
            hold(own.inventory_id(), namespace, Holder::AppNamespace);
        }
    }
    // The newest completed apply of each, newest first, until each has been found (only whose
    // apply each is gets decoded on the way; a completion may predate every `ApplyStarted`).
    type Decoded = Result<ApplyCompleted, serde_json::Error>;
    let mut completed_in: BTreeMap<String, (LazyEvent, Decoded)> = BTreeMap::new();
    visit_completed_applies(context, app_slug, cluster, &mut |namespace, event| {
        if let Some(namespace) = namespace
            && instances.contains(&namespace)
            && !completed_in.contains_key(&namespace)
        {
            let completed = event.decode::<ApplyCompleted>();
            completed_in.insert(namespace, (event, completed));
        }
        if completed_in.len() == instances.len() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    let mut unreadable_in: BTreeMap<String, u64> = BTreeMap::new();
    let mut since: HashMap<String, Since> = HashMap::new();
    for namespace in instances {
        let Some((event, completed)) = completed_in.get(namespace) else {
            since.insert(namespace.clone(), Since::of(None));
            continue;
        };
        let seq = event.event.global_seq;
        let installer = &event.event.install_id;
        // An older completed apply there would be the baseline of its unfinished applies;
        // this one's own records are not looked at either way.
        since.insert(
            namespace.clone(),
            Since {
                after: seq,
                installer: Some(installer.clone()),
            },
        );
        let completed = match completed {
            Ok(completed) => completed,
            Err(error) => {
                // What it holds is not known: whatever is asked about is left to it.
                context.progress.note(&format!(
                    "record {seq} of install {installer}, the completed apply of the instance of {app_slug} in namespace {namespace}, does not decode ({error}): what this install drops outside its namespace is left to that instance"
                ));
                unreadable_in.insert(namespace.clone(), seq);
                continue;
            }
        };
        for entry in &completed.inventory {
            // Left to yet another instance: not one this instance still applies.
            if entry.left_to_other_instance {
                continue;
            }
            let id = entry.key.inventory_id();
            if keys.contains_key(&id) {
                hold(id, namespace, Holder::Completed(installer.clone()));
            }
        }
    }
    for (namespace, unfinished) in unfinished_by_namespace(context, &starts, &since, false)? {
        let mut seen: HashSet<String> = HashSet::new();
        for entry in unfinished.objects {
            let id = entry.key.inventory_id();
            if keys.contains_key(&id) && seen.insert(id.clone()) {
                hold(id, &namespace, Holder::Unfinished);
            }
        }
        if let Some(&record) = unfinished.unreadable.first() {
            unreadable_in.entry(namespace).or_insert(record);
        }
    }
    // Where a record cannot be read, what it names is not known: nothing asked about outside
    // this app namespace is taken from that instance.
    for (namespace, record) in unreadable_in {
        for (id, key) in keys {
            if key.namespace.as_deref() != Some(app_namespace) {
                hold(id.clone(), &namespace, Holder::Unreadable(record));
            }
        }
    }
    Ok(held)
}

/// Another instance of the app that still applies an object ([`held_by_other_instances`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherInstance {
    /// Its app namespace.
    pub namespace: String,
    /// What says so.
    pub by: Holder,
}

/// What says another instance still applies an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// It is that instance's app namespace.
    AppNamespace,
    /// The inventory of its newest completed apply (by this install).
    Completed(String),
    /// An apply there that never completed recorded it.
    Unfinished,
    /// A record of its applies (at this place in the log) cannot be read: what it names is not
    /// known.
    Unreadable(u64),
}

/// Whether an object applied at `step` is a namespace windlass created for
/// `additionalNamespaces` (never pruned).
fn is_additional_namespace(step: Step, key: &ObjectKey) -> bool {
    step == Step::PullSecrets && key.group.is_empty() && key.kind == "Namespace"
}

/// The answers unfinished applies recorded, as [`add_unanswered_sends`] reads them.
#[derive(Default)]
struct Answers {
    /// By inventory id: where the newest answer that gave the object a uid sits in the log.
    applied: HashMap<String, u64>,
    /// The writes the server refused.
    refused: Vec<Refusal>,
}

/// A write the server refused (which made nothing): the answer to the newest send of the same
/// object by the same install before it.
struct Refusal {
    /// Where its record sits in the log.
    seq: u64,
    /// The install whose write it answers.
    install: String,
    /// The object's inventory id.
    id: String,
    /// The digest of the refused write.
    digest: String,
}

/// One object of an `ObjectsSending`.
struct Send {
    /// Where the record sits in the log.
    seq: u64,
    /// The install that sent it.
    install: String,
    /// What was sent.
    object: SentObject,
}

impl Answers {
    /// The sends (by position in `sends`, newest first) that a recorded answer covers: one
    /// that gave the object a uid after the send (whoever sent it: one name, one object), or
    /// the refusal of that very send (the same install's newest send of the object before the
    /// refusal, with the refused digest).
    fn covered(&self, sends: &[Send]) -> HashSet<usize> {
        let mut covered: HashSet<usize> = sends
            .iter()
            .enumerate()
            .filter(|(_, send)| {
                self.applied
                    .get(&send.object.key.inventory_id())
                    .is_some_and(|answer| *answer > send.seq)
            })
            .map(|(index, _)| index)
            .collect();
        if self.refused.is_empty() {
            return covered;
        }
        // Each install's sends of each object, newest first (as `sends` comes).
        let mut by_object: HashMap<(&str, String), Vec<usize>> = HashMap::new();
        for (index, send) in sends.iter().enumerate() {
            by_object
                .entry((send.install.as_str(), send.object.key.inventory_id()))
                .or_default()
                .push(index);
        }
        for refusal in &self.refused {
            let answered = by_object
                .get(&(refusal.install.as_str(), refusal.id.clone()))
                .and_then(|indexes| {
                    indexes
                        .iter()
                        .find(|&&index| sends[index].seq < refusal.seq)
                });
            if let Some(&index) = answered
                && sends[index].object.digest == refusal.digest
            {
                covered.insert(index);
            }
        }
        covered
    }
}

/// Adds to `objects` (one entry per object) the digests of `sends` (newest first) that no
/// answer recorded after them covers: to the object's entry when an earlier answer gave it a
/// uid, else as a new entry known by those digests alone.
fn add_unanswered_sends(objects: &mut Vec<InventoryEntry>, answers: &Answers, sends: Vec<Send>) {
    let covered = answers.covered(&sends);
    let mut position: HashMap<String, usize> = objects
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry.key.inventory_id(), index))
        .collect();
    let mut added: Vec<InventoryEntry> = Vec::new();
    for (index, Send { object, .. }) in sends.into_iter().enumerate() {
        if covered.contains(&index) {
            continue;
        }
        let id = object.key.inventory_id();
        let entry = match position.get(&id) {
            Some(&index) if index < objects.len() => &mut objects[index],
            Some(&index) => &mut added[index - objects.len()],
            None => {
                position.insert(id, objects.len() + added.len());
                added.push(InventoryEntry {
                    additional_namespace: is_additional_namespace(object.step, &object.key),
                    key: object.key,
                    uid: String::new(),
                    // The newest send's phase (sends come newest first).
                    deletion_phase: object.deletion_phase,
                    keep: false,
                    sent_digests: Vec::new(),
                    left_to_other_instance: false,
                });
                added.last_mut().expect("just added")
            }
        };
        if !entry.sent_digests.contains(&object.digest) {
            entry.sent_digests.push(object.digest);
        }
    }
    // Oldest first, as the answered objects are.
    added.reverse();
    objects.extend(added);
}

/// Hands `visit` each fact of `event_type` other installs recorded, newest first, until it
/// breaks.
fn visit_others_facts(
    context: &StageContext,
    event_type: &str,
    visit: &mut dyn FnMut(LazyEvent) -> ControlFlow<()>,
) -> Result<(), StageError> {
    context
        .history
        .visit_recent_facts(
            event_type,
            time::OffsetDateTime::UNIX_EPOCH,
            &context.install_id,
            visit,
        )
        .map_err(StageError::permanent)
}

/// Hands `visit` each fact of `event_type` recorded after global sequence `after`, newest
/// first.
fn visit_since(
    context: &StageContext,
    event_type: &str,
    after: u64,
    visit: &mut dyn FnMut(&LazyEvent) -> Option<()>,
) -> Result<(), StageError> {
    visit_others_facts(context, event_type, &mut |event| {
        if event.event.global_seq <= after {
            return ControlFlow::Break(());
        }
        visit(&event);
        ControlFlow::Continue(())
    })
}

/// `event`'s payload as `T`, or `None` with a note on `progress` (its content is then not
/// pruned) and its place in the log added to `unreadable`.
fn decode_or_warn<T: serde::de::DeserializeOwned>(
    progress: &dyn windlass_engine::Progress,
    event: &LazyEvent,
    unreadable: &mut Vec<u64>,
) -> Option<T> {
    match event.decode::<T>() {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            unreadable.push(event.event.global_seq);
            progress.note(&format!(
                "record {} of install {}, an apply that never completed, does not decode ({error}): what it names is not pruned",
                event.event.global_seq, event.event.install_id
            ));
            tracing::warn!(
                record = event.event.global_seq,
                install = %event.event.install_id,
                %error,
                "apply: a record of an apply that never completed does not decode; what it names is not pruned"
            );
            None
        }
    }
}

/// The inventory to prune against: `previous`'s, with `unfinished` objects added (an object in
/// both takes the unfinished apply's uid when it recorded one, the newer, gains the digests
/// sent without an answer, and keeps the flags either recorded).
/// `None` when there is nothing to prune against at all.
pub fn prune_against(
    previous: Option<&[InventoryEntry]>,
    unfinished: Vec<InventoryEntry>,
) -> Option<Vec<InventoryEntry>> {
    if unfinished.is_empty() {
        return previous.map(<[InventoryEntry]>::to_vec);
    }
    let mut merged: Vec<InventoryEntry> =
        previous.map(<[InventoryEntry]>::to_vec).unwrap_or_default();
    let mut position: HashMap<String, usize> = merged
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry.key.inventory_id(), index))
        .collect();
    for entry in unfinished {
        match position.get(&entry.key.inventory_id()) {
            Some(&index) => {
                let known = &mut merged[index];
                if !entry.uid.is_empty() {
                    known.uid = entry.uid;
                }
                for digest in entry.sent_digests {
                    if !known.sent_digests.contains(&digest) {
                        known.sent_digests.push(digest);
                    }
                }
                known.additional_namespace |= entry.additional_namespace;
                if entry.deletion_phase != 0 {
                    known.deletion_phase = entry.deletion_phase;
                }
            }
            None => {
                position.insert(entry.key.inventory_id(), merged.len());
                merged.push(entry);
            }
        }
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::ObjectKey;

    fn entry(name: &str, uid: &str) -> InventoryEntry {
        InventoryEntry {
            key: ObjectKey {
                group: String::new(),
                version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("default".into()),
                name: name.into(),
            },
            uid: uid.into(),
            deletion_phase: 0,
            keep: false,
            additional_namespace: false,
            sent_digests: Vec::new(),
            left_to_other_instance: false,
        }
    }

    #[test]
    fn unfinished_objects_join_the_previous_inventory_with_their_newer_uid() {
        let mut kept = entry("kept", "u-kept");
        kept.keep = true;
        let previous = vec![entry("a", "u-a-old"), kept.clone()];
        let mut phased = entry("b", "u-b");
        phased.deletion_phase = 2;
        let merged = prune_against(
            Some(&previous),
            vec![
                entry("a", "u-a-new"),
                phased.clone(),
                entry("kept", "u-kept"),
            ],
        )
        .unwrap();
        assert_eq!(merged.len(), 3, "{merged:?}");
        assert_eq!(merged[0].uid, "u-a-new", "the recreated object's newer uid");
        assert!(merged[1].keep, "a flag the previous apply recorded stays");
        assert_eq!(merged[2], phased);
    }

    #[test]
    fn a_cluster_is_known_by_its_uid_when_both_records_have_one_else_by_its_url() {
        let cluster = |server: &str, uid: Option<&str>| ClusterIdentity {
            server: server.into(),
            uid: uid.map(str::to_string),
        };
        let here = cluster("https://10.0.0.1:6443/", Some("u-1"));
        let record = |server: &str, uid: Option<&str>| cluster(server, uid).record(None);
        assert!(here.is(&record("https://api.example.test:6443/", Some("u-1"))));
        assert!(!here.is(&record("https://10.0.0.1:6443/", Some("u-2"))));
        assert!(
            here.is(&record("https://10.0.0.1:6443/", None)),
            "an older record"
        );
        assert!(!here.is(&record("https://10.0.0.2:6443/", None)));
        let unknown = cluster("https://10.0.0.1:6443/", None);
        assert!(unknown.is(&record("https://10.0.0.1:6443/", Some("u-1"))));
        assert!(!unknown.is(&TargetRecord::Dir {
            path: "/tmp/out".into()
        }));
    }

    fn sent(name: &str, digest: &str) -> SentObject {
        SentObject {
            key: entry(name, "").key,
            step: Step::Rest,
            digest: digest.into(),
            deletion_phase: 0,
        }
    }

    fn with_digests(mut entry: InventoryEntry, digests: &[&str]) -> InventoryEntry {
        entry.sent_digests = digests.iter().map(|digest| digest.to_string()).collect();
        entry
    }

    fn send(seq: u64, install: &str, name: &str, digest: &str) -> Send {
        Send {
            seq,
            install: install.into(),
            object: sent(name, digest),
        }
    }

    #[test]
    fn sends_no_later_answer_covers_join_the_objects_by_their_digests() {
        // `a` answered (at 10) after its send at 5; `b` answered at 10, sent again at 20 and
        // 30 (remade, perhaps, by a recreate) with no answer since; `c` never given a uid:
        // install i3's write of c3 was refused at 40 (which made nothing); i1's c1 at 20 went
        // unanswered, and i2 sent c1 again at 25, refused at 26 (that refusal answers i2's
        // send, not i1's); i1's c0 at 15 is answered by no refusal of i1's.
        let mut objects = vec![entry("a", "u-a"), entry("b", "u-b")];
        let id = |name: &str| entry(name, "").key.inventory_id();
        let refusal = |seq: u64, install: &str, digest: &str| Refusal {
            seq,
            install: install.into(),
            id: id("c"),
            digest: digest.into(),
        };
        let answers = Answers {
            applied: HashMap::from([(id("a"), 10), (id("b"), 10)]),
            refused: vec![refusal(40, "i3", "c3"), refusal(26, "i2", "c1")],
        };
        let sends = vec![
            send(35, "i3", "c", "c3"),
            send(30, "i2", "b", "b2"),
            send(25, "i2", "c", "c1"),
            send(20, "i1", "b", "b1"),
            send(20, "i1", "c", "c1"),
            send(15, "i1", "c", "c0"),
            send(5, "i1", "a", "a0"),
        ];
        add_unanswered_sends(&mut objects, &answers, sends);
        assert_eq!(
            objects,
            [
                entry("a", "u-a"),
                with_digests(entry("b", "u-b"), &["b2", "b1"]),
                with_digests(entry("c", ""), &["c1", "c0"]),
            ]
        );
    }

    #[test]
    fn a_refusal_answers_only_the_newest_send_of_its_install_before_it() {
        // i1 sent D at 10 and again at 20; the refusal at 30 answers the send at 20 only.
        let id = entry("c", "").key.inventory_id();
        let answers = Answers {
            applied: HashMap::new(),
            refused: vec![Refusal {
                seq: 30,
                install: "i1".into(),
                id,
                digest: "D".into(),
            }],
        };
        let mut objects = Vec::new();
        add_unanswered_sends(
            &mut objects,
            &answers,
            vec![send(20, "i1", "c", "D"), send(10, "i1", "c", "D")],
        );
        assert_eq!(objects, [with_digests(entry("c", ""), &["D"])]);
    }

    #[test]
    fn unfinished_uids_and_sent_digests_join_the_previous_inventory() {
        let unheard = |name: &str| with_digests(entry(name, ""), &[&format!("digest-{name}")]);
        let merged = prune_against(
            Some(&[entry("a", "u-a")]),
            vec![entry("b", "u-b"), unheard("a"), unheard("c")],
        )
        .unwrap();
        assert_eq!(
            merged,
            [
                with_digests(entry("a", "u-a"), &["digest-a"]),
                entry("b", "u-b"),
                unheard("c")
            ],
            "a known uid stays, with the digest sent since; an unknown object joins by its digest"
        );
    }

    #[test]
    fn without_unfinished_objects_the_previous_inventory_is_used_as_it_is() {
        assert_eq!(prune_against(None, Vec::new()), None);
        let previous = vec![entry("a", "u-a")];
        assert_eq!(
            prune_against(Some(&previous), Vec::new()),
            Some(previous.clone())
        );
        assert_eq!(
            prune_against(None, vec![entry("b", "u-b")]),
            Some(vec![entry("b", "u-b")]),
            "objects of a failed first apply are pruned too"
        );
    }
}
