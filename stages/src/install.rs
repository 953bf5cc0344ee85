//! The install API: starts or resumes an install of a release and runs it to the end, reporting
//! progress through a [`Progress`] sink instead of printing. The `windlass install` command calls
//! it (and a daemon or a replay will): it reads the license, the files the stages will read and
//! the release up front, so that bad input is refused before anything is recorded; builds the
//! pipeline (the built-in default with its options, or a pipeline file); decides whether to start
//! a new install or resume an interrupted one of the same request, under the state directory's
//! lock for that request; claims the output directory that install writes into (refusing
//! directories windlass may not write, and locking it for the whole install); and runs it. Each
//! install gets its own [`Memo`], so nothing derived from one install's release (and never a
//! license document: the license is read on its own, not through the parsed cache) outlives it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use windlass_engine::pipeline_file::{PipelineFileError, load_pipeline};
use windlass_engine::runner::{ChainCheck, RunError, StartKind, StartPlan};
use windlass_engine::{
    InstallRequest, InstallState, Memo, Pipeline, PipelineErrors, Progress, Runner, Services,
    StageKind, StageRegistry, StageSpec,
};
use windlass_registry::{RegistrySettings, SettingsError};
use windlass_state::{StateDir, StateDirError};

use crate::PipelineOptions;
use crate::license::{LicenseError, read_license};
use crate::output_claim::{ClaimError, ClaimRequest, OutputClaim, Protected, claim};
use crate::release::{Limits, ReleaseError, ReleaseSnapshot, digest_keeping};
use windlass_manifest::images::known_images::{KnownImagesError, read_known_images};
use windlass_manifest::images::rules::{ConfigError, WindlassConfig};

/// Which pipeline an install runs.
#[derive(Debug, Clone)]
pub enum PipelineChoice {
    /// The built-in pipeline ([`crate::default_pipeline`]) with these options.
    BuiltIn(PipelineOptions),
    /// The pipeline a pipeline file lists (see [`windlass_engine::pipeline_file`]).
    File(PathBuf),
    /// Another choice with stage kinds from other crates registered too (the apply stage), and
    /// stages appended after its last one.
    Extended {
        /// The pipeline extended.
        base: Box<PipelineChoice>,
        /// Kinds registered besides this crate's.
        kinds: Vec<StageKind>,
        /// Stages appended.
        stages: Vec<StageSpec>,
    },
    /// Another choice whose stage list `edit` changes before it is built (the binary inserts
    /// plugin stages this way), with `kinds` registered too.
    Edited {
        /// The pipeline edited.
        base: Box<PipelineChoice>,
        /// Kinds registered besides this crate's and `base`'s.
        kinds: Vec<StageKind>,
        /// The change.
        edit: PipelineEdit,
    },
}

/// A change to a pipeline's stage list, made before it is built: every problem it finds, each
/// one line naming where it was declared.
#[derive(Clone)]
pub struct PipelineEdit(pub Arc<EditStages>);

/// The function behind a [`PipelineEdit`].
pub type EditStages = dyn Fn(Vec<StageSpec>) -> Result<Vec<StageSpec>, Vec<String>> + Send + Sync;

impl std::fmt::Debug for PipelineEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PipelineEdit")
    }
}

impl PipelineChoice {
    /// The stage list of this choice as specs (the file's shape checked, not its kinds) and the
    /// kinds it registers besides this crate's.
    fn specs(&self) -> Result<(Vec<StageSpec>, Vec<StageKind>), InstallError> {
        Ok(match self {
            PipelineChoice::BuiltIn(pipeline_options) => {
                (crate::default_pipeline(pipeline_options), Vec::new())
            }
            PipelineChoice::File(path) => (
                windlass_engine::pipeline_file::read_pipeline_file(path)?,
                Vec::new(),
            ),
            PipelineChoice::Extended {
                base,
                kinds,
                stages,
            } => {
                let (mut specs, mut all) = base.specs()?;
                specs.extend(stages.iter().cloned());
                all.extend(kinds.iter().cloned());
                (specs, all)
            }
            PipelineChoice::Edited { base, kinds, edit } => {
                let (specs, mut all) = base.specs()?;
                all.extend(kinds.iter().cloned());
                let specs = (edit.0)(specs).map_err(InstallError::PipelineEdit)?;
                (specs, all)
            }
        })
    }

