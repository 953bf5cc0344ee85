//! How a replay compares what it produced with what the install recorded. Facts are compared as
//! JSON, field by field, with the lists of output files taken out (those are compared as files)
//! and with what a replay cannot reproduce without the license ID taken out when no license was
//! given. [`OUTPUT_FILES`] says, per event type, where a fact lists files it wrote under the
//! output directory: a stage that writes files must list them there (path plus `blob`, or
//! `fingerprint` for files holding secrets) and be named in this table to be compared; a `*`
//! in a pointer stands for every element of a list (`/helm_charts/*/files`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use windlass_stages::events::{BaseFetched, FetchedFile, FileClass};

/// Event type → JSON pointers of its lists of written files (`{path, blob | fingerprint}`).
pub const OUTPUT_FILES: &[(&str, &[&str])] = &[
    ("BaseWritten", &["/files"]),
    (
        "MidstreamRendered",
        &["/overlay_files", "/rendered_files", "/helm_charts/*/files"],
    ),
];

/// What a replay knows of the credentials the install used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The license file was given (`--license`).
    pub license: bool,
    /// The pull secrets can be derived again: the license was given, or in local-registry mode
    /// the registry password (`--registry-password-file`) or none was used.
    pub secrets: bool,
    /// The password values the templates read are known: `--config-values` was given, or no
    /// rendered file held one.
    pub passwords: bool,
}

impl Known {
    /// Whether every file holding secrets can be produced again, so compared by fingerprint.
    pub fn every_secret(self) -> bool {
        self.secrets && self.passwords
    }
}

/// The lists `pointer` names in `payload`; a `*` component stands for every element of a list.
fn lists_at<'a>(payload: &'a Value, pointer: &str) -> Vec<&'a Vec<Value>> {
    match pointer.split_once("/*") {
        None => payload
            .pointer(pointer)
            .and_then(Value::as_array)
            .into_iter()
            .collect(),
        Some((outer, inner)) => payload
            .pointer(outer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|element| lists_at(element, inner))
            .collect(),
    }
}

/// One output file a fact names, borrowed from the fact (a big release's facts name tens of
/// thousands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFile<'a> {
    /// Relative to the output directory.
    pub path: &'a str,
    /// Blob of its bytes.
    pub blob: Option<&'a str>,
    /// Keyed fingerprint of its bytes, for files holding secrets.
    pub fingerprint: Option<&'a str>,
}

/// The output files `payload` (a fact of `event_type`) names.
pub fn output_files<'a>(event_type: &str, payload: &'a Value) -> Vec<OutputFile<'a>> {
    let Some((_, pointers)) = OUTPUT_FILES.iter().find(|(kind, _)| *kind == event_type) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for pointer in *pointers {
        for entry in lists_at(payload, pointer).into_iter().flatten() {
            let text = |key: &str| entry.get(key).and_then(Value::as_str);
            if let Some(path) = text("path") {
                files.push(OutputFile {
                    path,
                    blob: text("blob"),
                    fingerprint: text("fingerprint"),
                });
            }
        }
    }
    files
}

