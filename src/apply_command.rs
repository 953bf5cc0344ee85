//! `windlass apply INSTALL_ID`, `windlass undeploy INSTALL_ID` and the apply options of
//! `windlass install` (`--target`, `--kubeconfig`, `--dry-run`, `--wait-timeout`,
//! `--allow-empty-prune`): turns them into the apply stage's configuration and the Kubernetes
//! client factory the stage is given, runs [`windlass_apply::apply_install::apply_install`] for
//! an install rendered earlier (an undeploy is that apply stage applying nothing), and prints
//! what was (or, for a dry run, would be) changed, for humans or as JSON.

use std::sync::Arc;

use anyhow::anyhow;
use serde::Deserialize;
use windlass_apply::apply_install::{ApplyEnvironment, ApplyInstallError, apply_install};
use windlass_apply::cluster::KubeClients;
use windlass_apply::events::{APPLY_COMPLETED, ApplyCounts, ApplyOutcome, OBJECT_PRUNED};
use windlass_apply::{ApplyConfig, Target};
use windlass_engine::runner::StartKind;
use windlass_engine::{FailureClass, InstallState, InstallStatus, Progress, Services};
use windlass_state::StoredEvent;

use crate::cli::{ApplyArgs, GlobalArgs, TargetArgs, UndeployArgs};
use crate::exit::{CliError, CliResult, Code, end_runtime, leave_to_exit};
use crate::read_commands::print_json;
use crate::state_access::{actor, new_install_id, open_state};
use crate::terminal_progress::{NotesOnly, TerminalProgress};

/// The apply stage's configuration for these options; `None` for `--target none`. Options that
/// only make sense with a cluster are refused without one.
pub fn apply_config(args: &TargetArgs) -> Result<Option<ApplyConfig>, CliError> {
    let refuse = |message: String| Err(CliError::new(Code::CommandLine, anyhow!(message)));
    let cluster = matches!(args.target, Target::Kube { .. });
    if !cluster {
        for (given, flag) in [
            (args.dry_run, "--dry-run"),
            (args.kubeconfig.is_some(), "--kubeconfig"),
            (args.allow_empty_prune, "--allow-empty-prune"),
        ] {
            if given {
                return refuse(format!("{flag} needs --target kube or kube:CONTEXT"));
            }
        }
    }
    let target = match &args.target {
        Target::None => return Ok(None),
        Target::Dir(path) => Target::Dir(std::path::absolute(path).map_err(|error| {
            CliError::new(
                Code::CommandLine,
                anyhow!("--target dir:{}: {error}", path.display()),
            )
        })?),
        other => other.clone(),
    };
    if let Target::Dir(path) = &target {
        // The apply stage checks again, with the state, output and release directories, before
        // it writes anything; refused here, nothing is recorded either.
        windlass_apply::dir::check_target(path, &[]).map_err(dir_target_refused)?;
    }
    Ok(Some(ApplyConfig {
        target: target.to_string(),
        dry_run: args.dry_run,
        wait_timeout_seconds: args.wait_timeout,
        allow_empty_prune: args.allow_empty_prune,
        source_install: None,
        helm: None,
        undeploy: false,
    }))
}

/// The command-line error for a refused `--target dir:` (the message names the target).
fn dir_target_refused(error: windlass_apply::dir::DirTargetError) -> CliError {
    CliError::new(Code::CommandLine, anyhow!("--{error}"))
}

/// Refuses a `--target dir:PATH` that is, lies inside or holds one of `protected` (the state
/// directory, `--out`, the release): windlass replaces the directory target whole.
pub fn refuse_protected_dir_target(
    args: &TargetArgs,
    protected: &[windlass_apply::dir::ProtectedDir],
) -> Result<(), CliError> {
    match &args.target {
        Target::Dir(path) => {
            windlass_apply::dir::check_place(path, protected).map_err(dir_target_refused)
        }
        _ => Ok(()),
    }
}