    /// Builds the pipeline with this crate's stage kinds and `kinds`.
    fn build(&self, kinds: &[StageKind]) -> Result<Pipeline, InstallError> {
        if let PipelineChoice::Edited {
            base, kinds: extra, ..
        } = self
        {
            // The pipeline before the edit is checked as it is first, so that a pipeline file's
            // own problems are named by its keys.
            let mut with_extra = kinds.to_vec();
            with_extra.extend(extra.iter().cloned());
            base.build(&with_extra)?;
            let (specs, more) = self.specs()?;
            let mut all = crate::stage_kinds();
            all.extend(kinds.iter().cloned());
            all.extend(more);
            return Ok(Pipeline::build(&specs, &StageRegistry::new(&all))?);
        }
        let mut all = crate::stage_kinds();
        all.extend(kinds.iter().cloned());
        let registry = StageRegistry::new(&all);
        Ok(match self {
            PipelineChoice::BuiltIn(pipeline_options) => {
                Pipeline::build(&crate::default_pipeline(pipeline_options), &registry)?
            }
            PipelineChoice::File(path) => load_pipeline(path, &registry)?,
            PipelineChoice::Extended {
                base,
                kinds: more,
                stages,
            } => {
                let mut kinds = kinds.to_vec();
                kinds.extend(more.iter().cloned());
                match (base.as_ref(), stages.first()) {
                    (_, None) => return base.build(&kinds),
                    (PipelineChoice::BuiltIn(pipeline_options), Some(_)) => {
                        all.extend(more.iter().cloned());
                        let mut specs = crate::default_pipeline(pipeline_options);
                        specs.extend(stages.iter().cloned());
                        Pipeline::build(&specs, &StageRegistry::new(&all))?
                    }
                    (_, Some(first)) => {
                        return Err(InstallError::Pipeline(PipelineErrors(vec![
                            windlass_engine::PipelineError::InvalidConfig {
                                stage: first.name.clone(),
                                problems: vec![
                                    "stages are appended to the built-in pipeline only".into(),
                                ],
                            },
                        ])));
                    }
                }
            }
            PipelineChoice::Edited { .. } => unreachable!("an edited pipeline is built above"),
        })
    }
}

/// Files the built-in stages will read, checked before anything is recorded (the stages read
/// them again).
#[derive(Debug, Clone, Default)]
pub struct StageFiles {
    /// Registry settings (`--registries`).
    pub registries: Option<PathBuf>,
    /// A KOTS `Installation` with known images (`--known-images`).
    pub known_images: Option<PathBuf>,
    /// A windlass config file (`--config`).
    pub config: Option<PathBuf>,
}

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The release directory, as checked by [`check_release_dir`].
    pub release_dir: PathBuf,
    /// The license file; `None` looks for `RELEASE_DIR/userdata/license.yaml`.
    pub license: Option<PathBuf>,
    /// The output directory asked for, absolute; `None` for one under the state directory named
    /// after the install.
    pub requested_out: Option<PathBuf>,
    /// The app namespace.
    pub namespace: String,
    /// Write into a non-empty output directory windlass did not write.
    pub force: bool,
    /// The pipeline.
    pub pipeline: PipelineChoice,
    /// Files the stages will read, checked up front.
    pub stage_files: StageFiles,
    /// The user's KOTS ConfigValues file; `None` looks for `RELEASE_DIR/userdata/config.yaml`.
    pub config_values: Option<PathBuf>,
    /// Local-registry mode: the customer's own registry every image is rewritten to.
    pub local_registry: Option<LocalRegistryOptions>,
}

/// Local-registry mode as asked for (`--registry-host` and friends, or the config file's
/// `local_registry:`); the password file is read when the install starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalRegistryOptions {
    /// `--registry-host`: `host[:port]`.
    pub host: String,
    /// `--registry-namespace` (may be empty).
    pub namespace: String,
    /// `--registry-username`.
    pub username: Option<String>,
    /// `--registry-password-file`: a file holding the password (one trailing newline is not
    /// part of it).
    pub password_file: Option<PathBuf>,
}

/// Who runs the install and where it is recorded.
pub struct InstallEnvironment<'a> {
    /// The state directory.
    pub state: &'a StateDir,
    /// The state directory as the user named it, for messages.
    pub state_shown: &'a Path,
    /// Recorded as each event's actor.
    pub actor: String,
    /// The id a new install gets (a resumed install keeps its own).
    pub new_install_id: String,
    /// Where progress goes.
    pub progress: Arc<dyn Progress>,
    /// What the stages are given (HTTP, Kubernetes, clock, random source).
    pub services: Services,
}

