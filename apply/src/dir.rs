//! The directory target: one file per object, named `NNNN-<kind>-<name>.yaml` so that a listing
//! sorts in apply order, for GitOps tools to pick up, and each `useHelmInstall: true` chart as
//! rendered under `charts/<release>/` (a chart directory a GitOps tool installs with helm). The directory is written the way the output
//! directory is ([`windlass_stages::output`]): into a staging directory beside it, swapped in
//! whole, so it is always the whole old set or the whole new one. A file holding a secret — a
//! Secret, or any object whose rendered file holds a password value (recorded by fingerprint
//! rather than as a blob) — is written 0600. It must be new, empty, or one windlass wrote before
//! (it holds [`DIR_MARKER`]): a directory of someone else's files is never replaced.

use std::path::Path;

use windlass_stages::output::{OutputDir, fit_file_name};

use crate::order::PlannedObject;

/// The marker file in every directory target windlass wrote.
pub const DIR_MARKER: &str = ".windlass-target";

/// Why the directory target cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum DirTargetError {
    /// The path is a file, or a non-empty directory windlass did not write.
    #[error("target dir:{path}: {reason}")]
    Refused {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// Writing failed.
    #[error("target dir:{path}: {source}")]
    Write {
        /// The directory.
        path: String,
        /// What failed.
        source: windlass_stages::output::OutputError,
    },
    /// An object could not be serialised.
    #[error("target dir:{path}: cannot write {object} as YAML: {message}")]
    Yaml {
        /// The directory.
        path: String,
        /// The object.
        object: String,
        /// Why.
        message: String,
    },
}

/// One object to write, with whether its rendered file holds a secret.
#[derive(Debug, Clone, Copy)]
pub struct ObjectFile<'a> {
    /// The object, in apply order among the others.
    pub object: &'a PlannedObject,
    /// Its rendered file holds a password value (it was recorded by fingerprint, not as a blob):
    /// written 0600, as Secrets are.
    pub holds_secret: bool,
}

/// The file name of the `position`-th object (from 1) among `count`.
pub fn file_name(position: usize, count: usize, object: &PlannedObject) -> String {
    let width = count.to_string().len().max(4);
    let name = format!(
        "{position:0width$}-{}-{}.yaml",
        object.key.kind.to_lowercase(),
        object.key.name
    );
    fit_file_name(&name.replace(['/', '\\'], "_")).into_owned()
}

/// A chart to write beside the objects: its directory in the target and its files (path relative
/// to that directory, bytes, whether the file holds a secret).
pub type ChartFiles<'a> = (String, &'a [(String, Vec<u8>, bool)]);

/// Writes `objects` (already in apply order) into `path`, and each of `charts` under its
/// directory; returns the objects' file names, in order.
pub fn write_dir(
    path: &Path,
    objects: &[ObjectFile<'_>],
    charts: &[ChartFiles<'_>],
) -> Result<Vec<String>, DirTargetError> {
    let shown = path.display().to_string();
    let refused = |reason: &str| DirTargetError::Refused {
        path: shown.clone(),
        reason: reason.to_string(),
    };
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if !metadata.is_dir() => return Err(refused("not a directory")),
        Ok(_) => {
            let mut entries = std::fs::read_dir(path).map_err(|error| DirTargetError::Write {
                path: shown.clone(),
                source: windlass_stages::output::OutputError::Io {
                    path: path.to_path_buf(),
                    source: error,
                },
            })?;
            let empty = entries.next().is_none();
            if !empty && !path.join(DIR_MARKER).is_file() {
                return Err(refused(
                    "the directory is not empty and windlass did not write it (no .windlass-target file); name a new or empty directory",
                ));
            }
        }
        Err(_) => {}
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(refused("not a directory windlass can write"));
    };
    let write_error = |source| DirTargetError::Write {
        path: shown.clone(),
        source,
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let out = OutputDir::create(parent).map_err(write_error)?;
    let tree = out
        .replace_tree(&name.to_string_lossy())
        .map_err(write_error)?;
    tree.write(
        DIR_MARKER,
        b"written by windlass apply --target dir: replaced whole by the next apply\n",
        0o644,
    )
    .map_err(write_error)?;
    let mut names = Vec::with_capacity(objects.len());
    for (position, object) in objects.iter().enumerate() {
        let file = file_name(position + 1, objects.len(), object.object);
        let text = serde_saphyr::to_string(&object.object.object).map_err(|error| {
            DirTargetError::Yaml {
                path: shown.clone(),
                object: object.object.key.to_string(),
                message: error.to_string(),
            }
        })?;
        let mode = if object.holds_secret || object.object.key.kind == "Secret" {
            0o600
        } else {
            0o644
        };
        tree.write(&file, text.as_bytes(), mode)
            .map_err(write_error)?;
        names.push(file);
    }
    for (directory, files) in charts {
        for (file, bytes, secret) in files.iter() {
            let mode = if *secret { 0o600 } else { 0o644 };
            tree.write(&format!("{directory}/{file}"), bytes, mode)
                .map_err(write_error)?;
        }
    }
    tree.commit().map_err(write_error)?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::order::plan_apply;

    /// A directory of its own under the system's temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Scratch {
            let base = std::fs::canonicalize(std::env::temp_dir()).unwrap();
            let path = base.join(format!("windlass-dir-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A Namespace, a ConfigMap and a Secret, planned.
    fn planned() -> Vec<PlannedObject> {
        let object = |kind: &str, name: &str| {
            (
                format!("rendered/this-cluster/{name}.yaml"),
                json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}),
            )
        };
        plan_apply(
            vec![
                object("ConfigMap", "settings"),
                object("Secret", "registry"),
                object("Namespace", "shop"),
            ],
            |_| false,
        )
        .unwrap()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn objects_whose_rendered_file_holds_a_password_are_written_0600() {
        let scratch = Scratch::new("modes");
        let target = scratch.0.join("gitops");
        let planned = planned();
        let objects: Vec<ObjectFile<'_>> = planned
            .iter()
            .map(|object| ObjectFile {
                object,
                holds_secret: object.key.name == "settings",
            })
            .collect();
        write_dir(&target, &objects, &[]).unwrap();
        assert_eq!(mode(&target.join("0001-namespace-shop.yaml")), 0o644);
        assert_eq!(mode(&target.join("0002-secret-registry.yaml")), 0o600);
        assert_eq!(mode(&target.join("0003-configmap-settings.yaml")), 0o600);
    }
}
