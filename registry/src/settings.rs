//! [`RegistrySettings`]: the `--registries` file — per registry host an endpoint override, an
//! extra CA and optional credentials. Everything is read and checked in [`RegistrySettings::load`],
//! so a bad file fails before any probe, naming the file and the key. A password comes from
//! `password_file` or `password_env`, never from this file (an inline `password:` is refused), lives
//! in a redacting wrapper and never reaches an error, a log line or `Debug` output; a parse error
//! names line, column and keys but quotes nothing from the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Registry settings, keyed by registry host as written in image references (lowercased; may
/// include a port). `docker.io`, `index.docker.io` and `registry-1.docker.io` are one host.
#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    pub(crate) hosts: BTreeMap<String, HostSettings>,
}

/// The settings of one registry host.
#[derive(Clone, Debug)]
pub(crate) struct HostSettings {
    /// Base URL to contact instead of `https://<host>`, without a trailing slash.
    pub(crate) endpoint: Option<String>,
    /// An extra CA bundle (PEM) trusted next to the system roots, and where it came from.
    pub(crate) ca: Option<CaBundle>,
    /// Credentials to present when the registry asks.
    pub(crate) credentials: Option<Credentials>,
}

/// A PEM CA bundle read from `ca_file`.
#[derive(Clone, Debug)]
pub(crate) struct CaBundle {
    pub(crate) path: PathBuf,
    pub(crate) pem: Vec<u8>,
}

/// A username and the password read from `password_file` or `password_env`.
#[derive(Clone, Debug)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Secret,
}

