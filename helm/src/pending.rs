//! A release helm left pending. helm marks the revision it is working on `pending-install`,
//! `pending-upgrade` or `pending-rollback` before it touches the cluster (before any hook) and
//! marks it done after; while one is pending every `helm upgrade` of the release fails with
//! "another operation (install/upgrade/rollback) is in progress", for ever if that helm was
//! killed. An uninstall killed mid-way leaves `uninstalling`, which every upgrade refuses with
//! "has no deployed releases". This module reads a release's revisions (`helm history`), says how
//! such a release is freed (a rollback to the newest earlier revision that was deployed, else to
//! the newest earlier one that failed — helm upgraded on top of it, so its objects may be live —,
//! or, when there is none, an uninstall: `helm rollback` is the one command that does not refuse
//! a pending release) and runs the rollback. Whether the revision may be undone (its helm is dead,
//! not merely busy) is for the caller to know.

use serde_json::Value;

use crate::run::{HelmError, HelmTool, ReleaseRequest, failed};

/// Most revisions `helm history` is asked for: more than helm keeps by default (10).
const MAX_HISTORY: u32 = 256;

/// What helm says when a revision of the release is pending.
const PENDING_MESSAGE: &str = "another operation (install/upgrade/rollback) is in progress";

/// What helm's upgrade says when the newest revision is `uninstalling` (or nothing it can upgrade
/// from is left).
const NOTHING_DEPLOYED_MESSAGE: &str = "has no deployed releases";

/// One revision of a release, as `helm history -o json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRevision {
    /// The revision number.
    pub revision: u64,
    /// When helm last wrote it (RFC 3339, helm's clock): for a pending revision, when its
    /// operation began.
    pub updated: String,
    /// `deployed`, `superseded`, `failed`, `uninstalled`, `pending-install`, ...
    pub status: String,
}

impl ReleaseRevision {
    /// Whether an operation on this revision began and has not ended.
    pub fn is_pending(&self) -> bool {
        self.status.starts_with("pending-") || self.status == "uninstalling"
    }

    /// Whether this revision was once the deployed one.
    fn was_deployed(&self) -> bool {
        matches!(self.status.as_str(), "deployed" | "superseded")
    }
}

/// How a release whose newest revision is pending is freed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// `helm rollback <release> <revision>`: back to the newest earlier revision that was
    /// deployed, else to the newest earlier one that failed.
    RollBackTo(u64),
    /// `helm uninstall <release>`: no earlier revision to roll back to (a first install that
    /// never finished), or an uninstall that never finished.
    Uninstall,
}

impl HelmError {
    /// Whether helm refused because the newest revision of the release is pending (or
    /// `uninstalling`): see [`pending_release`].
    pub fn is_pending_operation(&self) -> bool {
        matches!(self, HelmError::Failed { stderr, .. }
            if stderr.contains(PENDING_MESSAGE) || stderr.contains(NOTHING_DEPLOYED_MESSAGE))
    }
}

/// The pending newest revision of `history` (oldest first, as helm lists it) and how to free the
/// release; `None` when the newest revision is not pending.
pub fn pending_release(history: &[ReleaseRevision]) -> Option<(&ReleaseRevision, Release)> {
    let (pending, earlier) = history.split_last()?;
    if !pending.is_pending() {
        return None;
    }
    if pending.status == "uninstalling" {
        return Some((pending, Release::Uninstall));
    }
    let newest = |wanted: &dyn Fn(&ReleaseRevision) -> bool| {
        earlier
            .iter()
            .rev()
            .find(|revision| wanted(revision))
            .map(|revision| revision.revision)
    };
    let release = newest(&ReleaseRevision::was_deployed)
        .or_else(|| newest(&|revision: &ReleaseRevision| revision.status == "failed"))
        .map_or(Release::Uninstall, Release::RollBackTo);
    Some((pending, release))
}

impl HelmTool {
    /// `helm history <release> --namespace <ns> --output json --max 256`: the release's
    /// revisions, oldest first; none when helm knows no such release.
    pub fn history(&self, request: &ReleaseRequest<'_>) -> Result<Vec<ReleaseRevision>, HelmError> {
        let (ran, _) = self.run_on_release(
            request,
            vec![
                "history".into(),
                request.release_name.into(),
                "--output".into(),
                "json".into(),
                "--max".into(),
                MAX_HISTORY.to_string(),
            ],
            false,
        )?;
        let what = format!("helm history {}", request.release_name);
        if !ran.status.success() {
            // helm 4: `Error: release: not found`.
            if String::from_utf8_lossy(&ran.stderr).contains("release: not found") {
                return Ok(Vec::new());
            }
            return Err(failed(what, &ran));
        }
        parse_history(&ran.stdout).map_err(|why| HelmError::Failed {
            what,
            status: ran.status.to_string(),
            stderr: format!("its output could not be read: {why}"),
        })
    }