/// The top-level fields of `payload` as compared, borrowed where nothing is taken out (the facts
/// of big releases are large: copying them costs more than comparing them): without its
/// output-file lists and the output directory (a replay writes elsewhere); without `--license`,
/// also without the license files of the release (never stored); when the secrets cannot be
/// derived again (no `--license`, or in local-registry mode no `--registry-password-file`),
/// without the secrets' content fingerprints; when the password values the install's templates
/// read are not known (no `--config-values`), without the fingerprints of the documents holding
/// them, of the effective ConfigValues holding them, and of the values, output and flags of the
/// HelmCharts holding them. A payload that is not an object is one field named `""`.
pub fn comparable_fields<'a>(
    event_type: &str,
    payload: &'a Value,
    known: Known,
) -> Vec<(&'a str, Cow<'a, Value>)> {
    let Known {
        license: license_given,
        secrets: secrets_known,
        passwords: passwords_known,
    } = known;
    let Some(object) = payload.as_object() else {
        return vec![("", Cow::Borrowed(payload))];
    };
    let output_lists: &[&str] = OUTPUT_FILES
        .iter()
        .find(|(kind, _)| *kind == event_type)
        .map_or(&[], |(_, pointers)| pointers);
    object
        .iter()
        .filter(|(key, _)| key.as_str() != "out_dir")
        .map(|(key, value)| {
            // An apply stage's directory target is a scratch directory in the replay.
            if event_type == "ApplyCompleted"
                && key == "target"
                && let Some(target) = value.as_object()
                && target.get("kind").and_then(Value::as_str) == Some("dir")
            {
                let mut target = target.clone();
                target.remove("path");
                return (key.as_str(), Cow::Owned(Value::Object(target)));
            }
            if output_lists
                .iter()
                .any(|pointer| pointer.strip_prefix('/') == Some(key.as_str()))
            {
                return (key.as_str(), Cow::Owned(Value::Null));
            }
            // A list of files inside each element of a list (`/helm_charts/*/files`): the
            // elements are compared without it.
            if let Some(inner) = output_lists.iter().find_map(|pointer| {
                pointer
                    .strip_prefix('/')?
                    .strip_prefix(key.as_str())?
                    .strip_prefix("/*/")
            }) && let Some(elements) = value.as_array()
            {
                let stripped = elements
                    .iter()
                    .map(|element| {
                        let mut element = element.clone();
                        if let Some(object) = element.as_object_mut() {
                            object.remove(inner);
                        }
                        element
                    })
                    .collect();
                return (key.as_str(), Cow::Owned(Value::Array(stripped)));
            }
            if license_given && secrets_known && passwords_known {
                return (key.as_str(), Cow::Borrowed(value));
            }
            let adjusted = match (event_type, key.as_str()) {
                ("SecretsProvisioned", "secrets") if !secrets_known => {
                    let mut secrets = value.clone();
                    for secret in secrets.as_array_mut().into_iter().flatten() {
                        if let Some(secret) = secret.as_object_mut() {
                            secret.remove("content_fingerprint");
                        }
                    }
                    Some(secrets)
                }
                ("BaseFetched", "files") if !license_given => {
                    let is_license =
                        |file: &Value| file.get("class").and_then(Value::as_str) == Some("license");
                    value
                        .as_array()
                        .filter(|files| files.iter().any(is_license))
                        .map(|files| {
                            Value::Array(
                                files
                                    .iter()
                                    .filter(|file| !is_license(file))
                                    .cloned()
                                    .collect(),
                            )
                        })
                }
                // The digest of an applied Secret covers its content: a pull secret's derives
                // from the license ID (or the registry password), and any Secret, or any object
                // rendered from a file holding one (digested with the state's key), may hold a
                // password value the templates read.
                ("ObjectsApplied" | "ObjectsSending", "objects")
                    if !secrets_known || !passwords_known =>
                {
                    let mut objects = value.clone();
                    for object in objects.as_array_mut().into_iter().flatten() {
                        let pull_secret =
                            object.get("step").and_then(Value::as_str) == Some("pull_secrets");
                        // Any object rendered from a password item is digested with the
                        // state's key too (`fp1:…`), a ConfigMap as much as a Secret.
                        let secret = object.pointer("/key/kind").and_then(Value::as_str)
                            == Some("Secret")
                            && object.pointer("/key/group").and_then(Value::as_str) == Some("")
                            || object
                                .get("digest")
                                .and_then(Value::as_str)
                                .is_some_and(|digest| digest.starts_with("fp1:"));
                        if ((pull_secret && !secrets_known) || (secret && !passwords_known))
                            && let Some(object) = object.as_object_mut()
                        {
                            object.remove("digest");
                        }
                    }
                    Some(objects)
                }
                // A HelmChart holding a password value: its values, helm's output and its
                // flags are recorded by fingerprint, which a replay without the passwords does not
                // reproduce.
                ("BaseFetched", "helm_charts") if !passwords_known => {
                    let mut charts = value.clone();
                    for chart in charts.as_array_mut().into_iter().flatten() {
                        if let Some(chart) = chart.as_object_mut() {
                            for field in [
                                "values_fingerprint",
                                "output_fingerprint",
                                "helm_upgrade_flags_fingerprint",
                            ] {
                                chart.remove(field);
                            }
                        }
                    }
                    Some(charts)
                }
                // The effective ConfigValues holding a password value, by fingerprint.
                ("BaseFetched", "templates") if !passwords_known => {
                    let mut templates = value.clone();
                    if let Some(effective) = templates
                        .get_mut("effective_values")
                        .and_then(Value::as_object_mut)
                    {
                        effective.remove("fingerprint");
                    }
                    Some(templates)
                }
                ("BaseFetched", "documents") if !passwords_known => {
                    let mut documents = value.clone();
                    for document in documents.as_array_mut().into_iter().flatten() {
                        if let Some(document) = document.as_object_mut() {
                            document.remove("fingerprint");
                        }
                    }
                    Some(documents)
                }
                _ => None,
            };
            (
                key.as_str(),
                adjusted.map_or(Cow::Borrowed(value), Cow::Owned),
            )
        })
        .collect()
}

