//! Known images from a KOTS `Installation` document (`spec.knownImages: [{image, isPrivate}]`): the
//! results of an earlier probe, used instead of asking the registry again (`--known-images`).

use std::collections::HashMap;
use std::path::Path;

use crate::documents::parse_documents;

/// Largest known-images file accepted.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// A problem with a known-images file.
#[derive(Debug, thiserror::Error)]
#[error("known-images file {path}: {problem}")]
pub struct KnownImagesError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Reads `spec.knownImages` of the `Installation` in `path`: image as written → is private.
pub fn read_known_images(path: &Path) -> Result<HashMap<String, bool>, KnownImagesError> {
    let shown = path.display().to_string();
    let error = |problem: String| KnownImagesError {
        path: shown.clone(),
        problem,
    };
    let size = std::fs::metadata(path)
        .map_err(|io| error(io.to_string()))?
        .len();
    if size > MAX_BYTES {
        return Err(error(format!(
            "file is {size} bytes, over the limit of {MAX_BYTES}"
        )));
    }
    let bytes = std::fs::read(path).map_err(|io| error(io.to_string()))?;
    let documents = parse_documents(&shown, &bytes).map_err(|parse| error(parse.to_string()))?;
    let installation = documents
        .iter()
        .find(|document| {
            document.kind == "Installation" && document.api_version.starts_with("kots.io/")
        })
        .ok_or_else(|| {
            error("no `kind: Installation` document with `apiVersion: kots.io/...`".into())
        })?;
    let mut known = HashMap::new();
    let Some(entries) = installation.value.pointer("/spec/knownImages") else {
        return Ok(known);
    };
    let entries = entries
        .as_array()
        .ok_or_else(|| error("`spec.knownImages` is not a list".into()))?;
    for (index, entry) in entries.iter().enumerate() {
        let image = entry
            .get("image")
            .and_then(|image| image.as_str())
            .filter(|image| !image.is_empty())
            .ok_or_else(|| {
                error(format!(
                    "`spec.knownImages[{index}].image` is missing or not a string"
                ))
            })?;
        let is_private = match entry.get("isPrivate") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(value)) => *value,
            Some(_) => {
                return Err(error(format!(
                    "`spec.knownImages[{index}].isPrivate` is not a boolean"
                )));
            }
        };
        known.insert(image.to_string(), is_private);
    }
    Ok(known)
}
