//! The `fetch_base` stage: reads the release (see [`crate::release::scan`]), checks that it is the
//! release the install was started with, stores every file and document body in the blob store, and
//! records one `BaseFetched` fact listing files, documents (apiVersion, kind, namespace, name) and
//! blobs. License files are recognised by content and never stored. It writes nothing to the output
//! directory; [`crate::write_base`] does that from the recorded facts.

use std::sync::Arc;

use serde::Deserialize;
use windlass_engine::{Fact, Stage, StageConfig, StageContext, StageError, StageKind, StageOutput};

use crate::documents::ParsedCache;
use crate::events::{BASE_FETCHED, BaseFetched, FetchedDocument, FetchedFile};
use crate::release::{FileContents, Limits, Release, ReleaseError, ReleaseSnapshot, scan_cached};

/// Registration of this stage kind.
pub const KIND: StageKind = StageKind {
    kind: "fetch_base",
    description: "read the release, store its files as blobs and record BaseFetched",
    factory: |config| {
        let config: FetchBaseConfig = serde_json::from_value(config.clone())
            .map_err(|error| format!("fetch_base: {error}"))?;
        Ok(Box::new(config))
    },
};

/// Configuration: the size limits for reading the release.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchBaseConfig {
    /// Limits for the release.
    #[serde(flatten)]
    pub limits: Limits,
}

impl StageConfig for FetchBaseConfig {
    fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.limits.max_file_bytes == 0 {
            problems.push("max_file_bytes must be positive".to_string());
        }
        if self.limits.max_total_bytes < self.limits.max_file_bytes {
            problems.push("max_total_bytes must be at least max_file_bytes".to_string());
        }
        if self.limits.max_files == 0 {
            problems.push("max_files must be positive".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn build(&self) -> Arc<dyn Stage> {
        Arc::new(FetchBase {
            limits: self.limits,
        })
    }
}

/// The runtime stage.
pub struct FetchBase {
    limits: Limits,
}

/// Maps a release problem to a stage failure.
pub fn release_failure(error: ReleaseError) -> StageError {
    match error {
        ReleaseError::Root { .. }
        | ReleaseError::Read { .. }
        | ReleaseError::Unreadable {
            problem: windlass_files::ReadError::Io { .. },
            ..
        } => StageError::permanent(error.to_string()),
        other => StageError::invalid_input(other.to_string()),
    }
}

#[async_trait::async_trait]
impl Stage for FetchBase {
    async fn run(&self, context: &StageContext) -> Result<StageOutput, StageError> {
        let limits = self.limits;
        let root = context.request.release_dir.clone();
        let progress = context.progress.clone();
        let stage_name = context.stage_name.clone();
        let blobs = context.blobs.clone();
        let expected_digest = context.request.release_digest.clone();
        let parsed_cache = context.memo.get::<ParsedCache>();
        let snapshot = context.memo.get::<ReleaseSnapshot>();
        tokio::task::spawn_blocking(move || {
            let clock = std::time::Instant::now();
            let on_file = |done, total| progress.stage_advanced(&stage_name, done, total);
            let release = scan_cached(
                &root,
                &limits,
                Some(&parsed_cache),
                Some(&snapshot),
                on_file,
            )
            .map_err(release_failure)?;
            tracing::debug!(files = release.files.len(), elapsed = ?clock.elapsed(), "read and parsed the release");
            let digest = release.digest();
            if digest != expected_digest {
                return Err(StageError::invalid_input(format!(
                    "the release in {} changed since this install started (digest {digest}, expected {expected_digest}); run `windlass install` again to start a new install",
                    root.display()
                )));
            }
            let recorded = record(&release, &blobs, digest);
            tracing::debug!(elapsed = ?clock.elapsed(), "stored the release");
            recorded
        })
        .await
        .map_err(|error| StageError::permanent(format!("fetch_base task failed: {error}")))?
    }
}

fn record(
    release: &Release,
    blobs: &windlass_state::BlobStore,
    release_digest: String,
) -> Result<StageOutput, StageError> {
    let blob_failure = |error: windlass_state::BlobError| StageError::permanent(error.to_string());
    let mut files = Vec::with_capacity(release.files.len());
    let mut documents = Vec::new();
    for file in &release.files {
        let blob = match file.contents {
            FileContents::License => None,
            _ => Some(blobs.put(&file.bytes).map_err(blob_failure)?.to_string()),
        };
        files.push(FetchedFile {
            path: file.path.clone(),
            class: file.class(),
            size: file.size,
            blob,
        });
        if let FileContents::Yaml(parsed) = &file.contents {
            for document in parsed {
                let blob = blobs
                    .put(document.text.as_bytes())
                    .map_err(blob_failure)?
                    .to_string();
                documents.push(FetchedDocument {
                    file: document.file.clone(),
                    index: document.index,
                    line: document.line,
                    api_version: document.api_version.clone(),
                    kind: document.kind.clone(),
                    namespace: document.namespace.clone(),
                    name: document.name.clone(),
                    class: document.class,
                    blob,
                });
            }
        }
    }
    // Blobs must be durable before the event that names them.
    blobs.sync().map_err(blob_failure)?;
    let summary = format!("{} files, {} documents", files.len(), documents.len());
    let fact = Fact::new(
        BASE_FETCHED,
        1,
        &BaseFetched {
            release_digest,
            files,
            documents,
        },
    )?;
    Ok(StageOutput {
        facts: vec![fact],
        summary,
    })
}