/// How an install ended (it may have failed: see [`InstallState::status`]).
#[derive(Debug)]
pub struct InstallOutcome {
    /// The install, folded from its events.
    pub state: InstallState,
    /// Whether it started fresh or resumed an interrupted install.
    pub start: StartKind,
}

/// Why an install did not run to an outcome. A stage failing is not one of these: it is
/// recorded, and the install ends `failed`.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The release directory cannot be resolved.
    #[error("release directory {shown}")]
    ReleaseDir {
        /// The directory as given.
        shown: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The release directory is not a directory.
    #[error("release directory {shown}: not a directory")]
    NotADirectory {
        /// The directory as given.
        shown: String,
    },
    /// The license file is unreadable or invalid.
    #[error(transparent)]
    License(#[from] LicenseError),
    /// The ConfigValues file is missing, unreadable or invalid.
    #[error("{0}")]
    ConfigValues(String),
    /// The local registry's settings are invalid, or its password file is missing, unreadable
    /// or empty.
    #[error("{0}")]
    LocalRegistry(String),
    /// The registry settings file is unreadable or invalid.
    #[error(transparent)]
    Registries(#[from] SettingsError),
    /// The known-images file is unreadable or invalid.
    #[error(transparent)]
    KnownImages(#[from] KnownImagesError),
    /// The windlass config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The release cannot be read for its digest.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The built-in pipeline's options are invalid.
    #[error(transparent)]
    Pipeline(#[from] PipelineErrors),
    /// The pipeline file is unreadable or invalid.
    #[error(transparent)]
    PipelineFile(#[from] PipelineFileError),
    /// The pipeline's stage list could not be changed as asked (a plugin declaration names a
    /// stage the pipeline lacks, say): every problem, one per line.
    #[error("{}", .0.join("\n"))]
    PipelineEdit(Vec<String>),
    /// A path cannot be made absolute.
    #[error("cannot resolve {shown}")]
    Resolve {
        /// The path.
        shown: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The state directory cannot be resolved.
    #[error("cannot resolve state directory {shown}")]
    StateDir {
        /// The state directory as given.
        shown: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The state directory's lock for this request cannot be taken.
    #[error(transparent)]
    Lock(#[from] StateDirError),
    /// Another process is installing the same request right now.
    #[error(
        "another windlass process is installing this release with the same options into {state} right now; wait for it or see `windlass history`"
    )]
    Busy {
        /// The state directory as given.
        state: String,
    },
    /// The output directory was refused or is in use; `flag` says where it came from (`--out` or
    /// `output directory`).
    #[error("{flag} {error}")]
    Claim {
        /// `--out`, or `output directory` for the default one.
        flag: &'static str,
        /// Why.
        error: ClaimError,
    },
    /// The runner stopped (the log is damaged or cannot be written).
    #[error("install stopped")]
    Stopped(#[source] RunError),
}

/// What kind of problem an [`InstallError`] is, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallErrorClass {
    /// The release, license, pipeline or a file the stages read is invalid.
    InvalidInput,
    /// The request cannot be carried out as asked (an output directory windlass may not use).
    Refused,
    /// The state directory cannot be used.
    State,
    /// Something is busy or failed (another install holds a lock, an I/O error on the output).
    Failure,
}

impl InstallError {
    /// The error's class.
    pub fn class(&self) -> InstallErrorClass {
        match self {
            InstallError::ReleaseDir { .. }
            | InstallError::NotADirectory { .. }
            | InstallError::License(_)
            | InstallError::ConfigValues(_)
            | InstallError::LocalRegistry(_)
            | InstallError::Registries(_)
            | InstallError::KnownImages(_)
            | InstallError::Config(_)
            | InstallError::Release(_)
            | InstallError::Pipeline(_)
            | InstallError::PipelineFile(_)
            | InstallError::PipelineEdit(_)
            | InstallError::Resolve { .. } => InstallErrorClass::InvalidInput,
            InstallError::StateDir { .. } | InstallError::Lock(_) | InstallError::Stopped(_) => {
                InstallErrorClass::State
            }
            InstallError::Busy { .. } => InstallErrorClass::Failure,
            InstallError::Claim { error, .. } => match error {
                ClaimError::Busy { .. } | ClaimError::Io { .. } | ClaimError::Marker { .. } => {
                    InstallErrorClass::Failure
                }
                _ => InstallErrorClass::Refused,
            },
        }
    }
}

/// The release directory `given`, resolved (symlinks followed) and checked to be a directory.
pub fn check_release_dir(given: &Path) -> Result<PathBuf, InstallError> {
    let shown = given.display().to_string();
    let release_dir = std::fs::canonicalize(given).map_err(|error| InstallError::ReleaseDir {
        shown: shown.clone(),
        error,
    })?;
    if !release_dir.is_dir() {
        return Err(InstallError::NotADirectory { shown });
    }
    Ok(release_dir)
}

fn absolute(path: &Path) -> Result<PathBuf, InstallError> {
    std::path::absolute(path).map_err(|error| InstallError::Resolve {
        shown: path.display().to_string(),
        error,
    })
}

/// Checks the files the stages will read, as they will read them.
fn check_stage_files(files: &StageFiles) -> Result<(), InstallError> {
    if let Some(path) = &files.registries {
        RegistrySettings::load(path)?;
    }
    if let Some(path) = &files.known_images {
        read_known_images(path)?;
    }
    if let Some(path) = &files.config {
        WindlassConfig::load(path)?;
    }
    Ok(())
}

/// Starts a new install of `options`, or resumes the interrupted install of the same request, and
/// runs it to the end. The up-front checks (license, the stages' files, the release digest, the
/// output claim) read files synchronously before the stages run; a caller serving other work on
/// the same runtime (a daemon) should give each install its own task on a multi-threaded runtime.
pub async fn install(
    options: &InstallOptions,
    environment: InstallEnvironment<'_>,
) -> Result<InstallOutcome, InstallError> {
    let state = environment.state;
    let license_path = options.license.clone().or_else(|| {
        let kots_layout = options.release_dir.join("userdata").join("license.yaml");
        kots_layout.is_file().then_some(kots_layout)
    });
    let license = license_path
        .map(|path| read_license(&path, &state.fingerprint_key))
        .transpose()?;
    let config_values = read_config_values(options, state)?;
    let carried_config_values = carried_config_values(
        state,
        license
            .as_ref()
            .map_or("app", |license| license.app_slug.as_str()),
    )?;
    if let Some(license) = &license {
        let given = config_values.iter();
        let carried = carried_config_values.iter().map(|carried| &carried.values);
        refuse_license_id_in(given.chain(carried), license)?;
    }
    let local_registry = options
        .local_registry
        .as_ref()
        .map(|registry| local_registry_input(registry, &state.fingerprint_key))
        .transpose()?;
    // A bad file the stages read (unreadable, not a regular file, too large, invalid) is refused
    // before anything is recorded.
    check_stage_files(&options.stage_files)?;
    // Only the digest is needed to find an interrupted install; fetch_base reads the release fully
    // and reports bad input (recorded in the log). The files read for it are kept in this
    // install's memo for fetch_base, which then need not read them again.
    let memo = Arc::new(Memo::default());
    let snapshot = memo.get::<ReleaseSnapshot>();
    // The log's chain is checked meanwhile (it is read whole).
    let chain = ChainCheck::start(&state.log);
    let release_digest = digest_keeping(&options.release_dir, &Limits::default(), &snapshot)?;
    let pipeline = options.pipeline.build(&[])?;
    let out_dir = match &options.requested_out {
        Some(out) => out.clone(),
        None => absolute(&state.default_out(&environment.new_install_id))?,
    };
    let request = InstallRequest {
        release_dir: options.release_dir.clone(),
        release_digest,
        out_dir,
        requested_out: options.requested_out.clone(),
        namespace: options.namespace.clone(),
        license,
        config_values,
        local_registry,
        carried_config_values,
        kind: windlass_engine::InstallKind::Install,
    };
    // One process at a time per install: a second install of the same request while the first
    // is still running must not resume it underneath.
    let install_key = request.install_key(pipeline.fingerprint());
    let _install_lock = state
        .try_lock(&install_key)?
        .ok_or_else(|| InstallError::Busy {
            state: environment.state_shown.display().to_string(),
        })?;
    let runner = Runner {
        log: state.log.clone(),
        blobs: state.blobs.clone(),
        fingerprint_key: state.fingerprint_key.clone(),
        actor: environment.actor,
        progress: environment.progress,
        memo,
        services: environment.services.with_state_dir(state.root()),
    };
    let plan = runner
        .plan_start(chain, &pipeline, &request, &environment.new_install_id)
        .map_err(InstallError::Stopped)?;
    let _output_claim = claim_output(
        state,
        environment.state_shown,
        options.force,
        &request,
        &plan,
    )?;
    let (state, start) = runner
        .start_planned(&pipeline, Arc::new(request), plan)
        .await
        .map_err(InstallError::Stopped)?;
    Ok(InstallOutcome { state, start })
}

/// The fingerprint purpose for ConfigValues files.
pub const CONFIG_VALUES_PURPOSE: &str = "config-values";

/// Reads the ConfigValues file (`--config-values`, which must exist, else
/// `RELEASE_DIR/userdata/config.yaml` when there is one), checks it is a valid KOTS ConfigValues,
/// and fingerprints it. Its text stays in memory: it may hold passwords.
fn read_config_values(
    options: &InstallOptions,
    state: &StateDir,
) -> Result<Option<windlass_engine::ConfigValuesInput>, InstallError> {
    let path = match &options.config_values {
        Some(path) => path.clone(),
        None => {
            let kots_layout = options.release_dir.join("userdata").join("config.yaml");
            if !kots_layout.is_file() {
                return Ok(None);
            }
            kots_layout
        }
    };
    config_values_input(&path, &state.fingerprint_key).map(Some)
}

/// Refuses ConfigValues holding the license ID: their values that are not passwords are
/// recorded and rendered into files that are not secrets, and windlass never stores or copies a
/// license ID (a release file holding one is refused the same way).
fn refuse_license_id_in<'a>(
    files: impl Iterator<Item = &'a windlass_engine::ConfigValuesInput>,
    license: &windlass_engine::License,
) -> Result<(), InstallError> {
    let id = license.license_id.expose();
    for file in files {
        if !id.is_empty() && file.text.expose().contains(id) {
            return Err(InstallError::ConfigValues(format!(
                "config values file {}: holds the license ID of the license in use; windlass never stores or copies a license ID: remove it",
                file.path
            )));
        }
    }
    Ok(())
}

/// Where an install writes the effective ConfigValues in its output (KOTS's upstream layout).
pub const EFFECTIVE_CONFIG_VALUES_FILE: &str = "upstream/userdata/config.yaml";

/// The effective ConfigValues the newest completed `windlass install` of app `app_slug` wrote in
/// its output, if that output still holds them. A file there that cannot be read or is no valid
/// ConfigValues stops the install, naming it: starting without it would generate anew what it
/// generated once.
fn carried_config_values(
    state: &StateDir,
    app_slug: &str,
) -> Result<Option<windlass_engine::CarriedConfigValues>, InstallError> {
    let newest =
        windlass_engine::install_index::newest_completed_install(&state.log, app_slug, &|kind| {
            kind == windlass_engine::InstallKind::Install
        })
        .map_err(|error| {
            InstallError::ConfigValues(format!("reading the previous installs: {error}"))
        })?;
    let Some(newest) = newest else {
        return Ok(None);
    };
    let path = Path::new(&newest.out_dir).join(EFFECTIVE_CONFIG_VALUES_FILE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let values = config_values_input(&path, &state.fingerprint_key).map_err(|error| {
        InstallError::ConfigValues(format!(
            "the values install {} left: {error}; remove the file to start from the release's values alone",
            newest.install_id
        ))
    })?;
    Ok(Some(windlass_engine::CarriedConfigValues {
        install_id: newest.install_id,
        values,
    }))
}

/// Reads the ConfigValues file `path`, checks it is a valid KOTS ConfigValues, and fingerprints
/// it with `key` (`windlass install` and `windlass replay --config-values`). Its text stays in
/// memory: it may hold passwords.
pub fn config_values_input(
    path: &Path,
    key: &windlass_state::FingerprintKey,
) -> Result<windlass_engine::ConfigValuesInput, InstallError> {
    let shown = path.display().to_string();
    let text = windlass_files::read_regular_text(
        path,
        windlass_template::config_values::MAX_CONFIG_VALUES_BYTES as u64,
    )
    .map_err(|problem| {
        InstallError::ConfigValues(format!("config values file {shown}: {problem}"))
    })?;
    windlass_template::config_values::parse_config_values(&shown, &text)
        .map_err(|error| InstallError::ConfigValues(error.to_string()))?;
    let text = windlass_state::SecretString::new(text);
    let fingerprint = key.fingerprint(CONFIG_VALUES_PURPOSE, &text);
    Ok(windlass_engine::ConfigValuesInput {
        path: shown,
        text,
        fingerprint,
    })
}

/// The fingerprint purpose for a local registry's password.
pub const REGISTRY_PASSWORD_PURPOSE: &str = "registry-password";

/// Largest password file accepted.
const MAX_PASSWORD_FILE_BYTES: u64 = 64 * 1024;

/// Checks local-registry settings and reads the password file (`windlass install`, and `windlass
/// replay --registry-password-file` for the password alone). Nothing of the file's text reaches an
/// error.
pub fn local_registry_input(
    options: &LocalRegistryOptions,
    key: &windlass_state::FingerprintKey,
) -> Result<windlass_engine::LocalRegistryInput, InstallError> {
    let invalid = |problem: String| InstallError::LocalRegistry(problem);
    let host = options.host.trim();
    if host.is_empty()
        || host.contains("://")
        || host.contains('/')
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return Err(invalid(format!(
            "local registry host {host:?} is not a host name (host or host:port, no scheme, no path: give a namespace with --registry-namespace)"
        )));
    }
    let namespace = options.namespace.trim_matches('/');
    if !namespace.is_empty()
        && !namespace.split('/').all(|segment| {
            !segment.is_empty()
                && segment.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
    {
        return Err(invalid(format!(
            "local registry namespace {namespace:?} is not a repository path (lowercase letters, digits, '.', '_', '-', segments separated by '/')"
        )));
    }
    if let Some(username) = &options.username
        && (username.is_empty() || username.contains(':') || username.chars().any(char::is_control))
    {
        return Err(invalid(
            "local registry username must be non-empty, without ':' or control characters".into(),
        ));
    }
    if options.username.is_some() != options.password_file.is_some() {
        return Err(invalid(
            "a local registry's username and password file go together: give both (--registry-username and --registry-password-file) or neither".into(),
        ));
    }
    let password = options
        .password_file
        .as_deref()
        .map(read_password_file)
        .transpose()?;
    let password_fingerprint = password
        .as_ref()
        .map(|password| key.fingerprint(REGISTRY_PASSWORD_PURPOSE, password));
    Ok(windlass_engine::LocalRegistryInput {
        host: host.to_string(),
        namespace: namespace.to_string(),
        username: options.username.clone(),
        password,
        password_fingerprint,
    })
}

/// Reads a registry password file: at most 64 KiB of UTF-8, one trailing newline dropped, not
/// empty. The error names the file, never its content.
pub fn read_password_file(path: &Path) -> Result<windlass_state::SecretString, InstallError> {
    let shown = path.display().to_string();
    let text =
        windlass_files::read_regular_text(path, MAX_PASSWORD_FILE_BYTES).map_err(|problem| {
            InstallError::LocalRegistry(format!("registry password file {shown}: {problem}"))
        })?;
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(InstallError::LocalRegistry(format!(
            "registry password file {shown}: empty"
        )));
    }
    if password.contains('\n') {
        return Err(InstallError::LocalRegistry(format!(
            "registry password file {shown}: holds more than one line"
        )));
    }
    Ok(windlass_state::SecretString::new(password.to_string()))
}

/// Claims the output directory `plan` writes into for the whole install: never `/`, the release
/// directory, the state directory (other than its `installs/`), a file, or a non-empty directory
/// windlass did not write (unless `force`, or the install being resumed wrote there).
fn claim_output(
    state: &StateDir,
    state_shown: &Path,
    force: bool,
    request: &InstallRequest,
    plan: &StartPlan,
) -> Result<OutputClaim, InstallError> {
    let state_dir =
        std::fs::canonicalize(state.root()).map_err(|error| InstallError::StateDir {
            shown: state_shown.display().to_string(),
            error,
        })?;
    let protected = [
        Protected {
            what: "release directory".into(),
            path: request.release_dir.clone(),
            allowed_inside: None,
        },
        Protected {
            what: "state directory".into(),
            allowed_inside: Some(state_dir.join("installs")),
            path: state_dir,
        },
    ];
    let resumed = plan.kind() == StartKind::Resumed;
    claim(&ClaimRequest {
        out_dir: &plan.out_dir,
        install_id: &plan.install_id,
        force,
        known_output: resumed,
        protected: &protected,
    })
    .map_err(|error| InstallError::Claim {
        // The path leads every message; say which option it came from.
        flag: if request.requested_out.is_some() {
            "--out"
        } else {
            "output directory"
        },
        error,
    })
}
