//! Releases a helm that windlass started left pending. helm marks the revision it works on
//! `pending-*` and every later `helm upgrade` of the release is refused ("another operation
//! (install/upgrade/rollback) is in progress") until that helm marks it done, so a helm killed
//! mid-way (with windlass, or a machine gone) blocks the chart for ever; KOTS and a bare
//! `helm upgrade --install` leave that to a person.
//!
//! Two things let windlass tell its own dead helm from someone else's live one:
//! - **The helm lock.** Each helm windlass runs on a release gets, as its stdin, the file of the
//!   state directory's lock `helm-<length>-<release>-<namespace>`, which windlass holds while it
//!   runs helm. The lock lasts as long as any holder is alive, so an orphaned helm still working
//!   after windlass was killed keeps it: the next run waits for it (up to `--wait-timeout`)
//!   instead of colliding with it. A lock taken means no helm windlass started from this state
//!   directory is running on the release.
//! - **`HelmUpgradeStarted`**, recorded before helm starts. helm marks the revision pending within
//!   moments of starting, before any hook. A pending revision is a windlass helm's when the newest
//!   such record of the release on that cluster before the revision began lies at most
//!   [`PENDING_WITHIN`] before it, and its install recorded no outcome of the release after it
//!   (or one saying windlass itself stopped helm, at its deadline).
//!
//! Such a release is freed (`HelmReleaseFreed`) by a rollback to its newest revision that was
//! deployed, or, when none was (a first install that never finished), an uninstall, and the chart
//! is then handed to `helm upgrade --install` again. A pending revision of any other origin is
//! left alone, and the chart fails with what to run once no helm works on it.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use windlass_engine::{StageContext, StageError};
use windlass_state::StateLock;

use crate::events::{
    HELM_RELEASE_INSTALLED, HELM_UPGRADE_STARTED, HelmReleaseInstalled, HelmUpgradeStarted,
    TargetRecord,
};
use crate::prune_candidates::ClusterIdentity;

/// How often a busy helm lock is tried again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// How long after windlass recorded `HelmUpgradeStarted` the revision that helm marks pending may
/// have begun: helm does that first, within moments (reading the release's history and the
/// cluster's capabilities); two minutes allow a slow API server.
pub const PENDING_WITHIN: time::Duration = time::Duration::minutes(2);

/// The name of the lock a helm run on `release_name` in `namespace` holds (the length keeps
/// `my-app` in `default` apart from `my` in `app-default`).
fn lock_name(release_name: &str, namespace: &str) -> String {
    format!("helm-{}-{release_name}-{namespace}", release_name.len())
}

/// Takes the helm lock of `release_name` in `namespace`, waiting up to `wait` while a helm
/// another windlass run started (a killed one's, still running, or one running now) holds it;
/// `None` without a state directory (nothing to lock in). The lock is per release and
/// namespace, not per cluster: applies of one release name to two clusters take turns.
pub async fn take_helm_lock(
    context: &StageContext,
    release_name: &str,
    namespace: &str,
    wait: Duration,
) -> Result<Option<StateLock>, StageError> {
    let Some(root) = context.services.state_dir.as_ref() else {
        return Ok(None);
    };
    let name = lock_name(release_name, namespace);
    let started = Instant::now();
    loop {
        match windlass_state::try_lock_in(root, &name) {
            Ok(Some(lock)) => return Ok(Some(lock)),
            Ok(None) if started.elapsed() < wait => {
                context.progress.stage_status(
                    &context.stage_name,
                    &format!(
                        "waiting for the helm another windlass run started on release {release_name} in {namespace} (one killed, its helm still running, or one running now) to finish ({}s of {}s)",
                        started.elapsed().as_secs(),
                        wait.as_secs()
                    ),
                );
                tokio::time::sleep(LOCK_POLL).await;
            }
            Ok(None) => {
                return Err(StageError::permanent(format!(
                    "a helm another windlass run started on release {release_name} in namespace {namespace} (a killed run's helm still running, or another windlass process) still holds the lock {name} in this state directory after {}s; run this again once it has finished",
                    wait.as_secs()
                )));
            }
            Err(error) => {
                return Err(StageError::permanent(format!(
                    "taking the helm lock of release {release_name} in namespace {namespace}: {error}"
                )));
            }
        }
    }
}

/// An earlier `helm upgrade --install` windlass started whose outcome was never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// The install that started it.
    pub install_id: String,
}

