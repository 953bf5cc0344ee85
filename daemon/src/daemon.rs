//! The daemon's loop. It scans the watched directory in full at start, on every hint, on the
//! `Rescan` flag and on a periodic timer (or only on a timer with `--poll`); judges each entry
//! (complete or not, taken before or not — see [`ReleaseView`]); and installs the complete,
//! untaken releases one at a time, in version order, through
//! [`windlass_stages::install::install`], recording `ReleaseDetected` before any work and
//! `ReleaseFinished` after. At start it first resumes the release whose install a killed daemon
//! left unfinished. On SIGTERM it lets the running stage finish and stops (the install resumes
//! at the next start).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use windlass_engine::{InstallState, InstallStatus, Progress, Services};
use windlass_stages::install::{InstallEnvironment, InstallOptions, check_release_dir, install};
use windlass_state::{NewEvent, StateDir};

use crate::content::{
    BundleLimits, Content, DigestCache, READY_MARKER, bundle_content, compare_versions,
    directory_content, unpack_bundle,
};
use crate::events::{
    ReleaseDetected, ReleaseFinished, ReleaseKind, ReleaseResult, TakenBecause, release_stream,
};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::watch::{FileWatcher, Hint, watch};

/// How the daemon watches.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The watched directory, absolute.
    pub dir: PathBuf,
    /// How long a release's digest must stay the same to be taken without a marker or rename.
    pub quiet_period: Duration,
    /// How often the whole directory is rescanned regardless of events.
    pub rescan_interval: Duration,
    /// Poll instead of watching for events: rescan at this interval.
    pub poll: Option<Duration>,
    /// Digests to install again once (`--reinstall`).
    pub reinstall: Vec<String>,
    /// Limits on bundles.
    pub bundle_limits: BundleLimits,
}

/// How each release is installed: the install API's options (the release directory is set per
/// release), the services stages get, who acts, and how new install ids are made.
pub struct InstallTemplate {
    /// The options of every install; `release_dir` is replaced.
    pub options: InstallOptions,
    /// The services every install gets.
    pub services: Services,
    /// Recorded as each event's actor.
    pub actor: String,
    /// Makes a new install id.
    pub new_install_id: fn() -> String,
    /// With a Kubernetes target (not a dry run): its kubeconfig context (`None`: the current
    /// one). Pull secrets of apps with `additionalNamespaces: ["*"]` then follow new namespaces.
    pub kube_context: Option<Option<String>>,
}

/// What the watcher sees in one entry of the directory and why it is or is not taken
/// (`/api/releases`; a wire format).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReleaseView {
    /// The entry's name.
    pub name: String,
    /// Directory or bundle.
    pub kind: ReleaseKind,
    /// Its content digest, when it could be read.
    pub digest: Option<String>,
    /// Files it holds.
    pub files: u64,
    /// Its version label.
    pub version: Option<String>,
    /// `waiting` (not complete yet), `unreadable`, `empty`, `queued` (complete, to be installed),
    /// `installing`, `completed` or `failed` (taken before: never installed again unless asked).
    pub status: String,
    /// Why, in words.
    pub reason: String,
    /// The install that took it, if one did.
    pub install_id: Option<String>,
}

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The watched directory cannot be read.
    #[error("watched directory {dir}: {error}")]
    Dir {
        /// The directory.
        dir: String,
        /// Why.
        error: std::io::Error,
    },
    /// The daemon's records in the log cannot be read.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// The log refused an append.
    #[error("cannot record in the event log: {0}")]
    Record(String),
    /// The file watcher could not be started (use `--poll`).
    #[error("cannot watch {dir} for changes ({error}); use --poll on file systems without events")]
    Watch {
        /// The directory.
        dir: String,
        /// Why.
        error: String,
    },
}

