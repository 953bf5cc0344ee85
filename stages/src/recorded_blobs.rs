//! Reading back the release files `fetch_base` stored, for the stages that work from the recorded
//! `BaseFetched` (write_base, probe_images and the stages reading KOTS kinds). A blob that is
//! damaged or gone is not the stage's own failure: the error names the release file it held and
//! how to recover, and marks the input stage that stored it as stale, so that running
//! `windlass install` on the release again runs `fetch_base` once more, which stores the file's
//! bytes again and so repairs the blob.

use std::path::Path;

use windlass_engine::StageError;
use windlass_state::{BlobError, BlobId, BlobStore};

use crate::events::BaseFetched;

/// Where the blobs being read come from: the recorded release and the stage that recorded it.
pub(crate) struct ReleaseBlobs<'a> {
    /// The recorded release.
    pub fetched: &'a BaseFetched,
    /// The release directory, for the recovery hint.
    pub release_dir: &'a Path,
    /// The input stage that recorded `fetched` (normally `fetch_base`).
    pub recorded_by: Option<&'a str>,
}

impl ReleaseBlobs<'_> {
    /// Reads `ids` (blobs of `fetched`) in one transaction, one body per id.
    pub fn read(&self, blobs: &BlobStore, ids: &[BlobId]) -> Result<Vec<Vec<u8>>, StageError> {
        blobs.get_many(ids).map_err(|error| self.failure(error))
    }

    /// The release file (path relative to the release) whose contents, or one of whose documents,
    /// blob `id` holds.
    fn release_path_of(&self, id: &BlobId) -> Option<&str> {
        let hex = id.as_str();
        self.fetched
            .files
            .iter()
            .find(|file| file.blob.as_deref() == Some(hex))
            .map(|file| file.path.as_str())
            .or_else(|| {
                self.fetched
                    .documents
                    .iter()
                    .find(|document| document.blob.as_deref() == Some(hex))
                    .map(|document| document.file.as_str())
            })
    }

    fn failure(&self, error: BlobError) -> StageError {
        let (id, what) = match &error {
            BlobError::Corrupted(id) => (id, "is corrupted (its bytes no longer match their hash)"),
            BlobError::Missing(id) => (id, "is missing from the blob store"),
            _ => return StageError::permanent(error.to_string()),
        };
        let file = self
            .release_path_of(id)
            .map(|path| format!("release file {path}"))
            .unwrap_or_else(|| "a release file".into());
        let failure = StageError::permanent(format!(
            "the stored copy of {file} (blob {id}) {what}; re-run `windlass install {}` with the same options to fetch it again",
            self.release_dir.display()
        ));
        match self.recorded_by {
            Some(stage) => failure.with_stale_input(stage),
            None => failure,
        }
    }
}
