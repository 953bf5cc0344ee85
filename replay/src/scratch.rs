//! The scratch directory a replay runs in, deleted when it ends: `release/`, an empty directory
//! standing for the release (its files are rebuilt in memory from the blobs `BaseFetched` names and
//! handed to `fetch_base` as if read from there; the release directory itself is never read),
//! `out/`, the output directory, empty too: the stages write their output into memory
//! ([`windlass_engine::MemoryOutput`]), where the replay compares it (a replay wrote and deleted as
//! many files as the install wrote, which was most of its time), and `apply-targets/` for the apply
//! stages with a directory target. The replayed run records its events into a log held in memory
//! ([`windlass_state::MemoryStore`]); the real log only gets the replay's verdict.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use windlass_engine::MemoryOutput;
use windlass_stages::events::{BaseFetched, FileClass};
use windlass_state::{BlobError, BlobId, BlobStore};

use crate::ReplayError;

/// The environment variable naming the directory scratch directories are made in.
pub const SCRATCH_ENV: &str = "WINDLASS_REPLAY_SCRATCH";

/// A scratch directory, removed on drop, and the output directory the replayed stages write in
/// memory.
pub struct Scratch {
    dir: tempfile::TempDir,
    output: Arc<MemoryOutput>,
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
        for inside in ["release", "out"] {
            std::fs::create_dir(dir.path().join(inside))
                .map_err(|error| ReplayError::Scratch(format!("{inside}: {error}")))?;
        }
        Ok(Scratch {
            dir,
            output: Arc::default(),
        })
    }

    /// The output directory's files, in memory.
    pub fn output(&self) -> &Arc<MemoryOutput> {
        &self.output
    }

    /// The directory standing for the release (empty).
    pub fn release(&self) -> PathBuf {
        self.dir.path().join("release")
    }

    /// The replayed output directory (empty on the disk: see [`Scratch::output`]).
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Where replayed `apply` stages with a directory target write (`<this>/<stage name>`).
    pub fn apply_targets(&self) -> PathBuf {
        self.dir.path().join("apply-targets")
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

/// Every release file `fetched` recorded, by path relative to the release, from its blob; a
/// license file gets `license` (the `--license` file's bytes) or is left out. A recorded path that
/// would leave the release is refused.
pub fn release_files(
    fetched: &BaseFetched,
    stage: &str,
    blobs: &BlobStore,
    license: Option<&[u8]>,
) -> Result<Vec<(String, Vec<u8>)>, ReplayError> {
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
    let mut files = Vec::with_capacity(stored.len() + 1);
    for (file, body) in stored.iter().zip(bodies) {
        check_inside(&file.path)?;
        files.push((file.path.clone(), body));
    }
    if let Some(license) = license {
        for file in fetched
            .files
            .iter()
            .filter(|file| file.class == FileClass::License)
        {
            check_inside(&file.path)?;
            files.push((file.path.clone(), license.to_vec()));
        }
    }
    Ok(files)
}

/// Refuses a recorded release path that is not plain and relative (it would leave the release).
fn check_inside(relative: &str) -> Result<(), ReplayError> {
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
    Ok(())
}
