//! KOTS templates in the release-reading path (see [`windlass_template`]): before a release's YAML
//! files are parsed, [`Templates::prepare`] evaluates the release's `Config` with the user's
//! `ConfigValues` (refusing the install when a required item has no value), and
//! [`Templates::render`] renders each file's text. What the renders used — the config items each
//! file read, the instant `Now` saw, the random draws — is collected for the `BaseFetched` fact
//! ([`TemplatesRecord`]), so a replay can render the same bytes. Password values never leave
//! memory: a file whose rendering reads a password item with a value (or the local registry's
//! password) is marked `holds_password`, and `fetch_base` records its documents by keyed
//! fingerprint instead of storing them ([`crate::credential_texts`]).
//!
//! The documents of a KOTS `Config`, `ConfigValues`, `Installation` or `License` are not rendered
//! with the file that holds them (KOTS renders a Config with its values applied, and the others
//! not at all); the file's other documents are.

use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use windlass_engine::{InstallRequest, Services};
use windlass_state::{FingerprintKey, SecretString};
use windlass_template::config::{EvaluatedConfig, evaluate, missing_required};
use windlass_template::config_values::{GivenValues, parse_config_values};
use windlass_template::{Entropy, Recorded, Recorder, Replay, Scope, TemplateContext, Usage};

use crate::events::{
    ConfigItemRecord, ExcludedDocument, GivenValueRecord, TemplatedFile, TemplatesRecord,
};
use crate::release::ReleaseError;
use windlass_manifest::documents::parse_documents;

/// The default proxy and registry hosts (`ReplicatedProxyDomain`, `ReplicatedRegistryDomain`).
const PROXY_DOMAIN: &str = "proxy.replicated.com";
const REGISTRY_DOMAIN: &str = "registry.replicated.com";

static HOLDS_CONFIG: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"(?m)^kind:\s*["']?Config["']?\s*$"#)
        .unwrap_or_else(|error| unreachable!("the pattern is valid: {error}"))
});

/// The engine's clock, read once for the whole install, and its random source.
struct InstallEntropy {
    now: time::OffsetDateTime,
    services: Services,
}

impl Entropy for InstallEntropy {
    fn now(&self) -> time::OffsetDateTime {
        self.now
    }

    fn fill(&self, bytes: &mut [u8]) -> Result<(), String> {
        self.services.random.fill(bytes).map_err(|error| error.0)
    }
}

/// The release's `Config` (`kots.io/v1beta1`), found among its raw files (path, bytes, size); the
/// last one wins, as in KOTS (a release holding two is refused when it is read).
pub fn find_config(
    files: &[(String, Vec<u8>, u64)],
) -> Result<Option<windlass_kots::Config>, ReleaseError> {
    let mut config = None;
    for (path, bytes, _) in files {
        if !(path.ends_with(".yaml") || path.ends_with(".yml"))
            || memchr::memmem::find(bytes, b"Config").is_none()
            || !std::str::from_utf8(bytes).is_ok_and(|text| HOLDS_CONFIG.is_match(text))
        {
            continue;
        }
        let Ok(documents) = parse_documents(path, bytes) else {
            continue;
        };
        for document in documents {
            if document.api_version == "kots.io/v1beta1" && document.kind == "Config" {
                let decoded: windlass_kots::Config =
                    windlass_kots::resources::from_value(&document.value).map_err(|error| {
                        ReleaseError::Template(format!(
                            "{}: not a valid KOTS Config: {error}",
                            document.location()
                        ))
                    })?;
                config = Some(decoded);
            }
        }
    }
    Ok(config)
}

