//! Splitting a YAML file into documents and classifying each one. Files are split on `---` document
//! markers in the text, so each document keeps its exact bytes (comments and formatting included)
//! when it is written to `base/`; each piece is then parsed on its own with serde-saphyr under a
//! budget that stops alias bombs and runaway nesting. Errors name the file, the document and the
//! line. A [`ParsedCache`] (kept in the engine's memo) lets later stages reuse what an earlier
//! stage parsed: documents are looked up by the hash of their exact text.

use std::sync::Arc;

use serde_saphyr::{Budget, Options};

pub use crate::parsed_cache::{ParsedCache, Reuse};
use serde::{Deserialize, Serialize};

/// A YAML document of a release file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file, relative to the release.
    pub file: String,
    /// Position among the file's non-empty documents, from 0.
    pub index: usize,
    /// Line where the document's text starts, from 1.
    pub line: usize,
    /// The document's exact text, ending with a newline (empty in a document a stage rebuilt from
    /// its record and the parsed cache: the recorded blob holds the text).
    pub text: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
    /// Classification.
    pub class: DocumentClass,
    /// The parsed document, shared with the [`ParsedCache`] that may hold it.
    pub value: Arc<serde_json::Value>,
}

impl Document {
    /// The document as image discovery sees it.
    pub fn as_source(&self) -> crate::images::discovery::SourceDocument<'_> {
        crate::images::discovery::SourceDocument {
            file: &self.file,
            index: self.index,
            api_version: &self.api_version,
            kind: &self.kind,
            namespace: self.namespace.as_deref(),
            name: self.name.as_deref(),
            value: self.value.as_ref(),
        }
    }

    /// "file (document N, line L)" for messages.
    pub fn location(&self) -> String {
        format!(
            "{} (document {}, line {})",
            self.file,
            self.index + 1,
            self.line
        )
    }

    /// Whether this is a KOTS License (any `kots.io/` version: a license is never mistaken for
    /// something to store).
    pub fn is_license(&self) -> bool {
        self.kind == "License" && self.api_version.starts_with("kots.io/")
    }

    /// The Helm release name of a KOTS `HelmChart` (see [`windlass_kots::helm_chart_release_name`]).
    pub fn helm_chart_release_name(&self) -> Option<&str> {
        windlass_kots::helm_chart_release_name(&self.api_version, &self.kind, &self.value)
    }
}

/// A problem with one YAML document.
#[derive(Debug, thiserror::Error)]
#[error("{file} (document {document}, line {line}): {problem}")]
pub struct DocumentError {
    /// The file.
    pub file: String,
    /// The document, from 1.
    pub document: usize,
    /// The line in the file, from 1.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// Most documents one file may hold.
pub const MAX_DOCUMENTS_PER_FILE: usize = 10_000;

/// How every YAML text windlass reads is parsed: with limits for untrusted input, and with plain
/// scalars resolved as kustomize (kyaml, on go-yaml v3) resolves them, so that the native build
/// keeps what `kubectl kustomize` keeps: only `true`/`false` spellings are booleans (`yes`, `no`,
/// `on`, `off`, `y` and `n` stay strings), and an integer with a leading `0` is octal.
pub(crate) fn parse_options() -> Options {
    let mut budget = Budget::default();
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 64;
    budget.max_nodes = 250_000;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 8 * 1024 * 1024;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options.strict_booleans = true;
    options.legacy_octal_numbers = true;
    options
}

/// Splits `text` at document markers, returning (first line, text) of every piece that has content.
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_line = 1;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let line_number = number + 1;
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "..." || bare.starts_with("... ");
        if is_start || is_end {
            pieces.push((current_line, std::mem::take(&mut current)));
            current_line = line_number + usize::from(is_end);
            if is_start {
                // Content after the marker (`--- !tag` or `--- value`) belongs to the new document.
                let rest = &bare[3..];
                if !rest.trim().is_empty() {
                    current.push_str(rest.trim_start());
                    current.push('\n');
                } else {
                    current_line = line_number + 1;
                }
            }
            continue;
        }
        current.push_str(line);
    }
    pieces.push((current_line, current));
    pieces
        .into_iter()
        .filter(|(_, piece)| has_content(piece))
        .map(|(line, mut piece)| {
            if !piece.ends_with('\n') {
                piece.push('\n');
            }
            (line, piece)
        })
        .collect()
}

