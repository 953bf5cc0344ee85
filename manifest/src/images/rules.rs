//! Image-field rules: where images live in objects. The built-in rules cover pod specs
//! (`spec` of a Pod, `spec.template.spec` and `spec.jobTemplate.spec.template.spec` of any kind;
//! `containers`, `initContainers`, `ephemeralContainers`) and `Application.spec.additionalImages`.
//! Users add rules for custom resources (e.g. `spec.image` of `MyDB`) in a windlass config file:
//!
//! ```yaml
//! images:
//!   rules:
//!     - kind: MyDB
//!       apiVersion: db.example.com/v1   # optional: any version of the kind when absent
//!       path: spec.image                 # `[]` walks every element of a list: spec.sidecars[].image
//!   host_aliases:                        # for hosts with a port or an uppercase letter, which cannot sit in a proxy path
//!     registry.example.com:5000: vendor-5000
//! ```

use std::path::Path;

use serde::Deserialize;

/// One user rule: the images of `kind` (and `api_version`, if given) at `path`. Recorded in
/// `ImagesProbed`, so a wire format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRule {
    /// The kind the rule applies to.
    pub kind: String,
    /// The apiVersion, if the rule is for one version only.
    #[serde(
        default,
        rename = "apiVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_version: Option<String>,
    /// Dotted field path; a segment ending in `[]` walks every element of a list.
    pub path: String,
}

/// The windlass config file (the parts about images).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindlassConfig {
    /// Image settings.
    #[serde(default)]
    pub images: ImageSettings,
    /// `plugins:`, the plugin stages to insert into the pipeline: not read here (the binary hands
    /// the list to `windlass-plugin-host`, which checks it), only let through.
    #[serde(default)]
    pub plugins: Option<serde_json::Value>,
    /// `local_registry:`, local-registry mode (the command line's `--registry-*` options win).
    #[serde(default)]
    pub local_registry: Option<LocalRegistrySettings>,
}

/// `local_registry:` of the config file:
///
/// ```yaml
/// local_registry:
///   host: registry.internal:5000
///   namespace: myapp                    # optional
///   username: deployer                  # optional, with password_file
///   password_file: registry-password    # relative to the config file's directory
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRegistrySettings {
    /// The registry host.
    #[serde(default)]
    pub host: Option<String>,
    /// The namespace images go under.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The user name for the pull secret.
    #[serde(default)]
    pub username: Option<String>,
    /// The file holding the password (resolved against the config file's directory by
    /// [`WindlassConfig::load`]).
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// An inline `password:`, refused by name: its value is skipped unread.
    #[serde(default)]
    password: Option<Refused>,
}

/// A key whose value is skipped unread, present only to be refused by name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused;

impl<'de> Deserialize<'de> for Refused {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Refused, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Refused)
    }
}

/// `images:` of the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    /// Extra image-field rules.
    #[serde(default)]
    pub rules: Vec<ImageRule>,
    /// Registry hosts that cannot appear in a proxy path as written (a host with a port or an uppercase letter), mapped to
    /// the upstream name the proxy knows them by, e.g. `registry.example.com:5000: vendor-5000`;
    /// [`WindlassConfig::load`] refuses an alias that is not one repository path component.
    #[serde(default)]
    pub host_aliases: std::collections::BTreeMap<String, String>,
}

