//! The pull secret of section 5 of the behaviour notes: a `kubernetes.io/dockerconfigjson` Secret
//! named `<app slug>-registry` whose `.dockerconfigjson` authenticates to the proxy and registry
//! hosts with `LICENSE_ID:<license id>`, in the app namespace and copied into each named
//! `additionalNamespaces` entry (`"*"` is recorded for the apply stage, never expanded here), plus
//! the legacy `kotsadm-replicated-registry` when KOTS compatibility is asked for. The license ID
//! only ever lives in the rendered secret text; what may be recorded is in [`SecretRecord`].
//! In local-registry mode the same secrets authenticate to the customer's registry alone, with its
//! user name and password (section 4.3 of the templating notes).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use windlass_state::{FingerprintKey, SecretString};

use crate::events::{Domains, RenderedHelmChart, SecretNamespaces, SecretRecord};

/// The fingerprint purpose for rendered secret contents.
pub const SECRET_CONTENT_PURPOSE: &str = "pull-secret-content";

impl SecretNamespaces {
    /// Reads `Application.spec.additionalNamespaces`.
    pub fn resolve(app: &str, additional_namespaces: &[String]) -> SecretNamespaces {
        let mut additional = Vec::new();
        let mut every_namespace = false;
        for namespace in additional_namespaces {
            if namespace == "*" {
                every_namespace = true;
            } else if namespace != app && !additional.contains(namespace) {
                additional.push(namespace.clone());
            }
        }
        SecretNamespaces {
            app: app.to_string(),
            additional,
            every_namespace,
        }
    }
}

/// The `auth` value: base64 of `LICENSE_ID:<license id>`.
pub fn registry_auth(license_id: &SecretString) -> String {
    STANDARD.encode(format!("LICENSE_ID:{}", license_id.expose()))
}

/// The `.dockerconfigjson` document, hosts in order (proxy, then registry).
pub fn docker_config_json(license_id: &SecretString, hosts: &[String]) -> String {
    let auth = registry_auth(license_id);
    let mut auths = serde_json::Map::new();
    for host in hosts {
        auths.insert(host.clone(), serde_json::json!({ "auth": auth }));
    }
    serde_json::to_string(&serde_json::json!({ "auths": auths }))
        .expect("a JSON object always serializes")
}

/// The registry host a local registry's pull secret authenticates to: what KOTS keeps of the
/// host, anything after its first `/` cut.
pub fn local_registry_auth_host(host: &str) -> &str {
    host.split('/').next().unwrap_or(host)
}

/// The `.dockerconfigjson` of local-registry mode: only the local registry's host, with
/// base64 of `<username>:<password>` (no credentials: an empty `auths`).
pub fn local_docker_config_json(
    host: &str,
    username: Option<&str>,
    password: Option<&SecretString>,
) -> String {
    let mut auths = serde_json::Map::new();
    if let (Some(username), Some(password)) = (username, password) {
        let auth = STANDARD.encode(format!("{username}:{}", password.expose()));
        auths.insert(
            local_registry_auth_host(host).to_string(),
            serde_json::json!({ "auth": auth }),
        );
    }
    serde_json::to_string(&serde_json::json!({ "auths": auths }))
        .expect("a JSON object always serializes")
}

/// The pull secret object.
pub fn pull_secret(name: &str, namespace: &str, docker_config: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {
                "kots.io/creation-phase": "-9999",
                "helm.sh/hook": "pre-install,pre-upgrade",
                "helm.sh/hook-weight": "-9999",
            },
        },
        "type": "kubernetes.io/dockerconfigjson",
        "data": { ".dockerconfigjson": STANDARD.encode(docker_config) },
    })
}

/// What a pull secret authenticates with.
pub enum PullSecretCredentials<'a> {
    /// Proxy mode: the proxy and registry hosts with `LICENSE_ID:<license id>`.
    License {
        /// The license ID.
        license_id: &'a SecretString,
        /// The hosts.
        domains: &'a Domains,
    },
    /// Local-registry mode: the local registry's host alone, with its credentials.
    LocalRegistry(&'a windlass_engine::LocalRegistryInput),
}

/// The pull secret windlass provisions for the app, in the app namespace and each additional
/// one: `<slug>-registry`.
pub fn app_pull_secret_name(app_slug: &str) -> String {
    format!("{app_slug}-registry")
}

/// The pull secret of a chart (or subchart) directory: `<slug>-<directory>-registry`, which the
/// chart makes itself as a hook and `additionalNamespaces` get copies of.
pub fn chart_pull_secret_name(app_slug: &str, directory: &str) -> String {
    format!("{app_slug}-{directory}-registry")
}

