//! The directory target: one file per object, named `NNNN-<kind>-<name>.yaml` so that a listing
//! sorts in apply order, for GitOps tools to pick up, and each chart windlass hands to helm under
//! `charts/<release>/` (a `useHelmInstall: true` chart as rendered, a chart directory; a
//! `kots.io/v1beta2` chart as its archive as shipped and its `values.yaml`), which a GitOps tool
//! installs with helm. The
//! directory is written the way the output directory is ([`windlass_stages::output`]): into a
//! staging directory beside it, swapped in whole, so it is always the whole old set or the whole
//! new one. A file holding a secret — a Secret, or any object whose rendered file holds a password
//! value (recorded by fingerprint rather than as a blob) — is written 0600.
//!
//! Since the swap removes the old directory, windlass only writes a directory that holds nothing
//! but what it wrote there: [`check_target`] refuses, before anything is written, a path that is a
//! symbolic link or a file; a path that is, lies inside or holds the state directory, the output
//! directory or the release ([`ProtectedDir`]); and a directory holding entries windlass did not
//! write. What windlass wrote is listed in the marker file [`DIR_MARKER`]; a marker of an older
//! windlass lists nothing, and then only files named like windlass's object files and `charts/`
//! count as its own. The one entry kept although windlass did not write it is `.git` (a GitOps
//! checkout): it is moved aside with one rename while the new directory is swapped in and moved
//! back into it with another, never copied ([`write_dir`]).

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use windlass_stages::output::{OutputDir, OutputError, fit_file_name};

use crate::order::{ObjectKey, PlannedObject, Step};

/// The marker file in every directory target windlass wrote: it lists what windlass wrote there.
pub const DIR_MARKER: &str = ".windlass-target";

/// The one entry of a directory target windlass keeps without having written it: git's metadata
/// of a checkout the target is (a directory, or the file of a worktree or submodule).
pub const KEPT_GIT: &str = ".git";

/// The directory the charts handed to helm (`useHelmInstall: true`, `kots.io/v1beta2`) are
/// written under.
const CHARTS: &str = "charts";

/// How many unexpected entries a refusal names before it only counts the rest.
const ENTRIES_NAMED: usize = 10;

/// Why the directory target cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum DirTargetError {
    /// The path is a symbolic link or a file, lies inside or holds a directory windlass must not
    /// write, or holds entries windlass did not write.
    #[error("target dir:{path}: {reason}")]
    Refused {
        /// The directory.
        path: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Writing failed.
    #[error("target dir:{path}: {source}")]
    Write {
        /// The directory.
        path: String,
        /// What failed.
        source: OutputError,
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
    /// `.git`, moved aside while the directory was swapped, could not be moved back into it.
    #[error(
        "target dir:{path}: {KEPT_GIT} was moved aside to {kept} while the directory was swapped and could not be moved back ({problem}): move it back with `mv {kept} {path}/{KEPT_GIT}`"
    )]
    GitLeftAside {
        /// The directory.
        path: String,
        /// Where `.git` is.
        kept: String,
        /// What failed (the swap too, when it did).
        problem: String,
    },
}

/// A directory a directory target must not be, lie inside, or hold: the state directory, the
/// install's output directory, the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedDir {
    /// What it is, for messages (`state directory`).
    pub what: String,
    /// Where it is (resolved through symbolic links when checked).
    pub path: PathBuf,
}

impl ProtectedDir {
    /// `path`, described as `what`.
    pub fn new(what: &str, path: &Path) -> ProtectedDir {
        ProtectedDir {
            what: what.to_string(),
            path: path.to_path_buf(),
        }
    }
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

/// Whether `name` looks like a file [`file_name`] made: at least four digits, `-`, and `.yaml`.
/// (What an old marker, which lists nothing, lets windlass replace.)
fn is_object_file_name(name: &str) -> bool {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    digits >= 4 && name[digits..].starts_with('-') && name.ends_with(".yaml")
}

/// A chart to write beside the objects: its directory in the target and its files (path relative
/// to that directory, bytes, whether the file holds a secret).
pub type ChartFiles<'a> = (String, &'a [(String, Vec<u8>, bool)]);

