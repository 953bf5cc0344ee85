//! The `windlass` command line. This is the only place that knows clap, terminals and exit codes:
//! it parses arguments, sets up logging, opens the state directory with the event schemas and
//! stage kinds of every crate, and hands off to one module per command family.

mod apply_command;
mod audit_commands;
mod cli;
mod config_command;
mod diff_command;
mod exit;
mod images_command;
mod install_command;
mod plugins;
mod proxy_command;
mod read_commands;
mod replay_command;
mod state_access;
mod stdout;
mod terminal_progress;
mod watch_command;

use clap::Parser;

/// mimalloc instead of the system allocator: parsing thousands of documents on several threads
/// left glibc holding hundreds of MiB in per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::cli::{Cli, Command};
use crate::exit::CliError;

/// Turns transparent huge pages off for this process, first thing in `main` (clap and logging
/// allocate too). With them, every first touch of a 2 MiB region of mimalloc's arena makes the
/// kernel zero all of it: at 1,000 manifests that was a tenth of the install's CPU time, for
/// memory the install never used. mimalloc is built without its own huge-page advice (`no_thp`),
/// which covers the allocations before `main`; this switch covers a kernel set to use huge pages
/// always. The flag is checked at page-fault time. A kernel that refuses it only costs that time.
fn disable_transparent_huge_pages() -> Result<(), rustix::io::Errno> {
    rustix::thread::disable_transparent_huge_pages(true)
}

fn main() -> std::process::ExitCode {
    let huge_pages = disable_transparent_huge_pages();
    let cli = Cli::parse();
    init_logging();
    tracing::debug!("windlass starts");
    if let Err(error) = huge_pages {
        tracing::debug!("transparent huge pages stay on: {error}");
    }
    let result = match &cli.command {
        Command::Install(args) => install_command::run(&cli.global, args),
        Command::Images(args) => images_command::run(&cli.global, args),
        Command::Config(args) => config_command::run(&cli.global, args),
        Command::History { app: None } => read_commands::history(&cli.global),
        Command::History { app: Some(app) } => diff_command::app_history(&cli.global, app),
        Command::Diff {
            first,
            second,
            stage,
        } => diff_command::diff(&cli.global, first, second.as_deref(), stage.as_deref()),
        Command::Events { install_id } => read_commands::events(&cli.global, install_id),
        Command::Show { install_id } => read_commands::show(&cli.global, install_id),
        Command::VerifyLog { rebuild_indexes } => {
            read_commands::verify_log(&cli.global, *rebuild_indexes)
        }
        Command::Replay(args) => replay_command::run(&cli.global, args),
        Command::Export { since, install } => {
            audit_commands::export_log(&cli.global, *since, install.as_deref())
        }
        Command::VerifyExport { file } => audit_commands::verify_export_file(&cli.global, file),
        Command::Proxy(args) => proxy_command::run(&cli.global, args),
        Command::Apply(args) => apply_command::run(&cli.global, args),
        Command::Undeploy(args) => apply_command::undeploy(&cli.global, args),
        Command::Watch(args) => watch_command::run_watch(&cli.global, args),
    };
    match result {
        Ok(code) => code.into(),
        Err(CliError { code, error }) => {
            eprintln!("error: {}", one_line(&error));
            code.into()
        }
    }
}

/// The error and its causes on one line, each said once: a cause whose text the line already
/// holds (a message that embeds its source, as many do so that recorded messages are complete) is
/// not repeated, so an OS error never prints twice.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `RUST_LOG`-style filtering, to stderr; warnings only by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