/// A problem with the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It cannot be read: missing, not a regular file, over the size limit, not UTF-8.
    #[error("config file {path}: {problem}")]
    Read {
        /// The file.
        path: String,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// It is not YAML of the expected shape.
    #[error("config file {0}")]
    Parse(windlass_files::YamlProblem),
    /// It is not valid.
    #[error("config file {path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// Largest config file accepted.
const MAX_CONFIG_BYTES: u64 = windlass_files::MIB;

impl WindlassConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<WindlassConfig, ConfigError> {
        let shown = path.display().to_string();
        let invalid = |problem: String| ConfigError::Invalid {
            path: shown.clone(),
            problem,
        };
        let text =
            windlass_files::read_regular_text(path, MAX_CONFIG_BYTES).map_err(|problem| {
                ConfigError::Read {
                    path: shown.clone(),
                    problem,
                }
            })?;
        // The parser's message is reduced to line, column, key path and kind: this message is
        // recorded when the `probe_images` stage fails, and the file's text stays out of the log.
        let config: WindlassConfig = serde_saphyr::from_str(&text).map_err(|error| {
            let at = error
                .location()
                .map(|location| (location.line(), location.column()));
            let message = error.without_snippet().to_string();
            ConfigError::Parse(windlass_files::yaml_problem(&shown, &text, &message, at))
        })?;
        let mut config = config;
        if let Some(registry) = &mut config.local_registry {
            if registry.password.is_some() {
                return Err(invalid(
                    "local_registry.password: a password is never written in a config file; put it in a file of its own and name it with local_registry.password_file".into(),
                ));
            }
            if let Some(file) = &registry.password_file
                && file.is_relative()
            {
                let directory = path.parent().unwrap_or(Path::new("."));
                registry.password_file = Some(directory.join(file));
            }
        }
        for (index, rule) in config.images.rules.iter().enumerate() {
            if let Err(problem) = parse_path(&rule.path) {
                return Err(invalid(format!("images.rules[{index}].path: {problem}")));
            }
            if rule.kind.is_empty() {
                return Err(invalid(format!("images.rules[{index}].kind is empty")));
            }
        }
        // An alias stands where a proxied image's host would: `<proxy>/proxy/<slug>/<alias>/...`.
        for (host, alias) in &config.images.host_aliases {
            if !crate::images::grammar::is_path_component(alias) {
                return Err(invalid(format!(
                    "images.host_aliases.{host}: {alias:?} is not one repository path component (lowercase letters and digits, with `.`, `_`, `__` or `-` between them, e.g. vendor-5000), which a proxied image's path needs"
                )));
            }
        }
        Ok(config)
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A mapping key.
    Key(String),
    /// A mapping key whose value is a list, every element of which is visited.
    EachOf(String),
}

/// Parses `spec.sidecars[].image` into steps.
pub fn parse_path(path: &str) -> Result<Vec<PathStep>, String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    path.split('.')
        .map(|segment| match segment.strip_suffix("[]") {
            Some("") => Err(format!("{path:?} has an empty segment before []")),
            Some(key) => Ok(PathStep::EachOf(key.to_string())),
            None if segment.is_empty() => Err(format!("{path:?} has an empty segment")),
            None if segment.contains(['[', ']']) => Err(format!(
                "{path:?}: only `[]` (every element) is supported in a segment"
            )),
            None => Ok(PathStep::Key(segment.to_string())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<WindlassConfig, ConfigError> {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("windlass.yaml");
        std::fs::write(&path, text).unwrap();
        WindlassConfig::load(&path)
    }

    #[test]
    fn host_aliases_must_be_one_repository_path_component() {
        for alias in [
            "vendor-5000",
            "vendor.5000",
            "vendor_5000",
            "v__5000",
            "v---5000",
        ] {
            let config = load_text(&format!(
                "images:\n  host_aliases:\n    registry.example.com:5000: {alias}\n"
            ))
            .unwrap_or_else(|error| panic!("{alias}: {error}"));
            assert_eq!(
                config.images.host_aliases["registry.example.com:5000"],
                alias
            );
        }
        for alias in [
            "vendor:5000",
            "Local_5000",
            "vendor/5000",
            "-vendor",
            "vendor-",
            "vendor___5000",
            "\"\"",
        ] {
            let refused = load_text(&format!(
                "images:\n  host_aliases:\n    registry.example.com:5000: {alias}\n"
            ))
            .expect_err(alias)
            .to_string();
            assert!(
                refused.starts_with("config file ")
                    && refused
                        .contains("windlass.yaml: images.host_aliases.registry.example.com:5000: ")
                    && refused.contains("is not one repository path component"),
                "{alias}: {refused}"
            );
        }
    }
}
