//! The harness shared by the proxy tests: an htpasswd upstream holding `team/app:v1`, a proxy
//! in front of it (the upstream bound to the app `my-app`), KOTS License files, and `skopeo` run with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use windlass_proxy::{ProxyConfig, ProxyServer, ProxyStore, PullRecord, UpstreamLimits};
use windlass_testkit::{
    HTPASSWD_PASSWORD, HTPASSWD_USERNAME, RegistryAuth, TestRegistry, TokenServer,
};

/// The wrong upstream password of [`Options::wrong_upstream_password`].
pub const WRONG_UPSTREAM_PASSWORD: &str = "wrong-upstream-password-7f3a";

/// The license ID of the tests' main license.
pub const LICENSE_ID: &str = "abc123def456ghi789";

/// The app slug of the tests' main license.
pub const APP: &str = "my-app";

/// A running upstream and proxy.
pub struct Harness {
    /// The upstream registry (`vendor.example`).
    pub registry: TestRegistry,
    /// The manifest digest of `team/app:v1` in the upstream.
    pub digest: String,
    /// The proxy's address.
    pub address: SocketAddr,
    /// The proxy's store (the same one the CLI would open).
    pub store: Arc<ProxyStore>,
    /// Scratch space: configuration, licenses, copies.
    pub directory: tempfile::TempDir,
    /// The CA that signed the proxy's certificate, when it serves TLS.
    pub ca_certificate: Option<PathBuf>,
    server: tokio::task::JoinHandle<()>,
    tokens: Option<TokenServer>,
}

/// How the harness's upstream and proxy are set up.
#[derive(Default, Clone)]
pub struct Options {
    /// The upstream uses token auth (the testkit's token server) instead of htpasswd.
    pub token_auth: bool,
    /// The proxy serves TLS with a certificate for 127.0.0.1 instead of plain HTTP.
    pub tls: bool,
    /// The upstream serves TLS with a certificate of a test CA, given to the proxy as `ca_file`.
    pub upstream_tls: bool,
    /// The proxy is configured with a wrong password for the upstream.
    pub wrong_upstream_password: bool,
    /// `client_header_timeout_seconds` for the proxy, when not the default.
    pub client_header_timeout_seconds: Option<u64>,
    /// The upstream's `apps:` / `repositories:` lines (indented under it), instead of
    /// [`DEFAULT_BINDING`].
    pub upstream_binding: Option<&'static str>,
    /// The keys of a `limits:` mapping (each line indented by two spaces), when not the defaults.
    pub limits: Option<String>,
    /// More entries under `upstreams:` (each indented by two spaces).
    pub more_upstreams: Option<String>,
    /// More upstream names for the harness's own registry, each with its credentials and
    /// binding (e.g. `docker.io`, or a host alias such as `vendor-5000`).
    pub same_registry_as: Vec<&'static str>,
    /// The proxy's deadline for an upstream's answer, when not the default 30 s.
    pub upstream_request_timeout: Option<std::time::Duration>,
}

