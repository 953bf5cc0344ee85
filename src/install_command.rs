//! `windlass install`: turns the command line into [`windlass_stages::install::InstallOptions`]
//! (the built-in pipeline's stage options, or `--pipeline FILE`, refusing stage options given with
//! it), calls the install API — which reads the input up front, starts or resumes the install,
//! claims the output directory and runs it — with progress bars on a terminal, and reports the
//! outcome for humans or as JSON with the exit code the README documents.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use windlass_engine::runner::StartKind;
use windlass_engine::{InstallState, Progress};
use windlass_manifest::images::rules::WindlassConfig;
use windlass_stages::PipelineOptions;
use windlass_stages::events::ProbePolicy;
use windlass_stages::install::{
    InstallEnvironment, InstallError, InstallErrorClass, InstallOptions, InstallOutcome,
    LocalRegistryOptions, PipelineChoice, PipelineEdit, StageFiles, check_release_dir, install,
};
use windlass_stages::plan_overrides::PlanOverridesConfig;
use windlass_stages::probe_images::ProbeImagesConfig;
use windlass_stages::provision_secrets::ProvisionSecretsConfig;
use windlass_stages::render_midstream::RenderMidstreamConfig;

use crate::cli::{GlobalArgs, InstallArgs, InstallOptionArgs};
use crate::exit::{CliError, CliResult, Code, end_runtime};
use crate::read_commands::format_duration;
use crate::state_access::{actor, new_install_id, open_state};
use crate::terminal_progress::{NotesOnly, TerminalProgress};

pub fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path)
        .with_context(|| format!("cannot resolve {}", path.display()))
        .map_err(|error| CliError::new(Code::InvalidInput, error))
}

/// Parses `--probe-policy`.
pub fn parse_policy(name: &str) -> Result<ProbePolicy, CliError> {
    ProbePolicy::parse(name).ok_or_else(|| {
        CliError::new(
            Code::InvalidInput,
            anyhow!("unknown probe policy {name:?}: use kots or strict"),
        )
    })
}

/// Runs `windlass install`: maps the options onto [`windlass_stages::install::install`], runs it
/// with progress bars on a terminal, and reports the outcome for humans or as JSON.
pub fn run(global: &GlobalArgs, args: &InstallArgs) -> CliResult {
    let release_dir = check_release_dir(&args.release_dir).map_err(install_error)?;
    let mut protected = vec![
        windlass_apply::dir::ProtectedDir::new("state directory", &global.state),
        windlass_apply::dir::ProtectedDir::new("release directory", &release_dir),
    ];
    if let Some(out) = &args.out {
        protected.push(windlass_apply::dir::ProtectedDir::new(
            "output directory",
            out,
        ));
    }
    crate::apply_command::refuse_protected_dir_target(&args.install.target, &protected)?;
    let state = open_state(global)?;
    let options = install_options(
        &args.install,
        release_dir,
        args.out.as_deref().map(absolute).transpose()?,
        args.force,
    )?;
    let progress: Arc<dyn Progress> = match TerminalProgress::for_stderr(global.json) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(NotesOnly),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::new(Code::Failure, error))?;
    let outcome = runtime
        .block_on(install(
            &options,
            InstallEnvironment {
                state: &state,
                state_shown: &global.state,
                actor: actor(),
                new_install_id: new_install_id(),
                progress,
                services: crate::apply_command::services(&args.install.target),
            },
        ))
        .map_err(install_error)?;
    let InstallOutcome {
        state: outcome,
        start: start_kind,
    } = outcome;
    end_runtime(runtime);
    crate::apply_command::report(global, outcome, start_kind)
}

