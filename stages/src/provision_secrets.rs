//! The `provision_secrets` stage: refuses an expired license, then writes the pull secret(s) of
//! section 5 to `overlays/midstream/secret.yaml` (mode 0600) and records `SecretsProvisioned` —
//! names, namespaces, hosts and a keyed fingerprint of the content, never the content. The
//! namespaces to create and whether the secret goes to every namespace (`"*"`) are recorded for the
//! apply stage. When an install resumes, [`Stage::restore`] writes the file again if it is missing
//! or changed (it is derived from the license, the release and the recorded plan). In
//! local-registry mode the secrets carry the local registry's credentials instead of the license's.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use windlass_engine::{
    BuildContext, Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};
use windlass_state::StoredEvent;

use crate::events::{
    BaseFetched, OverridesPlanned, SecretNamespaces, SecretRecord, SecretsProvisioned,
};
use crate::output::{FileRead, OutputDir};
use crate::probe_images::kots_documents_of;
use crate::secrets::{PullSecretCredentials, pull_secrets};

/// Where the secrets go, relative to the output directory.
pub const SECRET_FILE: &str = "overlays/midstream/secret.yaml";

/// Registration of this stage kind.
pub fn kind() -> StageKind {
    StageKind::new(
        "provision_secrets",
        "write the license-derived pull secrets (0600) and record their fingerprints",
        |config| {
            let config: ProvisionSecretsConfig = serde_json::from_value(config.clone())
                .map_err(|error| format!("provision_secrets: {error}"))?;
            Ok(Box::new(config))
        },
    )
}

/// Configuration of `provision_secrets`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionSecretsConfig {
    /// Also write the legacy `kotsadm-replicated-registry` secret.
    pub kots_compat: bool,
}

#[async_trait::async_trait]
impl StageConfig for ProvisionSecretsConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        Ok(())
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(ProvisionSecrets {
            config: self.clone(),
        }))
    }
}

/// The runtime stage.
pub struct ProvisionSecrets {
    config: ProvisionSecretsConfig,
}

/// `Application.spec.additionalNamespaces` of the release.
fn additional_namespaces(
    documents: &[windlass_manifest::documents::Document],
) -> Result<Vec<String>, StageError> {
    let mut namespaces = Vec::new();
    for document in documents.iter().filter(|document| {
        document.kind == "Application" && document.api_version.starts_with("kots.io/")
    }) {
        let Some(list) = document.value.pointer("/spec/additionalNamespaces") else {
            continue;
        };
        let list = list.as_array().ok_or_else(|| {
            StageError::invalid_input(format!(
                "{}: spec.additionalNamespaces is not a list",
                document.location()
            ))
        })?;
        for (index, namespace) in list.iter().enumerate() {
            let namespace = namespace
                .as_str()
                .filter(|name| !name.is_empty())
                .ok_or_else(|| {
                    StageError::invalid_input(format!(
                        "{}: spec.additionalNamespaces[{index}] is not a namespace name",
                        document.location()
                    ))
                })?;
            if namespace != "*"
                && let Err(problem) = crate::names::check_dns_label(namespace)
            {
                return Err(StageError::invalid_input(format!(
                    "{}: spec.additionalNamespaces[{index}] {}: {problem} (or \"*\" for every namespace)",
                    document.location(),
                    crate::names::shown(namespace)
                )));
            }
            namespaces.push(namespace.to_string());
        }
    }
    Ok(namespaces)
}

/// Refuses a license that expired before `now` (the injected clock's time, so a replay judges it
/// as the original run did).
fn check_expiry(expires_at: Option<&str>, now: time::OffsetDateTime) -> Result<(), StageError> {
    use time::format_description::well_known::Rfc3339;
    let Some(expires_at) = expires_at else {
        return Ok(());
    };
    let expiry = time::OffsetDateTime::parse(expires_at, &Rfc3339).map_err(|_| {
        StageError::invalid_input(format!(
            "the license expiry {expires_at:?} is not an RFC 3339 time"
        ))
    })?;
    if expiry < now {
        return Err(StageError::invalid_input(format!(
            "the license expired at {expires_at}: ask the vendor for a renewed license"
        )));
    }
    Ok(())
}

/// The secret file's text, its secrets' records and their namespaces.
type SecretFile = (String, Vec<SecretRecord>, SecretNamespaces);