/// The daemon's state, shared with the status API.
pub struct Shared {
    /// How it watches.
    pub config: WatchConfig,
    /// The state directory.
    pub state: Arc<StateDir>,
    /// Metrics.
    pub metrics: Metrics,
    /// What the last scan saw.
    pub releases: RwLock<Vec<ReleaseView>>,
    /// What the log says about releases.
    pub ledger: RwLock<Ledger>,
    /// Set once the first scan is done.
    pub ready: AtomicBool,
    /// Hints to the loop (the API's reinstall requests go here).
    pub hints: UnboundedSender<Hint>,
    stopping: AtomicBool,
    stopped: Notify,
    running_stages: AtomicUsize,
    /// The task copying each app's pull secrets into new namespaces, by app.
    followers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

impl Shared {
    /// Asks the loop to install the release with `digest` again; false when no release with that
    /// digest was ever taken.
    pub fn request_reinstall(&self, digest: &str) -> bool {
        let known = self
            .ledger
            .read()
            .map(|ledger| ledger.releases.contains_key(digest))
            .unwrap_or(false);
        if known {
            let _ = self.hints.send(Hint::Reinstall(digest.to_string()));
        }
        known
    }
}

#[derive(Debug, Clone)]
struct Tracked {
    kind: ReleaseKind,
    path: PathBuf,
    content: Result<Content, String>,
    since: Instant,
    renamed: bool,
    modified: Option<SystemTime>,
}

/// One release to install.
#[derive(Debug, Clone)]
struct Job {
    detected: ReleaseDetected,
    resume: bool,
}

/// Creates the daemon's shared state and the receiving end of its hints.
pub fn shared(
    config: WatchConfig,
    state: Arc<StateDir>,
) -> Result<(Arc<Shared>, UnboundedReceiver<Hint>), DaemonError> {
    let ledger = Ledger::load(&state.log)?;
    let (hints, receiver) = unbounded_channel();
    Ok((
        Arc::new(Shared {
            config,
            state,
            metrics: Metrics::default(),
            releases: RwLock::new(Vec::new()),
            ledger: RwLock::new(ledger),
            ready: AtomicBool::new(false),
            hints,
            stopping: AtomicBool::new(false),
            stopped: Notify::new(),
            running_stages: AtomicUsize::new(0),
            followers: Mutex::new(HashMap::new()),
        }),
        receiver,
    ))
}

/// Runs the daemon until SIGTERM or SIGINT (then it lets the running stage finish; a running
/// install resumes at the next start).
pub async fn run(
    shared: Arc<Shared>,
    mut hints: UnboundedReceiver<Hint>,
    template: Arc<InstallTemplate>,
) -> Result<(), DaemonError> {
    let config = shared.config.clone();
    std::fs::read_dir(&config.dir).map_err(|error| DaemonError::Dir {
        dir: config.dir.display().to_string(),
        error,
    })?;
    let _watcher: Option<FileWatcher> =
        match config.poll {
            Some(_) => None,
            None => Some(watch(&config.dir, shared.hints.clone()).map_err(|error| {
                DaemonError::Watch {
                    dir: config.dir.display().to_string(),
                    error: error.to_string(),
                }
            })?),
        };
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|error| DaemonError::Record(format!("cannot handle SIGTERM: {error}")))?;
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|error| DaemonError::Record(format!("cannot handle SIGINT: {error}")))?;

    if template.kube_context.is_some() {
        resume_followers(&shared, &template);
    }
    let mut cache = Some(DigestCache::default());
    let mut tracked: HashMap<String, Tracked> = HashMap::new();
    let mut renamed: BTreeSet<String> = BTreeSet::new();
    let mut reinstall: BTreeSet<String> = config.reinstall.iter().cloned().collect();
    // Releases a killed daemon left unfinished come first.
    let mut resumes: Vec<Job> = shared
        .ledger
        .read()
        .map(|ledger| {
            ledger
                .releases
                .values()
                .filter_map(|record| record.unfinished().cloned())
                .map(|detected| Job {
                    detected,
                    resume: true,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut running: Option<(String, tokio::task::JoinHandle<Result<(), DaemonError>>)> = None;
    let mut scan_cause: Option<&'static str> = Some("start");
    let mut next_full = Instant::now() + config.poll.unwrap_or(config.rescan_interval);
    loop {
        if let Some(cause) = scan_cause.take() {
            let names = std::mem::take(&mut renamed);
            let (new_cache, result) =
                scan(&config, cache.take().unwrap_or_default(), tracked, names).await;
            cache = Some(new_cache);
            tracked = result?;
            shared.metrics.rescanned(cause);
            next_full = Instant::now() + config.poll.unwrap_or(config.rescan_interval);
        }
        let running_digest = running.as_ref().map(|(digest, _)| digest.clone());
        let (views, candidates, deadline) =
            judge(&shared, &tracked, &reinstall, running_digest.as_deref());
        let next_deadline = deadline;
        if let Ok(mut releases) = shared.releases.write() {
            *releases = views;
        }
        shared.ready.store(true, Ordering::Release);
        if shared.stopping.load(Ordering::Acquire) && running.is_none() {
            return Ok(());
        }
        if running.is_none() {
            let job = if resumes.is_empty() {
                candidates.into_iter().next().map(|(name, because)| {
                    let entry = &tracked[&name];
                    let content = entry
                        .content
                        .as_ref()
                        .ok()
                        .cloned()
                        .unwrap_or_else(|| Content {
                            digest: String::new(),
                            files: 0,
                            version: None,
                        });
                    if because == TakenBecause::Reinstall {
                        reinstall.remove(&content.digest);
                    }
                    Job {
                        detected: ReleaseDetected {
                            digest: content.digest,
                            name: name.clone(),
                            path: entry.path.display().to_string(),
                            kind: entry.kind,
                            version: content.version,
                            taken_because: because,
                            install_id: (template.new_install_id)(),
                            files: content.files,
                        },
                        resume: false,
                    }
                })
            } else {
                Some(resumes.remove(0))
            };
            if let Some(job) = job {
                let digest = job.detected.digest.clone();
                if !job.resume {
                    record(&shared, &job.detected.digest, &job.detected)?;
                }
                let task = tokio::spawn(install_release(shared.clone(), template.clone(), job));
                running = Some((digest, task));
                // The views show it as installing.
                scan_cause = None;
                continue_judging(
                    &shared,
                    &tracked,
                    &reinstall,
                    running.as_ref().map(|r| r.0.as_str()),
                );
            }
        }
        let sleep_until = next_deadline
            .map(|deadline| deadline.min(next_full))
            .unwrap_or(next_full);
        tokio::select! {
            hint = hints.recv() => {
                match hint {
                    Some(Hint::Changed | Hint::Marker) => scan_cause = Some("event"),
                    Some(Hint::Overflow) => scan_cause = Some("overflow"),
                    Some(Hint::Renamed(name)) => {
                        renamed.insert(name);
                        scan_cause = Some("event");
                    }
                    Some(Hint::Reinstall(digest)) => {
                        reinstall.insert(digest);
                        scan_cause = Some("event");
                    }
                    None => return Ok(()),
                }
                // Take every hint that is already queued with this one.
                while let Ok(hint) = hints.try_recv() {
                    match hint {
                        Hint::Overflow => scan_cause = Some("overflow"),
                        Hint::Renamed(name) => { renamed.insert(name); }
                        Hint::Reinstall(digest) => { reinstall.insert(digest); }
                        Hint::Changed | Hint::Marker => {}
                    }
                }
            }
            _ = tokio::time::sleep_until(sleep_until.into()) => {
                scan_cause = Some(if Instant::now() >= next_full {
                    if config.poll.is_some() { "poll" } else { "timer" }
                } else {
                    "quiet_period"
                });
            }
            finished = async {
                match running.as_mut() {
                    Some((_, task)) => task.await,
                    None => std::future::pending().await,
                }
            } => {
                running = None;
                match finished {
                    Ok(result) => result?,
                    Err(join_error) => tracing::error!("release install task failed: {join_error}"),
                }
                scan_cause = Some("after_install");
            }
            _ = terminate.recv() => stop(&shared, running.is_some()),
            _ = interrupt.recv() => stop(&shared, running.is_some()),
            _ = shared.stopped.notified() => return Ok(()),
        }
    }
}

/// Starts the pull-secret followers of the newest completed install of each app the log holds
/// (after a restart).
fn resume_followers(shared: &Arc<Shared>, template: &Arc<InstallTemplate>) {
    let mut finished: Vec<(String, String, String)> = shared
        .ledger
        .read()
        .map(|ledger| {
            ledger
                .releases
                .values()
                .flat_map(|record| record.finishes.iter())
                .filter(|(finish, _)| finish.result == ReleaseResult::Completed)
                .map(|(finish, at)| (at.clone(), finish.install_id.clone(), finish.digest.clone()))
                .collect()
        })
        .unwrap_or_default();
    finished.sort();
    for (_, install_id, digest) in finished {
        let Ok(events) = shared.state.log.events_of(&install_id) else {
            continue;
        };
        if let Ok(state) = windlass_engine::fold(&install_id, &events) {
            start_follower(shared, template, &state, &digest);
        }
    }
}

/// With a Kubernetes target: when `install` wants its pull secrets in every namespace, starts
/// copying them into new ones (replacing the app's earlier follower); when it does not, stops
/// the earlier follower.
fn start_follower(
    shared: &Arc<Shared>,
    template: &Arc<InstallTemplate>,
    install: &InstallState,
    digest: &str,
) {
    let Some(context) = &template.kube_context else {
        return;
    };
    if install.status != InstallStatus::Completed {
        return;
    }
    // A newer install that no longer puts its pull secrets everywhere (or whose own cannot be
    // read) stops the copies of the app's earlier one: they hold that install's license.
    let stop_earlier = || {
        if let Ok(mut followers) = shared.followers.lock()
            && let Some(earlier) = followers.remove(&install.app_slug)
        {
            earlier.abort();
        }
    };
    let copies = match crate::namespaces::copies_for(install, digest) {
        Ok(Some(copies)) => copies,
        Ok(None) => return stop_earlier(),
        Err(error) => {
            eprintln!("windlass watch: pull secrets will not follow new namespaces: {error}");
            return stop_earlier();
        }
    };
    let task = tokio::spawn(crate::namespaces::follow(
        shared.clone(),
        template.services.clone(),
        context.clone(),
        copies,
    ));
    if let Ok(mut followers) = shared.followers.lock()
        && let Some(previous) = followers.insert(install.app_slug.clone(), task)
    {
        previous.abort();
    }
}

/// Updates the views after a job started (so `/api/releases` shows it installing).
fn continue_judging(
    shared: &Shared,
    tracked: &HashMap<String, Tracked>,
    reinstall: &BTreeSet<String>,
    running: Option<&str>,
) {
    let (views, _, _) = judge(shared, tracked, reinstall, running);
    if let Ok(mut releases) = shared.releases.write() {
        *releases = views;
    }
}

fn stop(shared: &Shared, installing: bool) {
    if installing {
        eprintln!(
            "windlass watch: stopping after the running stage (its install resumes at the next start)"
        );
    }
    shared.stopping.store(true, Ordering::Release);
    if installing && shared.running_stages.load(Ordering::Acquire) == 0 {
        // Between stages, or before the first: nothing to wait for.
        shared.stopped.notify_one();
    }
}

/// Rescans the directory (on a blocking thread): every subdirectory and `.tar.gz` bundle, with
/// its content.
async fn scan(
    config: &WatchConfig,
    cache: DigestCache,
    previous: HashMap<String, Tracked>,
    renamed: BTreeSet<String>,
) -> (DigestCache, Result<HashMap<String, Tracked>, DaemonError>) {
    let config = config.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut cache = cache;
        let result = scan_blocking(&config, &mut cache, previous, &renamed);
        cache.sweep();
        (cache, result)
    });
    match task.await {
        Ok(done) => done,
        Err(error) => (
            DigestCache::default(),
            Err(DaemonError::Record(format!("scan failed: {error}"))),
        ),
    }
}

fn scan_blocking(
    config: &WatchConfig,
    cache: &mut DigestCache,
    mut previous: HashMap<String, Tracked>,
    renamed: &BTreeSet<String>,
) -> Result<HashMap<String, Tracked>, DaemonError> {
    let entries = std::fs::read_dir(&config.dir).map_err(|error| DaemonError::Dir {
        dir: config.dir.display().to_string(),
        error,
    })?;
    let mut now_tracked = HashMap::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // Hidden names are copies in progress (or markers); they are renamed in when done.
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        let kind = if metadata.is_dir() {
            ReleaseKind::Directory
        } else if metadata.is_file() && name.ends_with(".tar.gz") {
            ReleaseKind::Bundle
        } else {
            continue;
        };
        let content = match kind {
            ReleaseKind::Directory => directory_content(&path, cache),
            ReleaseKind::Bundle => bundle_content(&path, &config.bundle_limits, cache),
        }
        .map_err(|error| error.to_string());
        let now = Instant::now();
        let tracked = match previous.remove(&name) {
            Some(mut old) if old.content == content && old.kind == kind => {
                old.renamed |= renamed.contains(&name);
                old.path = path.clone();
                old
            }
            _ => Tracked {
                kind,
                path: path.clone(),
                content,
                since: now,
                renamed: renamed.contains(&name),
                modified: metadata.modified().ok(),
            },
        };
        now_tracked.insert(name, tracked);
    }
    Ok(now_tracked)
}