/// A password or token in memory only: `Debug` prints a placeholder and there is no `Display`.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub(crate) fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself, to put in an `Authorization` header and nowhere else.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a registry settings file was refused. Messages name the file and, where there is one, the
/// key; they never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file itself could not be read: missing, not a regular file, over 1 MiB.
    #[error("cannot read registry settings {}: {problem}", path.display())]
    Read {
        /// The settings file.
        path: PathBuf,
        /// Why reading failed.
        problem: windlass_files::ReadError,
    },
    /// The file is not YAML of the expected shape (unknown keys are refused too). The message
    /// holds the line, column and key path, never a value from the file.
    #[error("invalid registry settings {problem}")]
    Parse {
        /// Where and what, without the file's text.
        problem: windlass_files::YamlProblem,
    },
    /// A value is unusable, e.g. an endpoint that is not an `http://` or `https://` URL, a
    /// username without a `password_file`, or an inline `password`.
    #[error("invalid registry settings {}: {key}: {message}", path.display())]
    Invalid {
        /// The settings file.
        path: PathBuf,
        /// The key, e.g. `registries["vendor.example"].endpoint`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A file named by `ca_file` or `password_file` could not be read or is unusable.
    #[error("invalid registry settings {}: {key}: cannot use {}: {message}", path.display(), file.display())]
    ReferencedFile {
        /// The settings file.
        path: PathBuf,
        /// The key naming the file, e.g. `registries["vendor.example"].ca_file`.
        key: String,
        /// The file named, resolved against the settings file's directory.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// Largest settings file accepted.
const MAX_SETTINGS_BYTES: u64 = windlass_files::MIB;

/// Largest `ca_file` or `password_file` accepted.
const MAX_REFERENCED_BYTES: u64 = windlass_files::MIB;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    #[serde(default)]
    registries: BTreeMap<String, HostEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    endpoint: Option<String>,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// Only to refuse it by name: passwords are never written in this file. The value is
    /// skipped unread.
    password: Option<serde::de::IgnoredAny>,
}

impl RegistrySettings {
    /// No settings: every host is contacted at its default endpoint, anonymously, trusting the
    /// system roots.
    pub fn empty() -> RegistrySettings {
        RegistrySettings::default()
    }

    /// Reads a settings file and every file it names (`ca_file`, `password_file`, relative to the
    /// settings file's directory), checking them all.
    pub fn load(path: &Path) -> Result<RegistrySettings, SettingsError> {
        let text =
            windlass_files::read_regular_text(path, MAX_SETTINGS_BYTES).map_err(|problem| {
                SettingsError::Read {
                    path: path.to_owned(),
                    problem,
                }
            })?;
        // The file may hold credentials (a mistyped key, a password written inline): the parser's
        // message and snippet are reduced to line, column, key path and kind.
        let file: SettingsFile = serde_saphyr::from_str(&text).map_err(|error| {
            let at = error
                .location()
                .map(|location| (location.line(), location.column()));
            let message = error.without_snippet().to_string();
            SettingsError::Parse {
                problem: windlass_files::yaml_problem(
                    &path.display().to_string(),
                    &text,
                    &message,
                    at,
                ),
            }
        })?;
        let directory = path.parent().unwrap_or(Path::new("."));
        let mut hosts = BTreeMap::new();
        for (host, entry) in file.registries {
            let key = |field: &str| format!("registries[{host:?}].{field}");
            let invalid = |field: &str, message: String| SettingsError::Invalid {
                path: path.to_owned(),
                key: key(field),
                message,
            };
            let normalised = normalise_host(&host);
            if normalised.is_empty() || normalised.contains(['/', ' ', '@']) {
                return Err(invalid(
                    "",
                    "a registry host such as `vendor.example` or `localhost:5000` is expected"
                        .to_owned(),
                ));
            }
            let endpoint = entry
                .endpoint
                .map(|endpoint| check_endpoint(&endpoint).map_err(|m| invalid("endpoint", m)))
                .transpose()?;
            let ca = match entry.ca_file {
                None => None,
                Some(file) => {
                    let file = directory.join(file);
                    let referenced = |message: String| SettingsError::ReferencedFile {
                        path: path.to_owned(),
                        key: key("ca_file"),
                        file: file.clone(),
                        message,
                    };
                    let pem = windlass_files::read_regular_file(&file, MAX_REFERENCED_BYTES)
                        .map_err(|problem| referenced(problem.to_string()))?;
                    match reqwest::Certificate::from_pem_bundle(&pem) {
                        Ok(certificates) if !certificates.is_empty() => {}
                        Ok(_) => return Err(referenced("no PEM certificate in it".to_owned())),
                        Err(error) => return Err(referenced(format!("not a PEM bundle: {error}"))),
                    }
                    Some(CaBundle { path: file, pem })
                }
            };
            if entry.password.is_some() {
                return Err(invalid(
                    "password",
                    "passwords are not written in this file: name a file holding it with password_file, or an environment variable with password_env".to_owned(),
                ));
            }
            let password = match (entry.password_file, entry.password_env) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "password_file",
                        "set either password_file or password_env, not both".to_owned(),
                    ));
                }
                (Some(file), None) => {
                    let file = directory.join(file);
                    let referenced = |message: String| SettingsError::ReferencedFile {
                        path: path.to_owned(),
                        key: key("password_file"),
                        file: file.clone(),
                        message,
                    };
                    // The error text of a failed read never includes the contents.
                    let text = windlass_files::read_regular_text(&file, MAX_REFERENCED_BYTES)
                        .map_err(|problem| referenced(problem.to_string()))?;
                    let password = text.trim_end_matches(['\n', '\r']);
                    if password.is_empty() {
                        return Err(referenced("the password is empty".to_owned()));
                    }
                    Some(password.to_owned())
                }
                (None, Some(variable)) => {
                    let value = std::env::var(&variable).map_err(|_| {
                        invalid(
                            "password_env",
                            format!("environment variable {variable} is not set (or not UTF-8)"),
                        )
                    })?;
                    if value.is_empty() {
                        return Err(invalid(
                            "password_env",
                            format!("environment variable {variable} is empty"),
                        ));
                    }
                    Some(value)
                }
                (None, None) => None,
            };
            let credentials = match (entry.username, password) {
                (None, None) => None,
                (Some(_), None) => {
                    return Err(invalid(
                        "password_file",
                        "missing: a username needs a password_file or password_env".to_owned(),
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        "username",
                        "missing: a password needs a username".to_owned(),
                    ));
                }
                (Some(username), Some(password)) => {
                    if username.is_empty() || username.contains(':') {
                        return Err(invalid(
                            "username",
                            "must be non-empty and contain no `:`".to_owned(),
                        ));
                    }
                    Some(Credentials {
                        username,
                        password: Secret(password),
                    })
                }
            };
            if hosts.contains_key(&normalised) {
                return Err(invalid(
                    "",
                    format!(
                        "`{normalised}` is configured twice (hosts are case-insensitive, and docker.io, index.docker.io and registry-1.docker.io are one host)"
                    ),
                ));
            }
            hosts.insert(
                normalised,
                HostSettings {
                    endpoint,
                    ca,
                    credentials,
                },
            );
        }
        Ok(RegistrySettings { hosts })
    }

    /// The settings of `host` (a registry as in a [`crate::ProbeTarget`]), if any.
    #[cfg(test)]
    pub(crate) fn host(&self, host: &str) -> Option<&HostSettings> {
        self.hosts.get(&normalise_host(host))
    }
}

/// Lowercases a host and folds Docker Hub's aliases into `docker.io`.
pub(crate) fn normalise_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    }
}

