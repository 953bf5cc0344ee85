//! Pull secrets follow new namespaces. When an install with a Kubernetes target completes and its
//! Application lists `additionalNamespaces: ["*"]` (recorded as `SecretsProvisioned.namespaces.
//! every_namespace`), the apply stage has copied the pull secrets into every namespace that
//! existed then; the daemon keeps doing so for namespaces created later, for as long as it runs:
//! it watches namespaces (kube's `watcher`, which re-lists after a lost watch) and applies a copy
//! of each pull secret (server-side apply as `windlass`) into every namespace other than the app's
//! that it has not copied into yet, with each `useHelmInstall: true` chart's
//! `<slug>-<directory>-registry` (a copy of `<slug>-registry` under that name, as the apply stage
//! and KOTS copy them; not into the namespace the chart makes its own in). The secrets are read
//! from the install's rendered secret file (mode 0600); their content is never logged.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::Deserialize;
use serde_json::Value;

/// How much of a refused copy's error is printed at most.
const MAX_PRINTED_ERROR_BYTES: usize = 2000;
use windlass_apply::events::CopiedPullSecret;
use windlass_engine::{InstallState, Services};
use windlass_stages::events::RenderedHelmChart;

use crate::daemon::Shared;

/// The largest rendered secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 1024 * 1024;

/// What to copy into new namespaces for one app.
#[derive(Clone)]
pub struct PullSecretCopies {
    /// The install they come from.
    pub install_id: String,
    /// The release digest that install took (whose stream records the copies).
    pub digest: String,
    /// The app's namespace (never copied into: the secrets are there).
    pub app_namespace: String,
    /// The pull secrets, as rendered (their namespace is replaced in each copy).
    secrets: Vec<Value>,
    /// The pull secret of each `useHelmInstall: true` chart, with the namespace the chart makes
    /// it in itself (where no copy goes): copies of `<slug>-registry` under that name.
    chart_secrets: Vec<(String, String)>,
    /// `<slug>-registry`, what the charts' copies are copies of.
    app_secret: String,
    /// The app's slug: each copy carries it as its owner (`windlass.io/app`), so that a later
    /// apply's prune, or an undeploy, may delete it.
    app_slug: String,
}