/// The services for an install or apply with these options: the real world, with a Kubernetes
/// client factory reading `--kubeconfig` (else `$KUBECONFIG`, else `~/.kube/config`).
pub fn services(args: &TargetArgs) -> Services {
    services_reading(args.kubeconfig.clone())
}

/// The services with a Kubernetes client factory reading `kubeconfig` (else `$KUBECONFIG`, else
/// `~/.kube/config`).
fn services_reading(kubeconfig: Option<std::path::PathBuf>) -> Services {
    Services {
        kubernetes: Arc::new(KubeClients { kubeconfig }),
        ..Services::default()
    }
}

/// Runs `windlass apply`.
pub fn run(global: &GlobalArgs, args: &ApplyArgs) -> CliResult {
    refuse_protected_dir_target(
        &args.target,
        &[windlass_apply::dir::ProtectedDir::new(
            "state directory",
            &global.state,
        )],
    )?;
    let Some(mut config) = apply_config(&args.target)? else {
        return Err(CliError::new(
            Code::CommandLine,
            anyhow!("windlass apply needs --target dir:PATH, kube or kube:CONTEXT"),
        ));
    };
    config.helm = args
        .helm
        .as_deref()
        .map(crate::install_command::absolute)
        .transpose()?;
    run_apply_install(global, &args.install_id, &config, services(&args.target))
}

/// Runs `windlass undeploy`: the apply stage of an install of its own, applying nothing.
pub fn undeploy(global: &GlobalArgs, args: &UndeployArgs) -> CliResult {
    if !matches!(args.target, Target::Kube { .. }) {
        return Err(CliError::new(
            Code::CommandLine,
            anyhow!(
                "windlass undeploy needs --target kube or kube:CONTEXT, not {} (a GitOps directory is undeployed by removing it from the repository)",
                args.target
            ),
        ));
    }
    let config = ApplyConfig {
        target: args.target.to_string(),
        dry_run: args.dry_run,
        wait_timeout_seconds: args.wait_timeout,
        allow_empty_prune: false,
        source_install: None,
        helm: args
            .helm
            .as_deref()
            .map(crate::install_command::absolute)
            .transpose()?,
        undeploy: true,
    };
    run_apply_install(
        global,
        &args.install_id,
        &config,
        services_reading(args.kubeconfig.clone()),
    )
}

/// Runs the apply stage of `config` on what install `install_id` rendered, as an install of its
/// own, and reports it.
fn run_apply_install(
    global: &GlobalArgs,
    install_id: &str,
    config: &ApplyConfig,
    services: Services,
) -> CliResult {
    let state = open_state(global)?;
    let progress: Arc<dyn Progress> = match TerminalProgress::for_stderr(global.json) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(NotesOnly),
    };
    // One thread for the requests: the apply's CPU work runs on the blocking pool and in
    // `parallel_map`, and with a second worker the thousand requests of a first apply mostly
    // cost cross-thread wake-ups (the first apply of 1,000 objects took about 10% longer).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::new(Code::Failure, error))?;
    let (outcome, start) = runtime
        .block_on(apply_install(
            install_id,
            config,
            ApplyEnvironment {
                state: &state,
                actor: actor(),
                new_install_id: new_install_id(),
                progress,
                services,
            },
        ))
        .map_err(|error| {
            let code = match &error {
                ApplyInstallError::NoSuchInstall(_) => Code::NotFound,
                ApplyInstallError::NotCompleted { .. } => Code::State,
                ApplyInstallError::Pipeline(_) => Code::InvalidInput,
                ApplyInstallError::Lock(_) | ApplyInstallError::Stopped(_) => Code::State,
                ApplyInstallError::Busy(_) => Code::Failure,
            };
            CliError::new(code, error)
        })?;
    end_runtime(runtime);
    report(global, outcome, start)
}