/// The install API's options for these command-line options (`install` and `watch`): the
/// built-in pipeline with its stage options (and the apply stage with `--target`), or
/// `--pipeline FILE`, refusing stage options given with it.
pub fn install_options(
    args: &InstallOptionArgs,
    release_dir: PathBuf,
    requested_out: Option<PathBuf>,
    force: bool,
) -> Result<InstallOptions, CliError> {
    let probe = ProbeImagesConfig {
        policy: parse_policy(&args.probing.probe_policy)?,
        offline: args.probing.offline,
        cache_ttl_seconds: args.probe_cache_ttl,
        registries_file: args
            .probing
            .registries
            .as_deref()
            .map(absolute)
            .transpose()?,
        known_images_file: args
            .probing
            .known_images
            .as_deref()
            .map(absolute)
            .transpose()?,
        config_file: args.config.as_deref().map(absolute).transpose()?,
        request_timeout_seconds: args.probing.request_timeout.max(1),
    };
    let pipeline_options = PipelineOptions {
        helm: args.helm.as_deref().map(absolute).transpose()?,
        probe,
        plan: PlanOverridesConfig {
            proxy_domain: args.proxy_domain.clone(),
            registry_domain: args.registry_domain.clone(),
            config_file: args.config.as_deref().map(absolute).transpose()?,
        },
        secrets: ProvisionSecretsConfig {
            kots_compat: args.kots_compat,
        },
        render: RenderMidstreamConfig {
            external_kustomize: args
                .external_kustomize
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        },
    };
    let apply = crate::apply_command::apply_config(&args.target)?.map(|mut apply| {
        apply.helm = pipeline_options.helm.clone();
        apply
    });
    let pipeline = match (&args.pipeline, apply) {
        (None, None) => PipelineChoice::BuiltIn(pipeline_options),
        (None, Some(apply)) => PipelineChoice::Extended {
            base: Box::new(PipelineChoice::BuiltIn(pipeline_options)),
            kinds: vec![windlass_apply::kind()],
            stages: vec![windlass_apply::pipeline_stage(&apply)],
        },
        (Some(_), Some(_)) => {
            return Err(CliError::new(
                Code::CommandLine,
                anyhow!(
                    "--target with --pipeline: add a stage of kind apply to the pipeline file instead"
                ),
            ));
        }
        (Some(path), None) => {
            refuse_stage_options_with_pipeline_file(&pipeline_options)?;
            // A pipeline file may use the apply stage kind too.
            PipelineChoice::Extended {
                base: Box::new(PipelineChoice::File(path.clone())),
                kinds: vec![windlass_apply::kind()],
                stages: Vec::new(),
            }
        }
    };
    let declarations = crate::plugins::declared(args.config.as_deref(), args.pipeline.as_deref())?;
    let pipeline = if declarations.is_empty() {
        pipeline
    } else {
        let plugins = crate::plugins::plugin_set();
        PipelineChoice::Edited {
            base: Box::new(pipeline),
            kinds: plugins.stage_kinds(),
            edit: PipelineEdit(Arc::new(move |specs| plugins.insert(specs, &declarations))),
        }
    };
    let local_registry = local_registry_options(args)?;
    Ok(InstallOptions {
        local_registry,
        release_dir,
        license: args.license.clone(),
        requested_out,
        namespace: args.namespace.clone(),
        force,
        pipeline,
        config_values: args.config_values.clone(),
        stage_files: StageFiles {
            registries: args.probing.registries.clone(),
            known_images: args.probing.known_images.clone(),
            config: args.config.clone(),
        },
    })
}

