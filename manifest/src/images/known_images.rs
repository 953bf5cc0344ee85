//! Known images from a KOTS `Installation` document (`spec.knownImages: [{image, isPrivate}]`): the
//! results of an earlier probe, used instead of asking the registry again (`--known-images`).
//! Images are matched as written, as KOTS matches them; two entries for the same image string that
//! disagree (one private, one public) are an error naming both.

use std::collections::HashMap;
use std::path::Path;

use windlass_kots::yaml_1_1_bool;

use crate::documents::parse_documents;

/// Largest known-images file accepted.
const MAX_BYTES: u64 = 16 * windlass_files::MIB;

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
    let bytes = windlass_files::read_regular_file(path, MAX_BYTES)
        .map_err(|read| error(read.to_string()))?;
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
    // The first entry for each image, to name it when a later one contradicts it.
    let mut first_entry: HashMap<&str, (usize, bool)> = HashMap::new();
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
        let not_a_boolean = || {
            error(format!(
                "`spec.knownImages[{index}].isPrivate` is not a boolean"
            ))
        };
        let is_private = match entry.get("isPrivate") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(value)) => *value,
            Some(serde_json::Value::String(word)) => {
                yaml_1_1_bool(word).ok_or_else(not_a_boolean)?
            }
            Some(_) => return Err(not_a_boolean()),
        };
        match first_entry.get(image) {
            Some(&(first, first_private)) if first_private != is_private => {
                return Err(error(format!(
                    "`spec.knownImages[{first}]` (isPrivate {first_private}) and \
                     `spec.knownImages[{index}]` (isPrivate {is_private}) disagree about image \
                     {image:?}: keep one of them"
                )));
            }
            Some(_) => {}
            None => {
                first_entry.insert(image, (index, is_private));
            }
        }
        known.insert(image.to_string(), is_private);
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_disagreeing_about_an_image_are_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("installation.yaml");
        std::fs::write(
            &path,
            "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: a\nspec:\n  knownImages:\n    - image: a:1\n      isPrivate: true\n    - image: b:1\n    - image: a:1\n      isPrivate: true\n    - image: a:1\n      isPrivate: false\n",
        )
        .unwrap();
        let refused = read_known_images(&path).unwrap_err().to_string();
        assert_eq!(
            refused,
            format!(
                "known-images file {}: `spec.knownImages[0]` (isPrivate true) and \
                 `spec.knownImages[3]` (isPrivate false) disagree about image \"a:1\": keep one of them",
                path.display()
            )
        );
    }

    #[test]
    fn is_private_takes_the_boolean_words_kots_takes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("installation.yaml");
        std::fs::write(
            &path,
            "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: a\nspec:\n  knownImages:\n    - image: a:1\n      isPrivate: yes\n    - image: b:1\n      isPrivate: Off\n    - image: c:1\n      isPrivate: true\n    - image: d:1\n",
        )
        .unwrap();
        let known = read_known_images(&path).unwrap();
        let expected = [("a:1", true), ("b:1", false), ("c:1", true), ("d:1", false)];
        assert_eq!(
            known,
            expected
                .iter()
                .map(|(image, private)| (image.to_string(), *private))
                .collect::<HashMap<_, _>>()
        );

        std::fs::write(
            &path,
            "apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: a\nspec:\n  knownImages:\n    - image: a:1\n      isPrivate: maybe\n",
        )
        .unwrap();
        let refused = read_known_images(&path).unwrap_err().to_string();
        assert!(
            refused.contains("`spec.knownImages[0].isPrivate` is not a boolean"),
            "{refused}"
        );
    }
}
