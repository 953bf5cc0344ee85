//! The scratch directory a replay runs in, deleted when it ends: `release/` rebuilt from the
//! blobs `BaseFetched` names (the release directory itself is never read), `out/` for what the
//! stages write, and `state/`, a throwaway state directory whose log the replayed run records
//! into (the real log only gets the replay's verdict).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use windlass_stages::events::{BaseFetched, FileClass};
use windlass_state::{Backend, BlobError, BlobId, BlobStore, SchemaRegistry, StateDir};

use crate::ReplayError;

/// The environment variable naming the directory scratch directories are made in.
pub const SCRATCH_ENV: &str = "WINDLASS_REPLAY_SCRATCH";

/// A scratch directory, removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new scratch directory: under `$WINDLASS_REPLAY_SCRATCH` when set, else in `/dev/shm`
    /// when that is a writable directory (memory: a replay writes as many files as the install
    /// did and deletes them at once, which a disk file system makes the slowest part), else under
    /// the system's temporary directory.
    pub fn new() -> Result<Scratch, ReplayError> {
        let make = |parent: &Path| {
            tempfile::Builder::new()
                .prefix("windlass-replay-")
                .tempdir_in(parent)
        };
        let dir = match std::env::var_os(SCRATCH_ENV) {
            Some(parent) => make(Path::new(&parent)).map_err(|error| {
                ReplayError::Scratch(format!(
                    "{SCRATCH_ENV} {}: {error}",
                    Path::new(&parent).display()
                ))
            })?,
            None => make(Path::new("/dev/shm"))
                .or_else(|_| make(&std::env::temp_dir()))
                .map_err(|error| ReplayError::Scratch(error.to_string()))?,
        };
        Ok(Scratch { dir })
    }

    /// The rebuilt release.
    pub fn release(&self) -> PathBuf {
        self.dir.path().join("release")
    }

    /// The replayed output directory.
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Where replayed `apply` stages with a directory target write (`<this>/<stage name>`).
    pub fn apply_targets(&self) -> PathBuf {
        self.dir.path().join("apply-targets")
    }

    /// Opens the throwaway state directory.
    pub fn state(&self, schemas: Arc<SchemaRegistry>) -> Result<StateDir, ReplayError> {
        StateDir::open(&self.dir.path().join("state"), Backend::Redb, schemas)
            .map_err(|error| ReplayError::Scratch(error.to_string()))
    }
}

/// Reads the blobs `ids` (each named by `what(index)` in an error), checking every hash: a
/// damaged or missing blob is [`ReplayError::Blob`] naming the first bad one.
pub fn read_blobs(
    blobs: &BlobStore,
    ids: &[BlobId],
    stage: &str,
    what: impl Fn(usize) -> String,
) -> Result<Vec<Vec<u8>>, ReplayError> {
    match blobs.get_many(ids) {
        Ok(bodies) => Ok(bodies),
        Err(_) => {
            // Find the first bad one, to name it.
            for (index, id) in ids.iter().enumerate() {
                if let Err(error) = blobs.get(id) {
                    let problem = match error {
                        BlobError::Corrupted(_) => {
                            "is corrupted: its bytes no longer match its hash"
                        }
                        BlobError::Missing(_) => "is missing from the blob store",
                        _ => "cannot be read",
                    };
                    return Err(ReplayError::Blob {
                        stage: stage.to_string(),
                        file: what(index),
                        blob: id.as_str().to_string(),
                        problem: format!("{problem} ({error})"),
                    });
                }
            }
            Err(ReplayError::Scratch(
                "the blob store failed a batch read that no single read repeats".into(),
            ))
        }
    }
}

/// Writes every release file `fetched` recorded into `root` from its blob; a license file gets
/// `license` (the `--license` file's bytes) or is left out.
pub fn rebuild_release(
    fetched: &BaseFetched,
    stage: &str,
    blobs: &BlobStore,
    root: &Path,
    license: Option<&[u8]>,
) -> Result<(), ReplayError> {
    let stored: Vec<_> = fetched
        .files
        .iter()
        .filter(|file| file.blob.is_some())
        .collect();
    let ids = stored
        .iter()
        .map(|file| {
            BlobId::parse(file.blob.as_deref().unwrap_or_default()).map_err(|_| {
                ReplayError::Recorded(format!(
                    "{stage}: BaseFetched names an invalid blob for {}",
                    file.path
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bodies = read_blobs(blobs, &ids, stage, |index| stored[index].path.clone())?;
    std::fs::create_dir_all(root).map_err(|error| ReplayError::Scratch(error.to_string()))?;
    // Directories first, each once; then the files, on every core.
    let targets = stored
        .iter()
        .map(|file| inside(root, &file.path))
        .collect::<Result<Vec<_>, _>>()?;
    let parents: std::collections::BTreeSet<&Path> = targets
        .iter()
        .filter_map(|target| target.parent())
        .collect();
    for parent in parents {
        std::fs::create_dir_all(parent).map_err(|error| ReplayError::Scratch(error.to_string()))?;
    }
    let writes: Vec<_> = targets.iter().zip(&bodies).collect();
    for written in windlass_manifest::parallel::parallel_map(&writes, 256, |(target, body)| {
        std::fs::write(target, body)
            .map_err(|error| ReplayError::Scratch(format!("{}: {error}", target.display())))
    }) {
        written?;
    }
    if let Some(license) = license {
        for file in fetched
            .files
            .iter()
            .filter(|file| file.class == FileClass::License)
        {
            write_inside(root, &file.path, license)?;
        }
    }
    Ok(())
}

/// Writes `bytes` at `relative` under `root`, refusing a recorded path that would leave it.
fn write_inside(root: &Path, relative: &str, bytes: &[u8]) -> Result<(), ReplayError> {
    let target = inside(root, relative)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|error| ReplayError::Scratch(error.to_string()))?;
    }
    std::fs::write(&target, bytes).map_err(|error| ReplayError::Scratch(error.to_string()))
}

/// `relative` under `root`, refusing a recorded path that would leave it.
fn inside(root: &Path, relative: &str) -> Result<PathBuf, ReplayError> {
    let path = Path::new(relative);
    if relative.is_empty()
        || path.is_absolute()
        || path
            .components()
            .any(|part| !matches!(part, std::path::Component::Normal(_)))
    {
        return Err(ReplayError::Recorded(format!(
            "BaseFetched names a file outside the release: {relative:?}"
        )));
    }
    Ok(root.join(path))
}