/// The upstream's binding unless [`Options::upstream_binding`] says otherwise: the main license's
/// app may pull every repository.
pub const DEFAULT_BINDING: &str = "    apps: [my-app]\n";

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Harness {
    /// Starts an htpasswd upstream with `team/app:v1` and a proxy in front of it, with the main
    /// license added.
    pub async fn start() -> Harness {
        Harness::start_with(Options::default()).await
    }

    /// Starts an upstream and a proxy set up as `options` say, with the main license added.
    pub async fn start_with(options: Options) -> Harness {
        let tokens = if options.token_auth {
            Some(TokenServer::start().await)
        } else {
            None
        };
        let directory = tempfile::tempdir().expect("tempdir");
        let upstream_certificates = options.upstream_tls.then(|| {
            let certificates_directory = directory.path().join("upstream-ca");
            std::fs::create_dir_all(&certificates_directory).expect("create upstream-ca");
            windlass_testkit::certs::server_certificates(&certificates_directory)
        });
        let registry = match (&tokens, &upstream_certificates) {
            (Some(tokens), _) => TestRegistry::token(tokens).await,
            (None, Some(certificates)) => {
                TestRegistry::start(
                    RegistryAuth::Htpasswd {
                        username: HTPASSWD_USERNAME.into(),
                        password: HTPASSWD_PASSWORD.into(),
                    },
                    Some(certificates.registry_tls()),
                )
                .await
            }
            (None, None) => TestRegistry::htpasswd().await,
        };
        let digest = registry.push_image("team/app:v1", "served through the proxy");
        let credentials = registry
            .credentials()
            .expect("upstream credentials")
            .clone();
        let password = if options.wrong_upstream_password {
            WRONG_UPSTREAM_PASSWORD.to_string()
        } else {
            credentials.password.clone()
        };
        std::fs::write(
            directory.path().join("reader.password"),
            format!("{password}\n"),
        )
        .expect("write password");
        let (transport, ca_certificate) = if options.tls {
            let certificates = windlass_testkit::certs::server_certificates(directory.path());
            (
                format!(
                    "tls:\n  cert_file: {}\n  key_file: {}\n",
                    certificates.server_certificate.display(),
                    certificates.server_key.display()
                ),
                Some(certificates.ca_certificate),
            )
        } else {
            ("plain_http: true\n".to_string(), None)
        };
        let binding = options.upstream_binding.unwrap_or(DEFAULT_BINDING);
        let same_registry: String = options
            .same_registry_as
            .iter()
            .map(|name| {
                format!(
                    "  {name}:\n    endpoint: {}\n    username: {}\n    password_file: ./reader.password\n{binding}",
                    registry.endpoint(),
                    credentials.username
                )
            })
            .collect();
        let config_path = directory.path().join("proxy.yaml");
        std::fs::write(
            &config_path,
            format!(
                "listen: 127.0.0.1:0\n{transport}{}{}state: ./proxy-state\nupstreams:\n  vendor.example:\n    endpoint: {}\n    username: {}\n    password_file: ./reader.password\n{}{binding}{}{same_registry}",
                options
                    .limits
                    .as_ref()
                    .map_or(String::new(), |limits| format!("limits:\n{limits}")),
                options
                    .client_header_timeout_seconds
                    .map_or(String::new(), |seconds| format!(
                        "client_header_timeout_seconds: {seconds}\n"
                    )),
                registry.endpoint(),
                credentials.username,
                upstream_certificates.as_ref().map_or(String::new(), |certificates| format!(
                    "    ca_file: {}\n",
                    certificates.ca_certificate.display()
                )),
                options.more_upstreams.as_deref().unwrap_or_default(),
            ),
        )
        .expect("write config");
        let config = ProxyConfig::load(&config_path).expect("load config");
        let store = Arc::new(ProxyStore::open(&config.state).expect("open store"));
        let mut limits = UpstreamLimits::default();
        if let Some(timeout) = options.upstream_request_timeout {
            limits.request_timeout = timeout;
        }
        let server = ProxyServer::bind_with_store(&config, store.clone(), limits)
            .await
            .expect("bind proxy");
        let address = server.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            server.run().await.expect("proxy serves");
        });
        let harness = Harness {
            registry,
            digest,
            address,
            store,
            directory,
            ca_certificate,
            server,
            tokens,
        };
        let license = harness.write_license("license.yaml", APP, LICENSE_ID, None);
        harness.store.add_license(&license).expect("add license");
        harness
    }

    /// The upstream's token server ([`Options::token_auth`]).
    pub fn tokens(&self) -> &TokenServer {
        self.tokens
            .as_ref()
            .expect("a harness started with token_auth")
    }

    /// Writes a KOTS License file and returns its path.
    pub fn write_license(
        &self,
        name: &str,
        app: &str,
        id: &str,
        expires_at: Option<&str>,
    ) -> PathBuf {
        let path = self.directory.path().join(name);
        std::fs::write(&path, license_yaml(app, id, expires_at)).expect("write license");
        path
    }

    /// `docker://<proxy>/proxy/<app>/vendor.example/<repository>:<tag>`.
    pub fn image(&self, app: &str, repository_and_tag: &str) -> String {
        format!(
            "docker://{}/proxy/{app}/vendor.example/{repository_and_tag}",
            self.address
        )
    }

    /// The pull log.
    pub fn pulls(&self) -> Vec<PullRecord> {
        self.store.pulls().expect("read pull log")
    }

    /// The total size of the state directory's files, in bytes.
    pub fn state_size(&self) -> u64 {
        std::fs::read_dir(self.directory.path().join("proxy-state"))
            .expect("state dir")
            .map(|entry| entry.expect("entry").metadata().expect("metadata").len())
            .sum()
    }

    /// `http://<proxy>/v2/proxy/<app>/<upstream>/<repository>/manifests/<reference>`.
    pub fn manifest_url(&self, upstream: &str, repository: &str, reference: &str) -> String {
        format!(
            "http://{}/v2/proxy/{APP}/{upstream}/{repository}/manifests/{reference}",
            self.address
        )
    }

    /// The whole state directory's bytes, concatenated, for "never written" checks.
    pub fn state_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in
            std::fs::read_dir(self.directory.path().join("proxy-state")).expect("state dir")
        {
            let path = entry.expect("entry").path();
            if path.is_file() {
                bytes.extend(std::fs::read(&path).expect("read state file"));
            }
        }
        bytes
    }
}