/// The marker file's contents (JSON, one entry a line, so that a GitOps repository's history
/// shows what changed).
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// What wrote the directory, and what the next apply does with it.
    note: String,
    /// Every file windlass wrote, relative to the directory, `/`-separated.
    entries: Vec<String>,
}

/// What windlass may replace in an existing directory target, by its marker.
#[derive(Debug)]
enum Owned {
    /// No marker: nothing.
    Nothing,
    /// A marker of an older windlass (it lists nothing): top-level files named like windlass's
    /// object files, and `charts/` whole.
    Legacy,
    /// These files (relative, `/`-separated), listed in the marker.
    Listed(BTreeSet<String>),
}

impl Owned {
    /// What the marker in `path` says windlass wrote. A marker that is not a regular file (a
    /// symbolic link, a directory) is no marker; one that is not a list is an old one.
    fn read(path: &Path) -> Result<Owned, DirTargetError> {
        let marker = path.join(DIR_MARKER);
        match std::fs::symlink_metadata(&marker) {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => return Ok(Owned::Nothing),
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Owned::Nothing),
            Err(error) => return Err(io_error(path, &marker, error)),
        }
        let bytes = std::fs::read(&marker).map_err(|error| io_error(path, &marker, error))?;
        Ok(match serde_json::from_slice::<Marker>(&bytes) {
            Ok(listed) => Owned::Listed(listed.entries.into_iter().collect()),
            Err(_) => Owned::Legacy,
        })
    }
}

/// The error of an I/O failure on `file`, for the target `path`.
fn io_error(path: &Path, file: &Path, source: std::io::Error) -> DirTargetError {
    DirTargetError::Write {
        path: path.display().to_string(),
        source: OutputError::Io {
            path: file.to_path_buf(),
            source,
        },
    }
}

/// `path` made absolute with its symbolic links resolved: the nearest part that exists,
/// canonical, with the rest appended (`..` applied by name: what does not exist holds no links).
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for existing in absolute.ancestors() {
        let Ok(resolved) = std::fs::canonicalize(existing) else {
            continue;
        };
        let rest = absolute
            .strip_prefix(existing)
            .expect("an ancestor is a prefix");
        return windlass_stages::output_claim::append_by_name(resolved, rest);
    }
    absolute
}

/// Refuses a target `path` that is, lies inside, or holds one of `protected`, comparing the
/// paths with their symbolic links resolved. Reads nothing but the paths' parents.
pub fn check_place(path: &Path, protected: &[ProtectedDir]) -> Result<(), DirTargetError> {
    let target = resolve(path);
    let refused = |reason: String| DirTargetError::Refused {
        path: path.display().to_string(),
        reason,
    };
    if target.parent().is_none() {
        return Err(refused(
            "refusing to replace the root directory; name a new or empty directory".into(),
        ));
    }
    for guarded in protected {
        if guarded.path.as_os_str().is_empty() {
            continue;
        }
        let guarded_path = resolve(&guarded.path);
        let what = &guarded.what;
        let shown = guarded_path.display();
        if target == guarded_path {
            return Err(refused(format!(
                "it is the {what} {shown}; windlass replaces a directory target whole: name a directory outside the {what}"
            )));
        }
        if target.starts_with(&guarded_path) {
            return Err(refused(format!(
                "it is inside the {what} {shown}; windlass replaces a directory target whole: name a directory outside the {what}"
            )));
        }
        if guarded_path.starts_with(&target) {
            return Err(refused(format!(
                "it holds the {what} {shown}, which windlass replacing the directory would delete; name a directory that does not hold the {what}"
            )));
        }
    }
    Ok(())
}