/// Whether `value` is written (as `serde_json::to_string` writes it) exactly as `text`. The
/// writing is checked as it goes, never kept (a big release's facts are megabytes of text), and
/// stops at the first byte that differs.
pub fn written_as(value: &Value, text: &str) -> bool {
    let mut check = WrittenAs {
        rest: text.as_bytes(),
    };
    serde_json::to_writer(&mut check, value).is_ok() && check.rest.is_empty()
}

/// What [`written_as`] writes into: the part of the expected text not yet written.
struct WrittenAs<'a> {
    rest: &'a [u8],
}

impl std::io::Write for WrittenAs<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.rest.strip_prefix(bytes) {
            Some(rest) => {
                self.rest = rest;
                Ok(bytes.len())
            }
            None => Err(std::io::Error::other("written differently")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the recorded `BaseFetched` and the replayed one (`replayed`, its JSON) are equal in
/// every field [`comparable_fields`] compares when only the license is unknown: equal but for the
/// release's license files, which a replay without `--license` does not have. Compared decoded,
/// which is many times quicker than comparing the JSON trees of a big release; `false` (also for
/// a replayed fact that does not decode) sends the caller to those.
pub fn base_fetched_equal_but_for_license(recorded: &BaseFetched, replayed: &Value) -> bool {
    let Ok(replayed) = BaseFetched::deserialize(replayed) else {
        return false;
    };
    let not_license = |file: &&FetchedFile| file.class != FileClass::License;
    let BaseFetched {
        release_digest,
        files,
        documents,
        unreferenced_charts,
        superseded_helm_charts,
        templates,
        helm_charts,
    } = recorded;
    *release_digest == replayed.release_digest
        && files
            .iter()
            .filter(not_license)
            .eq(replayed.files.iter().filter(not_license))
        && *documents == replayed.documents
        && *unreferenced_charts == replayed.unreferenced_charts
        && *superseded_helm_charts == replayed.superseded_helm_charts
        && *templates == replayed.templates
        && *helm_charts == replayed.helm_charts
}

/// Appends to `out` (up to `limit` entries) where `replayed`'s fields differ from `recorded`'s
/// (both from [`comparable_fields`]), as `field.path: recorded → replayed`.
pub fn field_differences(
    recorded: &[(&str, Cow<'_, Value>)],
    replayed: &[(&str, Cow<'_, Value>)],
    out: &mut Vec<String>,
    limit: usize,
) {
    for (key, value) in recorded {
        if out.len() >= limit {
            return;
        }
        match replayed.iter().find(|(name, _)| name == key) {
            Some((_, other)) => json_differences(value, other, key, out, limit),
            None => out.push(format!(
                "{}: {} → (absent)",
                if key.is_empty() { "(value)" } else { key },
                short(value)
            )),
        }
    }
    for (key, value) in replayed {
        if out.len() < limit && !recorded.iter().any(|(name, _)| name == key) {
            out.push(format!("{key}: (absent) → {}", short(value)));
        }
    }
}

/// Appends to `out` (up to `limit` entries) where `replayed` differs from `recorded`, as
/// `path: recorded → replayed`.
pub fn json_differences(
    recorded: &Value,
    replayed: &Value,
    path: &str,
    out: &mut Vec<String>,
    limit: usize,
) {
    if out.len() >= limit || recorded == replayed {
        return;
    }
    match (recorded, replayed) {
        (Value::Object(left), Value::Object(right)) => {
            for (key, value) in left {
                let child = join(path, key);
                match right.get(key) {
                    Some(other) => json_differences(value, other, &child, out, limit),
                    None => out.push(format!("{child}: {} → (absent)", short(value))),
                }
                if out.len() >= limit {
                    return;
                }
            }
            for (key, value) in right {
                if !left.contains_key(key) && out.len() < limit {
                    out.push(format!("{}: (absent) → {}", join(path, key), short(value)));
                }
            }
        }
        (Value::Array(left), Value::Array(right)) => {
            for (index, (a, b)) in left.iter().zip(right).enumerate() {
                json_differences(a, b, &format!("{path}[{index}]"), out, limit);
                if out.len() >= limit {
                    return;
                }
            }
            for (index, value) in left.iter().enumerate().skip(right.len()) {
                if out.len() < limit {
                    out.push(format!("{path}[{index}]: {} → (absent)", short(value)));
                }
            }
            for (index, value) in right.iter().enumerate().skip(left.len()) {
                if out.len() < limit {
                    out.push(format!("{path}[{index}]: (absent) → {}", short(value)));
                }
            }
        }
        _ => out.push(format!(
            "{}: {} → {}",
            if path.is_empty() { "(value)" } else { path },
            short(recorded),
            short(replayed)
        )),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A value for a one-line message: at most 120 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(117).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// The first line where two texts differ, as `line N: "old" → "new"`.
pub fn first_differing_line(recorded: &[u8], produced: &[u8]) -> String {
    let recorded = String::from_utf8_lossy(recorded);
    let produced = String::from_utf8_lossy(produced);
    let mut left = recorded.lines();
    let mut right = produced.lines();
    let mut number = 1;
    loop {
        match (left.next(), right.next()) {
            (Some(a), Some(b)) if a == b => number += 1,
            (None, None) => return "the bytes differ (line endings)".into(),
            (a, b) => {
                let show = |line: Option<&str>| {
                    line.map_or("(end of file)".to_string(), |line| {
                        short(&Value::String(line.to_string()))
                    })
                };
                return format!("line {number}: {} → {}", show(a), show(b));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_is_written_as_the_text_serde_json_writes_for_it_only() {
        let value = json!({"images": [{"image": "quay.io/a:1", "uses": 3}], "note": "a \"b\""});
        let text = serde_json::to_string(&value).expect("serializes");
        assert!(written_as(&value, &text));
        // Shorter, longer, one byte changed, or the same JSON spaced otherwise: not written so.
        assert!(!written_as(&value, &text[..text.len() - 1]));
        assert!(!written_as(&value, &format!("{text} ")));
        assert!(!written_as(&value, &text.replace("uses\":3", "uses\":4")));
        assert!(!written_as(
            &value,
            &serde_json::to_string_pretty(&value).expect("serializes")
        ));
        assert!(written_as(&json!(null), "null"));
        assert!(!written_as(&json!(null), ""));
    }

    #[test]
    fn differences_name_the_field_path() {
        let mut out = Vec::new();
        json_differences(
            &json!({"images": [{"decision": "private"}], "n": 1}),
            &json!({"images": [{"decision": "public"}], "n": 1}),
            "",
            &mut out,
            10,
        );
        assert_eq!(out, ["images[0].decision: \"private\" → \"public\""]);
    }

    fn fetched(with_license: bool, replicas_file_blob: &str) -> Value {
        let mut files = vec![json!({
            "path": "manifests/app.yaml", "class": "yaml", "size": 120, "blob": replicas_file_blob,
        })];
        if with_license {
            files.push(json!({ "path": "userdata/license.yaml", "class": "license", "size": 900, "blob": null }));
        }
        json!({
            "release_digest": "blake3:00ff",
            "files": files,
            "documents": [{
                "file": "manifests/app.yaml", "index": 0, "line": 1, "api_version": "apps/v1",
                "kind": "Deployment", "namespace": null, "name": "app", "class": "kubernetes_object",
                "blob": replicas_file_blob,
            }],
        })
    }

    #[test]
    fn base_fetched_is_equal_without_its_license_files_and_only_then() {
        let recorded = BaseFetched::deserialize(&fetched(true, "blake3:aa")).expect("decodes");
        // The replay without --license has no license file: equal as compared, though the JSON
        // differs.
        let replayed = fetched(false, "blake3:aa");
        assert_ne!(serde_json::to_value(&recorded).expect("encodes"), replayed);
        assert!(base_fetched_equal_but_for_license(&recorded, &replayed));
        // Any other difference is one.
        assert!(!base_fetched_equal_but_for_license(
            &recorded,
            &fetched(false, "blake3:bb")
        ));
        let mut other_digest = fetched(false, "blake3:aa");
        other_digest["release_digest"] = "blake3:0100".into();
        assert!(!base_fetched_equal_but_for_license(
            &recorded,
            &other_digest
        ));
        // A fact that does not decode is left to the field-by-field comparison.
        assert!(!base_fetched_equal_but_for_license(
            &recorded,
            &json!({"files": 3})
        ));
    }
}
