//! `windlass undeploy INSTALL_ID`: the apply stage with nothing to apply. Everything the newest
//! completed apply of the app into its namespace of the cluster left there (its inventory, plus
//! what applies since that never completed recorded) is pruned as a later release without it
//! would prune it (deletion phases, re-read before each delete, `kots.io/keep` and the
//! `additionalNamespaces` left, a refused delete kept in the inventory), except that no
//! Namespace is deleted ([`crate::order::leave_namespaces`]; nor is it kept in the inventory);
//! before that, each chart release windlass installed goes to `helm uninstall`, higher weight
//! first; after it, the stage waits until what it deleted is gone
//! ([`KubeApply::wait_until_gone`]). The rendered output is not read: an undeploy works after
//! `--out` is gone.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use windlass_engine::{Fact, StageContext, StageError, StageOutput};

use crate::events::{ApplyCompleted, ApplyStarted};
use crate::kube_apply::KubeApply;
use crate::prune_candidates::{
    Unfinished, applied_before, prune_against, record_start, take_apply_lock,
};
use crate::stage::{ApplyStage, connect};

impl ApplyStage {
    /// Undeploys the app of this install from the cluster `kube_context` names.
    pub(crate) async fn undeploy(
        &self,
        context: &StageContext,
        kube_context: Option<&str>,
    ) -> Result<StageOutput, StageError> {
        let dry_run = self.config.dry_run;
        let app_namespace = context.request.namespace.clone();
        let app_slug = context.request.app_slug().to_string();
        let (cluster, kubeconfig, identity) = connect(context, kube_context).await?;
        if !dry_run {
            take_apply_lock(context, &app_slug, &app_namespace).await?;
        }
        let (
            previous,
            Unfinished {
                objects: unfinished_objects,
                helm_releases: unfinished_releases,
                unreadable: _,
            },
        ) = applied_before(context, &app_slug, &app_namespace, &identity)?;
        let installer = previous.as_ref().map(|previous| previous.installer.clone());
        let installed_before = crate::helm_release::installed_before(
            context,
            installer.as_deref(),
            unfinished_releases,
        )?;
        if previous.is_none() && unfinished_objects.is_empty() && installed_before.is_empty() {
            return Err(StageError::invalid_input(format!(
                "nothing to undeploy: this state directory records no apply of app {app_slug} into namespace {app_namespace} of the cluster at {} (check --kubeconfig and the context)",
                cluster.server()
            )));
        }
        record_start(
            context,
            &ApplyStarted {
                app_slug: app_slug.clone(),
                target: identity.record(kube_context.map(str::to_string)),
                app_namespace: app_namespace.clone(),
                dry_run,
            },
        )
        .await?;
        // Each chart's pull secret is a hook of its own (`helm.sh/hook: pre-install,pre-upgrade`),
        // which `helm uninstall` leaves, as it is left after KOTS's: named in the summary.
        // (A `kots.io/v1beta2` chart, installed as shipped from `helm/<directory>`, has none.)
        let hook_secrets: Vec<String> = installed_before
            .iter()
            .filter(|(_, release)| !release.chart_dir.starts_with("helm/"))
            .map(|(_, release)| {
                let directory = release.chart_dir.rsplit('/').next().unwrap_or_default();
                format!(
                    "Secret {}/{}",
                    release.namespace,
                    windlass_stages::secrets::chart_pull_secret_name(&app_slug, directory)
                )
            })
            .collect();
        // The charts first, the reverse of an install: their uninstall hooks may need what the
        // plain manifests provide (the pull secret, a ServiceAccount), and a helm that cannot
        // run stops the undeploy before anything is deleted.
        let helm_summary = self
            .install_helm_charts(
                context,
                &[],
                installed_before,
                &crate::helm_step::HelmTarget {
                    cluster: &identity,
                    kubeconfig: &kubeconfig,
                    kube_context,
                },
            )
            .await?;
        let apply = KubeApply {
            cluster: &cluster,
            context,
            app_slug: app_slug.clone(),
            app_namespace: app_namespace.clone(),
            dry_run,
            wait_timeout: Duration::from_secs(self.config.wait_timeout_seconds),
            additional_namespaces: Vec::new(),
            every_namespace: false,
            chart_pull_secrets: Vec::new(),
            status_informers: Vec::new(),
            previous: prune_against(
                previous
                    .as_ref()
                    .map(|previous| previous.completed.inventory.as_slice()),
                unfinished_objects,
            ),
            allow_empty_prune: true,
            secret_files: BTreeSet::new(),
            cluster_identity: identity.clone(),
            undeploy: true,
        };
        let result = apply.run(Vec::new(), HashMap::new()).await?;
        if !dry_run {
            apply.wait_until_gone().await?;
        }
        let counts = &result.counts;
        let mut summary = if dry_run {
            format!(
                "dry run against {}: would delete {}; {} would be left",
                cluster.server(),
                counts.pruned,
                counts.kept
            )
        } else {
            format!(
                "undeployed from {}: {} deleted, {} left, {} deletes refused",
                cluster.server(),
                counts.pruned,
                counts.kept,
                counts.refused
            )
        };
        if let Some(installer) = &installer {
            summary.push_str(&format!(" (of what install {installer} applied)"));
        }
        summary.push_str(&helm_summary);
        if !hook_secrets.is_empty() && !dry_run {
            summary.push_str(&format!(
                "; left by helm uninstall, as the charts' hooks made them: {}",
                hook_secrets.join(", ")
            ));
        }
        let completed = ApplyCompleted {
            app_slug,
            target: identity.record(kube_context.map(str::to_string)),
            rendered_by: self.config.source_install.clone().unwrap_or_default(),
            inventory: if dry_run {
                Vec::new()
            } else {
                result.inventory
            },
            counts: result.counts,
            app_state: None,
            dry_run,
            body_version: None,
            app_namespace: Some(app_namespace),
            undeployed: !dry_run,
        };
        Ok(StageOutput {
            facts: vec![Fact::of(&completed)?],
            summary,
        })
    }
}