/// Checks, before anything is written, that `path` may be written as a directory target: see
/// [`check_place`], then `path` must be missing, or a real directory (not a symbolic link) that
/// holds nothing but what windlass wrote there (and `.git`).
pub fn check_target(path: &Path, protected: &[ProtectedDir]) -> Result<(), DirTargetError> {
    let refused = |reason: String| DirTargetError::Refused {
        path: path.display().to_string(),
        reason,
    };
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => Some(metadata),
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            None
        }
        Err(error) => return Err(io_error(path, path, error)),
    };
    if let Some(metadata) = &metadata {
        if metadata.file_type().is_symlink() {
            return Err(refused(match std::fs::canonicalize(path) {
                Ok(real) => format!(
                    "it is a symbolic link (to {}); windlass swaps a directory target whole and would replace the link, not what it points to: name the directory itself (--target dir:{})",
                    real.display(),
                    real.display()
                ),
                Err(_) => "it is a symbolic link to nothing; name a real directory, new or empty"
                    .to_string(),
            }));
        }
        if !metadata.is_dir() {
            return Err(refused(
                "it is a file, not a directory; name a new or empty directory".into(),
            ));
        }
    }
    check_place(path, protected)?;
    if metadata.is_none() {
        return Ok(());
    }
    let owned = Owned::read(path)?;
    let unexpected = unexpected_entries(path, &owned)?;
    if unexpected.is_empty() {
        return Ok(());
    }
    let mut named = unexpected
        .iter()
        .take(ENTRIES_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if unexpected.len() > ENTRIES_NAMED {
        named.push_str(&format!(" and {} more", unexpected.len() - ENTRIES_NAMED));
    }
    let why = match owned {
        Owned::Nothing => format!(
            "the directory is not empty and windlass did not write it (no {DIR_MARKER} file); it holds {named}"
        ),
        Owned::Legacy => format!(
            "it holds entries windlass did not write: {named} (its {DIR_MARKER} file, of an older windlass, lists nothing, so only NNNN-<kind>-<name>.yaml files and {CHARTS}/ count as windlass's)"
        ),
        Owned::Listed(_) => format!(
            "it holds entries windlass did not write (they are not listed in its {DIR_MARKER} file): {named}"
        ),
    };
    Err(refused(format!(
        "{why}; windlass replaces the directory whole and never deletes what it did not write: move them elsewhere, or name a new or empty directory ({KEPT_GIT} alone is kept in place)"
    )))
}

/// The entries of the directory `path` windlass did not write by `owned` (a directory is named
/// with a trailing `/` and not looked into), sorted; `.git` and the marker are not among them.
fn unexpected_entries(path: &Path, owned: &Owned) -> Result<Vec<String>, DirTargetError> {
    // The directories holding listed files, which are looked into.
    let listed_dirs: BTreeSet<&str> = match owned {
        Owned::Listed(files) => files
            .iter()
            .flat_map(|file| file.match_indices('/').map(|(at, _)| &file[..at]))
            .collect(),
        _ => BTreeSet::new(),
    };
    let mut unexpected = Vec::new();
    let mut pending = vec![(path.to_path_buf(), String::new())];
    while let Some((directory, relative)) = pending.pop() {
        let entries =
            std::fs::read_dir(&directory).map_err(|error| io_error(path, &directory, error))?;
        for entry in entries {
            let entry = entry.map_err(|error| io_error(path, &directory, error))?;
            let is_dir = entry
                .file_type()
                .map_err(|error| io_error(path, &entry.path(), error))?
                .is_dir();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                // windlass writes only UTF-8 names.
                unexpected.push(format!("{relative}{}", name.to_string_lossy()));
                continue;
            };
            let entry_path = format!("{relative}{name}");
            if relative.is_empty() && (name == KEPT_GIT || (name == DIR_MARKER && !is_dir)) {
                continue;
            }
            let ours = match owned {
                Owned::Nothing => false,
                Owned::Legacy => {
                    if is_dir {
                        name == CHARTS
                    } else {
                        is_object_file_name(name)
                    }
                }
                Owned::Listed(files) => {
                    if is_dir {
                        let holds_listed = listed_dirs.contains(entry_path.as_str());
                        if holds_listed {
                            pending.push((entry.path(), format!("{entry_path}/")));
                        }
                        holds_listed
                    } else {
                        files.contains(&entry_path)
                    }
                }
            };
            if !ours {
                unexpected.push(if is_dir {
                    format!("{entry_path}/")
                } else {
                    entry_path
                });
            }
        }
    }
    unexpected.sort();
    Ok(unexpected)
}

/// Annotations on a Namespace the directory target writes for `additionalNamespaces`, so that a
/// GitOps tool creates it but never deletes it (Flux, Argo CD, kapp), as windlass's own prune
/// never deletes a namespace listed there: it may hold what others put in it.
pub const NEVER_PRUNED: [(&str, &str); 3] = [
    ("kustomize.toolkit.fluxcd.io/prune", "disabled"),
    ("argocd.argoproj.io/sync-options", "Prune=false"),
    ("kapp.k14s.io/delete-strategy", "orphan"),
];

