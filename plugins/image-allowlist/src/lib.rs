//! `image_allowlist`, a worked example of an in-process windlass plugin: a stage that reads the
//! images `probe_images` found (its input's `ImagesProbed`) and fails the install, naming each
//! image and where it is used, when one is not on the allow-list. It changes nothing and records
//! no event of its own (its summary says how many images it checked), so it is a
//! [`PluginRole::Check`]. Declared like any plugin:
//!
//! ```yaml
//! plugins:
//!   - name: allowed-images
//!     stage: image_allowlist
//!     before: plan_overrides
//!     config:
//!       allowed: [registry.example.com/team/, docker.io/library/nginx]
//! ```
//!
//! An entry ending in `/` allows every repository under it; any other entry allows exactly that
//! repository (`registry/repository`, normalised as Docker does: `nginx` is
//! `docker.io/library/nginx`), any tag or digest.

use std::sync::Arc;

use serde::Deserialize;
use windlass_engine::{
    BuildContext, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput,
};
use windlass_plugin_host::{InProcessPlugin, PluginRole};
use windlass_stages::events::ImagesProbed;

/// The stage kind's name.
pub const KIND: &str = "image_allowlist";

/// The plugin, for the binary's list of in-process plugins.
pub fn plugin() -> InProcessPlugin {
    InProcessPlugin {
        kind: StageKind::new(
            KIND,
            "fail the install when an image is not on the allow-list",
            |config| {
                let config: AllowListConfig = serde_json::from_value(config.clone())
                    .map_err(|error| format!("{KIND}: {error}"))?;
                Ok(Box::new(config))
            },
        ),
        role: PluginRole::Check,
        schemas: &[],
        // Runs only where a declaration puts it, with the list it gives.
        default_placement: None,
    }
}

/// The configuration: the allowed repositories and prefixes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowListConfig {
    /// Each entry: a `registry/repository`, or a prefix ending in `/`.
    pub allowed: Vec<String>,
}

#[async_trait::async_trait]
impl StageConfig for AllowListConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let problems: Vec<String> = self
            .allowed
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.trim().is_empty())
            .map(|(index, _)| format!("allowed[{index}]: must not be empty"))
            .collect();
        if self.allowed.is_empty() {
            return Err(vec![
                "allowed: list at least one repository or prefix".into(),
            ]);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    async fn build(&self, _context: &BuildContext) -> Result<Arc<dyn Stage>, StageError> {
        Ok(Arc::new(AllowList {
            allowed: self.allowed.clone(),
        }))
    }
}

/// The runtime stage.
pub struct AllowList {
    allowed: Vec<String>,
}

impl AllowList {
    /// Whether `normalized_name` (`registry/repository`) is allowed.
    pub fn allows(&self, normalized_name: &str) -> bool {
        self.allowed
            .iter()
            .any(|entry| match entry.strip_suffix('/') {
                Some(_) => normalized_name.starts_with(entry.as_str()),
                None => normalized_name == entry,
            })
    }
}

#[async_trait::async_trait]
impl Stage for AllowList {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let probed = context.input_shared::<ImagesProbed>()?;
        let refused: Vec<String> = probed
            .images
            .iter()
            .filter(|image| !self.allows(&image.normalized_name))
            .map(|image| {
                let used = image
                    .uses
                    .first()
                    .map(|at| {
                        format!(
                            " ({} {} in {})",
                            at.kind,
                            at.name.as_deref().unwrap_or("?"),
                            at.file
                        )
                    })
                    .unwrap_or_default();
                format!("{}{used}", image.image)
            })
            .collect();
        if !refused.is_empty() {
            return Err(StageError::invalid_input(format!(
                "{} image(s) not on the allow-list of {}: {}",
                refused.len(),
                context.stage_name,
                refused.join(", ")
            )));
        }
        Ok(StageOutput {
            facts: Vec::new(),
            summary: format!("{} images on the allow-list", probed.images.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_end_in_a_slash_and_other_entries_are_exact() {
        let list = AllowList {
            allowed: vec![
                "registry.example.com/team/".into(),
                "docker.io/library/nginx".into(),
            ],
        };
        assert!(list.allows("registry.example.com/team/api"));
        assert!(list.allows("docker.io/library/nginx"));
        assert!(!list.allows("docker.io/library/nginx-extra"));
        assert!(!list.allows("registry.example.com/teamx/api"));
    }
}