impl std::fmt::Debug for PullSecretCopies {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets' content.
        formatter
            .debug_struct("PullSecretCopies")
            .field("install_id", &self.install_id)
            .field("app_namespace", &self.app_namespace)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// The pull secrets a completed install wants copied into every namespace, or `None` when its
/// Application does not list `"*"` in `additionalNamespaces`.
pub fn copies_for(
    install: &InstallState,
    digest: &str,
) -> Result<Option<PullSecretCopies>, String> {
    let Some(provisioned) = install
        .stages
        .iter()
        .flat_map(|stage| stage.fact_events.iter())
        .find(|event| event.event_type == "SecretsProvisioned")
    else {
        return Ok(None);
    };
    let payload = &provisioned.payload;
    if payload["namespaces"]["every_namespace"] != Value::Bool(true) {
        return Ok(None);
    }
    let app_namespace = payload["namespaces"]["app"]
        .as_str()
        .unwrap_or(&install.namespace)
        .to_string();
    let names: BTreeSet<&str> = payload["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|secret| secret["namespace"].as_str() == Some(app_namespace.as_str()))
        .filter_map(|secret| secret["name"].as_str())
        .collect();
    let file = payload["file"].as_str().unwrap_or_default();
    let path = Path::new(&install.out).join(file);
    let text = windlass_files::read_regular_text(&path, MAX_SECRET_FILE_BYTES)
        .map_err(|problem| format!("pull secret file {}: {problem}", path.display()))?;
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|_| {
        // The parser's message may quote the file, which holds credentials.
        format!("pull secret file {}: not valid YAML", path.display())
    })?;
    let secrets: Vec<Value> = documents
        .into_iter()
        .filter(|document| {
            document["kind"] == "Secret"
                && document["metadata"]["name"]
                    .as_str()
                    .is_some_and(|name| names.contains(name))
        })
        .collect();
    // (Copied from `<slug>-registry`: without it, there is nothing to copy them from.)
    let app_secret = windlass_stages::secrets::app_pull_secret_name(&install.app_slug);
    let chart_secrets = if secrets
        .iter()
        .any(|secret| secret["metadata"]["name"] == app_secret.as_str())
    {
        chart_pull_secrets(install, &app_namespace)
    } else {
        Vec::new()
    };
    Ok((!secrets.is_empty()).then(|| PullSecretCopies {
        install_id: install.install_id.clone(),
        digest: digest.to_string(),
        app_namespace,
        secrets,
        chart_secrets,
        app_secret,
        app_slug: install.app_slug.clone(),
    }))
}

/// The pull secret of each chart of `install` rendered for `helm upgrade --install`
/// (`MidstreamRendered.helm_charts`: `useHelmInstall: true`), with the namespace the chart makes
/// it in itself ([`windlass_stages::secrets::chart_pull_secrets`]).
fn chart_pull_secrets(install: &InstallState, app_namespace: &str) -> Vec<(String, String)> {
    let charts: Vec<RenderedHelmChart> = install
        .stages
        .iter()
        .flat_map(|stage| stage.fact_events.iter())
        .find(|event| event.event_type == "MidstreamRendered")
        .and_then(|rendered| {
            Vec::<RenderedHelmChart>::deserialize(&rendered.payload["helm_charts"]).ok()
        })
        .unwrap_or_default();
    windlass_stages::secrets::chart_pull_secrets(&charts, &install.app_slug, app_namespace)
}

impl PullSecretCopies {
    /// The copies namespace `namespace` gets: each pull secret, then each chart's (but the one
    /// the chart makes there itself), each name once.
    fn for_namespace(&self, namespace: &str) -> Vec<Value> {
        let mut copies: Vec<Value> = self.secrets.clone();
        let base = self
            .secrets
            .iter()
            .find(|secret| secret["metadata"]["name"] == self.app_secret.as_str())
            .cloned();
        if let Some(base) = base {
            for (name, hook_namespace) in &self.chart_secrets {
                if hook_namespace == namespace
                    || copies
                        .iter()
                        .any(|copy| copy["metadata"]["name"] == name.as_str())
                {
                    continue;
                }
                let mut copy = base.clone();
                copy["metadata"]["name"] = Value::String(name.clone());
                copies.push(copy);
            }
        }
        for copy in &mut copies {
            copy["metadata"]["namespace"] = Value::String(namespace.to_string());
            copy["metadata"]["annotations"][windlass_apply::kube_apply::OWNER_ANNOTATION] =
                Value::String(self.app_slug.clone());
        }
        copies
    }
}

/// Whether every pull secret of `copies` is in namespace `namespace` already.
async fn already_there(client: &kube::Client, namespace: &str, copies: &PullSecretCopies) -> bool {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for secret in &copies.for_namespace(namespace) {
        let name = secret["metadata"]["name"].as_str().unwrap_or_default();
        match api.get_opt(name).await {
            Ok(Some(_)) => {}
            _ => return false,
        }
    }
    true
}

/// Watches namespaces through the cluster `kube_context` names and copies `copies` into each one,
/// until the task is aborted (a newer install of the app replaces it) or the process ends.
pub async fn follow(
    shared: Arc<Shared>,
    services: Services,
    kube_context: Option<String>,
    copies: PullSecretCopies,
) {
    let client = match services.kubernetes.client(kube_context.as_deref()).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("windlass watch: pull secrets will not follow new namespaces: {error}");
            return;
        }
    };
    let Some(connection) = client.downcast_ref::<windlass_apply::cluster::KubeConnection>() else {
        eprintln!(
            "windlass watch: pull secrets will not follow new namespaces: no Kubernetes client"
        );
        return;
    };
    let client = connection.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut copied: BTreeSet<String> = BTreeSet::new();
    let mut events = watcher::watcher(namespaces, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let (namespace, listed) = match event {
            Ok(Event::Apply(namespace)) => (namespace, false),
            Ok(Event::InitApply(namespace)) => (namespace, true),
            Ok(Event::Delete(namespace)) => {
                if let Some(name) = namespace.metadata.name {
                    copied.remove(&name);
                }
                continue;
            }
            Ok(Event::Init | Event::InitDone) => continue,
            Err(error) => {
                tracing::warn!("watching namespaces: {error}");
                continue;
            }
        };
        let Some(name) = namespace.metadata.name.clone() else {
            continue;
        };
        let terminating = namespace.metadata.deletion_timestamp.is_some()
            || namespace
                .status
                .as_ref()
                .and_then(|status| status.phase.as_deref())
                == Some("Terminating");
        if name == copies.app_namespace || terminating || copied.contains(&name) {
            continue;
        }
        // A namespace listed (at start, or after a lost watch) may have its copies already (the
        // apply stage makes them for the namespaces that exist): only missing ones are applied.
        if listed && already_there(&client, &name, &copies).await {
            copied.insert(name);
            continue;
        }
        let mut all_copied = true;
        let mut made: Vec<CopiedPullSecret> = Vec::new();
        let copies_here = copies.for_namespace(&name);
        for copy in &copies_here {
            let secret_name = copy["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let api: Api<Secret> = Api::namespaced(client.clone(), &name);
            match api
                .patch(
                    &secret_name,
                    &PatchParams::apply(windlass_apply::cluster::FIELD_MANAGER).force(),
                    &Patch::Apply(copy),
                )
                .await
            {
                Ok(secret) => {
                    shared.metrics.pull_secret_copied();
                    made.push(CopiedPullSecret {
                        name: secret_name.clone(),
                        uid: secret.metadata.uid.unwrap_or_default(),
                    });
                }
                Err(error) => {
                    all_copied = false;
                    // The server's or a webhook's words may quote the Secret.
                    let error = windlass_apply::credentials_in_text::redacted_and_shortened(
                        &error.to_string(),
                        MAX_PRINTED_ERROR_BYTES,
                    );
                    eprintln!(
                        "windlass watch: cannot copy pull secret {secret_name} into namespace {name}: {error}"
                    );
                }
            }
        }
        // Each copy made is recorded, with its uid, whether or not all were: the prune of a
        // later apply, and an undeploy, delete what the record names.
        if !made.is_empty() {
            let copied_event = crate::events::PullSecretsCopied {
                digest: copies.digest.clone(),
                install_id: copies.install_id.clone(),
                namespace: name.clone(),
                secrets: made.iter().map(|secret| secret.name.clone()).collect(),
                copied: made,
            };
            if let Err(error) = crate::daemon::record(&shared, &copies.digest, &copied_event) {
                eprintln!("windlass watch: {error}");
            }
        }
        if all_copied {
            eprintln!(
                "windlass watch: copied {} pull secret(s) of install {} into new namespace {name}",
                copies_here.len(),
                copies.install_id
            );
            copied.insert(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": "default"}, "data": {".dockerconfigjson": "e30="}})
    }

    #[test]
    fn a_namespace_gets_each_pull_secret_and_each_charts_but_where_its_hook_makes_it() {
        let copies = PullSecretCopies {
            install_id: "i-1".into(),
            digest: "blake3:1".into(),
            app_namespace: "default".into(),
            secrets: vec![
                secret("my-app-registry"),
                secret("kotsadm-replicated-registry"),
            ],
            chart_secrets: vec![
                ("my-app-shop-registry".into(), "shop-ns".into()),
                ("my-app-first-registry".into(), "default".into()),
                // A chart directory spelling another secret's name: once.
                ("kotsadm-replicated-registry".into(), "default".into()),
            ],
            app_secret: "my-app-registry".into(),
            app_slug: "my-app".into(),
        };
        assert!(
            copies
                .for_namespace("late")
                .iter()
                .all(|copy| copy["metadata"]["annotations"]["windlass.io/app"] == "my-app"),
            "each copy names its owner"
        );
        let names = |namespace: &str| -> Vec<(String, String)> {
            copies
                .for_namespace(namespace)
                .iter()
                .map(|copy| {
                    (
                        copy["metadata"]["name"].as_str().unwrap().to_string(),
                        copy["metadata"]["namespace"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        let pair = |name: &str, namespace: &str| (name.to_string(), namespace.to_string());
        assert_eq!(
            names("late"),
            [
                pair("my-app-registry", "late"),
                pair("kotsadm-replicated-registry", "late"),
                pair("my-app-shop-registry", "late"),
                pair("my-app-first-registry", "late"),
            ]
        );
        assert_eq!(
            names("shop-ns"),
            [
                pair("my-app-registry", "shop-ns"),
                pair("kotsadm-replicated-registry", "shop-ns"),
                pair("my-app-first-registry", "shop-ns"),
            ]
        );
        // The charts' copies are copies of `<slug>-registry`, not of the legacy secret.
        let late = copies.for_namespace("late");
        assert_eq!(late[2]["data"], late[0]["data"]);
        assert_eq!(late[2]["type"], "kubernetes.io/dockerconfigjson");
    }
}