/// Puts first in `planned` (the objects in apply order) the Namespace of each of `names` (the
/// app's `additionalNamespaces`; `"*"` names none, nor does the app namespace, which a GitOps
/// tool's own option creates, as Argo CD's `CreateNamespace=true`), in name order: the
/// release's own Namespace of that name, moved ahead, else one windlass writes, annotated [`NEVER_PRUNED`]. The pull secrets
/// the directory target writes into them need them to exist (the kube target creates them, when
/// missing, before anything else).
pub fn additional_namespaces_first(
    names: &[String],
    app_namespace: &str,
    planned: &mut Vec<PlannedObject>,
) {
    let mut names: Vec<&String> = names
        .iter()
        .filter(|name| *name != "*" && *name != app_namespace)
        .collect();
    names.sort();
    names.dedup();
    let mut first = Vec::with_capacity(names.len());
    for name in names {
        let key = ObjectKey::namespace(name);
        if let Some(at) = planned.iter().position(|object| object.key == key) {
            first.push(planned.remove(at));
            continue;
        }
        let annotations: serde_json::Map<String, serde_json::Value> = NEVER_PRUNED
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::Value::from(*value)))
            .collect();
        first.push(PlannedObject {
            file: "additionalNamespaces".into(),
            object: serde_json::json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": key.name, "annotations": annotations},
            }),
            key,
            step: Step::PullSecrets,
            creation_phase: i64::MIN,
            index: 0,
        });
    }
    planned.splice(0..0, first);
}