fn ready_marker(tracked: &Tracked) -> bool {
    match tracked.kind {
        ReleaseKind::Directory => tracked.path.join(READY_MARKER).is_file(),
        ReleaseKind::Bundle => {
            let mut marker = tracked.path.clone().into_os_string();
            marker.push(READY_MARKER);
            Path::new(&marker).is_file()
        }
    }
}

/// Judges every tracked entry: its view, the candidates to install in order, and when the next
/// entry's quiet period ends.
fn judge(
    shared: &Shared,
    tracked: &HashMap<String, Tracked>,
    reinstall: &BTreeSet<String>,
    running: Option<&str>,
) -> (
    Vec<ReleaseView>,
    Vec<(String, TakenBecause)>,
    Option<Instant>,
) {
    let ledger = shared
        .ledger
        .read()
        .map(|ledger| ledger.clone())
        .unwrap_or_default();
    let quiet = shared.config.quiet_period;
    let mut views = Vec::new();
    let mut candidates: Vec<(String, TakenBecause, Option<String>, Option<SystemTime>)> =
        Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut queued_digests = BTreeSet::new();
    let mut names: Vec<&String> = tracked.keys().collect();
    names.sort();
    for name in names {
        let entry = &tracked[name];
        let mut view = ReleaseView {
            name: name.clone(),
            kind: entry.kind,
            digest: None,
            files: 0,
            version: None,
            status: String::new(),
            reason: String::new(),
            install_id: None,
        };
        let content = match &entry.content {
            Err(error) => {
                view.status = "unreadable".into();
                view.reason = format!("cannot be read ({error}); looked at again when it changes");
                views.push(view);
                continue;
            }
            Ok(content) => content,
        };
        view.digest = Some(content.digest.clone());
        view.files = content.files;
        view.version = content.version.clone();
        if content.files == 0 {
            view.status = "empty".into();
            view.reason = "holds no file yet".into();
            views.push(view);
            continue;
        }
        if let Some(record) = ledger.releases.get(&content.digest) {
            let last = record.detections.last().map(|(detected, _)| detected);
            view.install_id = last.map(|detected| detected.install_id.clone());
            if running == Some(content.digest.as_str()) || record.unfinished().is_some() {
                view.status = "installing".into();
                view.reason = "taken; its install is running".into();
            } else if reinstall.contains(&content.digest) {
                view.status = "queued".into();
                view.reason = "taken before; an install again was asked for".into();
                if queued_digests.insert(content.digest.clone()) {
                    candidates.push((
                        name.clone(),
                        TakenBecause::Reinstall,
                        content.version.clone(),
                        entry.modified,
                    ));
                }
            } else {
                let finish = record.last_finish();
                view.install_id = finish
                    .map(|finish| finish.install_id.clone())
                    .or(view.install_id);
                view.status = match finish.map(|finish| finish.result) {
                    Some(ReleaseResult::Failed) => "failed".into(),
                    _ => "completed".into(),
                };
                view.reason = format!(
                    "release digest taken before (install {}{}); never installed again unless asked (--reinstall {} or POST /api/releases/{}/reinstall)",
                    view.install_id.as_deref().unwrap_or("-"),
                    finish
                        .and_then(|finish| finish.error.as_deref())
                        .map(|error| format!(", failed: {error}"))
                        .unwrap_or_default(),
                    content.digest,
                    content.digest,
                );
            }
            views.push(view);
            continue;
        }
        let because = if ready_marker(entry) {
            Some(TakenBecause::ReadyMarker)
        } else if entry.renamed {
            Some(TakenBecause::Renamed)
        } else if entry.since.elapsed() >= quiet {
            Some(TakenBecause::QuietPeriod)
        } else {
            None
        };
        match because {
            Some(because) => {
                view.status = "queued".into();
                view.reason = match because {
                    TakenBecause::ReadyMarker => "complete: a .ready marker is present".into(),
                    TakenBecause::Renamed => "complete: it was renamed into the directory".into(),
                    _ => format!(
                        "complete: its digest stayed the same for the quiet period ({} ms)",
                        quiet.as_millis()
                    ),
                };
                if queued_digests.insert(content.digest.clone()) {
                    candidates.push((
                        name.clone(),
                        because,
                        content.version.clone(),
                        entry.modified,
                    ));
                } else {
                    view.reason
                        .push_str(" (the same digest is queued under another name)");
                }
            }
            None => {
                let ends = entry.since + quiet;
                deadline = Some(deadline.map_or(ends, |current: Instant| current.min(ends)));
                view.status = "waiting".into();
                view.reason = format!(
                    "content changed {} ms ago; taken once unchanged for the quiet period ({} ms), or at once with a .ready marker",
                    entry.since.elapsed().as_millis(),
                    quiet.as_millis()
                );
            }
        }
        views.push(view);
    }
    // Version order; releases without a version label after those with one, oldest first.
    candidates.sort_by(|left, right| match (&left.2, &right.2) {
        (Some(a), Some(b)) => compare_versions(a, b).then_with(|| left.3.cmp(&right.3)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => left.3.cmp(&right.3).then_with(|| left.0.cmp(&right.0)),
    });
    (
        views,
        candidates
            .into_iter()
            .map(|(name, because, _, _)| (name, because))
            .collect(),
        deadline,
    )
}

/// Appends one release event to the release's stream and to the ledger.
pub(crate) fn record<T: windlass_state::EventPayload>(
    shared: &Shared,
    digest: &str,
    payload: &T,
) -> Result<(), DaemonError> {
    let stream = release_stream(digest);
    let event = NewEvent::of(&stream, daemon_actor(), payload)
        .map_err(|error| DaemonError::Record(error.to_string()))?;
    let stored = shared
        .state
        .log
        .append(vec![event])
        .map_err(|error| DaemonError::Record(error.to_string()))?;
    let mut ledger = shared
        .ledger
        .write()
        .map_err(|_| DaemonError::Record("ledger lock poisoned".into()))?;
    for event in &stored {
        ledger
            .apply(&stream, event)
            .map_err(|error| DaemonError::Record(error.to_string()))?;
    }
    Ok(())
}

/// `daemon@<host>`.
fn daemon_actor() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|host| host.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("daemon@{host}")
}