impl ProvisionSecrets {
    /// The license, or the error saying one is needed.
    fn license(context: &StageContext) -> Result<&windlass_engine::License, StageError> {
        context.request.license.as_ref().ok_or_else(|| {
            StageError::invalid_input(
                "the pull secret is derived from the license: pass --license FILE (or put it at RELEASE_DIR/userdata/license.yaml)",
            )
        })
    }

    /// What `overlays/midstream/secret.yaml` holds for this install.
    fn secret_file(&self, context: &StageContext) -> Result<SecretFile, StageError> {
        let fetched = context.input_shared::<BaseFetched>()?;
        let planned: OverridesPlanned = context.input::<OverridesPlanned>()?;
        let documents = kots_documents_of(&fetched, context)?;
        let namespaces = SecretNamespaces::resolve(
            &context.request.namespace,
            &additional_namespaces(&documents)?,
        );
        let (app_slug, credentials) = match &context.request.local_registry {
            Some(registry) => (
                planned.app_slug.as_str(),
                PullSecretCredentials::LocalRegistry(registry),
            ),
            None => {
                let license = Self::license(context)?;
                (
                    license.app_slug.as_str(),
                    PullSecretCredentials::License {
                        license_id: &license.license_id,
                        domains: &planned.domains,
                    },
                )
            }
        };
        let chart_secrets: Vec<(String, String)> = fetched
            .helm_charts
            .iter()
            .filter(|chart| {
                chart.api_version == "kots.io/v1beta1" && chart.use_helm_install && !chart.excluded
            })
            .map(|chart| {
                (
                    crate::secrets::chart_pull_secret_name(app_slug, &chart.directory),
                    chart
                        .namespace
                        .clone()
                        .unwrap_or_else(|| context.request.namespace.clone()),
                )
            })
            .collect();
        let (objects, records) = pull_secrets(
            app_slug,
            credentials,
            &namespaces,
            (self.config.kots_compat, &chart_secrets),
            &context.fingerprint_key,
        );
        let mut text = String::new();
        for object in &objects {
            text.push_str("---\n");
            text.push_str(
                &serde_saphyr::to_string(object)
                    .map_err(|error| StageError::permanent(error.to_string()))?,
            );
        }
        Ok((text, records, namespaces))
    }
}

#[async_trait::async_trait]
impl Stage for ProvisionSecrets {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        // Local-registry mode needs no license for the secret; one given is still judged.
        let license = match &context.request.local_registry {
            Some(_) => context.request.license.as_ref(),
            None => Some(Self::license(context)?),
        };
        if let Some(license) = license {
            check_expiry(license.expires_at.as_deref(), context.services.clock.now())?;
        }
        let (text, records, namespaces) = self.secret_file(context)?;
        let out = OutputDir::for_stage(context)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        out.write(SECRET_FILE, text.as_bytes(), 0o600)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        let summary = format!(
            "{} pull secret(s) in {}{} (0600)",
            records.len(),
            std::iter::once(namespaces.app.as_str())
                .chain(namespaces.additional.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", "),
            if namespaces.every_namespace {
                ", and every namespace at apply"
            } else {
                ""
            }
        );
        let fact = Fact::of(&SecretsProvisioned {
            file: SECRET_FILE.to_string(),
            secrets: records,
            namespaces,
        })?;
        Ok(StageOutput {
            facts: vec![fact],
            summary,
        })
    }

    async fn restore(
        &self,
        context: &StageContext,
        recorded: &[StoredEvent],
    ) -> Result<Option<String>, StageError> {
        let recorded: SecretsProvisioned =
            windlass_engine::recorded_fact::<SecretsProvisioned>(recorded)?;
        let (text, records, _) = self.secret_file(context)?;
        if records != recorded.secrets {
            return Err(StageError::permanent(format!(
                "{SECRET_FILE} cannot be written again: the pull secrets derived now differ from the recorded ones"
            )));
        }
        let out = OutputDir::for_stage(context)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        // Read up to the size of what it must hold: a larger file is changed.
        let on_disk = out
            .read_file(&recorded.file, text.len() as u64)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        let problem = match on_disk {
            FileRead::Bytes(bytes) if bytes == text.as_bytes() => return Ok(None),
            FileRead::Bytes(_) | FileRead::Larger => "was changed",
            FileRead::Missing => "was missing",
        };
        out.write(&recorded.file, text.as_bytes(), 0o600)
            .map_err(|error| StageError::permanent(error.to_string()))?;
        Ok(Some(format!(
            "{} {problem}; re-derived it from the license and the recorded plan",
            recorded.file
        )))
    }
}