/// Prints a finished install or apply (`--json`, or the human summary and the objects it
/// changed) and answers its exit code; `outcome` is then left to the process's exit.
pub fn report(global: &GlobalArgs, outcome: InstallState, start: StartKind) -> CliResult {
    if global.json {
        print_json(&crate::read_commands::install_json(&outcome)?)?;
    } else {
        crate::install_command::print_human(&outcome, start);
        print_changes(&outcome);
    }
    let code = exit_code(&outcome);
    leave_to_exit(outcome);
    Ok(code)
}

/// The exit code of a finished install or apply.
pub fn exit_code(outcome: &InstallState) -> Code {
    match (&outcome.status, &outcome.failure) {
        (InstallStatus::Completed, _) => Code::Success,
        (_, Some(failure)) if failure.class == FailureClass::InvalidInput => Code::InvalidInput,
        _ => Code::Failure,
    }
}

/// For humans: the objects an apply created, configured (or, in a dry run, would) or failed on,
/// and what it pruned. (Written through one buffer: a line per object, a thousand of them, one
/// write each cost milliseconds.)
pub fn print_changes(outcome: &InstallState) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // A closed standard output is not this command's failure: the apply is recorded.
    let _ = write_changes(outcome, &mut out).and_then(|()| out.flush());
}

fn write_changes(outcome: &InstallState, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let facts: Vec<&StoredEvent> = outcome
        .stages
        .iter()
        .filter(|stage| stage.name == windlass_apply::stage::KIND)
        .flat_map(|stage| stage.fact_events.iter())
        .collect();
    if !has_changes(&facts) {
        return Ok(());
    }
    let Some(view) = windlass_apply::view::apply_view(facts) else {
        return Ok(());
    };
    for object in &view.objects {
        let verb = match (object.outcome, object.dry_run) {
            (ApplyOutcome::Configured, true) if object.recreated => "would recreate",
            (ApplyOutcome::Created, true) => "would create",
            (ApplyOutcome::Configured, true) => "would configure",
            (ApplyOutcome::Created, false) => "created",
            (ApplyOutcome::Configured, false) => "configured",
            (ApplyOutcome::Failed, _) => "failed",
            _ => continue,
        };
        writeln!(out, "  {verb:<15} {}", object.key)?;
        for conflict in &object.conflicts {
            writeln!(
                out,
                "    conflict: {} owned by {}",
                conflict.field,
                if conflict.manager.is_empty() {
                    "another manager"
                } else {
                    conflict.manager.as_str()
                }
            )?;
        }
    }
    for deleted in &view.deleted_to_recreate {
        writeln!(out, "  {:<15} {}", "deleted to recreate", deleted.key)?;
    }
    for pruned in &view.pruned {
        writeln!(
            out,
            "  {:<15} {}{}",
            format!(
                "{}{}",
                if pruned.dry_run { "would be " } else { "" },
                serde_json::to_value(pruned.outcome)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            pruned.key,
            pruned
                .detail
                .as_deref()
                .map(|detail| format!(": {detail}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Whether an apply's facts hold a line for [`write_changes`]: its completion counts name an
/// object created or configured, or it decided about pruning an object. An apply that did not
/// complete (an object failed) always has. Read from the small facts, so that an apply that
/// changed nothing does not decode its records of every object.
fn has_changes(facts: &[&StoredEvent]) -> bool {
    if facts.iter().any(|event| event.event_type == OBJECT_PRUNED) {
        return true;
    }
    /// The part of `ApplyCompleted` read here (not its inventory of every object).
    #[derive(serde::Deserialize)]
    struct Completed {
        counts: ApplyCounts,
    }
    let completed = facts
        .iter()
        .rev()
        .find(|event| event.event_type == APPLY_COMPLETED)
        .and_then(|event| Completed::deserialize(&event.payload).ok());
    completed.is_none_or(|completed| completed.counts.created + completed.counts.configured > 0)
}