/// An error and its causes on one line, each said once.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// Installs one release and records how it ended.
async fn install_release(
    shared: Arc<Shared>,
    template: Arc<InstallTemplate>,
    job: Job,
) -> Result<(), DaemonError> {
    let started = Instant::now();
    let detected = job.detected;
    let outcome = run_install(&shared, &template, &detected, job.resume).await;
    let (install_id, result, error) = match outcome {
        Ok(state) => {
            shared.metrics.probes(probe_outcomes(&state));
            start_follower(&shared, &template, &state, &detected.digest);
            let error = state.failure.as_ref().map(|failure| {
                format!(
                    "stage {} failed ({}): {}",
                    failure.stage, failure.class, failure.message
                )
            });
            let result = if state.status == InstallStatus::Completed {
                ReleaseResult::Completed
            } else {
                ReleaseResult::Failed
            };
            (state.install_id, result, error)
        }
        Err(error) => (
            detected.install_id.clone(),
            ReleaseResult::Failed,
            Some(error),
        ),
    };
    if let Some(error) = &error {
        eprintln!(
            "windlass watch: release {} ({}) failed: {error}",
            detected.name, detected.digest
        );
    }
    let finished = ReleaseFinished {
        digest: detected.digest.clone(),
        install_id,
        result,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    record(&shared, &detected.digest, &finished)?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0);
    shared.metrics.install_finished(
        match result {
            ReleaseResult::Completed => "completed",
            ReleaseResult::Failed => "failed",
        },
        now,
    );
    Ok(())
}

