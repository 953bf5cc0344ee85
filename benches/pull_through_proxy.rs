//! Benchmark for issue 5: pull a ~200 MB image with `skopeo copy` through `windlass proxy serve`
//! and directly from the registry (Debian's `docker-registry` with htpasswd), in the same run, and
//! report both throughputs, their ratio, and the proxy process's peak memory (VmHWM) — which must
//! not grow with blob size, since bodies are streamed.
//!
//! Run with `cargo bench --bench pull_through_proxy`. Needs `docker-registry`, `htpasswd` and
//! `skopeo` (scripts/test.sh installs them). Set `PROXY_BENCH_MB` to change the image size.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use windlass_testkit::{TestRegistry, free_port, require_tool};

const LICENSE_ID: &str = "bench-proxy-license-0001";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

/// Printable pseudo-random text that gzip cannot shrink much (about 75%).
fn incompressible(megabytes: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut text = String::with_capacity(megabytes * 1024 * 1024);
    for _ in 0..megabytes * 1024 * 1024 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push(alphabet[(state % 64) as usize] as char);
    }
    text
}

fn copy(image: &str, credentials: &str, destination: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(require_tool("skopeo", "skopeo"))
        .args(["copy", "--src-tls-verify=false", "--src-creds", credentials])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", destination.display()))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo copy {image} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn run() {
    let megabytes: usize = std::env::var("PROXY_BENCH_MB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(270);
    let registry = TestRegistry::htpasswd().await;
    eprintln!("building and pushing a {megabytes} MB layer...");
    let content = incompressible(megabytes);
    registry.push_image("team/big:1", &content);
    drop(content);
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
    let mut proxy = Command::new(windlass)
        .args(["proxy", "serve", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = proxy.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("the proxy starts").unwrap();
        if line.contains("listening on") {
            break;
        }
    }
    let idle_kib = peak_memory_kib(proxy.id());

    let direct_dir = work.path().join("direct");
    let direct = copy(
        &format!("{}/team/big:1", registry.host()),
        &credentials.user_colon_password(),
        &direct_dir,
    );
    let proxied_dir = work.path().join("proxied");
    let proxied = copy(
        &format!("127.0.0.1:{port}/proxy/bench-app/vendor.example/team/big:1"),
        &format!("LICENSE_ID:{LICENSE_ID}"),
        &proxied_dir,
    );
    let peak_kib = peak_memory_kib(proxy.id());
    let _ = proxy.kill();
    let _ = proxy.wait();

    let bytes = size_of(&proxied_dir);
    assert_eq!(
        bytes,
        size_of(&direct_dir),
        "both copies hold the same image"
    );
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let direct_rate = mib / direct.as_secs_f64();
    let proxied_rate = mib / proxied.as_secs_f64();
    println!("image size:                 {mib:.1} MiB");
    println!(
        "skopeo copy, direct:        {:.2} s  {direct_rate:.1} MiB/s",
        direct.as_secs_f64()
    );
    println!(
        "skopeo copy, through proxy: {:.2} s  {proxied_rate:.1} MiB/s",
        proxied.as_secs_f64()
    );
    println!(
        "proxy / direct throughput:  {:.0}%",
        100.0 * proxied_rate / direct_rate
    );
    println!(
        "proxy peak memory (VmHWM):  {:.1} MiB (idle after start: {:.1} MiB)",
        peak_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0
    );
}
