//! Real CNCF distribution registries (`docker-registry serve`) started on 127.0.0.1 with a free
//! port, open or with htpasswd or token authentication and optionally TLS, waited for until
//! `/v2/` answers, and killed on drop.

use std::fmt;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::output_within;
use crate::token_server::{TOKEN_ADMIN_PASSWORD, TOKEN_ADMIN_USERNAME, TokenServer};
use crate::tools::require_tool;

/// The user of [`TestRegistry::htpasswd`].
pub const HTPASSWD_USERNAME: &str = "reader";
/// The password of [`HTPASSWD_USERNAME`].
pub const HTPASSWD_PASSWORD: &str = "reader-password";

/// How long a registry may take to answer `/v2/` after it was started.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long `htpasswd` may take to hash a password.
const HTPASSWD_DEADLINE: Duration = Duration::from_secs(30);

/// A port nothing listens on right now (another process may take it before it is used).
///
/// # Panics
///
/// When 127.0.0.1 has no free port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
}

/// A username and password, for pushing to a registry or for a settings file. `Debug` does not
/// show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials of `username` with `password`.
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// `username:password`, as `skopeo --dest-creds` takes them.
    pub fn user_colon_password(&self) -> String {
        format!("{}:{}", self.username, self.password)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How a test registry authenticates.
#[derive(Clone, Debug)]
pub enum RegistryAuth {
    /// No authentication: anyone may pull and push.
    Open,
    /// `auth.htpasswd` with one user (bcrypt, made with `htpasswd -B`); the challenge's realm is
    /// `windlass-test`.
    Htpasswd {
        /// The only user.
        username: String,
        /// Its password.
        password: String,
    },
    /// `auth.token`: bearer tokens from `realm`, signed by the key of `root_certificate`; see
    /// [`TokenServer::registry_auth`].
    Token {
        /// The token endpoint the registry's challenge names.
        realm: String,
        /// The `service` the registry's challenge names and tokens must be issued for.
        service: String,
        /// The issuer tokens must name.
        issuer: String,
        /// The certificate (PEM) whose key signs tokens, the registry's `rootcertbundle`.
        root_certificate: PathBuf,
    },
}

/// TLS for a test registry: a certificate and its key (PEM files), e.g. from
/// [`crate::certs::server_certificates`].
#[derive(Clone, Debug)]
pub struct RegistryTls {
    /// The server certificate.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// A running `docker-registry serve` on 127.0.0.1, killed when dropped.
pub struct TestRegistry {
    child: Child,
    port: u16,
    tls: bool,
    credentials: Option<Credentials>,
    /// The registry's working directory: `config.yml`, `registry.log`, and filesystem storage
    /// under `storage/` (see [`TestRegistry::storage_directory`]). Removed when dropped.
    pub directory: tempfile::TempDir,
}

impl fmt::Debug for TestRegistry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TestRegistry")
            .field("endpoint", &self.endpoint())
            .field("credentials", &self.credentials)
            .field("directory", &self.directory.path())
            .finish_non_exhaustive()
    }
}

impl TestRegistry {
    /// Starts an open plain-HTTP registry: anyone may pull and push.
    pub async fn open() -> TestRegistry {
        TestRegistry::start(RegistryAuth::Open, None).await
    }

    /// Starts a plain-HTTP registry with htpasswd authentication and one user,
    /// [`HTPASSWD_USERNAME`] with [`HTPASSWD_PASSWORD`] (also [`TestRegistry::credentials`]).
    pub async fn htpasswd() -> TestRegistry {
        TestRegistry::start(
            RegistryAuth::Htpasswd {
                username: HTPASSWD_USERNAME.to_owned(),
                password: HTPASSWD_PASSWORD.to_owned(),
            },
            None,
        )
        .await
    }

    /// Starts a plain-HTTP registry with token authentication trusting `tokens`, which grants
    /// anonymous pulls of `public/*` and everything to its admin ([`TestRegistry::credentials`]).
    pub async fn token(tokens: &TokenServer) -> TestRegistry {
        TestRegistry::start(tokens.registry_auth(), None).await
    }