/// The images' probe outcomes an install recorded.
fn probe_outcomes(state: &InstallState) -> Vec<String> {
    state
        .stages
        .iter()
        .flat_map(|stage| stage.fact_events.iter())
        .filter(|event| event.event_type == "ImagesProbed")
        .flat_map(|event| {
            event.payload["images"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|image| image["outcome"].as_str().map(str::to_string))
        .collect()
}

/// Runs (or resumes) the install of a taken release; an error is why it could not run.
async fn run_install(
    shared: &Arc<Shared>,
    template: &InstallTemplate,
    detected: &ReleaseDetected,
    resume: bool,
) -> Result<InstallState, String> {
    // A resumed take whose install already ended (the daemon died before recording it) is not
    // run again.
    let mut new_install_id = detected.install_id.clone();
    if resume {
        let events = shared
            .state
            .log
            .events_of(&detected.install_id)
            .map_err(|error| one_line(&error))?;
        if !events.is_empty() {
            let state = windlass_engine::fold(&detected.install_id, &events)
                .map_err(|error| one_line(&error))?;
            if state.status != InstallStatus::Incomplete {
                return Ok(state);
            }
            // It resumes under its own id; a fresh id is only used if the request changed.
            new_install_id = (template.new_install_id)();
        }
    }
    let release_dir = match detected.kind {
        ReleaseKind::Directory => PathBuf::from(&detected.path),
        ReleaseKind::Bundle => {
            let shared = shared.clone();
            let detected = detected.clone();
            tokio::task::spawn_blocking(move || unpacked_bundle(&shared, &detected))
                .await
                .map_err(|error| error.to_string())??
        }
    };
    let release_dir = check_release_dir(&release_dir).map_err(|error| one_line(&error))?;
    let mut options: InstallOptions = template.options.clone();
    options.release_dir = release_dir;
    let progress: Arc<dyn Progress> = Arc::new(DaemonProgress {
        shared: shared.clone(),
        started: Mutex::new(HashMap::new()),
    });
    let state_shown = shared.state.root().to_path_buf();
    let outcome = install(
        &options,
        InstallEnvironment {
            state: &shared.state,
            state_shown: &state_shown,
            actor: template.actor.clone(),
            new_install_id,
            progress,
            services: template.services.clone(),
        },
    )
    .await
    .map_err(|error| one_line(&error))?;
    Ok(outcome.state)
}

/// The directory a taken bundle is unpacked into: `<state>/watch/bundles/<digest hex>`, the same
/// on every run so a resumed install finds the same release. A bundle is unpacked into a staging
/// directory and renamed into place, and its unpacked digest must be the one taken.
fn unpacked_bundle(shared: &Shared, detected: &ReleaseDetected) -> Result<PathBuf, String> {
    let hex = detected
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(&detected.digest);
    let root = shared.state.root().join("watch").join("bundles");
    let target = root.join(hex);
    if target.is_dir() {
        return Ok(target);
    }
    // Staging directories a killed daemon left (one daemon per state directory holds the lock,
    // so none is in use).
    let prefix = format!(".{hex}.");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let staging = root.join(format!("{prefix}{}", std::process::id()));
    let content = unpack_bundle(
        Path::new(&detected.path),
        &shared.config.bundle_limits,
        &staging,
    )
    .map_err(|error| format!("bundle {}: {error}", detected.path));
    let content = match content {
        Ok(content) => content,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    if content.digest != detected.digest {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "bundle {}: its content changed after it was taken (digest {} now)",
            detected.path, content.digest
        ));
    }
    std::fs::rename(&staging, &target).map_err(|error| {
        format!(
            "cannot move the unpacked bundle into {}: {error}",
            target.display()
        )
    })?;
    Ok(target)
}

/// Stage timings into the metrics, and the stop after the running stage on SIGTERM.
struct DaemonProgress {
    shared: Arc<Shared>,
    started: Mutex<HashMap<String, Instant>>,
}

impl DaemonProgress {
    fn park_if_stopping(&self) {
        if self.shared.stopping.load(Ordering::Acquire)
            && self.shared.running_stages.load(Ordering::Acquire) == 0
        {
            self.shared.stopped.notify_one();
            // Nothing more of this install runs: the process exits and the install resumes at
            // the next start. The worker's other tasks move to another thread.
            tokio::task::block_in_place(|| {
                loop {
                    std::thread::park();
                }
            });
        }
    }
}

impl Progress for DaemonProgress {
    fn stage_started(&self, stage: &str, _attempt: u32) {
        self.park_if_stopping();
        self.shared.running_stages.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut started) = self.started.lock() {
            started.insert(stage.to_string(), Instant::now());
        }
    }

    fn stage_finished(&self, stage: &str, succeeded: bool, _outcome: &str) {
        let began = self
            .started
            .lock()
            .ok()
            .and_then(|mut started| started.remove(stage));
        if let Some(began) = began {
            self.shared.metrics.stage_finished(
                stage,
                if succeeded { "completed" } else { "failed" },
                began.elapsed().as_secs_f64(),
            );
        }
        self.shared.running_stages.fetch_sub(1, Ordering::AcqRel);
        self.park_if_stopping();
    }
}
