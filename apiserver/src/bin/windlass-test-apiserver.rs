//! `windlass-test-apiserver --listen ADDR --kubeconfig OUT`: runs the test API server until
//! interrupted (SIGINT or SIGTERM), after writing a kubeconfig that points at it, so any client
//! (kubectl, kube-rs, a benchmark) can use it. It is a test double, not a Kubernetes API server:
//! see the crate documentation for what it implements.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use windlass_test_apiserver::{Options, TestApiServer};

/// mimalloc instead of the system allocator: with glibc's, a LIST of 1,000 Deployments spent
/// a third of its time in `malloc` and `free` (the server clones and builds every object it serves).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serve the windlass test API server (a test double of the Kubernetes API server).
#[derive(Parser)]
#[command(name = "windlass-test-apiserver", version)]
struct Arguments {
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig whose current context points at the server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Name of the kubeconfig context.
    #[arg(long, default_value = "windlass-test")]
    context: String,
    /// Milliseconds before a new CRD becomes Established.
    #[arg(long, default_value_t = 0)]
    crd_established_delay_ms: u64,
    /// Empty and remove Terminating namespaces.
    #[arg(long)]
    namespace_controller: bool,
    /// Delete dependents of deleted owners.
    #[arg(long)]
    garbage_collector: bool,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let options = Options {
        listen: arguments.listen,
        crd_established_delay: Duration::from_millis(arguments.crd_established_delay_ms),
        namespace_controller: arguments.namespace_controller,
        garbage_collector: arguments.garbage_collector,
        ..Options::default()
    };
    let server = match TestApiServer::start(options) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    if let Err(error) = std::fs::write(
        &arguments.kubeconfig,
        server.kubeconfig_yaml(&arguments.context),
    ) {
        eprintln!(
            "error: cannot write the kubeconfig {}: {error}",
            arguments.kubeconfig.display()
        );
        return ExitCode::from(1);
    }
    println!("listening on {}", server.url());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the signal handler: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match terminate.as_mut() {
                    Some(signal) => { signal.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    });
    drop(server);
    ExitCode::SUCCESS
}