    /// Starts a registry with `auth`, over TLS when `tls` is given, and waits until its `/v2/`
    /// answers (20 s at most per attempt; a registry that exits at once, e.g. because another
    /// process took its port, is started again on another port, five attempts in all).
    ///
    /// # Panics
    ///
    /// When `docker-registry` (or, for htpasswd, `htpasswd`) is not installed, or the registry
    /// does not start; the message includes the registry's log.
    pub async fn start(auth: RegistryAuth, tls: Option<RegistryTls>) -> TestRegistry {
        let binary = require_tool("docker-registry", "docker-registry");
        let directory = tempfile::tempdir().expect("temporary directory");
        let (auth_section, credentials) = match &auth {
            RegistryAuth::Open => (String::new(), None),
            RegistryAuth::Htpasswd { username, password } => {
                let htpasswd = require_tool("htpasswd", "apache2-utils");
                let output = output_within(
                    Command::new(htpasswd).args(["-Bbn", username, password]),
                    HTPASSWD_DEADLINE,
                    "htpasswd",
                );
                assert!(output.status.success(), "htpasswd failed: {output:?}");
                let file = directory.path().join("htpasswd");
                std::fs::write(&file, &output.stdout).expect("write htpasswd file");
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: windlass-test\n    path: {}\n",
                        file.display()
                    ),
                    Some(Credentials::new(username, password)),
                )
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                root_certificate,
            } => (
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    root_certificate.display()
                ),
                Some(Credentials::new(TOKEN_ADMIN_USERNAME, TOKEN_ADMIN_PASSWORD)),
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
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(2))
            .build()
            .expect("HTTP client");
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
            let url = format!("{scheme}://127.0.0.1:{port}/v2/");
            let started = Instant::now();
            while started.elapsed() < START_DEADLINE {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                // docker-registry answers /v2/ (200, or 401 with auth) with this header; any
                // other answer is another server that took the port first.
                if client.get(&url).send().await.is_ok_and(|answer| {
                    answer
                        .headers()
                        .contains_key("docker-distribution-api-version")
                }) {
                    return TestRegistry {
                        child,
                        port,
                        tls: tls.is_some(),
                        credentials,
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

    /// The port the registry listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, the registry host as written in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>` (`https://` with TLS), what a settings file's `endpoint` names.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The credentials that may push and pull everything: the htpasswd user, or the token
    /// server's admin; `None` for an open registry.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The registry's filesystem storage (`storage/` under [`TestRegistry::directory`]);
    /// repositories live under `docker/registry/v2/repositories/`.
    pub fn storage_directory(&self) -> PathBuf {
        self.directory.path().join("storage")
    }

    /// The registry's log so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("registry.log")).unwrap_or_default()
    }

    /// Builds a one-file image whose file holds `content` and pushes it to `reference`
    /// (`repository:tag`, e.g. `team/app:v1`) with `skopeo copy`, using
    /// [`TestRegistry::credentials`]. Returns the manifest digest (`sha256:<hex>`). Different
    /// contents give different digests; the same content gives the same digest.
    ///
    /// # Panics
    ///
    /// When `reference` has no tag, `skopeo` is not installed, or the push fails.
    pub fn push_image(&self, reference: &str, content: &str) -> String {
        let (repository, tag) = reference
            .rsplit_once(':')
            .filter(|(repository, tag)| !repository.is_empty() && !tag.contains('/'))
            .unwrap_or_else(|| panic!("`{reference}` is not `repository:tag`"));
        let credentials = self
            .credentials
            .as_ref()
            .map(Credentials::user_colon_password);
        crate::oci::build_and_push(
            &self.scratch_directory(),
            content,
            &format!("{}/{repository}:{tag}", self.host()),
            credentials.as_deref(),
        )
    }

    fn scratch_directory(&self) -> PathBuf {
        let scratch = self.directory.path().join("images");
        std::fs::create_dir_all(&scratch).expect("create image scratch directory");
        scratch
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
