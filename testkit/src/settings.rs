//! A builder for the `--registries` settings file (`registries:` mapping a host as written in
//! image references to an endpoint, an extra CA and credentials), so a test can point a vendor
//! host alias such as `vendor.example` at a running [`TestRegistry`].

use std::path::{Path, PathBuf};

use crate::registry::{Credentials, TestRegistry};

/// The settings of one host in a [`RegistriesFile`]; every field is optional.
#[derive(Clone, Debug, Default)]
pub struct HostSettings {
    endpoint: Option<String>,
    ca_file: Option<PathBuf>,
    credentials: Option<Credentials>,
}

impl HostSettings {
    /// No settings: the host is reached as itself, anonymously.
    pub fn new() -> HostSettings {
        HostSettings::default()
    }

    /// Reaches the host at `endpoint` instead (`http://…` means plain HTTP).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> HostSettings {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Trusts the CA certificate at `ca_file` (absolute, or relative to the settings file).
    pub fn ca_file(mut self, ca_file: impl Into<PathBuf>) -> HostSettings {
        self.ca_file = Some(ca_file.into());
        self
    }

    /// Uses `credentials`: `username` in the file, the password in a `password_file` next to it.
    pub fn credentials(mut self, credentials: Credentials) -> HostSettings {
        self.credentials = Some(credentials);
        self
    }
}

/// A `--registries` settings file being built; [`RegistriesFile::write`] writes it.
///
/// ```
/// use windlass_testkit::{Credentials, HostSettings, RegistriesFile};
///
/// let directory = tempfile::tempdir().unwrap();
/// let path = RegistriesFile::new()
///     .host(
///         "vendor.example",
///         HostSettings::new()
///             .endpoint("http://127.0.0.1:5101")
///             .credentials(Credentials::new("reader", "secret")),
///     )
///     .write(directory.path());
/// let yaml = std::fs::read_to_string(&path).unwrap();
/// assert!(yaml.contains("password_file: \"secrets/registry-0.password\""));
/// assert!(!yaml.contains("secret\n"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RegistriesFile {
    hosts: Vec<(String, HostSettings)>,
}

impl RegistriesFile {
    /// A file configuring no host.
    pub fn new() -> RegistriesFile {
        RegistriesFile::default()
    }

    /// Configures `host` (as written in image references, maybe with a port) with `settings`.
    pub fn host(mut self, host: &str, settings: HostSettings) -> RegistriesFile {
        self.hosts.push((host.to_owned(), settings));
        self
    }

    /// Routes `alias` (e.g. `vendor.example`) to `registry`'s endpoint, anonymously.
    pub fn route(self, alias: &str, registry: &TestRegistry) -> RegistriesFile {
        self.host(alias, HostSettings::new().endpoint(registry.endpoint()))
    }

    /// Routes `alias` to `registry`'s endpoint with the registry's credentials
    /// ([`TestRegistry::credentials`]).
    ///
    /// # Panics
    ///
    /// When `registry` is open, so has no credentials.
    pub fn route_with_credentials(self, alias: &str, registry: &TestRegistry) -> RegistriesFile {
        let credentials = registry
            .credentials()
            .unwrap_or_else(|| panic!("{registry:?} is open: it has no credentials"))
            .clone();
        self.host(
            alias,
            HostSettings::new()
                .endpoint(registry.endpoint())
                .credentials(credentials),
        )
    }

    /// Reaches `host` (`address:port`) over plain HTTP at the same address, as a user would
    /// configure a loopback registry without TLS.
    pub fn plain_http(self, host: &str) -> RegistriesFile {
        let endpoint = format!("http://{host}");
        self.host(host, HostSettings::new().endpoint(endpoint))
    }

    /// The YAML text; the password of the n-th host with credentials is expected in
    /// `secrets/registry-<n>.password` next to the file.
    pub fn to_yaml(&self) -> String {
        let mut yaml = String::from("registries:\n");
        if self.hosts.is_empty() {
            yaml = String::from("registries: {}\n");
        }
        for (index, (host, settings)) in self.hosts.iter().enumerate() {
            yaml.push_str(&format!("  {}:", quoted(host)));
            if settings.endpoint.is_none()
                && settings.ca_file.is_none()
                && settings.credentials.is_none()
            {
                yaml.push_str(" {}\n");
                continue;
            }
            yaml.push('\n');
            if let Some(endpoint) = &settings.endpoint {
                yaml.push_str(&format!("    endpoint: {}\n", quoted(endpoint)));
            }
            if let Some(ca_file) = &settings.ca_file {
                let ca_file = ca_file.to_string_lossy();
                yaml.push_str(&format!("    ca_file: {}\n", quoted(&ca_file)));
            }
            if let Some(credentials) = &settings.credentials {
                yaml.push_str(&format!(
                    "    username: {}\n    password_file: {}\n",
                    quoted(&credentials.username),
                    quoted(&password_file(index))
                ));
            }
        }
        yaml
    }

    /// Writes `registries.yaml` into `directory`, and each password (followed by a newline, as
    /// `echo` writes it) into `secrets/` beside it; returns the settings file's path.
    ///
    /// # Panics
    ///
    /// When the files cannot be written.
    pub fn write(&self, directory: &Path) -> PathBuf {
        for (index, (_, settings)) in self.hosts.iter().enumerate() {
            if let Some(credentials) = &settings.credentials {
                let file = directory.join(password_file(index));
                std::fs::create_dir_all(file.parent().expect("secrets directory"))
                    .expect("create secrets directory");
                std::fs::write(&file, format!("{}\n", credentials.password))
                    .expect("write password file");
            }
        }
        let path = directory.join("registries.yaml");
        std::fs::write(&path, self.to_yaml()).expect("write registries settings file");
        path
    }
}

/// Where the password of the `index`-th host is written, relative to the settings file.
fn password_file(index: usize) -> String {
    format!("secrets/registry-{index}.password")
}

/// `text` as a double-quoted YAML scalar (JSON string syntax, which YAML accepts).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_hosts_route_to_themselves() {
        let yaml = RegistriesFile::new()
            .plain_http("127.0.0.1:5000")
            .host("bare.example", HostSettings::new())
            .to_yaml();
        assert_eq!(
            yaml,
            "registries:\n  \"127.0.0.1:5000\":\n    endpoint: \"http://127.0.0.1:5000\"\n  \"bare.example\": {}\n"
        );
        assert_eq!(RegistriesFile::new().to_yaml(), "registries: {}\n");
    }

    #[test]
    fn passwords_go_to_files_beside_the_settings() {
        let directory = tempfile::tempdir().unwrap();
        let path = RegistriesFile::new()
            .plain_http("open.example")
            .host(
                "vendor.example",
                HostSettings::new()
                    .endpoint("http://127.0.0.1:5101")
                    .ca_file("certs/ca.pem")
                    .credentials(Credentials::new("reader", "hunter2")),
            )
            .write(directory.path());
        let yaml = std::fs::read_to_string(&path).unwrap();
        assert!(!yaml.contains("hunter2"), "{yaml}");
        assert!(yaml.contains(
            "    ca_file: \"certs/ca.pem\"\n    username: \"reader\"\n    password_file: \"secrets/registry-1.password\"\n"
        ), "{yaml}");
        let password =
            std::fs::read_to_string(directory.path().join("secrets/registry-1.password")).unwrap();
        assert_eq!(password, "hunter2\n");
        assert!(!format!("{:?}", Credentials::new("reader", "hunter2")).contains("hunter2"));
    }
}
