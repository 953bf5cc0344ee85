//! `windlass replay`: re-runs a recorded install offline and compares it with what was recorded
//! (recording `ReplayVerified` or `ReplayDiffered`), or, with changed options, prints what the
//! install would have produced (a what-if, which records nothing). The work is
//! `windlass_replay::run`; this module reads the arguments and prints.

use std::io::Write;

use anyhow::anyhow;
use windlass_replay::ReplayError;
use windlass_replay::run::{ReplayOptions, ReplayReport, WhatIf, record_verdict, replay};

use crate::cli::{GlobalArgs, ReplayArgs};
use crate::exit::{CliError, CliResult, Code, end_runtime};
use crate::install_command::parse_policy;
use crate::read_commands::print_json;
use crate::state_access::{actor, open_state, open_state_read_only, schemas};

fn replay_error(error: ReplayError) -> CliError {
    let code = match &error {
        ReplayError::NotFound(_) => Code::NotFound,
        ReplayError::LicenseMismatch { .. }
        | ReplayError::ConfigValuesMismatch { .. }
        | ReplayError::RegistryPasswordMismatch { .. } => Code::InvalidInput,
        ReplayError::Scratch(_) => Code::Failure,
        ReplayError::NotCompleted { .. }
        | ReplayError::DamagedLog { .. }
        | ReplayError::Blob { .. }
        | ReplayError::Recorded(_)
        | ReplayError::Log(_) => Code::State,
    };
    CliError::new(code, error)
}

/// `windlass replay <ID> [--license FILE] [what-if options]`.
pub fn run(global: &GlobalArgs, args: &ReplayArgs) -> CliResult {
    // Like the read commands, never create a state directory.
    drop(open_state_read_only(global)?);
    let state = open_state(global)?;
    let what_if = WhatIf {
        proxy_domain: args.proxy_domain.clone(),
        registry_domain: args.registry_domain.clone(),
        probe_policy: args.probe_policy.as_deref().map(parse_policy).transpose()?,
        known_images: args
            .known_images
            .as_ref()
            .map(|path| {
                windlass_manifest::images::known_images::read_known_images(path)
                    .map_err(|error| CliError::new(Code::InvalidInput, error))?;
                std::path::absolute(path).map_err(|error| {
                    CliError::new(
                        Code::InvalidInput,
                        anyhow!("--known-images {}: {error}", path.display()),
                    )
                })
            })
            .transpose()?,
        namespace: args.namespace.clone(),
        kots_compat: args.kots_compat.then_some(true),
        registry_host: args.registry_host.clone(),
        registry_namespace: args.registry_namespace.clone(),
    };
    let (license, license_bytes) = match &args.license {
        Some(path) => {
            let license = windlass_stages::license::read_license(path, &state.fingerprint_key)
                .map_err(|error| CliError::new(Code::InvalidInput, error))?;
            let bytes = windlass_files::read_regular_file(path, 1024 * 1024).map_err(|error| {
                CliError::new(
                    Code::InvalidInput,
                    anyhow!("--license {}: {error}", path.display()),
                )
            })?;
            (Some(license), Some(bytes))
        }
        None => (None, None),
    };
    let config_values = args
        .config_values
        .as_ref()
        .map(|path| {
            windlass_stages::install::config_values_input(path, &state.fingerprint_key).map_err(
                |error| CliError::new(Code::InvalidInput, anyhow!("--config-values: {error}")),
            )
        })
        .transpose()?;
    let registry_password = args
        .registry_password_file
        .as_deref()
        .map(|path| {
            let password = windlass_stages::install::read_password_file(path)
                .map_err(|error| CliError::new(Code::InvalidInput, error))?;
            let fingerprint = state.fingerprint_key.fingerprint(
                windlass_stages::install::REGISTRY_PASSWORD_PURPOSE,
                &password,
            );
            Ok::<_, CliError>((password, fingerprint))
        })
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::new(Code::Failure, error))?;
    let report = runtime
        .block_on(replay(
            &state,
            schemas()?,
            &args.install_id,
            ReplayOptions {
                license,
                license_bytes,
                config_values,
                registry_password,
                what_if,
                kinds: crate::plugins::plugin_set().stage_kinds(),
            },
        ))
        .map_err(replay_error)?;
    end_runtime(runtime);
    record_verdict(&state, &actor(), &report).map_err(replay_error)?;
    if global.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    if report.what_if || report.identical() {
        return Ok(Code::Success);
    }
    let first = &report.differences[0];
    Err(CliError::new(
        Code::Failure,
        anyhow!(
            "replay of {} differs from what was recorded ({} difference(s)); the first: stage {}{}: {}",
            report.install_id,
            report.differences.len(),
            first.stage,
            first
                .file
                .as_deref()
                .map(|file| format!(", file {file}"))
                .unwrap_or_default(),
            first.detail
        ),
    ))
}

fn print_report(report: &ReplayReport) {
    let mut out = std::io::stdout().lock();
    let heading = if report.what_if {
        format!(
            "what-if of {}: {} difference(s) from the recorded install (nothing recorded)",
            report.install_id,
            report.differences.len()
        )
    } else if report.identical() {
        format!(
            "replay of {}: identical — {} file(s) byte for byte, {} secret file(s) by keyed fingerprint, {} fact(s) ({} ms)",
            report.install_id,
            report.files_compared,
            report.secret_files_compared,
            report.facts_compared,
            report.duration_ms
        )
    } else {
        format!(
            "replay of {}: {} difference(s) from what was recorded",
            report.install_id,
            report.differences.len()
        )
    };
    let _ = writeln!(out, "{heading}");
    for unverified in &report.unverified {
        let _ = writeln!(out, "not verified: {unverified}");
    }
    if report.secret_files_unchecked > 0 {
        let _ = writeln!(
            out,
            "{} file(s) holding secrets not compared: their content derives from the license ID (pass --license FILE)",
            report.secret_files_unchecked
        );
    }
    let width = report
        .stages
        .iter()
        .map(|stage| stage.stage.len())
        .max()
        .unwrap_or(0);
    for stage in &report.stages {
        let _ = writeln!(
            out,
            "  {:width$}  {:9}  {} fact(s), {} file(s)",
            stage.stage, stage.status, stage.facts, stage.files
        );
        for difference in report
            .differences
            .iter()
            .filter(|difference| difference.stage == stage.stage)
            .take(20)
        {
            let _ = writeln!(
                out,
                "    {} {}{}",
                difference.kind,
                difference
                    .file
                    .as_deref()
                    .map(|file| format!("{file}: "))
                    .unwrap_or_default(),
                difference.detail
            );
        }
    }
    for difference in report
        .differences
        .iter()
        .filter(|difference| difference.stage == "(none)")
    {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            difference.kind,
            difference.file.as_deref().unwrap_or(""),
            difference.detail
        );
    }
}
