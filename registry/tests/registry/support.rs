//! The test harness: real CNCF distribution registries (`docker-registry serve`) started on
//! 127.0.0.1 with a free port and killed on drop, checks that the tools the tests drive are
//! installed, and small helpers to build probe targets and probers.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use windlass_registry::{ProbeConfig, ProbeResult, ProbeTarget, Prober, RegistrySettings};

/// Fails the test with a message saying how to install `tool` when it is not on `PATH`.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|directory| directory.join(tool))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed: run `apt-get install -y {package}` (scripts/test.sh does this)"
        )
    })
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// How a test registry authenticates.
pub enum RegistryAuth {
    /// No authentication: anyone may pull and push.
    Open,
    /// `auth.htpasswd` with one user (bcrypt, made with `htpasswd -B`).
    Htpasswd { username: String, password: String },
    /// `auth.token`: bearer tokens from `realm`, signed by the key of `root_certificate`.
    Token {
        realm: String,
        service: String,
        issuer: String,
        root_certificate: PathBuf,
    },
}

/// TLS for a test registry: a certificate and key (PEM files).
pub struct RegistryTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// A running `docker-registry serve`, killed when dropped.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    pub directory: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts an open plain-HTTP registry.
    pub async fn open() -> TestRegistry {
        TestRegistry::start(RegistryAuth::Open, None).await
    }

    /// Starts a registry and waits until its `/v2/` answers.
    pub async fn start(auth: RegistryAuth, tls: Option<RegistryTls>) -> TestRegistry {
        let binary = require_tool("docker-registry", "docker-registry");
        let directory = tempfile::tempdir().expect("temporary directory");
        let auth_section = match &auth {
            RegistryAuth::Open => String::new(),
            RegistryAuth::Htpasswd { username, password } => {
                require_tool("htpasswd", "apache2-utils");
                let output = Command::new("htpasswd")
                    .args(["-Bbn", username, password])
                    .output()
                    .expect("run htpasswd");
                assert!(output.status.success(), "htpasswd failed: {output:?}");
                let file = directory.path().join("htpasswd");
                std::fs::write(&file, &output.stdout).expect("write htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: windlass-test\n    path: {}\n",
                    file.display()
                )
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                root_certificate,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                root_certificate.display()
            ),
        };
        let tls_section = match &tls {
            None => String::new(),
            Some(tls) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.certificate.display(),
                tls.key.display()
            ),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        // The port is picked before the registry binds it; another process may win the race,
        // so a registry that exits at once is started again on another port.
        for _ in 0..5 {
            let port = free_port();
            let config = directory.path().join("config.yml");
            let storage = directory.path().join("storage");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: windlass-test-secret\n{tls_section}{auth_section}",
                    storage.display()
                ),
            )
            .expect("write registry config");
            let log = std::fs::File::create(directory.path().join("registry.log"))
                .expect("create registry log");
            let mut child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let client = reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(true)
                .timeout(Duration::from_secs(2))
                .build()
                .expect("client");
            let url = format!("{scheme}://127.0.0.1:{port}/v2/");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if client.get(&url).send().await.is_ok() {
                    return TestRegistry {
                        child,
                        port,
                        directory,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log =
            std::fs::read_to_string(directory.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start; its log:\n{log}");
    }

    /// `127.0.0.1:<port>`, the registry host as written in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A target as the stage would build it.
pub fn target(image: &str, registry: &str, repository: &str, reference: &str) -> ProbeTarget {
    ProbeTarget {
        image: image.to_owned(),
        registry: registry.to_owned(),
        repository: repository.to_owned(),
        reference: reference.to_owned(),
    }
}

/// Limits for tests: short deadline and retry waits, so failures are quick.
pub fn quick_config() -> ProbeConfig {
    ProbeConfig {
        request_deadline: Duration::from_secs(5),
        max_retry_after: Duration::from_millis(500),
        ..ProbeConfig::default()
    }
}

/// Writes `yaml` to `registries.yaml` in `directory` and loads it as the prober would.
pub fn write_settings(directory: &Path, yaml: &str) -> RegistrySettings {
    let path = directory.join("registries.yaml");
    let mut file = std::fs::File::create(&path).expect("create settings file");
    file.write_all(yaml.as_bytes())
        .expect("write settings file");
    RegistrySettings::load(&path).expect("load settings")
}

/// Settings that route `host` to plain HTTP at the same address, as a user would write for a
/// loopback registry without TLS.
pub fn plain_http(hosts: &[&str]) -> (tempfile::TempDir, RegistrySettings) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut yaml = String::from("registries:\n");
    for host in hosts {
        yaml.push_str(&format!("  \"{host}\":\n    endpoint: http://{host}\n"));
    }
    let settings = write_settings(directory.path(), &yaml);
    (directory, settings)
}

/// Probes `targets` with a fresh prober and returns the results and the requests made.
pub async fn probe(
    settings: RegistrySettings,
    config: ProbeConfig,
    targets: Vec<ProbeTarget>,
) -> (Vec<ProbeResult>, u64) {
    let prober = Prober::new(settings, config).expect("build prober");
    let results = prober.probe_all(targets, |_, _| {}).await;
    (results, prober.requests_made())
}
