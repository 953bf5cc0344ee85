//! Benchmark for issue 11: the latency of an authenticated pull (`skopeo inspect`, manifest and
//! config blob) through `windlass proxy serve` while 20,000 connections that never send a byte are
//! held open against it, compared with the same pull on a quiet proxy.
//!
//! The flood comes from two child processes (this executable run again with
//! `IDLE_FLOOD_ADDRESS` set), 10,000 sockets each, because one process may not hold 20,000
//! descriptors. Each child keeps its count up for the whole run: a connection the proxy closes is
//! opened again at once, so the proxy sits at its connection cap throughout. The proxy runs with
//! its default limits (`max_connections` = min(4096, open-file limit / 2), 30 s header timeout).
//!
//! Run with `cargo bench --bench idle_connection_flood` (`--profile dev` skips the release build).
//! Needs `docker-registry`, `htpasswd` and `skopeo` (scripts/test.sh installs them) and an
//! open-file limit of at least 10,100 (`ulimit -n`). `IDLE_FLOOD_CONNECTIONS` changes the total.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use windlass_testkit::{TestRegistry, free_port, require_tool};

const LICENSE_ID: &str = "bench-idle-flood-license-01";

/// Flooding processes; each holds its share of the connections.
const FLOODERS: usize = 2;

/// Pulls measured in each phase.
const SAMPLES: usize = 5;

fn main() {
    if let Ok(address) = std::env::var("IDLE_FLOOD_ADDRESS") {
        let count = std::env::var("IDLE_FLOOD_COUNT")
            .ok()
            .and_then(|count| count.parse().ok())
            .unwrap_or(10_000);
        flood(address.parse().expect("IDLE_FLOOD_ADDRESS"), count);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

/// The child's work: hold `count` silent connections to `address` open, reopening any the proxy
/// closes, until stdin closes. Prints `ready <n>` once all are open and `reopened <n>` as it goes.
fn flood(address: SocketAddr, count: usize) {
    let connect = || {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    };
    let mut streams: Vec<Option<TcpStream>> = (0..count).map(|_| connect()).collect();
    let open = streams.iter().filter(|stream| stream.is_some()).count();
    println!("ready {open}");
    std::io::stdout().flush().expect("stdout");
    // The parent closes our stdin to stop us.
    let (stop_sender, stop) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = stop_sender.send(());
    });
    let mut reopened = 0usize;
    while stop.recv_timeout(Duration::from_millis(200)).is_err() {
        for slot in &mut streams {
            let closed = match slot {
                None => true,
                Some(stream) => {
                    let mut byte = [0u8; 1];
                    !matches!(stream.read(&mut byte), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
                }
            };
            if closed {
                *slot = connect();
                reopened += 1;
            }
        }
        println!("reopened {reopened}");
    }
}

fn inspect(image: &str) -> Duration {
    let started = Instant::now();
    let output = Command::new(require_tool("skopeo", "skopeo"))
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(format!("LICENSE_ID:{LICENSE_ID}"))
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo inspect {image} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "median {:.0} ms, max {:.0} ms ({} pulls)",
        samples[samples.len() / 2].as_secs_f64() * 1000.0,
        samples[samples.len() - 1].as_secs_f64() * 1000.0,
        samples.len()
    )
}

/// Kills a child process when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run() {
    let total: usize = std::env::var("IDLE_FLOOD_CONNECTIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000);
    let registry = TestRegistry::htpasswd().await;
    registry.push_image("team/app:1", "idle flood bench layer");
    let credentials = registry.credentials().expect("htpasswd credentials");
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(work.path().join("reader.password"), &credentials.password).unwrap();
    let config = work.path().join("proxy.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nplain_http: true\nstate: ./proxy-state\nupstreams:\n  vendor.example:\n    endpoint: {}\n    username: {}\n    password_file: ./reader.password\n    apps: [bench-app]\n",
            registry.endpoint(),
            credentials.username
        ),
    )
    .unwrap();
    let license = work.path().join("license.yaml");
    std::fs::write(
        &license,
        format!("apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: bench-app\n  licenseID: {LICENSE_ID}\n"),
    )
    .unwrap();
    let windlass = env!("CARGO_BIN_EXE_windlass");
    let added = Command::new(windlass)
        .args(["proxy", "license", "add", "--config"])
        .arg(&config)
        .arg(&license)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut proxy = Killed(
        Command::new(windlass)
            .args(["proxy", "serve", "--config"])
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = proxy.0.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("the proxy starts").unwrap();
        if line.contains("listening on") {
            break;
        }
    }
    let image = format!("127.0.0.1:{port}/proxy/bench-app/vendor.example/team/app:1");
    let mut quiet: Vec<Duration> = (0..SAMPLES).map(|_| inspect(&image)).collect();

    let started = Instant::now();
    let mut flooders = Vec::new();
    for _ in 0..FLOODERS {
        let mut child = Command::new(std::env::current_exe().expect("this executable"))
            .env("IDLE_FLOOD_ADDRESS", format!("127.0.0.1:{port}"))
            .env("IDLE_FLOOD_COUNT", (total / FLOODERS).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a flooding process");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        flooders.push((Killed(child), stdout.lines()));
    }
    let mut opened = 0;
    for (_, lines) in &mut flooders {
        let line = lines.next().expect("the flooder reports").expect("line");
        opened += line
            .strip_prefix("ready ")
            .and_then(|count| count.parse::<usize>().ok())
            .expect("ready <n>");
    }
    println!(
        "flood: {opened} idle connections opened in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut flooded: Vec<Duration> = (0..SAMPLES).map(|_| inspect(&image)).collect();
    let mut reopened = 0;
    for (mut child, mut lines) in flooders {
        drop(child.0.stdin.take());
        let _ = child.0.wait();
        reopened += lines
            .by_ref()
            .map_while(Result::ok)
            .filter_map(|line| {
                line.strip_prefix("reopened ")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .last()
            .unwrap_or(0);
    }
    println!(
        "authenticated pull, quiet proxy:          {}",
        summary(&mut quiet)
    );
    println!(
        "authenticated pull, {total} idle connections: {}",
        summary(&mut flooded)
    );
    println!("connections the proxy closed and the flood reopened during the pulls: {reopened}");
}