/// The YAML files of the release directory `root` (path relative to it, bytes, size), in path
/// order, for [`find_config`] outside an install (`windlass config`). Symlinks and files over
/// `max_file_bytes` are skipped.
pub fn yaml_files(
    root: &std::path::Path,
    max_file_bytes: u64,
) -> Result<Vec<(String, Vec<u8>, u64)>, ReleaseError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.file_name() != ".git")
    {
        let entry = entry.map_err(|error| ReleaseError::Root {
            path: root.to_path_buf(),
            source: error.into(),
        })?;
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_file() || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let relative = relative.to_string_lossy().replace('\\', "/");
        if let Ok(bytes) = windlass_files::read_regular_file(entry.path(), max_file_bytes) {
            let size = bytes.len() as u64;
            files.push((relative, bytes, size));
        }
    }
    Ok(files)
}

/// A `windlass config` report: the release's Config evaluated with the given values, without an
/// install. `None` when the release has no Config.
pub fn evaluate_release_config(
    files: &[(String, Vec<u8>, u64)],
    given: &GivenValues,
    base: &TemplateContext,
    services: &Services,
) -> Result<Option<EvaluatedConfig>, ReleaseError> {
    let Some(config) = find_config(files)? else {
        return Ok(None);
    };
    let entropy = Arc::new(InstallEntropy {
        now: services.clock.now(),
        services: services.clone(),
    });
    evaluate(&config, given, base, entropy)
        .map(Some)
        .map_err(|error| ReleaseError::Template(error.to_string()))
}

/// The context templates see besides config values: the license's fields and slug, the namespace,
/// the default proxy and registry hosts.
pub fn base_context(
    license: Option<&windlass_engine::License>,
    namespace: &str,
) -> TemplateContext {
    TemplateContext {
        config: Arc::default(),
        license: license.map(|license| Arc::new(license.fields.clone())),
        // Without a license the app is `app`, and so is its pull secret's name (see
        // `InstallRequest::app_slug`).
        app_slug: Some(
            license.map_or_else(|| "app".to_string(), |license| license.app_slug.clone()),
        ),
        namespace: namespace.to_string(),
        proxy_domain: PROXY_DOMAIN.into(),
        registry_domain: REGISTRY_DOMAIN.into(),
        local_registry: None,
    }
}

/// What templates see of a local registry: host, namespace, and the pull secret's
/// `.dockerconfigjson` for `LocalRegistryImagePullSecret`.
pub fn local_registry_context(
    registry: &windlass_engine::LocalRegistryInput,
) -> windlass_template::LocalRegistry {
    windlass_template::LocalRegistry {
        host: registry.host.clone(),
        namespace: registry.namespace.clone(),
        docker_config: windlass_template::Credential(crate::secrets::local_docker_config_json(
            &registry.host,
            registry.username.as_deref(),
            registry.password.as_ref(),
        )),
    }
}

/// The fingerprint purpose of the password values a ConfigValues file gives.
pub const GIVEN_PASSWORD_PURPOSE: &str = "config-value-password";

/// What a replay renders with: the recorded instant and draws instead of the clock and random
/// source, and, without the user's ConfigValues file, what the install recorded of it.
struct Replayed {
    now: Option<time::OffsetDateTime>,
    config_draws: Vec<Vec<u8>>,
    file_draws: std::collections::HashMap<String, Vec<Vec<u8>>>,
    /// Password fingerprints recorded by the install, carried when the file is not given.
    carried_password_fingerprints: std::collections::BTreeMap<String, String>,
    /// The files whose text held a password value in the install.
    password_files: std::collections::HashSet<String>,
}

/// Templating for one install's release.
pub struct Templates {
    base: TemplateContext,
    given: GivenValues,
    config_values_fingerprint: Option<String>,
    fingerprint_key: Arc<FingerprintKey>,
    replayed: Option<Replayed>,
    entropy: Arc<InstallEntropy>,
    context: Mutex<Option<Arc<TemplateContext>>>,
    record: Mutex<TemplatesRecord>,
    now_used: Mutex<bool>,
    /// The files whose rendered text holds a password value.
    password_files: Mutex<std::collections::HashSet<String>>,
    /// The install whose effective values were carried, and the items taken from them.
    carried: (Option<String>, std::collections::BTreeSet<String>),
    /// The app's slug, named in the effective values.
    app_slug: String,
    /// The effective ConfigValues, once the Config is evaluated (none without a Config).
    effective: Mutex<Option<crate::effective_values::EffectiveValues>>,
}