/// The pull secret of each of `charts` (charts rendered for `helm upgrade --install`:
/// `MidstreamRendered.helm_charts`) with the namespace the chart makes it in itself (its hook,
/// where no copy goes): what `additionalNamespaces: ["*"]` copies into every other namespace,
/// as copies of `<slug>-registry` under those names.
pub fn chart_pull_secrets<'a>(
    charts: impl IntoIterator<Item = &'a RenderedHelmChart>,
    app_slug: &str,
    app_namespace: &str,
) -> Vec<(String, String)> {
    charts
        .into_iter()
        .filter_map(|chart| {
            let directory = chart.chart_dir.rsplit('/').next()?;
            Some((
                chart_pull_secret_name(app_slug, directory),
                chart
                    .namespace
                    .clone()
                    .unwrap_or_else(|| app_namespace.to_string()),
            ))
        })
        .collect()
}

/// The legacy pull secret `--kots-compat` adds beside `<slug>-registry`: every app writes the
/// same one.
pub const KOTS_COMPAT_PULL_SECRET: &str = "kotsadm-replicated-registry";

/// Every secret object to render, and what may be recorded about each: `<slug>-registry` (and
/// with `kots_compat`, `kotsadm-replicated-registry`) in the app namespace and each additional
/// one, and in each additional namespace the pull secret of each `useHelmInstall: true` chart
/// (`chart_secrets`: its name, `<slug>-<directory>-registry`, and the namespace the chart installs
/// it into itself, as a hook, where it is not copied), as KOTS copies every
/// `overlays/midstream/charts/<directory>/secret.yaml` there.
pub fn pull_secrets(
    app_slug: &str,
    credentials: PullSecretCredentials<'_>,
    namespaces: &SecretNamespaces,
    (kots_compat, chart_secrets): (bool, &[(String, String)]),
    key: &FingerprintKey,
) -> (Vec<serde_json::Value>, Vec<SecretRecord>) {
    let (hosts, docker_config) = match credentials {
        PullSecretCredentials::License {
            license_id,
            domains,
        } => {
            let hosts = vec![domains.proxy_host.clone(), domains.registry_host.clone()];
            let docker_config = docker_config_json(license_id, &hosts);
            (hosts, docker_config)
        }
        PullSecretCredentials::LocalRegistry(registry) => (
            vec![local_registry_auth_host(&registry.host).to_string()],
            local_docker_config_json(
                &registry.host,
                registry.username.as_deref(),
                registry.password.as_ref(),
            ),
        ),
    };
    let fingerprint = key.fingerprint_bytes(SECRET_CONTENT_PURPOSE, docker_config.as_bytes());
    let mut names = vec![app_pull_secret_name(app_slug)];
    if kots_compat {
        names.push(KOTS_COMPAT_PULL_SECRET.to_string());
    }
    let mut objects = Vec::new();
    let mut records = Vec::new();
    for namespace in std::iter::once(&namespaces.app).chain(&namespaces.additional) {
        let charts = chart_secrets
            .iter()
            .filter(|(_, hook_namespace)| {
                *namespace != namespaces.app && hook_namespace != namespace
            })
            .map(|(name, _)| name);
        let mut seen = std::collections::BTreeSet::new();
        // (Once each: a chart's directory could spell another secret's name.)
        for name in names.iter().chain(charts).filter(|name| seen.insert(*name)) {
            objects.push(pull_secret(name, namespace, &docker_config));
            records.push(SecretRecord {
                name: name.clone(),
                namespace: namespace.clone(),
                content_fingerprint: fingerprint.clone(),
                hosts: hosts.clone(),
            });
        }
    }
    (objects, records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_auth_and_config() {
        let license = SecretString::new("abc");
        assert_eq!(registry_auth(&license), "TElDRU5TRV9JRDphYmM=");
        assert_eq!(
            docker_config_json(
                &license,
                &[
                    "proxy.replicated.com".into(),
                    "registry.replicated.com".into()
                ]
            ),
            r#"{"auths":{"proxy.replicated.com":{"auth":"TElDRU5TRV9JRDphYmM="},"registry.replicated.com":{"auth":"TElDRU5TRV9JRDphYmM="}}}"#
        );
    }

    #[test]
    fn local_registry_config_names_only_the_host_with_user_and_password() {
        let password = SecretString::new("fake-pass");
        assert_eq!(
            local_docker_config_json("ttl.sh", Some("test"), Some(&password)),
            r#"{"auths":{"ttl.sh":{"auth":"dGVzdDpmYWtlLXBhc3M="}}}"#
        );
        assert_eq!(
            local_docker_config_json("ttl.sh", None, None),
            r#"{"auths":{}}"#
        );
    }

    #[test]
    fn namespaces_copy_named_entries_and_record_the_wildcard() {
        let resolved = SecretNamespaces::resolve(
            "default",
            &[
                "monitoring".into(),
                "*".into(),
                "default".into(),
                "monitoring".into(),
            ],
        );
        assert_eq!(resolved.additional, vec!["monitoring".to_string()]);
        assert!(resolved.every_namespace);
    }
}