/// Writes `objects` (already in apply order) into `path`, and each of `charts` under its
/// directory, after [`check_target`] (with `protected`); returns the objects' file names, in
/// order. The marker lists every file written. A `.git` in `path` is moved aside (renamed to
/// `.<name>.windlass-git` beside `path`) just before the swap and back into the new directory
/// right after it; one left aside by an interrupted apply is moved back the same way.
pub fn write_dir(
    path: &Path,
    objects: &[ObjectFile<'_>],
    charts: &[ChartFiles<'_>],
    protected: &[ProtectedDir],
) -> Result<Vec<String>, DirTargetError> {
    let shown = path.display().to_string();
    let refused = |reason: &str| DirTargetError::Refused {
        path: shown.clone(),
        reason: reason.to_string(),
    };
    // Nothing is created before the target is known to be allowed.
    check_target(path, protected)?;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(refused("not a directory windlass can write"));
    };
    let name = name.to_string_lossy().into_owned();
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
    // One apply at a time writes into the directories of this parent (another would swap the
    // directory, or find `.git` aside, half way through this one); then the target is checked
    // again, as it is now. A file system without locks is written unlocked.
    let parent_lock =
        std::fs::File::open(out.root()).map_err(|error| io_error(path, out.root(), error))?;
    if let Err(error) = parent_lock.lock() {
        tracing::warn!(directory = %out.root().display(), %error, "target dir: cannot lock the parent directory; writing without the lock");
    }
    check_target(path, protected)?;

    let git = out.root().join(&name).join(KEPT_GIT);
    let aside = out.root().join(format!(".{name}.windlass-git"));
    let exists = |at: &Path| match std::fs::symlink_metadata(at) {
        Ok(_) => Ok(true),
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            Ok(false)
        }
        Err(error) => Err(io_error(path, at, error)),
    };
    let git_in_place = exists(&git)?;
    let git_aside = exists(&aside)?;
    if git_in_place && git_aside {
        return Err(refused(&format!(
            "both {} and {} exist: an earlier apply was interrupted while it kept {KEPT_GIT} aside; keep the one you want (remove the other) and apply again",
            git.display(),
            aside.display()
        )));
    }

    let names: Vec<String> = objects
        .iter()
        .enumerate()
        .map(|(position, object)| file_name(position + 1, objects.len(), object.object))
        .collect();
    let mut entries: Vec<String> = names.clone();
    for (directory, files) in charts {
        entries.extend(
            files
                .iter()
                .map(|(file, _, _)| format!("{directory}/{file}")),
        );
    }
    let marker = Marker {
        note: format!(
            "written by windlass apply --target dir: the next apply replaces the files listed here, keeps {KEPT_GIT}, and refuses the directory if it holds anything else"
        ),
        entries,
    };
    let mut marker_text = serde_json::to_vec_pretty(&marker).map_err(|error| {
        refused(&format!(
            "cannot write the list of files in {DIR_MARKER}: {error}"
        ))
    })?;
    marker_text.push(b'\n');

    let tree = out.replace_tree(&name).map_err(write_error)?;
    tree.write(DIR_MARKER, &marker_text, 0o644)
        .map_err(write_error)?;
    for (object, file) in objects.iter().zip(&names) {
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
        tree.write(file, text.as_bytes(), mode)
            .map_err(write_error)?;
    }
    for (directory, files) in charts {
        for (file, bytes, secret) in files.iter() {
            let mode = if *secret { 0o600 } else { 0o644 };
            tree.write(&format!("{directory}/{file}"), bytes, mode)
                .map_err(write_error)?;
        }
    }

    // `.git` leaves the old directory (which the swap removes) with one rename, and enters the
    // new one with another: never copied.
    if git_in_place {
        std::fs::rename(&git, &aside).map_err(|error| io_error(path, &git, error))?;
    }
    let committed = tree.commit().map_err(write_error);
    if (git_in_place || git_aside)
        && let Err(error) = std::fs::rename(&aside, &git)
    {
        return Err(DirTargetError::GitLeftAside {
            path: shown.clone(),
            kept: aside.display().to_string(),
            problem: match committed {
                Ok(_) => error.to_string(),
                Err(swap) => format!("{error}, after the swap failed: {swap}"),
            },
        });
    }
    committed?;
    drop(parent_lock);
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

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

    fn files(planned: &[PlannedObject]) -> Vec<ObjectFile<'_>> {
        planned
            .iter()
            .map(|object| ObjectFile {
                object,
                holds_secret: false,
            })
            .collect()
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn refusal(result: Result<Vec<String>, DirTargetError>) -> String {
        match result {
            Err(error @ DirTargetError::Refused { .. }) => error.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn the_marker_lists_what_was_written_and_the_next_apply_replaces_only_that() {
        let scratch = Scratch::new("marker");
        let target = scratch.0.join("gitops");
        let planned = planned();
        let chart_files = vec![("Chart.yaml".to_string(), b"name: shop\n".to_vec(), false)];
        let charts = vec![("charts/shop".to_string(), chart_files.as_slice())];
        let names = write_dir(&target, &files(&planned), &charts, &[]).unwrap();
        assert_eq!(
            names,
            [
                "0001-namespace-shop.yaml",
                "0002-secret-registry.yaml",
                "0003-configmap-settings.yaml"
            ]
        );
        let marker: Marker =
            serde_json::from_slice(&std::fs::read(target.join(DIR_MARKER)).unwrap()).unwrap();
        assert_eq!(
            marker.entries,
            [
                "0001-namespace-shop.yaml",
                "0002-secret-registry.yaml",
                "0003-configmap-settings.yaml",
                "charts/shop/Chart.yaml"
            ]
        );

        // A file the marker lists but this apply does not write (an object the release dropped)
        // goes; so does a changed one's old text.
        let mut marker = marker;
        marker.entries.push("0004-service-gone.yaml".into());
        std::fs::write(
            target.join(DIR_MARKER),
            serde_json::to_vec(&marker).unwrap(),
        )
        .unwrap();
        std::fs::write(target.join("0004-service-gone.yaml"), "old").unwrap();
        std::fs::write(target.join("0001-namespace-shop.yaml"), "edited").unwrap();
        write_dir(&target, &files(&planned[..2]), &[], &[]).unwrap();
        assert_eq!(
            listing(&target),
            [
                DIR_MARKER,
                "0001-namespace-shop.yaml",
                "0002-secret-registry.yaml"
            ]
        );
        assert!(
            std::fs::read_to_string(target.join("0001-namespace-shop.yaml"))
                .unwrap()
                .contains("kind: Namespace")
        );
    }

    #[test]
    fn entries_windlass_did_not_write_are_refused_named_and_left_alone() {
        let scratch = Scratch::new("foreign");
        let target = scratch.0.join("gitops");
        let planned = planned();
        let chart_files = vec![("Chart.yaml".to_string(), b"name: shop\n".to_vec(), false)];
        let charts = vec![("charts/shop".to_string(), chart_files.as_slice())];
        write_dir(&target, &files(&planned), &charts, &[]).unwrap();
        std::fs::write(target.join("kustomization.yaml"), "resources: []\n").unwrap();
        std::fs::create_dir(target.join("state")).unwrap();
        std::fs::write(target.join("state/events.redb"), "log").unwrap();
        std::fs::write(target.join("charts/shop/values-prod.yaml"), "x: 1\n").unwrap();
        let before = listing(&target);

        let message = refusal(write_dir(&target, &files(&planned), &charts, &[]));
        assert!(
            message.contains(&format!("target dir:{}: ", target.display()))
                && message.contains("charts/shop/values-prod.yaml, kustomization.yaml, state/")
                && message.contains("not listed in its .windlass-target file"),
            "{message}"
        );
        assert_eq!(listing(&target), before);
        assert_eq!(
            std::fs::read_to_string(target.join("state/events.redb")).unwrap(),
            "log"
        );
        // check_target, which the command line runs first, says the same.
        assert_eq!(check_target(&target, &[]).unwrap_err().to_string(), message);
    }

    #[test]
    fn an_old_marker_lets_windlass_replace_only_its_own_file_names_and_charts() {
        let scratch = Scratch::new("legacy");
        let target = scratch.0.join("gitops");
        std::fs::create_dir_all(target.join("charts/shop/templates")).unwrap();
        std::fs::write(
            target.join(DIR_MARKER),
            "written by windlass apply --target dir: replaced whole by the next apply\n",
        )
        .unwrap();
        std::fs::write(target.join("0001-namespace-old.yaml"), "old").unwrap();
        std::fs::write(target.join("charts/shop/templates/a.yaml"), "old").unwrap();
        let planned = planned();
        write_dir(&target, &files(&planned), &[], &[]).unwrap();
        assert_eq!(listing(&target).len(), 4, "{:?}", listing(&target));
        assert!(!target.join("charts").exists());

        // An old marker beside something else.
        std::fs::write(
            target.join(DIR_MARKER),
            "written by windlass apply --target dir: replaced whole by the next apply\n",
        )
        .unwrap();
        std::fs::write(target.join("README.md"), "mine").unwrap();
        std::fs::write(target.join("12-short.yaml"), "mine").unwrap();
        let message = refusal(write_dir(&target, &files(&planned), &[], &[]));
        assert!(
            message.contains("entries windlass did not write: 12-short.yaml, README.md")
                && message.contains("lists nothing"),
            "{message}"
        );
        assert!(target.join("README.md").exists());
    }

    #[test]
    fn a_directory_without_a_marker_is_refused_unless_empty_or_holding_only_git() {
        let scratch = Scratch::new("nomarker");
        let target = scratch.0.join("gitops");
        std::fs::create_dir_all(target.join(".git/objects")).unwrap();
        std::fs::write(target.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        let planned = planned();
        write_dir(&target, &files(&planned), &[], &[]).unwrap();
        assert_eq!(listing(&target).len(), 5);

        let other = scratch.0.join("mine");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "mine").unwrap();
        let message = refusal(write_dir(&other, &files(&planned), &[], &[]));
        assert!(
            message.contains("not empty and windlass did not write it")
                && message.contains("it holds notes.txt"),
            "{message}"
        );
    }

    #[test]
    fn git_is_kept_in_place_not_copied() {
        let scratch = Scratch::new("git");
        let target = scratch.0.join("gitops");
        let planned = planned();
        write_dir(&target, &files(&planned), &[], &[]).unwrap();
        std::fs::create_dir_all(target.join(".git/refs")).unwrap();
        std::fs::write(target.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        let inode = std::fs::metadata(target.join(".git")).unwrap().ino();
        let old_directory = std::fs::metadata(&target).unwrap().ino();

        write_dir(&target, &files(&planned), &[], &[]).unwrap();
        assert_ne!(
            std::fs::metadata(&target).unwrap().ino(),
            old_directory,
            "the directory was swapped"
        );
        assert_eq!(
            std::fs::metadata(target.join(".git")).unwrap().ino(),
            inode,
            ".git is the same directory, moved"
        );
        assert_eq!(
            std::fs::read_to_string(target.join(".git/HEAD")).unwrap(),
            "ref: refs/heads/main\n"
        );
        assert!(!scratch.0.join(".gitops.windlass-git").exists());
        let marker: Marker =
            serde_json::from_slice(&std::fs::read(target.join(DIR_MARKER)).unwrap()).unwrap();
        assert!(!marker.entries.iter().any(|entry| entry.contains(".git")));
    }

    #[test]
    fn a_git_left_aside_by_an_interrupted_apply_is_moved_back() {
        let scratch = Scratch::new("aside");
        let target = scratch.0.join("gitops");
        let planned = planned();
        write_dir(&target, &files(&planned), &[], &[]).unwrap();
        let aside = scratch.0.join(".gitops.windlass-git");
        std::fs::create_dir_all(&aside).unwrap();
        std::fs::write(aside.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        write_dir(&target, &files(&planned), &[], &[]).unwrap();
        assert!(target.join(".git/HEAD").is_file());
        assert!(!aside.exists());

        // Both: the user decides.
        std::fs::create_dir_all(&aside).unwrap();
        let message = refusal(write_dir(&target, &files(&planned), &[], &[]));
        assert!(
            message.contains("an earlier apply was interrupted"),
            "{message}"
        );
        assert!(target.join(".git/HEAD").is_file() && aside.is_dir());
    }

    #[test]
    fn a_target_is_refused_at_inside_or_around_a_protected_directory() {
        let scratch = Scratch::new("protected");
        let state = scratch.0.join("g/state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("fingerprint.key"), "key").unwrap();
        std::os::unix::fs::symlink(scratch.0.join("g"), scratch.0.join("link")).unwrap();
        let protected = [ProtectedDir::new("state directory", &state)];
        let planned = planned();
        for (target, expected) in [
            (scratch.0.join("g"), "it holds the state directory"),
            (scratch.0.join("link"), "it is a symbolic link"),
            (state.clone(), "it is the state directory"),
            (state.join("gitops"), "it is inside the state directory"),
            // Through a symbolic link among the parents.
            (
                scratch.0.join("link/state/x"),
                "it is inside the state directory",
            ),
            (
                scratch.0.join("link/state/x/.."),
                "it is the state directory",
            ),
        ] {
            let message = refusal(write_dir(&target, &files(&planned), &[], &protected));
            assert!(
                message.contains(&format!("target dir:{}: ", target.display()))
                    && message.contains(expected),
                "{}: {message}",
                target.display()
            );
        }
        assert_eq!(listing(&state), ["fingerprint.key"]);
        assert!(!state.join("gitops").exists() && !state.join("x").exists());
        write_dir(
            &scratch.0.join("elsewhere"),
            &files(&planned),
            &[],
            &protected,
        )
        .unwrap();
    }

    #[test]
    fn a_symbolic_link_or_a_file_is_refused_before_anything_is_written() {
        let scratch = Scratch::new("link");
        let real = scratch.0.join("real");
        std::fs::create_dir(&real).unwrap();
        let link = scratch.0.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let planned = planned();
        let message = refusal(write_dir(&link, &files(&planned), &[], &[]));
        assert!(
            message.contains(&format!("it is a symbolic link (to {}); ", real.display()))
                && message.contains(&format!("--target dir:{}", real.display())),
            "{message}"
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(listing(&real).is_empty());
        let file = scratch.0.join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(refusal(write_dir(&file, &files(&planned), &[], &[])).contains("it is a file"));
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
        write_dir(&target, &objects, &[], &[]).unwrap();
        assert_eq!(mode(&target.join("0001-namespace-shop.yaml")), 0o644);
        assert_eq!(mode(&target.join("0002-secret-registry.yaml")), 0o600);
        assert_eq!(mode(&target.join("0003-configmap-settings.yaml")), 0o600);
    }

    #[test]
    fn object_file_names_are_told_apart_from_others() {
        assert!(is_object_file_name("0001-namespace-shop.yaml"));
        assert!(is_object_file_name("10000-configmap-x.yaml"));
        assert!(!is_object_file_name("001-namespace-shop.yaml"));
        assert!(!is_object_file_name("0001namespace.yaml"));
        assert!(!is_object_file_name("0001-namespace-shop.yml"));
        assert!(!is_object_file_name("kustomization.yaml"));
    }
}