/// A KOTS License document.
pub fn license_yaml(app: &str, id: &str, expires_at: Option<&str>) -> String {
    let expires = expires_at.unwrap_or("");
    format!(
        "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: {app}\nspec:\n  appSlug: {app}\n  licenseID: {id}\n  licenseSequence: 1\n  entitlements:\n    expires_at:\n      title: Expiration\n      value: \"{expires}\"\n      valueType: String\n"
    )
}

/// Runs `skopeo` with `args` (plus `--insecure-policy`) under a one-minute deadline, off the async
/// runtime.
pub async fn skopeo(args: Vec<String>) -> Output {
    let skopeo = windlass_testkit::require_tool("skopeo", "skopeo");
    tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("60")
            .arg(skopeo)
            .arg("--insecure-policy")
            .args(&args)
            .output()
            .expect("run skopeo")
    })
    .await
    .expect("skopeo task")
}

/// `skopeo inspect` of `image` with `creds`.
pub async fn inspect(image: &str, creds: &str) -> Output {
    skopeo(vec![
        "inspect".into(),
        "--tls-verify=false".into(),
        "--creds".into(),
        creds.into(),
        image.into(),
    ])
    .await
}

/// `skopeo copy` of `image` with `creds` into `dir:<destination>`.
pub async fn copy(image: &str, creds: &str, destination: &Path) -> Output {
    skopeo(vec![
        "copy".into(),
        "--quiet".into(),
        "--src-tls-verify=false".into(),
        "--src-creds".into(),
        creds.into(),
        image.into(),
        format!("dir:{}", destination.display()),
    ])
    .await
}

/// Inspects `image` through the proxy with the test license and checks that the upstream's
/// manifest digest comes back.
pub async fn assert_inspect_gets(image: &str, digest: &str) {
    let output = inspect(image, &creds(LICENSE_ID)).await;
    assert!(
        output.status.success(),
        "inspect failed: {}",
        stderr(&output)
    );
    let inspected: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("inspect JSON");
    assert_eq!(inspected["Digest"], digest);
}

/// Copies `image` through the proxy with the test license into `dir:<destination>` and checks that
/// the copied manifest has the upstream's digest.
pub async fn assert_copy_gets(image: &str, destination: &Path, digest: &str) {
    let output = copy(image, &creds(LICENSE_ID), destination).await;
    assert!(output.status.success(), "copy failed: {}", stderr(&output));
    let manifest = std::fs::read(destination.join("manifest.json")).expect("copied manifest");
    assert_eq!(windlass_testkit::oci::sha256_digest(&manifest), digest);
}

/// `LICENSE_ID:<id>`.
pub fn creds(id: &str) -> String {
    format!("LICENSE_ID:{id}")
}

/// stderr of a skopeo run.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