/// One `HelmUpgradeStarted` or `HelmReleaseInstalled` of the release, where it sits.
struct Seen {
    install_id: String,
    global_seq: u64,
    recorded_at: time::OffsetDateTime,
    what: SeenAs,
}

/// What a [`Seen`] record says.
enum SeenAs {
    /// windlass started helm on the release (on the cluster this names).
    Started(TargetRecord),
    /// helm's outcome, which ends the start before it unless windlass stopped helm.
    Outcome {
        /// windlass stopped helm (see `HelmReleaseInstalled::helm_stopped`).
        helm_stopped: bool,
    },
}

/// The helm that left the release's newest revision pending, when windlass started it: the
/// newest `HelmUpgradeStarted` of `release_name` in `namespace` on `cluster` recorded before
/// `own_seq` (this run's own record) and no later than `pending_since` (when the revision began),
/// at most [`PENDING_WITHIN`] before it, after which its install recorded no
/// `HelmReleaseInstalled` of the release (but one saying windlass stopped helm).
pub async fn interrupted_upgrade(
    context: &StageContext,
    release_name: &str,
    namespace: &str,
    cluster: &ClusterIdentity,
    own_seq: u64,
    pending_since: time::OffsetDateTime,
) -> Result<Option<Interrupted>, StageError> {
    let mut seen: Vec<Seen> = Vec::new();
    let is_release = |release: &str, release_namespace: &str| {
        release == release_name && release_namespace == namespace
    };
    let mut note = |install_id: String,
                    global_seq: u64,
                    recorded_at: &str,
                    event_type: &str,
                    payload: Result<serde_json::Value, String>| {
        let Ok(recorded_at) = time::OffsetDateTime::parse(
            recorded_at,
            &time::format_description::well_known::Rfc3339,
        ) else {
            return;
        };
        let Ok(payload) = payload else { return };
        let what = if event_type == HELM_UPGRADE_STARTED {
            match serde_json::from_value::<HelmUpgradeStarted>(payload) {
                Ok(started) if is_release(&started.release_name, &started.namespace) => {
                    SeenAs::Started(started.target)
                }
                _ => return,
            }
        } else {
            match serde_json::from_value::<HelmReleaseInstalled>(payload) {
                Ok(outcome) if is_release(&outcome.release_name, &outcome.namespace) => {
                    SeenAs::Outcome {
                        helm_stopped: outcome.helm_stopped,
                    }
                }
                _ => return,
            }
        };
        seen.push(Seen {
            install_id,
            global_seq,
            recorded_at,
            what,
        });
    };
    for event in context.recorded_facts().await {
        if event.event_type == HELM_UPGRADE_STARTED || event.event_type == HELM_RELEASE_INSTALLED {
            note(
                event.install_id,
                event.global_seq,
                &event.recorded_at,
                &event.event_type,
                Ok(event.payload),
            );
        }
    }
    for event_type in [HELM_UPGRADE_STARTED, HELM_RELEASE_INSTALLED] {
        context
            .history
            .visit_recent_facts(
                event_type,
                time::OffsetDateTime::UNIX_EPOCH,
                &context.install_id,
                &mut |event| {
                    let payload = event
                        .decode::<serde_json::Value>()
                        .map_err(|error| error.to_string());
                    note(
                        event.event.install_id,
                        event.event.global_seq,
                        &event.event.recorded_at,
                        event_type,
                        payload,
                    );
                    ControlFlow::Continue(())
                },
            )
            .map_err(StageError::permanent)?;
    }
    Ok(newest_interrupted(&seen, cluster, own_seq, pending_since))
}