impl Templates {
    /// Templating for `request`, with time and randomness from `services`. In a replay,
    /// `recorded` is what the install recorded: its instant and random draws are handed back,
    /// and without a ConfigValues file in `request` the values it recorded (all but passwords)
    /// are the user's.
    pub fn new(
        request: &InstallRequest,
        services: &Services,
        fingerprint_key: Arc<FingerprintKey>,
        recorded: Option<&TemplatesRecord>,
    ) -> Result<Templates, ReleaseError> {
        let decode = |draws: &[String]| -> Result<Vec<Vec<u8>>, ReleaseError> {
            draws
                .iter()
                .map(|draw| {
                    STANDARD.decode(draw).map_err(|error| {
                        ReleaseError::Template(format!("a recorded random draw: {error}"))
                    })
                })
                .collect()
        };
        let replayed = match recorded {
            Some(recorded) => Some(Replayed {
                now: recorded
                    .now
                    .as_deref()
                    .map(|now| {
                        time::OffsetDateTime::parse(
                            now,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .map_err(|error| {
                            ReleaseError::Template(format!("the recorded instant {now:?}: {error}"))
                        })
                    })
                    .transpose()?,
                config_draws: decode(&recorded.config_random_draws)?,
                file_draws: recorded
                    .files
                    .iter()
                    .map(|file| Ok((file.path.clone(), decode(&file.random_draws)?)))
                    .collect::<Result<_, ReleaseError>>()?,
                password_files: recorded
                    .files
                    .iter()
                    .filter(|file| file.holds_password)
                    .map(|file| file.path.clone())
                    .collect(),
                carried_password_fingerprints: if request.config_values.is_none() {
                    recorded.given_password_fingerprints.clone()
                } else {
                    Default::default()
                },
            }),
            None => None,
        };
        let (given, config_values_fingerprint) = match (&request.config_values, recorded) {
            (Some(values), _) => (
                parse_config_values(&values.path, values.text.expose())
                    .map_err(|error| ReleaseError::Template(error.to_string()))?,
                Some(values.fingerprint.clone()),
            ),
            (None, Some(recorded)) => (
                GivenValues {
                    values: recorded
                        .given_values
                        .iter()
                        .map(|(name, given)| (name.clone(), given.given_value()))
                        .collect(),
                },
                recorded.config_values_fingerprint.clone(),
            ),
            (None, None) => (GivenValues::default(), None),
        };
        let mut given = given;
        // A password the install was given (by the user or carried) that a replay without the
        // file does not know: given, empty, so that the item's vendor `value` is not rendered in
        // its place (which would draw random bytes the install never drew).
        if let Some(replayed) = &replayed {
            for name in replayed.carried_password_fingerprints.keys() {
                given.values.entry(name.clone()).or_default();
            }
        }
        let carried = match (recorded, &request.carried_config_values) {
            (Some(recorded), _) => {
                if request.config_values.is_some() {
                    crate::effective_values::carry_recorded_under(
                        &mut given,
                        &recorded.carried_items,
                        &recorded.given_values,
                    );
                }
                (
                    recorded.carried_from.clone(),
                    recorded.carried_items.clone(),
                )
            }
            (None, Some(carried)) => {
                let taken = crate::effective_values::carry_under(
                    &mut given,
                    &carried.values.path,
                    carried.values.text.expose(),
                )?;
                (Some(carried.install_id.clone()), taken)
            }
            (None, None) => (None, Default::default()),
        };
        let mut base = base_context(request.license.as_ref(), &request.namespace);
        base.local_registry = request.local_registry.as_ref().map(local_registry_context);
        Ok(Templates {
            base,
            given,
            config_values_fingerprint,
            fingerprint_key,
            replayed,
            entropy: Arc::new(InstallEntropy {
                now: services.clock.now(),
                services: services.clone(),
            }),
            context: Mutex::new(None),
            record: Mutex::new(TemplatesRecord::default()),
            now_used: Mutex::new(false),
            password_files: Mutex::default(),
            carried,
            app_slug: request.app_slug().to_string(),
            effective: Mutex::default(),
        })
    }

    /// Templating outside an install (`windlass images`): the user's `given` values, the
    /// `license`'s fields and `namespace`, time and randomness from `services`. Nothing it
    /// renders is recorded, so its fingerprints use a throwaway key.
    pub fn for_release(
        given: GivenValues,
        license: Option<&windlass_engine::License>,
        namespace: &str,
        services: &Services,
    ) -> Templates {
        Templates {
            base: base_context(license, namespace),
            given,
            config_values_fingerprint: None,
            fingerprint_key: Arc::new(FingerprintKey::from_bytes([0; 32])),
            replayed: None,
            entropy: Arc::new(InstallEntropy {
                now: services.clock.now(),
                services: services.clone(),
            }),
            context: Mutex::new(None),
            record: Mutex::new(TemplatesRecord::default()),
            now_used: Mutex::new(false),
            password_files: Mutex::default(),
            carried: Default::default(),
            app_slug: license
                .map_or("app", |license| license.app_slug.as_str())
                .to_string(),
            effective: Mutex::default(),
        }
    }

    /// Where a render gets time and random bytes: the engine's clock and random source, or in a
    /// replay the recorded instant and `draws`.
    fn entropy_for(&self, draws: Option<&Vec<Vec<u8>>>) -> Arc<dyn Entropy> {
        match &self.replayed {
            Some(replayed) => Arc::new(Replay::new(&Recorded {
                now: replayed.now,
                draws: draws.cloned().unwrap_or_default(),
            })),
            None => self.entropy.clone(),
        }
    }

    /// Finds the release's `Config` among the raw files (path, bytes), evaluates it with the
    /// given values, and refuses the install when a required item has no value.
    pub fn prepare(&self, files: &[(String, Vec<u8>, u64)]) -> Result<(), ReleaseError> {
        let config = find_config(files)?;
        let recorder = Arc::new(Recorder::new(
            self.entropy_for(
                self.replayed
                    .as_ref()
                    .map(|replayed| &replayed.config_draws),
            ),
        ));
        let evaluated = match &config {
            Some(config) => evaluate(config, &self.given, &self.base, recorder.clone())
                .map_err(|error| ReleaseError::Template(error.to_string()))?,
            None => EvaluatedConfig::default(),
        };
        for name in &evaluated.unknown_values {
            tracing::warn!(item = %name, "the config values give an item the release's Config does not have; ignored");
        }
        let mut missing = missing_required(&evaluated);
        if let Some(replayed) = &self.replayed {
            // A password the install was given, which a replay without the file cannot know.
            missing.retain(|item| {
                !replayed
                    .carried_password_fingerprints
                    .contains_key(&item.name)
            });
        }
        if !missing.is_empty() {
            let listed: Vec<String> = missing
                .iter()
                .map(|item| {
                    format!(
                        "{} ({:?} in group {:?})",
                        item.name, item.title, item.group_title
                    )
                })
                .collect();
            return Err(ReleaseError::ConfigNeeded {
                items: listed.join(", "),
            });
        }
        let recorded = recorder.recorded();
        {
            let mut record = self.lock_record();
            record.config_values_fingerprint = self.config_values_fingerprint.clone();
            record.carried_from = self.carried.0.clone();
            record.carried_items = self.carried.1.clone();
            record.config_items = evaluated
                .items
                .iter()
                .map(|item| ConfigItemRecord {
                    name: item.name.clone(),
                    group: item.group.clone(),
                    item_type: item.value.item_type.clone(),
                    given: item.given
                        || self.replayed.as_ref().is_some_and(|replayed| {
                            replayed
                                .carried_password_fingerprints
                                .contains_key(&item.name)
                        }),
                })
                .collect();
            // A password item whose default or value is a template may be made of these draws
            // (`RandomString` for a generated password): then they are credentials, and withheld.
            // (A value given, or carried from the previous install, is not rendered: only its
            // default could be.)
            let password_generated = config.as_ref().is_some_and(|config| {
                config
                    .spec
                    .groups
                    .iter()
                    .flat_map(|group| &group.items)
                    .any(|item| {
                        let given = self.given.values.contains_key(&item.name);
                        item.item_type.as_deref() == Some("password")
                            && [Some(&item.default), (!given).then_some(&item.value)]
                                .into_iter()
                                .flatten()
                                .any(|field| {
                                    let text =
                                        windlass_template::config::bool_or_string(field.as_ref());
                                    text.contains("{{repl") || text.contains("repl{{")
                                })
                    })
            });
            if password_generated && !recorded.draws.is_empty() {
                record.config_random_draws_withheld = true;
            } else {
                record.config_random_draws =
                    recorded.draws.iter().map(|d| STANDARD.encode(d)).collect();
            }
            record.warnings = evaluated.warnings.clone();
            // What a replay needs of the user's values: the values themselves, except passwords
            // (items of type password, and items built from one), which are fingerprinted.
            let passwords: std::collections::HashMap<&str, bool> = evaluated
                .items
                .iter()
                .map(|item| (item.name.as_str(), item.value.is_password()))
                .collect();
            for (name, given) in &self.given.values {
                match passwords.get(name.as_str()) {
                    Some(true) => {
                        if let Some(value) = &given.value {
                            record.given_password_fingerprints.insert(
                                name.clone(),
                                self.fingerprint_key.fingerprint(
                                    GIVEN_PASSWORD_PURPOSE,
                                    &SecretString::new(value.clone()),
                                ),
                            );
                        }
                    }
                    Some(_) => {
                        record.given_values.insert(
                            name.clone(),
                            GivenValueRecord {
                                value: given.value.clone(),
                                filename: given.filename.clone(),
                            },
                        );
                    }
                    None => {}
                }
            }
            if let Some(replayed) = &self.replayed {
                record
                    .given_password_fingerprints
                    .extend(replayed.carried_password_fingerprints.clone());
            }
        }
        if recorded.now.is_some() {
            *self.now_used.lock().unwrap_or_else(|p| p.into_inner()) = true;
        }
        if config.is_some() {
            *self.effective.lock().unwrap_or_else(|p| p.into_inner()) = Some(
                crate::effective_values::effective_values(&evaluated, &self.app_slug)?,
            );
        }
        *self.context.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(TemplateContext {
            config: Arc::new(evaluated.values()),
            ..self.base.clone()
        }));
        Ok(())
    }