    /// `helm rollback <release> <revision> --namespace <ns> --timeout <s>s [--kube-context
    /// <context>]`. Returns the arguments helm ran with.
    pub fn rollback(
        &self,
        request: &ReleaseRequest<'_>,
        revision: u64,
    ) -> Result<Vec<String>, HelmError> {
        let (ran, arguments) = self.run_on_release(
            request,
            vec![
                "rollback".into(),
                request.release_name.into(),
                revision.to_string(),
            ],
            true,
        )?;
        if !ran.status.success() {
            return Err(failed(
                format!("helm rollback {} {revision}", request.release_name),
                &ran,
            ));
        }
        Ok(arguments)
    }
}

/// The revisions `helm history --output json` printed.
fn parse_history(stdout: &[u8]) -> Result<Vec<ReleaseRevision>, String> {
    let listed: Value = serde_json::from_slice(stdout).map_err(|error| error.to_string())?;
    let Value::Array(entries) = listed else {
        return Err("not a JSON array".into());
    };
    entries
        .iter()
        .map(|entry| {
            let text = |field: &str| entry.get(field).and_then(Value::as_str).map(str::to_string);
            Ok(ReleaseRevision {
                revision: entry
                    .get("revision")
                    .and_then(Value::as_u64)
                    .ok_or("an entry without a revision number")?,
                updated: text("updated").unwrap_or_default(),
                status: text("status").ok_or("an entry without a status")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(revision: u64, status: &str) -> ReleaseRevision {
        ReleaseRevision {
            revision,
            updated: String::new(),
            status: status.into(),
        }
    }

    #[test]
    fn helms_history_output_is_read_and_anything_else_refused() {
        let printed = br#"[{"revision":1,"updated":"2026-11-28T00:47:28.900554511Z","status":"superseded","chart":"hooky-0.1.0","app_version":"","description":"Install complete"},{"revision":2,"updated":"2026-11-28T00:47:31.521542885Z","status":"pending-upgrade","chart":"hooky-0.1.0","app_version":"","description":"Preparing upgrade"}]"#;
        let history = parse_history(printed).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].revision, 2);
        assert_eq!(history[1].updated, "2026-11-28T00:47:31.521542885Z");
        assert!(history[1].is_pending() && !history[0].is_pending());
        assert!(parse_history(b"{}").is_err());
        assert!(parse_history(br#"[{"status":"deployed"}]"#).is_err());
        assert!(parse_history(b"Error").is_err());
    }

    #[test]
    fn a_pending_release_rolls_back_to_its_newest_deployed_revision_or_is_uninstalled() {
        let upgrade = [
            revision(1, "superseded"),
            revision(2, "deployed"),
            revision(3, "failed"),
            revision(4, "pending-upgrade"),
        ];
        let (pending, release) = pending_release(&upgrade).unwrap();
        assert_eq!(pending.revision, 4);
        assert_eq!(release, Release::RollBackTo(2));
        // A rollback killed mid-way: back to the newest once deployed, superseded or not.
        let rollback = [revision(1, "superseded"), revision(2, "pending-rollback")];
        assert_eq!(
            pending_release(&rollback).unwrap().1,
            Release::RollBackTo(1)
        );
        // Nothing earlier to roll back to: a first install; an uninstall never finished.
        let first = [revision(1, "pending-install")];
        assert_eq!(pending_release(&first).unwrap().1, Release::Uninstall);
        let uninstalling = [revision(1, "superseded"), revision(2, "uninstalling")];
        assert_eq!(
            pending_release(&uninstalling).unwrap().1,
            Release::Uninstall
        );
        let after_uninstall = [revision(1, "uninstalled"), revision(2, "pending-install")];
        assert_eq!(
            pending_release(&after_uninstall).unwrap().1,
            Release::Uninstall
        );
        // An upgrade of a failed release: helm upgraded on top of it, so its objects may be
        // live; back to it, never an uninstall that would delete them.
        let after_failure = [revision(1, "failed"), revision(2, "pending-upgrade")];
        assert_eq!(
            pending_release(&after_failure).unwrap().1,
            Release::RollBackTo(1)
        );
        let failed_after_deployed = [
            revision(1, "superseded"),
            revision(2, "failed"),
            revision(3, "pending-upgrade"),
        ];
        assert_eq!(
            pending_release(&failed_after_deployed).unwrap().1,
            Release::RollBackTo(1)
        );
        // Not pending: nothing to free.
        assert!(pending_release(&[revision(1, "deployed")]).is_none());
        assert!(
            pending_release(&[revision(1, "pending-install"), revision(2, "failed")]).is_none()
        );
        assert!(pending_release(&[]).is_none());
    }

    #[test]
    fn only_helms_pending_refusal_counts_as_pending() {
        let refusal = |stderr: &str| HelmError::Failed {
            what: "helm upgrade --install app".into(),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
        };
        assert!(
            refusal(
                "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"
            )
            .is_pending_operation()
        );
        assert!(
            refusal("Error: UPGRADE FAILED: \"app\" has no deployed releases")
                .is_pending_operation()
        );
        assert!(!refusal("Error: UPGRADE FAILED: timed out").is_pending_operation());
        assert!(
            !HelmError::TimedOut {
                what: "helm upgrade --install app".into(),
                seconds: 1
            }
            .is_pending_operation()
        );
    }
}