/// Of `seen`, the newest start on `cluster` before `own_seq` and no later than `pending_since`,
/// when it is at most [`PENDING_WITHIN`] before it and no outcome of its install that ends it
/// follows it.
fn newest_interrupted(
    seen: &[Seen],
    cluster: &ClusterIdentity,
    own_seq: u64,
    pending_since: time::OffsetDateTime,
) -> Option<Interrupted> {
    let start = seen
        .iter()
        .filter(|start| {
            start.global_seq < own_seq
                && start.recorded_at <= pending_since
                && matches!(&start.what, SeenAs::Started(target) if cluster.is(target))
        })
        .max_by_key(|start| start.global_seq)?;
    let ended = seen.iter().any(|outcome| {
        matches!(
            outcome.what,
            SeenAs::Outcome {
                helm_stopped: false
            }
        ) && outcome.install_id == start.install_id
            && outcome.global_seq > start.global_seq
    });
    (!ended && pending_since - start.recorded_at <= PENDING_WITHIN).then(|| Interrupted {
        install_id: start.install_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
    }

    fn cluster(uid: &str) -> ClusterIdentity {
        ClusterIdentity {
            server: "https://127.0.0.1:6443".into(),
            uid: Some(uid.into()),
        }
    }

    fn started(install_id: &str, global_seq: u64, seconds: i64, uid: &str) -> Seen {
        Seen {
            install_id: install_id.into(),
            global_seq,
            recorded_at: at(seconds),
            what: SeenAs::Started(cluster(uid).record(None)),
        }
    }

    fn outcome(install_id: &str, global_seq: u64) -> Seen {
        Seen {
            install_id: install_id.into(),
            global_seq,
            recorded_at: at(0),
            what: SeenAs::Outcome {
                helm_stopped: false,
            },
        }
    }

    #[test]
    fn the_pending_revision_is_windlasss_only_after_a_start_with_no_outcome_on_that_cluster() {
        let here = cluster("c1");
        // Install a started (10), was killed; install b resumes nothing of it.
        let seen = vec![started("a", 10, 100, "c1")];
        assert_eq!(
            newest_interrupted(&seen, &here, 20, at(101)),
            Some(Interrupted {
                install_id: "a".into()
            })
        );
        // The pending revision began before that start: someone else's.
        assert_eq!(newest_interrupted(&seen, &here, 20, at(99)), None);
        // Another cluster's start says nothing of this one.
        assert_eq!(newest_interrupted(&seen, &cluster("c2"), 20, at(101)), None);
        // Only starts before this run's own record count.
        assert_eq!(newest_interrupted(&seen, &here, 10, at(101)), None);
        // A start whose install recorded an outcome after it finished.
        let finished = vec![started("a", 10, 100, "c1"), outcome("a", 11)];
        assert_eq!(newest_interrupted(&finished, &here, 20, at(101)), None);
        // An outcome of another install, or an earlier one, does not finish it.
        let others = vec![
            outcome("a", 5),
            started("a", 10, 100, "c1"),
            outcome("b", 12),
        ];
        assert!(newest_interrupted(&others, &here, 20, at(101)).is_some());
        // Killed, then a later run refused by the pending revision (its outcome recorded, after
        // the revision began): the first start is still the one that left it pending.
        let refused_since = vec![
            started("a", 10, 100, "c1"),
            started("b", 15, 200, "c1"),
            outcome("b", 16),
        ];
        assert_eq!(
            newest_interrupted(&refused_since, &here, 20, at(101)),
            Some(Interrupted {
                install_id: "a".into()
            })
        );
        // A start left open long ago (its helm finished after windlass died, say) does not
        // explain a revision someone's helm began much later.
        let long_before = vec![started("a", 10, 100, "c1")];
        assert_eq!(
            newest_interrupted(&long_before, &here, 20, at(100 + 121)),
            None
        );
        assert!(newest_interrupted(&long_before, &here, 20, at(100 + 119)).is_some());
        // Nor when a newer start, which finished, lies between: the open one is not the newest.
        let finished_since = vec![
            started("a", 10, 100, "c1"),
            started("b", 15, 150, "c1"),
            outcome("b", 16),
        ];
        assert_eq!(
            newest_interrupted(&finished_since, &here, 20, at(160)),
            None
        );
        // windlass stopped the helm itself (its deadline): that outcome does not end the start.
        let stopped = vec![
            started("a", 10, 100, "c1"),
            Seen {
                what: SeenAs::Outcome { helm_stopped: true },
                ..outcome("a", 11)
            },
        ];
        assert!(newest_interrupted(&stopped, &here, 20, at(101)).is_some());
    }

    #[test]
    fn lock_names_keep_release_and_namespace_apart() {
        assert_ne!(
            lock_name("my-app", "default"),
            lock_name("my", "app-default")
        );
        assert_eq!(lock_name("app", "default"), "helm-3-app-default");
    }

    #[test]
    fn a_record_of_a_directory_target_is_no_cluster() {
        let start = Seen {
            what: SeenAs::Started(TargetRecord::Dir {
                path: "/tmp/out".into(),
            }),
            ..started("a", 10, 100, "c1")
        };
        assert_eq!(
            newest_interrupted(&[start], &cluster("c1"), 20, at(101)),
            None
        );
    }
}