/// Whether a piece holds anything besides blank lines, comments and directives.
fn has_content(piece: &str) -> bool {
    piece.lines().any(|line| {
        let trimmed = line.trim();
        !(trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%'))
    })
}

fn string_at<'a>(value: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// The value of one YAML document: from the fast path when the document has its shape (checked
/// against serde-saphyr in debug builds), else from serde-saphyr, which also reports every error.
pub fn parse_value(text: &str) -> Result<serde_json::Value, serde_saphyr::Error> {
    if let Some(value) = crate::yaml_fast_path::parse(text) {
        debug_assert_eq!(
            serde_saphyr::from_str_with_options::<serde_json::Value>(text, parse_options()).ok(),
            Some(value.clone()),
            "the YAML fast path disagrees with serde-saphyr on {text:?}"
        );
        return Ok(value);
    }
    serde_saphyr::from_str_with_options(text, parse_options())
}

/// Parses one document's text (starting at file line `line`); an error is (file line, problem).
pub(crate) fn parse_piece(piece: &str, line: usize) -> Result<serde_json::Value, (usize, String)> {
    parse_value(piece).map_err(|parse| {
        let location = parse.location();
        // serde-saphyr counts lines from the start of this document; report file lines.
        let at = location
            .map(|location| line + location.line() as usize - 1)
            .unwrap_or(line);
        let message = parse.to_string();
        let message = first_line(&message);
        let message = message
            .find(" at line ")
            .map(|cut| &message[..cut])
            .unwrap_or(message);
        let column = location
            .map(|location| format!(" at column {}", location.column()))
            .unwrap_or_default();
        (at, format!("invalid YAML{column}: {message}"))
    })
}

/// Parses and classifies every document of a YAML file.
pub fn parse_documents(file: &str, bytes: &[u8]) -> Result<Vec<Document>, DocumentError> {
    parse_documents_with(file, bytes, Reuse::Nothing)
}

/// [`parse_documents`], reusing already parsed documents as `reuse` says.
pub fn parse_documents_with(
    file: &str,
    bytes: &[u8],
    reuse: Reuse<'_>,
) -> Result<Vec<Document>, DocumentError> {
    let error = |document: usize, line: usize, problem: String| DocumentError {
        file: file.to_string(),
        document,
        line,
        problem,
    };
    let text = std::str::from_utf8(bytes).map_err(|utf8| {
        let line = 1 + bytes[..utf8.valid_up_to()]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count();
        error(1, line, format!("not valid UTF-8 ({utf8})"))
    })?;
    let pieces = split_documents(text);
    if pieces.len() > MAX_DOCUMENTS_PER_FILE {
        return Err(error(
            MAX_DOCUMENTS_PER_FILE + 1,
            pieces[MAX_DOCUMENTS_PER_FILE].0,
            format!("more than {MAX_DOCUMENTS_PER_FILE} documents in one file"),
        ));
    }
    let mut documents = Vec::with_capacity(pieces.len());
    for (line, piece) in pieces {
        let index = documents.len();
        let number = index + 1;
        let key = match reuse {
            Reuse::Nothing => None,
            Reuse::Share(_) | Reuse::Take(_) => Some(ParsedCache::key(&piece)),
        };
        let cached = match (reuse, &key) {
            (Reuse::Share(cache), Some(key)) => cache.get(key),
            (Reuse::Take(cache), Some(key)) => cache.take(key),
            _ => None,
        };
        let value = match cached {
            Some(value) => value,
            None => {
                let value = Arc::new(
                    parse_piece(&piece, line)
                        .map_err(|(at, problem)| error(number, at, problem))?,
                );
                // A License holds the license ID: never kept in the cache, which outlives it.
                if let (Reuse::Share(cache), Some(key)) = (reuse, key)
                    && value.get("kind").and_then(serde_json::Value::as_str) != Some("License")
                {
                    cache.insert(key, piece.len(), &value);
                }
                value
            }
        };
        if value.is_null() {
            continue;
        }
        let Some(object) = value.as_object() else {
            return Err(error(
                number,
                line,
                "document is not a mapping (expected a Kubernetes object)".into(),
            ));
        };
        let field = |name: &str| -> Result<String, DocumentError> {
            match object.get(name) {
                Some(serde_json::Value::String(text)) if !text.is_empty() => Ok(text.clone()),
                Some(serde_json::Value::String(_)) | None => {
                    Err(error(number, line, format!("document has no `{name}`")))
                }
                Some(_) => Err(error(number, line, format!("`{name}` is not a string"))),
            }
        };
        let kind = field("kind")?;
        let api_version = field("apiVersion")?;
        let optional = |path: &[&str]| -> Result<Option<String>, DocumentError> {
            match string_at(&value, path) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(error(
                    number,
                    line,
                    format!("`{}` is not a string", path.join(".")),
                )),
            }
        };
        let name = optional(&["metadata", "name"])?;
        let namespace = optional(&["metadata", "namespace"])?;
        let class = DocumentClass::of(&api_version, &kind);
        if class == DocumentClass::KubernetesObject && name.as_deref().unwrap_or("").is_empty() {
            return Err(error(
                number,
                line,
                "document has no `metadata.name`".into(),
            ));
        }
        documents.push(Document {
            file: file.to_string(),
            index,
            line,
            text: piece,
            api_version,
            kind,
            namespace,
            name,
            class,
            value,
        });
    }
    Ok(documents)
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}

/// How a YAML document was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentClass {
    /// A Kubernetes object: goes to `base/`.
    KubernetesObject,
    /// A KOTS custom resource (`kots.io/v1beta1`, `kots.io/v1beta2`): steers the pipeline, never
    /// deployed.
    KotsKind,
    /// A document of a tool around KOTS that KOTS reads and never deploys (troubleshoot, kURL, the
    /// embedded cluster, `app.k8s.io`, Velero `Backup` and `Restore`; see
    /// [`windlass_kots::classify()`]). A new value: events recorded before it classified these
    /// documents as Kubernetes objects, and decode unchanged.
    NotDeployed,
}

impl DocumentClass {
    /// The class of a document with `api_version` and `kind`, as KOTS treats it.
    pub fn of(api_version: &str, kind: &str) -> DocumentClass {
        match windlass_kots::classify(api_version, kind) {
            windlass_kots::Classification::KubernetesObject => DocumentClass::KubernetesObject,
            windlass_kots::Classification::KotsKind => DocumentClass::KotsKind,
            windlass_kots::Classification::NotDeployed => DocumentClass::NotDeployed,
        }
    }
}
