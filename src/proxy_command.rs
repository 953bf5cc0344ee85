//! `windlass proxy`: runs the license-authenticated pull-through registry proxy (`serve`) and
//! manages its license store (`license add|revoke|list`), which works while the proxy runs.

use anyhow::{Context, anyhow};
use serde::Serialize;
use windlass_proxy::{LicenseRecord, ProxyConfig, ProxyServer, ProxyStore};
use windlass_state::SecretString;

use crate::cli::{GlobalArgs, LicenseCommand, ProxyArgs, ProxyCommand};
use crate::exit::{CliError, CliResult, Code};
use crate::read_commands::print_json;

fn load(path: &std::path::Path) -> Result<ProxyConfig, CliError> {
    ProxyConfig::load(path).map_err(|error| CliError::new(Code::InvalidInput, anyhow!(error)))
}

fn open_store(config: &ProxyConfig) -> Result<ProxyStore, CliError> {
    ProxyStore::open(&config.state).map_err(|error| {
        CliError::new(
            Code::State,
            anyhow!(error).context(format!("proxy state {}", config.state.display())),
        )
    })
}

/// One license as printed (wire format of `proxy license ... --json`).
#[derive(Serialize)]
struct LicenseView<'a> {
    fingerprint: &'a str,
    app_slug: &'a str,
    expires_at: Option<&'a str>,
    revoked: bool,
    added_at: &'a str,
    revoked_at: Option<&'a str>,
}

fn view(record: &LicenseRecord) -> LicenseView<'_> {
    LicenseView {
        fingerprint: &record.fingerprint,
        app_slug: &record.app_slug,
        expires_at: record.expires_at.as_deref(),
        revoked: record.revoked,
        added_at: &record.added_at,
        revoked_at: record.revoked_at.as_deref(),
    }
}

fn print_licenses(global: &GlobalArgs, records: &[LicenseRecord]) -> Result<(), CliError> {
    if global.json {
        let views: Vec<LicenseView> = records.iter().map(view).collect();
        return print_json(&views);
    }
    for record in records {
        println!(
            "{}  app {}  {}{}",
            record.fingerprint,
            record.app_slug,
            if record.revoked { "revoked" } else { "active" },
            record
                .expires_at
                .as_deref()
                .map(|expiry| format!(", expires {expiry}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Runs `windlass proxy ...`.
pub fn run(global: &GlobalArgs, args: &ProxyArgs) -> CliResult {
    match &args.command {
        ProxyCommand::Serve { config } => {
            let config = load(config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|error| CliError::new(Code::Failure, error))?;
            runtime.block_on(async {
                let server = ProxyServer::bind(&config)
                    .await
                    .map_err(|error| CliError::new(Code::Failure, anyhow!(error)))?;
                let address = server
                    .local_addr()
                    .map_err(|error| CliError::new(Code::Failure, anyhow!(error)))?;
                eprintln!(
                    "windlass proxy listening on {}://{address}",
                    if config.plain_http { "http" } else { "https" }
                );
                server
                    .run()
                    .await
                    .map_err(|error| CliError::new(Code::Failure, anyhow!(error)))
            })?;
            Ok(Code::Success)
        }
        ProxyCommand::License { command } => match command {
            LicenseCommand::Add { config, file } => {
                let store = open_store(&load(config)?)?;
                let record = store
                    .add_license(file)
                    .with_context(|| format!("cannot add the license in {}", file.display()))
                    .map_err(|error| CliError::new(Code::InvalidInput, error))?;
                print_licenses(global, std::slice::from_ref(&record))?;
                Ok(Code::Success)
            }
            LicenseCommand::Revoke { config, license_id } => {
                let store = open_store(&load(config)?)?;
                let record = store
                    .revoke(&SecretString::new(license_id.clone()))
                    .map_err(|error| CliError::new(Code::NotFound, anyhow!(error)))?;
                print_licenses(global, std::slice::from_ref(&record))?;
                Ok(Code::Success)
            }
            LicenseCommand::List { config } => {
                let store = open_store(&load(config)?)?;
                let records = store
                    .list()
                    .map_err(|error| CliError::new(Code::State, anyhow!(error)))?;
                print_licenses(global, &records)?;
                Ok(Code::Success)
            }
        },
    }
}
