//! `windlass watch DIR`: maps the command line onto the daemon (`windlass-daemon`): the install
//! options shared with `windlass install` become the install API's options every release is
//! installed with; `--listen` serves the status API, metrics and console (a bare port binds
//! loopback); `--api-token-file` is read once, as a secret. The state directory's `watch` lock
//! keeps one daemon per state directory.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::anyhow;
use windlass_daemon::api::{ApiState, serve};
use windlass_daemon::content::BundleLimits;
use windlass_daemon::daemon::{InstallTemplate, WatchConfig, run, shared};
use windlass_state::SecretString;

use crate::cli::{GlobalArgs, WatchArgs};
use crate::exit::{CliError, CliResult, Code};
use crate::state_access::{actor, new_install_id, open_state};

/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// Runs `windlass watch` until SIGTERM or SIGINT.
pub fn run_watch(global: &GlobalArgs, args: &WatchArgs) -> CliResult {
    let dir = std::fs::canonicalize(&args.dir).map_err(|error| {
        CliError::new(
            Code::InvalidInput,
            anyhow!("watched directory {}: {error}", args.dir.display()),
        )
    })?;
    if !dir.is_dir() {
        return Err(CliError::new(
            Code::InvalidInput,
            anyhow!("watched directory {}: not a directory", args.dir.display()),
        ));
    }
    for digest in &args.reinstall {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(CliError::new(
                Code::CommandLine,
                anyhow!(
                    "--reinstall {digest}: not a release digest (sha256:<64 hex digits>, as /api/releases shows)"
                ),
            ));
        }
    }
    let token = match &args.api_token_file {
        None => None,
        Some(path) => {
            let text =
                windlass_files::read_regular_text(path, MAX_TOKEN_BYTES).map_err(|problem| {
                    CliError::new(
                        Code::InvalidInput,
                        anyhow!("--api-token-file {}: {problem}", path.display()),
                    )
                })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(CliError::new(
                    Code::InvalidInput,
                    anyhow!("--api-token-file {}: the file is empty", path.display()),
                ));
            }
            Some(Arc::new(SecretString::new(token.to_string())))
        }
    };
    let options = crate::install_command::install_options(&args.install, dir.clone(), None, false)?;
    let state = open_state(global)?;
    let _lock = state
        .try_lock("watch")
        .map_err(|error| CliError::new(Code::State, error))?
        .ok_or_else(|| {
            CliError::new(
                Code::Failure,
                anyhow!(
                    "another windlass watch is running on state directory {}",
                    global.state.display()
                ),
            )
        })?;
    let config = WatchConfig {
        dir: dir.clone(),
        quiet_period: args.quiet_period,
        rescan_interval: args
            .rescan_interval
            .max(std::time::Duration::from_millis(100)),
        poll: args
            .poll
            .map(|interval| interval.max(std::time::Duration::from_millis(100))),
        reinstall: args.reinstall.clone(),
        bundle_limits: BundleLimits::default(),
    };
    let template = Arc::new(InstallTemplate {
        options,
        services: crate::apply_command::services(&args.install.target),
        actor: actor(),
        new_install_id,
        kube_context: match &args.install.target.target {
            windlass_apply::Target::Kube { context } if !args.install.target.dry_run => {
                Some(context.clone())
            }
            _ => None,
        },
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::new(Code::Failure, error))?;
    let result = runtime.block_on(async {
        let (shared, hints) =
            shared(config, Arc::new(state)).map_err(|error| CliError::new(Code::State, error))?;
        if let Some(listen) = args.listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|error| {
                    CliError::new(Code::CommandLine, anyhow!("--listen {listen}: {error}"))
                })?;
            let bound: SocketAddr = listener
                .local_addr()
                .map_err(|error| CliError::new(Code::Failure, error))?;
            eprintln!("windlass watch: status, metrics and console on http://{bound}/");
            let api = ApiState {
                shared: shared.clone(),
                token,
            };
            tokio::spawn(async move {
                if let Err(error) = serve(listener, api).await {
                    tracing::error!("status API stopped: {error}");
                }
            });
        }
        eprintln!(
            "windlass watch: watching {} (state {})",
            dir.display(),
            global.state.display()
        );
        run(shared, hints, template).await.map_err(|error| {
            let code = match error {
                windlass_daemon::daemon::DaemonError::Dir { .. } => Code::InvalidInput,
                windlass_daemon::daemon::DaemonError::Watch { .. } => Code::Failure,
                _ => Code::State,
            };
            CliError::new(code, error)
        })
    });
    // A stage parked by a stop is left behind: the install resumes at the next start.
    runtime.shutdown_background();
    result.map(|()| {
        eprintln!("windlass watch: stopped");
        Code::Success
    })
}
