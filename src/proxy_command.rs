//! `windlass proxy`: runs the license-authenticated pull-through registry proxy (`serve`) and
//! manages its license store (`license add|revoke|list`), which works while the proxy runs. A
//! license ID is never taken on the command line (process lists, shell history): `revoke` names
//! the license by its file, its fingerprint or its ID on standard input.

use std::io::Read;
use std::path::Path;

use anyhow::anyhow;
use serde::Serialize;
use time::OffsetDateTime;
use windlass_proxy::{
    LicenseFile, ProxyConfig, ProxyServer, ProxyStore, StoreError, StoredLicense, read_license_file,
};
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

/// Largest license ID accepted on standard input (`revoke --id-stdin`).
const MAX_STDIN_BYTES: u64 = 64 * 1024;

/// One license as printed (wire format of `proxy license ... --json`).
#[derive(Serialize)]
struct LicenseView<'a> {
    fingerprint: &'a str,
    app_slug: &'a str,
    /// `active`, `expired` or `revoked`.
    status: &'static str,
    expires_at: Option<&'a str>,
    revoked: bool,
    added_at: &'a str,
    revoked_at: Option<&'a str>,
}

fn view(record: &StoredLicense, now: OffsetDateTime) -> LicenseView<'_> {
    LicenseView {
        fingerprint: &record.fingerprint,
        app_slug: &record.app_slug,
        status: record.status(now).as_str(),
        expires_at: record.expires_at.as_deref(),
        revoked: record.revoked,
        added_at: &record.added_at,
        revoked_at: record.revoked_at.as_deref(),
    }
}

fn print_licenses(global: &GlobalArgs, records: &[StoredLicense]) -> Result<(), CliError> {
    let now = OffsetDateTime::now_utc();
    if global.json {
        let views: Vec<LicenseView> = records.iter().map(|record| view(record, now)).collect();
        return print_json(&views);
    }
    for record in records {
        println!(
            "{}  app {}  {}{}",
            record.fingerprint,
            record.app_slug,
            record.status(now).as_str(),
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
        ProxyCommand::Serve { config: path } => {
            let config = load(path)?;
            for host in config.upstreams_serving_no_app() {
                eprintln!(
                    "warning: {}: upstreams.{host}.apps: missing or empty, so this upstream serves no app (list the app slugs whose licenses may pull through it)",
                    path.display()
                );
            }
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
            LicenseCommand::Add {
                config,
                file,
                reinstate,
            } => {
                let store = open_store(&load(config)?)?;
                let license = read_license(file)?;
                let added = if *reinstate {
                    store.reinstate(&license)
                } else {
                    store.add(&license)
                };
                let record = added.map_err(|error| match error {
                    StoreError::Revoked { .. } => CliError::new(
                        Code::State,
                        anyhow!("cannot add the license in {}: {error}: pass --reinstate to accept it again", file.display()),
                    ),
                    other => CliError::new(Code::State, anyhow!(other)),
                })?;
                print_licenses(global, std::slice::from_ref(&record))?;
                Ok(Code::Success)
            }
            LicenseCommand::Revoke {
                config,
                license_file,
                fingerprint,
                id_stdin,
                refused_license_id,
            } => {
                // Checked before anything is read, and never repeated: it may be a license ID.
                if !refused_license_id.is_empty() {
                    return Err(CliError::new(
                        Code::CommandLine,
                        anyhow!(
                            "license revoke takes no license ID argument (it would show in process lists and shell history): name the license with --license-file FILE, --fingerprint FP (as `license list` prints it) or --id-stdin"
                        ),
                    ));
                }
                if let Some(fingerprint) = fingerprint
                    && !is_fingerprint(fingerprint)
                {
                    return Err(CliError::new(
                        Code::CommandLine,
                        anyhow!(
                            "--fingerprint: not a fingerprint as `license list` prints it (`fp1:` and 32 hex digits)"
                        ),
                    ));
                }
                if license_file.is_none() && fingerprint.is_none() && !id_stdin {
                    return Err(CliError::new(
                        Code::CommandLine,
                        anyhow!(
                            "license revoke needs the license: --license-file FILE, --fingerprint FP (as `license list` prints it) or --id-stdin"
                        ),
                    ));
                }
                let store = open_store(&load(config)?)?;
                let fingerprint = match (license_file, fingerprint) {
                    (Some(file), _) => store.fingerprint(&read_license(file)?.license_id),
                    (None, Some(fingerprint)) => fingerprint.clone(),
                    (None, None) => store.fingerprint(&license_id_from_stdin()?),
                };
                let record =
                    store
                        .revoke_fingerprint(&fingerprint)
                        .map_err(|error| match error {
                            StoreError::UnknownLicense { .. } => {
                                CliError::new(Code::NotFound, anyhow!(error))
                            }
                            other => CliError::new(Code::State, anyhow!(other)),
                        })?;
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

/// Reads a license file; its problems (with file and line) are invalid input.
fn read_license(file: &Path) -> Result<LicenseFile, CliError> {
    read_license_file(file).map_err(|error| CliError::new(Code::InvalidInput, anyhow!(error)))
}

/// Whether `text` is a fingerprint as `license list` prints it: `fp1:` and 32 hex digits.
fn is_fingerprint(text: &str) -> bool {
    text.strip_prefix("fp1:").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

/// The license ID on the first line of standard input (`revoke --id-stdin`).
fn license_id_from_stdin() -> Result<SecretString, CliError> {
    let invalid = |problem: &str| CliError::new(Code::InvalidInput, anyhow!("stdin: {problem}"));
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| CliError::new(Code::InvalidInput, anyhow!("stdin: {error}")))?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        return Err(invalid(&format!(
            "over the limit of {MAX_STDIN_BYTES} bytes for a license ID"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| invalid("the license ID is not UTF-8"))?;
    let id = text.lines().next().unwrap_or("").trim();
    if id.is_empty() {
        return Err(invalid(
            "no license ID (--id-stdin reads it from the first line)",
        ));
    }
    Ok(SecretString::new(id))
}