    /// The rendered text of the YAML file `path`, or `None` when it holds no template (or is a
    /// file that is not rendered).
    pub fn render(&self, path: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, ReleaseError> {
        let first = memchr::memmem::find(bytes, b"{{repl").is_some();
        if !first && memchr::memmem::find(bytes, b"repl{{").is_none() {
            return Ok(None);
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(None);
        };
        // The file's KOTS documents set aside; the templates may all have been in them.
        let (blanked, unrendered) =
            match crate::unrendered_documents::without_unrendered_kinds(text) {
                Some((blanked, unrendered)) => (Some(blanked), unrendered),
                None => (None, Vec::new()),
            };
        if let Some(rest) = &blanked
            && !rest.contains("{{repl")
            && !rest.contains("repl{{")
        {
            return Ok(None);
        }
        let text = blanked.as_deref().unwrap_or(text);
        let context = self
            .context
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| Arc::new(self.base.clone()));
        let recorder = Arc::new(Recorder::new(
            self.entropy_for(
                self.replayed
                    .as_ref()
                    .and_then(|replayed| replayed.file_draws.get(path)),
            ),
        ));
        let usage = Arc::new(Usage::default());
        let scope = Scope {
            context,
            entropy: recorder.clone(),
            usage: usage.clone(),
        };
        let rendered = windlass_template::render(path, text, &scope)
            .map_err(|error| ReleaseError::Template(error.to_string()))?;
        // A file whose text holds a password value is recorded by fingerprint, never stored. In a
        // replay without the user's ConfigValues the password is not known (the render reads
        // an empty value): the install's record says which files held one.
        let holds_password = !usage.password_items().is_empty()
            || !usage.credentials().is_empty()
            || self
                .replayed
                .as_ref()
                .is_some_and(|replayed| replayed.password_files.contains(path));
        let recorded = recorder.recorded();
        if recorded.now.is_some() {
            *self.now_used.lock().unwrap_or_else(|p| p.into_inner()) = true;
        }
        self.lock_record().files.push(TemplatedFile {
            path: path.to_string(),
            config_items: usage.config_items().into_iter().collect(),
            random_draws: recorded.draws.iter().map(|d| STANDARD.encode(d)).collect(),
            holds_password,
        });
        if holds_password {
            self.password_files
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.to_string());
        }
        let mut rendered = rendered.text;
        for document in unrendered {
            if !rendered.is_empty() && !rendered.ends_with('\n') {
                rendered.push('\n');
            }
            rendered.push_str("---\n");
            rendered.push_str(document);
        }
        Ok(Some(rendered.into_bytes()))
    }

    /// Whether the rendered text of `path` holds a password value (see [`TemplatedFile`]).
    pub fn holds_password(&self, path: &str) -> bool {
        self.password_files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(path)
    }

    /// Notes a document left out by `annotation`.
    pub fn excluded(&self, file: &str, index: usize, annotation: &str) {
        self.lock_record().excluded.push(ExcludedDocument {
            file: file.to_string(),
            index,
            annotation: annotation.to_string(),
        });
    }

    /// What to record, files in path order.
    pub fn record(&self) -> TemplatesRecord {
        let mut record = self.lock_record().clone();
        record.files.sort_by(|a, b| a.path.cmp(&b.path));
        if *self.now_used.lock().unwrap_or_else(|p| p.into_inner()) {
            let now = match &self.replayed {
                Some(replayed) => replayed.now.unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                None => self.entropy.now,
            };
            record.now = now
                .format(&time::format_description::well_known::Rfc3339)
                .ok();
        }
        if !record.is_empty() {
            record.license_fields = self.base.license.as_deref().cloned().unwrap_or_default();
        }
        record
    }

    /// The effective ConfigValues the evaluated Config gave (none without a Config, or before
    /// [`Templates::prepare`]), to be written to `upstream/userdata/config.yaml`.
    pub fn effective_values(&self) -> Option<crate::effective_values::EffectiveValues> {
        self.effective
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_record(&self) -> std::sync::MutexGuard<'_, TemplatesRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads the KOTS ConfigValues file at `path` (which must exist) for `windlass config`.
pub fn read_config_values_file(path: &std::path::Path) -> Result<GivenValues, ReleaseError> {
    let shown = path.display().to_string();
    let text = windlass_files::read_regular_text(
        path,
        windlass_template::config_values::MAX_CONFIG_VALUES_BYTES as u64,
    )
    .map_err(|problem| ReleaseError::Template(format!("config values file {shown}: {problem}")))?;
    parse_config_values(&shown, &text).map_err(|error| ReleaseError::Template(error.to_string()))
}

/// Reads the license at `path` for templates only (`windlass config`): its fields and app slug;
/// nothing is fingerprinted or recorded.
pub fn read_license_for_templates(
    path: &std::path::Path,
) -> Result<windlass_engine::License, crate::license::LicenseError> {
    let license = windlass_kots::read_license_file(path)?;
    Ok(windlass_engine::License {
        app_slug: license.app_slug,
        license_id: license.license_id,
        sequence: license.sequence,
        expires_at: license.expires_at,
        fingerprint: String::new(),
        fields: license.fields,
    })
}
