//! [`ProxyConfig`]: the proxy's YAML configuration file (listen address, plain HTTP or TLS, the
//! state directory, and the upstream registries with their read-only credentials). Relative paths
//! are resolved against the file's directory. Passwords are read from a file or an environment
//! variable (an inline `password:` is refused), held as [`SecretString`], and never appear in errors
//! or `Debug` output; a parse error names line, column and keys but quotes nothing from the file.
//! Every file is read through `windlass-files`: regular files only, with a size cap. Each upstream
//! names the apps whose licenses may pull through it (`apps:`, optionally narrowed by
//! `repositories:`); an upstream without `apps:` serves no app.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use windlass_state::SecretString;

use crate::access::UpstreamAccess;

/// Largest configuration file accepted.
const MAX_CONFIG_BYTES: u64 = windlass_files::MIB;

/// Largest `password_file`, `ca_file`, `tls.cert_file` or `tls.key_file` accepted.
pub const MAX_REFERENCED_BYTES: u64 = windlass_files::MIB;

/// A problem with the configuration file. Messages name the file and the key, never a password.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file (or a file it names) cannot be read: missing, not a regular file, too large.
    #[error("{path}: {key}: {problem}")]
    Read {
        /// The configuration file.
        path: String,
        /// The key that named the unreadable file (`file` for the configuration itself).
        key: String,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// The file is not YAML of the expected shape. The message holds the line, column and key
    /// path, never a value from the file.
    #[error("{0}")]
    Parse(windlass_files::YamlProblem),
    /// A key is missing or has an invalid value.
    #[error("{path}: {key}: {problem}")]
    Invalid {
        /// The configuration file.
        path: String,
        /// The key, e.g. `upstreams.vendor.example.endpoint`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// The proxy's configuration.
#[derive(Debug)]
pub struct ProxyConfig {
    /// Where the server listens.
    pub listen: SocketAddr,
    /// Whether plain HTTP is served (only when the file says `plain_http: true`).
    pub plain_http: bool,
    /// The certificate and key to serve TLS with, when not plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The proxy's state directory (license store, pull log, fingerprint key).
    pub state: PathBuf,
    /// How long a client may take to send a request's headers before the connection is closed
    /// (`client_header_timeout_seconds`, default 30).
    pub client_header_timeout: std::time::Duration,
    /// What floods may cost: connections, the pull log, upstream slots (the `limits:` mapping).
    pub limits: Limits,
    /// Upstream registries by the host written in image references.
    pub upstreams: BTreeMap<String, Upstream>,
}

/// The TLS certificate chain and private key files (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

/// One upstream registry.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its base URL, e.g. `http://127.0.0.1:5101` (an `http://` endpoint means plain HTTP).
    pub endpoint: reqwest::Url,
    /// Read-only credentials, if the upstream needs any.
    pub credentials: Option<UpstreamCredentials>,
    /// Extra CA certificates (PEM bundle, from `ca_file`) trusted for this upstream only.
    pub ca_pem: Option<Vec<u8>>,
    /// The apps whose licenses may pull through it (`apps:`), and which repositories
    /// (`repositories:`).
    pub access: UpstreamAccess,
    /// Requests to this upstream in flight at once (`max_concurrent_requests`, else
    /// `limits.upstream_max_concurrent_requests`).
    pub max_concurrent_requests: usize,
}

/// A username and password for an upstream. `Debug` redacts the password.
#[derive(Debug, Clone)]
pub struct UpstreamCredentials {
    /// The username.
    pub username: String,
    /// The password, from `password_file` or `password_env`.
    pub password: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    plain_http: Option<bool>,
    tls: Option<RawTls>,
    state: Option<String>,
    client_header_timeout_seconds: Option<u64>,
    limits: Option<RawLimits>,
    #[serde(default)]
    upstreams: BTreeMap<String, RawUpstream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    endpoint: Option<String>,
    username: Option<String>,
    password_file: Option<String>,
    password_env: Option<String>,
    /// Only to refuse it by name: passwords are never written in this file. The value is
    /// skipped unread.
    password: Option<serde::de::IgnoredAny>,
    ca_file: Option<String>,
    apps: Option<Vec<String>>,
    repositories: Option<Vec<String>>,
    max_concurrent_requests: Option<u64>,
}

impl ProxyConfig {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let shown = path.display().to_string();
        let text =
            windlass_files::read_regular_text(path, MAX_CONFIG_BYTES).map_err(|problem| {
                ConfigError::Read {
                    path: shown.clone(),
                    key: "file".into(),
                    problem,
                }
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        ProxyConfig::parse(&shown, &text, base)
    }

    /// Parses configuration `text` (named `shown` in errors), resolving relative paths against
    /// `base`.
    pub fn parse(shown: &str, text: &str, base: &Path) -> Result<ProxyConfig, ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: shown.to_string(),
            key: key.to_string(),
            problem,
        };
        // The file holds credentials or their names: the parser's message and snippet are
        // reduced to line, column, key path and kind.
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|error| {
            let at = error
                .location()
                .map(|location| (location.line(), location.column()));
            let message = error.without_snippet().to_string();
            ConfigError::Parse(windlass_files::yaml_problem(shown, text, &message, at))
        })?;
        let listen_text = raw
            .listen
            .ok_or_else(|| invalid("listen", "missing".into()))?;
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{listen_text}` is not an address like 127.0.0.1:5443"),
            )
        })?;
        let plain_http = raw.plain_http.unwrap_or(false);
        let tls = match raw.tls {
            None => None,
            Some(tls) => {
                let cert = tls
                    .cert_file
                    .ok_or_else(|| invalid("tls.cert_file", "missing".into()))?;
                let key = tls
                    .key_file
                    .ok_or_else(|| invalid("tls.key_file", "missing".into()))?;
                Some(TlsFiles {
                    cert_file: base.join(cert),
                    key_file: base.join(key),
                })
            }
        };
        if plain_http && tls.is_some() {
            return Err(invalid(
                "plain_http",
                "set either `plain_http: true` or `tls`, not both".into(),
            ));
        }
        if !plain_http && tls.is_none() {
            return Err(invalid(
                "tls",
                "missing: set `tls: {cert_file, key_file}`, or `plain_http: true` to serve plain HTTP"
                    .into(),
            ));
        }
        if let Some(tls) = &tls {
            for (key, file) in [
                ("tls.cert_file", &tls.cert_file),
                ("tls.key_file", &tls.key_file),
            ] {
                // Opened (not read) here to name a bad key early; `tls.rs` reads them.
                windlass_files::open_regular_file(file)
                    .map_err(|problem| invalid(key, format!("{}: {problem}", file.display())))?;
            }
        }
        let state = raw
            .state
            .ok_or_else(|| invalid("state", "missing".into()))?;
        let limits = Limits::from_raw(raw.limits, &invalid)?;
        let mut upstreams = BTreeMap::new();
        for (host, upstream) in raw.upstreams {
            let key = |field: &str| format!("upstreams.{host}.{field}");
            if !is_valid_host(&host) {
                return Err(invalid(
                    &format!("upstreams.{host}"),
                    "not a registry host (letters, digits, `.`, `-`, optional `:port`)".into(),
                ));
            }
            if host == crate::path::DOCKER_HUB_LEGACY {
                return Err(invalid(
                    &format!("upstreams.{host}"),
                    "Docker Hub is named docker.io here (images written index.docker.io/... are pulled through it)".into(),
                ));
            }
            let endpoint_text = upstream
                .endpoint
                .ok_or_else(|| invalid(&key("endpoint"), "missing".into()))?;
            let endpoint = reqwest::Url::parse(&endpoint_text)
                .ok()
                .filter(|url| {
                    matches!(url.scheme(), "http" | "https")
                        && url.host().is_some()
                        && url.username().is_empty()
                        && url.password().is_none()
                })
                .ok_or_else(|| {
                    invalid(
                        &key("endpoint"),
                        "not an http:// or https:// URL without credentials".into(),
                    )
                })?;
            if upstream.password.is_some() {
                return Err(invalid(
                    &key("password"),
                    "passwords are not written in this file: name a file holding it with password_file, or an environment variable with password_env".into(),
                ));
            }
            let password = match (upstream.password_file, upstream.password_env) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &key("password_file"),
                        "set either password_file or password_env, not both".into(),
                    ));
                }
                (Some(file), None) => {
                    let file = base.join(file);
                    let text = windlass_files::read_regular_text(&file, MAX_REFERENCED_BYTES)
                        .map_err(|problem| ConfigError::Read {
                            path: shown.to_string(),
                            key: key("password_file"),
                            problem,
                        })?;
                    Some(SecretString::new(text.trim_end_matches(['\r', '\n'])))
                }
                (None, Some(variable)) => {
                    let value = std::env::var(&variable).map_err(|_| {
                        invalid(
                            &key("password_env"),
                            format!("environment variable {variable} is not set"),
                        )
                    })?;
                    Some(SecretString::new(value))
                }
                (None, None) => None,
            };
            let credentials = match (upstream.username, password) {
                (Some(username), Some(password)) => {
                    Some(UpstreamCredentials { username, password })
                }
                (None, None) => None,
                (Some(_), None) => {
                    return Err(invalid(
                        &key("password_file"),
                        "a username needs password_file or password_env".into(),
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(&key("username"), "missing".into()));
                }
            };
            let ca_pem = match upstream.ca_file {
                None => None,
                Some(file) => {
                    let file = base.join(file);
                    let pem = windlass_files::read_regular_file(&file, MAX_REFERENCED_BYTES)
                        .map_err(|problem| ConfigError::Read {
                            path: shown.to_string(),
                            key: key("ca_file"),
                            problem,
                        })?;
                    if reqwest::Certificate::from_pem_bundle(&pem).is_err() {
                        return Err(invalid(
                            &key("ca_file"),
                            format!("{} is not a PEM certificate bundle", file.display()),
                        ));
                    }
                    Some(pem)
                }
            };
            let apps = upstream.apps.unwrap_or_default();
            crate::access::check_apps(&apps).map_err(|(index, problem)| {
                invalid(&key(&format!("apps[{index}]")), problem.into())
            })?;
            if let Some(repositories) = &upstream.repositories {
                crate::access::check_repositories(repositories).map_err(|(index, problem)| {
                    invalid(&key(&format!("repositories[{index}]")), problem.into())
                })?;
            }
            let max_concurrent_requests = match upstream.max_concurrent_requests {
                None => limits.upstream_max_concurrent_requests,
                Some(count) => in_range(
                    count,
                    1,
                    MAX_UPSTREAM_SLOTS,
                    &key("max_concurrent_requests"),
                    &invalid,
                )?,
            };
            upstreams.insert(
                host,
                Upstream {
                    endpoint,
                    credentials,
                    ca_pem,
                    access: UpstreamAccess {
                        apps,
                        repositories: upstream.repositories,
                    },
                    max_concurrent_requests,
                },
            );
        }
        let client_header_timeout = match raw.client_header_timeout_seconds {
            None => std::time::Duration::from_secs(30),
            Some(0) => {
                return Err(ConfigError::Invalid {
                    path: shown.to_string(),
                    key: "client_header_timeout_seconds".into(),
                    problem: "must be at least 1".into(),
                });
            }
            Some(seconds) => std::time::Duration::from_secs(seconds),
        };
        Ok(ProxyConfig {
            listen,
            plain_http,
            tls,
            state: base.join(state),
            client_header_timeout,
            limits,
            upstreams,
        })
    }
}

impl ProxyConfig {
    /// The upstreams no app may pull through (no `apps:`, or an empty list): the proxy warns about
    /// each when it starts.
    pub fn upstreams_serving_no_app(&self) -> Vec<&str> {
        self.upstreams
            .iter()
            .filter(|(_, upstream)| upstream.access.apps.is_empty())
            .map(|(host, _)| host.as_str())
            .collect()
    }
}

// ---- `limits:` — what a flood may cost (connections, pull log, upstream slots) ----

/// Largest `limits.max_connections`.
const MAX_CONNECTIONS: u64 = 1_000_000;

/// Largest per-upstream request cap.
const MAX_UPSTREAM_SLOTS: u64 = 10_000;

/// What floods may cost, from the `limits:` mapping. Every key is optional.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Client connections open at once (`max_connections`; default: 4096, or half the process's
    /// open-file limit when that is lower). At the cap the oldest connection without a request in
    /// flight is closed to make room; a new connection is refused only when every one is busy.
    pub max_connections: usize,
    /// How often the in-memory counts of refused and malformed requests are written to the pull
    /// log as aggregated records (`denied_log_interval_seconds`, default 10).
    pub denied_log_interval: std::time::Duration,
    /// The pull log keeps the newest records whose JSON totals at most this many bytes
    /// (`pull_log_max_mib`, default 64 MiB); older records are deleted as new ones are written.
    pub pull_log_max_bytes: u64,
    /// Default cap of requests in flight to one upstream (`upstream_max_concurrent_requests`,
    /// default 32), overridden by an upstream's `max_concurrent_requests`.
    pub upstream_max_concurrent_requests: usize,
    /// How long a request waits for a free slot of its upstream before it is answered 503
    /// (`upstream_slot_wait_ms`, default 2000).
    pub upstream_slot_wait: std::time::Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<u64>,
    denied_log_interval_seconds: Option<u64>,
    pull_log_max_mib: Option<u64>,
    upstream_max_concurrent_requests: Option<u64>,
    upstream_slot_wait_ms: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: default_max_connections(),
            denied_log_interval: std::time::Duration::from_secs(10),
            pull_log_max_bytes: 64 * 1024 * 1024,
            upstream_max_concurrent_requests: 32,
            upstream_slot_wait: std::time::Duration::from_millis(2000),
        }
    }
}

impl Limits {
    fn from_raw(
        raw: Option<RawLimits>,
        invalid: &impl Fn(&str, String) -> ConfigError,
    ) -> Result<Limits, ConfigError> {
        let mut limits = Limits::default();
        let Some(raw) = raw else {
            return Ok(limits);
        };
        if let Some(count) = raw.max_connections {
            limits.max_connections = in_range(
                count,
                16,
                MAX_CONNECTIONS,
                "limits.max_connections",
                invalid,
            )?;
        }
        if let Some(seconds) = raw.denied_log_interval_seconds {
            let seconds = in_range(
                seconds,
                1,
                3600,
                "limits.denied_log_interval_seconds",
                invalid,
            )?;
            limits.denied_log_interval = std::time::Duration::from_secs(seconds as u64);
        }
        if let Some(mib) = raw.pull_log_max_mib {
            let mib = in_range(mib, 1, 1024 * 1024, "limits.pull_log_max_mib", invalid)?;
            limits.pull_log_max_bytes = mib as u64 * 1024 * 1024;
        }
        if let Some(count) = raw.upstream_max_concurrent_requests {
            limits.upstream_max_concurrent_requests = in_range(
                count,
                1,
                MAX_UPSTREAM_SLOTS,
                "limits.upstream_max_concurrent_requests",
                invalid,
            )?;
        }
        if let Some(milliseconds) = raw.upstream_slot_wait_ms {
            let milliseconds = in_range(
                milliseconds,
                0,
                60_000,
                "limits.upstream_slot_wait_ms",
                invalid,
            )?;
            limits.upstream_slot_wait = std::time::Duration::from_millis(milliseconds as u64);
        }
        Ok(limits)
    }
}

/// `value` as a `usize` when within `low..=high`, else an error naming `key`.
fn in_range(
    value: u64,
    low: u64,
    high: u64,
    key: &str,
    invalid: &impl Fn(&str, String) -> ConfigError,
) -> Result<usize, ConfigError> {
    if value < low || value > high {
        return Err(invalid(
            key,
            format!("{value} is not between {low} and {high}"),
        ));
    }
    usize::try_from(value).map_err(|_| invalid(key, format!("{value} is too large")))
}

/// 4096, or half the process's soft open-file limit when that is lower, so connections can never
/// take the descriptors the store, upstream connections and accepting need.
pub(crate) fn default_max_connections() -> usize {
    let limit = open_file_limit().unwrap_or(1024);
    (limit / 2).clamp(16, 4096) as usize
}

/// The soft `Max open files` limit from `/proc/self/limits` (Linux), if readable.
pub(crate) fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        number => number.parse().ok(),
    }
}

/// Whether `host` looks like a registry host as written in image references.
pub(crate) fn is_valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && port.is_none_or(|port| {
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example_and_names_keys_in_errors() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("reader.password"), "s3cret\n").unwrap();
        let text = "listen: 127.0.0.1:5443\nplain_http: true\nstate: ./proxy-state\nupstreams:\n  vendor.example:\n    endpoint: http://127.0.0.1:5101\n    username: reader\n    password_file: ./reader.password\n";
        let config = ProxyConfig::parse("proxy.yaml", text, directory.path()).unwrap();
        let upstream = &config.upstreams["vendor.example"];
        let credentials = upstream.credentials.as_ref().unwrap();
        assert_eq!(credentials.password.expose(), "s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));

        let error = ProxyConfig::parse(
            "proxy.yaml",
            "listen: 127.0.0.1:1\nplain_http: true\nstate: s\nupstreams:\n  v.example:\n    username: u\n",
            directory.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("proxy.yaml") && error.contains("upstreams.v.example.endpoint"),
            "{error}"
        );

        let error = ProxyConfig::parse(
            "proxy.yaml",
            "listen: 127.0.0.1:1\nstate: s\n",
            directory.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("tls"), "{error}");
    }

    #[test]
    fn an_inline_password_is_refused_and_parse_errors_quote_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let head = "listen: 127.0.0.1:1\nplain_http: true\nstate: s\nupstreams:\n  v.example:\n    endpoint: http://127.0.0.1:2\n    username: u\n";
        let error = ProxyConfig::parse(
            "proxy.yaml",
            &format!("{head}    password: hunter2-secret\n"),
            directory.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("proxy.yaml: upstreams.v.example.password: ")
                && error.contains("password_file")
                && error.contains("password_env")
                && !error.contains("hunter2"),
            "{error}"
        );
        for line in [
            "    password: \"hunter2-secret\n",
            "    password: hunter2-secret: x\n",
            "    username: [hunter2-secret\n",
            "    endpoint: {hunter2-secret: [\n",
        ] {
            let error =
                ProxyConfig::parse("proxy.yaml", &format!("{head}{line}"), directory.path())
                    .unwrap_err()
                    .to_string();
            assert!(
                error.starts_with("proxy.yaml:") && !error.contains("hunter2"),
                "{error}"
            );
        }
    }

    #[test]
    fn password_sources_and_tls_files_are_checked() {
        let directory = tempfile::tempdir().unwrap();
        let error = ProxyConfig::parse(
            "proxy.yaml",
            "listen: 127.0.0.1:1\nplain_http: true\nstate: s\nupstreams:\n  v.example:\n    endpoint: http://127.0.0.1:2\n    username: u\n    password_env: WINDLASS_PROXY_TEST_UNSET_VARIABLE\n",
            directory.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("upstreams.v.example.password_env")
                && error.contains("WINDLASS_PROXY_TEST_UNSET_VARIABLE"),
            "{error}"
        );

        let error = ProxyConfig::parse(
            "proxy.yaml",
            "listen: 127.0.0.1:1\nstate: s\ntls:\n  cert_file: missing.pem\n  key_file: key.pem\n",
            directory.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("tls.cert_file"), "{error}");

        let error = ProxyConfig::parse(
            "proxy.yaml",
            "listen: 127.0.0.1:1\nplain_http: true\nstate: s\nupstreams:\n  v.example:\n    endpoint: http://user:hunter2@127.0.0.1:2\n",
            directory.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("endpoint") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[test]
    fn apps_and_repositories_bind_an_upstream_and_bad_entries_are_named() {
        let directory = tempfile::tempdir().unwrap();
        let parse = |upstream: &str| {
            ProxyConfig::parse(
                "proxy.yaml",
                &format!(
                    "listen: 127.0.0.1:1\nplain_http: true\nstate: s\nupstreams:\n  vendor.example:\n    endpoint: http://127.0.0.1:2\n{upstream}  open.example:\n    endpoint: http://127.0.0.1:3\n"
                ),
                directory.path(),
            )
        };
        let config =
            parse("    apps: [my-app, second]\n    repositories: [team/app, shared]\n").unwrap();
        let access = &config.upstreams["vendor.example"].access;
        assert_eq!(access.apps, ["my-app", "second"]);
        assert_eq!(
            access.repositories.as_deref(),
            Some(&["team/app".to_string(), "shared".to_string()][..])
        );
        assert_eq!(config.upstreams_serving_no_app(), ["open.example"]);

        for (upstream, key) in [
            (
                "    apps: [my-app, Other_App]\n",
                "upstreams.vendor.example.apps[1]",
            ),
            (
                "    apps: [my-app]\n    repositories: [team/app, team//x]\n",
                "upstreams.vendor.example.repositories[1]",
            ),
            (
                "    apps: [my-app]\n    repositories: []\n",
                "upstreams.vendor.example.repositories[0]",
            ),
        ] {
            let error = parse(upstream).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("proxy.yaml: {key}: ")),
                "{error}"
            );
        }
    }

    /// Paths under `index.docker.io/` are served by the `docker.io` upstream, so an upstream of
    /// that name could never be reached.
    #[test]
    fn docker_hub_is_configured_as_docker_io_only() {
        let directory = tempfile::tempdir().unwrap();
        let parse = |host: &str| {
            ProxyConfig::parse(
                "proxy.yaml",
                &format!(
                    "listen: 127.0.0.1:1\nplain_http: true\nstate: s\nupstreams:\n  {host}:\n    endpoint: http://127.0.0.1:2\n    apps: [my-app]\n"
                ),
                directory.path(),
            )
        };
        assert!(parse("docker.io").is_ok());
        let error = parse("index.docker.io").unwrap_err().to_string();
        assert!(
            error.starts_with(
                "proxy.yaml: upstreams.index.docker.io: Docker Hub is named docker.io here"
            ),
            "{error}"
        );
    }

    #[test]
    fn limits_have_defaults_and_bad_values_name_the_file_and_key() {
        let directory = tempfile::tempdir().unwrap();
        let base = "listen: 127.0.0.1:1\nplain_http: true\nstate: s\n";
        let config = ProxyConfig::parse("proxy.yaml", base, directory.path()).unwrap();
        let limits = &config.limits;
        assert!((16..=4096).contains(&limits.max_connections));
        if let Some(files) = open_file_limit() {
            assert!(limits.max_connections as u64 <= files / 2 || limits.max_connections == 16);
        }
        assert_eq!(limits.denied_log_interval.as_secs(), 10);
        assert_eq!(limits.pull_log_max_bytes, 64 * 1024 * 1024);
        assert_eq!(limits.upstream_max_concurrent_requests, 32);

        let text = format!(
            "{base}limits:\n  max_connections: 200\n  pull_log_max_mib: 2\n  upstream_max_concurrent_requests: 4\n  upstream_slot_wait_ms: 0\nupstreams:\n  a.example:\n    endpoint: http://127.0.0.1:2\n  b.example:\n    endpoint: http://127.0.0.1:3\n    max_concurrent_requests: 9\n"
        );
        let config = ProxyConfig::parse("proxy.yaml", &text, directory.path()).unwrap();
        assert_eq!(config.limits.max_connections, 200);
        assert_eq!(config.limits.pull_log_max_bytes, 2 * 1024 * 1024);
        assert_eq!(config.upstreams["a.example"].max_concurrent_requests, 4);
        assert_eq!(config.upstreams["b.example"].max_concurrent_requests, 9);

        for (snippet, key) in [
            ("limits:\n  max_connections: 3\n", "limits.max_connections"),
            (
                "limits:\n  pull_log_max_mib: 0\n",
                "limits.pull_log_max_mib",
            ),
            (
                "limits:\n  denied_log_interval_seconds: 0\n",
                "limits.denied_log_interval_seconds",
            ),
            (
                "upstreams:\n  a.example:\n    endpoint: http://127.0.0.1:2\n    max_concurrent_requests: 0\n",
                "upstreams.a.example.max_concurrent_requests",
            ),
        ] {
            let error =
                ProxyConfig::parse("proxy.yaml", &format!("{base}{snippet}"), directory.path())
                    .unwrap_err()
                    .to_string();
            assert!(
                error.starts_with(&format!("proxy.yaml: {key}: ")) && error.contains("between"),
                "{error}"
            );
        }
        let error = ProxyConfig::parse(
            "proxy.yaml",
            &format!("{base}limits:\n  max_conections: 5\n"),
            directory.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("max_conections"), "{error}");
    }
}