/// Checks an endpoint override and returns it without a trailing slash.
fn check_endpoint(endpoint: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|error| format!("`{endpoint}` is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{endpoint}` must start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Do not echo the value: it holds a credential.
        return Err("must not contain credentials; use username and password_file".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{endpoint}` must not have a query or fragment"));
    }
    if url.host_str().is_none() {
        return Err(format!("`{endpoint}` has no host"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, files: &[(&str, &str)]) -> Result<RegistrySettings, SettingsError> {
        let directory = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            let path = directory.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        let path = directory.path().join("registries.yaml");
        std::fs::write(&path, yaml).unwrap();
        RegistrySettings::load(&path)
    }

    #[test]
    fn reads_endpoint_and_credentials_relative_to_the_file() {
        let settings = load(
            "registries:\n  Vendor.Example:\n    endpoint: http://127.0.0.1:5101/\n    username: reader\n    password_file: secrets/reader\n",
            &[("secrets/reader", "hunter2\n")],
        )
        .unwrap();
        let host = settings.host("vendor.example").unwrap();
        assert_eq!(host.endpoint.as_deref(), Some("http://127.0.0.1:5101"));
        let credentials = host.credentials.as_ref().unwrap();
        assert_eq!(credentials.username, "reader");
        assert_eq!(credentials.password.expose(), "hunter2");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let error = load("registries:\n  a.example:\n    endpoint: ftp://x\n", &[]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("registries.yaml"), "{message}");
        assert!(
            message.contains(r#"registries["a.example"].endpoint"#),
            "{message}"
        );

        let error = load(
            "registries:\n  a.example:\n    username: u\n    password_file: nope\n",
            &[],
        )
        .unwrap_err();
        assert!(error.to_string().contains("password_file"), "{error}");

        let error = load("registries:\n  a.example:\n    pasword_file: x\n", &[]).unwrap_err();
        assert!(error.to_string().contains("pasword_file"), "{error}");

        let error = load(
            "registries:\n  a.example:\n    ca_file: ca.pem\n",
            &[("ca.pem", "not a certificate")],
        )
        .unwrap_err();
        assert!(error.to_string().contains("ca_file"), "{error}");
    }

    #[test]
    fn endpoint_credentials_are_refused_without_echoing_them() {
        let error = load(
            "registries:\n  a.example:\n    endpoint: https://u:sekrit@a.example\n",
            &[],
        )
        .unwrap_err();
        assert!(!error.to_string().contains("sekrit"), "{error}");
    }

    #[test]
    fn an_inline_password_is_refused_without_quoting_it() {
        let error = load(
            "registries:\n  a.example:\n    username: u\n    password: hunter2-secret\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(r#"registries["a.example"].password"#)
                && error.contains("password_file")
                && error.contains("password_env")
                && !error.contains("hunter2"),
            "{error}"
        );
        for broken in [
            "registries:\n  a.example:\n    username: u\n    password: \"hunter2-secret\n",
            "registries:\n  a.example:\n    username: u\n    password: hunter2-secret: x\n",
            "registries:\n  a.example:\n    username: [hunter2-secret\n",
            "registries:\n  a.example: hunter2-secret\n",
        ] {
            let error = load(broken, &[]).unwrap_err().to_string();
            assert!(
                error.contains("registries.yaml:") && !error.contains("hunter2"),
                "{error}"
            );
        }
        let error = load(
            "registries:\n  a.example:\n    username: u\n    password: \"hunter2-secret\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("registries.a.example.password"), "{error}");
    }

    #[test]
    fn a_password_comes_from_an_environment_variable() {
        let error = load(
            "registries:\n  a.example:\n    username: u\n    password_env: WINDLASS_REGISTRY_TEST_UNSET\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("password_env") && error.contains("WINDLASS_REGISTRY_TEST_UNSET"),
            "{error}"
        );
        let error = load(
            "registries:\n  a.example:\n    username: u\n    password_env: X\n    password_file: y\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not both"), "{error}");
    }

    #[test]
    fn a_host_with_a_port_needs_no_quotes() {
        let settings = load(
            "registries:\n  localhost:5000:\n    endpoint: http://127.0.0.1:5000\n",
            &[],
        )
        .unwrap();
        let host = settings.host("localhost:5000").unwrap();
        assert_eq!(host.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn docker_hub_aliases_are_one_host() {
        let settings = load(
            "registries:\n  index.docker.io:\n    endpoint: https://mirror.example\n",
            &[],
        )
        .unwrap();
        assert!(settings.host("docker.io").is_some());
    }
}
