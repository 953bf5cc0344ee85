//! `windlass install`: reads the license and release up front (so bad input is refused before
//! anything is recorded), builds the default pipeline, decides whether to start a new install or
//! resume an interrupted one of the same release, claims the output directory that install writes
//! into (refusing directories windlass may not write, and locking it for the whole install), runs
//! it, and reports the outcome for humans or as JSON.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use windlass_engine::pipeline_file::load_pipeline;
use windlass_engine::runner::{StartKind, StartPlan};
use windlass_engine::{
    FailureClass, InstallRequest, InstallState, InstallStatus, Memo, Pipeline, Progress, Runner,
    StageRegistry,
};
use windlass_registry::RegistrySettings;
use windlass_stages::PipelineOptions;
use windlass_stages::images::known_images::read_known_images;
use windlass_stages::images::policy::ProbePolicy;
use windlass_stages::images::rules::WindlassConfig;
use windlass_stages::license::read_license;
use windlass_stages::output_claim::{ClaimError, ClaimRequest, OutputClaim, Protected, claim};
use windlass_stages::plan_overrides::PlanOverridesConfig;
use windlass_stages::probe_images::ProbeImagesConfig;
use windlass_stages::provision_secrets::ProvisionSecretsConfig;
use windlass_stages::release::{Limits, ReleaseSnapshot, digest_keeping};
use windlass_stages::render_midstream::RenderMidstreamConfig;

use crate::cli::{GlobalArgs, InstallArgs};
use crate::exit::{CliError, CliResult, Code};
use crate::read_commands::{format_duration, print_json};
use crate::state_access::{actor, new_install_id, open_state};
use crate::terminal_progress::{NotesOnly, TerminalProgress};

fn absolute(path: &Path) -> Result<PathBuf, CliError> {
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

/// Reads `--registries`, `--known-images` and `--config` as the stages will.
fn check_stage_files(args: &InstallArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.probing.registries {
        RegistrySettings::load(path)?;
    }
    if let Some(path) = &args.probing.known_images {
        read_known_images(path)?;
    }
    if let Some(path) = &args.config {
        WindlassConfig::load(path)?;
    }
    Ok(())
}

/// Runs `windlass install`.
pub fn run(global: &GlobalArgs, args: &InstallArgs) -> CliResult {
    let invalid = |error: anyhow::Error| CliError::new(Code::InvalidInput, error);
    let release_dir = std::fs::canonicalize(&args.release_dir)
        .with_context(|| format!("release directory {}", args.release_dir.display()))
        .map_err(invalid)?;
    if !release_dir.is_dir() {
        return Err(invalid(anyhow!(
            "release directory {}: not a directory",
            args.release_dir.display()
        )));
    }
    let state = open_state(global)?;
    let license_path = args.license.clone().or_else(|| {
        let kots_layout = release_dir.join("userdata").join("license.yaml");
        kots_layout.is_file().then_some(kots_layout)
    });
    let license = license_path
        .map(|path| read_license(&path, &state.fingerprint_key))
        .transpose()
        .map_err(|error| invalid(error.into()))?;
    // The files the stages read are checked now too, so that a bad one (unreadable, not a regular
    // file, too large, invalid) is refused before anything is recorded. The stages read them again.
    check_stage_files(args).map_err(invalid)?;
    // Only the digest is needed to find an interrupted install; fetch_base reads the release fully
    // and reports bad input (recorded in the log).
    // The files read for it are kept for fetch_base, which then need not read them again.
    let memo = Arc::new(Memo::default());
    let snapshot = memo.get::<ReleaseSnapshot>();
    let release_digest = digest_keeping(&release_dir, &Limits::default(), &snapshot)
        .map_err(|error| invalid(error.into()))?;
    let registry = StageRegistry::new(&windlass_stages::stage_kinds());
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
    let options = PipelineOptions {
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
    let pipeline = match &args.pipeline {
        None => Pipeline::build(&windlass_stages::default_pipeline(&options), &registry)
            .map_err(|errors| invalid(errors.into()))?,
        Some(path) => {
            refuse_stage_options_with_pipeline_file(&options)?;
            load_pipeline(path, &registry).map_err(|error| invalid(error.into()))?
        }
    };
    let install_id = new_install_id();
    let requested_out = args.out.as_deref().map(absolute).transpose()?;
    let out_dir = match &requested_out {
        Some(out) => out.clone(),
        None => absolute(&state.default_out(&install_id))?,
    };
    let request = InstallRequest {
        release_dir,
        release_digest,
        out_dir,
        requested_out,
        namespace: args.namespace.clone(),
        license,
    };
    // One process at a time per install: a second `windlass install` of the same request while
    // the first is still running must not resume it underneath.
    let install_key = request.install_key(pipeline.fingerprint());
    let _install_lock = state
        .try_lock(&install_key)
        .map_err(|error| CliError::new(Code::State, error))?
        .ok_or_else(|| {
            CliError::new(
                Code::Failure,
                anyhow!(
                    "another windlass process is installing this release with the same options into {} right now; wait for it or see `windlass history`",
                    global.state.display()
                ),
            )
        })?;
    let progress: Arc<dyn Progress> = match TerminalProgress::for_stderr(global.json) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(NotesOnly),
    };
    let runner = Runner {
        log: state.log.clone(),
        blobs: state.blobs.clone(),
        fingerprint_key: state.fingerprint_key.clone(),
        actor: actor(),
        progress,
        memo,
        services: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::new(Code::Failure, error))?;
    let plan = runner
        .plan_start(&pipeline, &request, &install_id)
        .map_err(|error| CliError::new(Code::State, anyhow!(error).context("install stopped")))?;
    let _output_claim = claim_output(global, args, &request, &state, &plan)?;
    let (outcome, start_kind) = runtime
        .block_on(runner.start_planned(&pipeline, Arc::new(request), plan))
        .map_err(|error| CliError::new(Code::State, anyhow!(error).context("install stopped")))?;
    if global.json {
        print_json(&outcome)?;
    } else {
        print_human(&outcome, start_kind);
    }
    Ok(match (&outcome.status, &outcome.failure) {
        (InstallStatus::Completed, _) => Code::Success,
        (_, Some(failure)) if failure.class == FailureClass::InvalidInput => Code::InvalidInput,
        _ => Code::Failure,
    })
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

/// Claims the output directory `plan` writes into for the whole install: never `/`, the release
/// directory, the state directory (other than its `installs/`), a file, or a non-empty directory
/// windlass did not write (unless `--force`, or the install being resumed wrote there).
fn claim_output(
    global: &GlobalArgs,
    args: &InstallArgs,
    request: &InstallRequest,
    state: &windlass_state::StateDir,
    plan: &StartPlan,
) -> Result<OutputClaim, CliError> {
    let state_dir = std::fs::canonicalize(state.root())
        .with_context(|| format!("cannot resolve state directory {}", global.state.display()))
        .map_err(|error| CliError::new(Code::State, error))?;
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
        force: args.force,
        known_output: resumed,
        protected: &protected,
    })
    .map_err(|error| {
        let code = match error {
            ClaimError::Busy { .. } | ClaimError::Io { .. } | ClaimError::Marker { .. } => {
                Code::Failure
            }
            _ => Code::CommandLine,
        };
        // The path leads every message; say which option it came from.
        let flag = if request.requested_out.is_some() {
            "--out"
        } else {
            "output directory"
        };
        CliError::new(code, anyhow!("{flag} {error}"))
    })
}

fn print_human(state: &InstallState, start_kind: StartKind) {
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