/// Local-registry mode from `--registry-host` and friends, each over the `--config` file's
/// `local_registry:`; `None` without a host. A namespace, username or password file without a
/// host, and a username without a password file (or the reverse), are refused.
fn local_registry_options(
    args: &InstallOptionArgs,
) -> Result<Option<LocalRegistryOptions>, CliError> {
    let flags = &args.local_registry;
    let from_file = match &args.config {
        Some(path) => WindlassConfig::load(path)
            .map_err(|error| CliError::new(Code::InvalidInput, error))?
            .local_registry
            .unwrap_or_default(),
        None => Default::default(),
    };
    let host = flags.registry_host.clone().or(from_file.host);
    let namespace = flags.registry_namespace.clone().or(from_file.namespace);
    let username = flags.registry_username.clone().or(from_file.username);
    let password_file = match &flags.registry_password_file {
        Some(path) => Some(absolute(path)?),
        None => from_file.password_file,
    };
    let Some(host) = host else {
        let flag_given = flags.registry_namespace.is_some()
            || flags.registry_username.is_some()
            || flags.registry_password_file.is_some();
        if flag_given || namespace.is_some() || username.is_some() || password_file.is_some() {
            return Err(CliError::new(
                if flag_given {
                    Code::CommandLine
                } else {
                    Code::InvalidInput
                },
                anyhow!(
                    "a local registry's namespace, username or password file needs its host: give --registry-host HOST (or local_registry.host in the config file)"
                ),
            ));
        }
        return Ok(None);
    };
    if username.is_some() != password_file.is_some() {
        return Err(CliError::new(
            Code::CommandLine,
            anyhow!(
                "--registry-username and --registry-password-file go together (on the command line or as local_registry.username and local_registry.password_file in the config file): give both or neither"
            ),
        ));
    }
    Ok(Some(LocalRegistryOptions {
        host,
        namespace: namespace.unwrap_or_default(),
        username,
        password_file,
    }))
}

/// The exit code of an install that did not run to an outcome.
pub fn install_error(error: InstallError) -> CliError {
    let code = match error.class() {
        InstallErrorClass::InvalidInput => Code::InvalidInput,
        InstallErrorClass::Refused => Code::CommandLine,
        InstallErrorClass::State => Code::State,
        InstallErrorClass::Failure => Code::Failure,
    };
    CliError::new(code, error)
}

/// With `--pipeline`, the file configures every stage: options that configure the built-in
/// pipeline's stages (`--offline`, `--probe-policy`, `--proxy-domain`, ...) would be silently
/// ignored, so they are refused, naming the stages they configure.
fn refuse_stage_options_with_pipeline_file(options: &PipelineOptions) -> Result<(), CliError> {
    let given = windlass_stages::default_pipeline(options);
    let defaults = windlass_stages::default_pipeline(&PipelineOptions::default());
    let configured: Vec<&str> = given
        .iter()
        .zip(&defaults)
        .filter(|(given, default)| given.config != default.config)
        .map(|(given, _)| given.name.as_str())
        .collect();
    if configured.is_empty() {
        return Ok(());
    }
    Err(CliError::new(
        Code::CommandLine,
        anyhow!(
            "--pipeline: options that configure the built-in pipeline's {} stage(s) were given too; with --pipeline, set them in the pipeline file's stage configs",
            configured.join(", ")
        ),
    ))
}

/// For humans: the install's outcome, stage by stage.
pub fn print_human(state: &InstallState, start_kind: StartKind) {
    if start_kind == StartKind::Resumed {
        println!(
            "resumed interrupted install {} (resumed {} time(s))",
            state.install_id, state.resumed
        );
    }
    let duration = state
        .duration_ms
        .map(format_duration)
        .unwrap_or_else(|| "-".into());
    println!(
        "install {} of {}: {} in {duration}",
        state.install_id,
        state.app_slug,
        state.status.as_str()
    );
    println!(
        "  release  {} ({})",
        state.release_dir, state.release_digest
    );
    println!("  out      {}", state.out);
    let name_width = crate::read_commands::stage_name_width(state);
    for stage in &state.stages {
        let detail = match (&stage.summary, &stage.last_error) {
            (Some(summary), _) => summary.clone(),
            (None, Some(error)) => format!("{} ({})", error.message, error.class),
            (None, None) => String::new(),
        };
        let duration = stage.duration_ms.map(format_duration).unwrap_or_default();
        println!(
            "  stage    {:<name_width$} {:<10} {:>8}  {detail}",
            stage.name,
            format!("{:?}", stage.status).to_lowercase(),
            duration
        );
    }
    if let Some(failure) = &state.failure {
        eprintln!(
            "error: stage {} failed ({}): {}",
            failure.stage, failure.class, failure.message
        );
    }
}
