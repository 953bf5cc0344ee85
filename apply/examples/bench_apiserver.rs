//! The test API server for `benches/apply_vs_kubectl.sh`: a FAKE Kubernetes API server (the
//! workspace's test double, `windlass-test-apiserver`; no real API server can run on these
//! machines) that the benchmark drives windlass and the real kubectl against, and whose request
//! counters it reads. Usage: `bench_apiserver KUBECONFIG_OUT`; it prints `ready`, then answers
//! each line on standard input: `counts` prints the counts as one JSON line, `reset` clears them
//! and prints `ok`. It stops at the end of standard input.

use std::io::{BufRead, Write};

use windlass_test_apiserver::{Options, TestApiServer};

/// mimalloc instead of the system allocator: with glibc's, a LIST of 1,000 Deployments spent
/// a third of its time in `malloc` and `free` (the server clones and builds every object it serves).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kubeconfig = std::env::args()
        .nth(1)
        .ok_or("usage: bench_apiserver KUBECONFIG_OUT")?;
    let server = TestApiServer::start(Options::default())?;
    server.write_kubeconfig(std::path::Path::new(&kubeconfig))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "counts" => {
                let counts = server.counts();
                let by_verb: serde_json::Map<String, serde_json::Value> = counts
                    .by_verb
                    .iter()
                    .map(|(verb, count)| (verb.clone(), (*count).into()))
                    .collect();
                writeln!(
                    stdout,
                    "{}",
                    serde_json::json!({
                        "total": counts.total,
                        "writes": counts.writes,
                        "dry_runs": counts.dry_runs,
                        "by_verb": by_verb,
                    })
                )?;
            }
            "reset" => {
                server.reset_requests();
                writeln!(stdout, "ok")?;
            }
            other => writeln!(stdout, "unknown command {other:?}")?,
        }
        stdout.flush()?;
    }
    Ok(())
}
