//! Reading a release directory safely. [`scan`] walks it in path order without following symlinks
//! blindly: a symlink to a file inside the release is read as that file, a symlink leading outside
//! is an error, and every file and the release as a whole are held to size limits. YAML files are
//! split and classified here (see [`windlass_manifest::documents`]), and the names of Kubernetes objects
//! checked (see [`crate::names`]). License files are recognised by content, whatever their file
//! name, and kept out of the digest, the blob store and `upstream/`; a license file must hold its
//! License alone, copies of one license may appear under several names, and no other file may
//! contain a license ID (chart archives are searched unpacked, see [`crate::charts`]).

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memchr::memmem;
use serde::Deserialize;
use windlass_state::SecretString;

use crate::charts::{ChartArchive, ChartError, ChartLimits, Needle, read_chart_archive};
use crate::events::{DocumentClass, FileClass};
use crate::names::{NameProblem, api_group, check_dns_label, check_object_name, shown};
use crate::templates::Templates;
use windlass_manifest::documents::{
    Document, DocumentError, ParsedCache, Reuse, parse_documents, parse_documents_with,
};
use windlass_manifest::parallel::parallel_map;

/// Releases with fewer files than this are read and parsed on one thread.
const PARALLEL_FROM: usize = 64;

/// Size limits applied while reading a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest release in total, in bytes.
    pub max_total_bytes: u64,
    /// Most files in a release.
    pub max_files: usize,
    /// Most bytes one chart archive may unpack to.
    pub max_chart_unpacked_bytes: u64,
    /// Most entries one chart archive may hold.
    pub max_chart_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

impl Limits {
    /// The default limits (usable in constants).
    pub const DEFAULT: Limits = Limits {
        max_file_bytes: 16 * 1024 * 1024,
        max_total_bytes: 1024 * 1024 * 1024,
        max_files: 100_000,
        max_chart_unpacked_bytes: ChartLimits::DEFAULT.max_unpacked_bytes,
        max_chart_entries: ChartLimits::DEFAULT.max_entries,
    };

    fn charts(&self) -> ChartLimits {
        ChartLimits {
            max_unpacked_bytes: self.max_chart_unpacked_bytes,
            max_entries: self.max_chart_entries,
        }
    }
}

/// A problem with a release. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The release directory itself cannot be read.
    #[error("release directory {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// Path relative to the release.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file (or a symlink's target) is not a regular file, or opening or reading it failed.
    #[error("{path}: {problem}")]
    Unreadable {
        /// Path relative to the release.
        path: String,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// A symlink points outside the release.
    #[error("{path}: symlink leads outside the release directory (to {target})")]
    SymlinkOutside {
        /// Path relative to the release.
        path: String,
        /// Where it points.
        target: String,
    },
    /// A file is over the per-file limit.
    #[error("{path}: file is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// Path relative to the release.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The release is over the total limit.
    #[error("release is over the limit of {limit} bytes in total (reached at {path})")]
    ReleaseTooLarge {
        /// The file at which the limit was passed.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The release has too many files.
    #[error("release has more than {limit} files")]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// A path is not valid UTF-8 or has an unexpected component.
    #[error("{path}: unsupported file name")]
    BadPath {
        /// The path, lossily converted.
        path: String,
    },
    /// A YAML document is invalid.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// Two documents describe the same object.
    #[error("{second} and {first} both define {kind} {name}: each object may appear once")]
    DuplicateObject {
        /// Where it is defined first (file and document).
        first: String,
        /// Where it is defined again.
        second: String,
        /// Its kind (with API group).
        kind: String,
        /// Its namespace/name.
        name: String,
    },
    /// The release holds two documents of a KOTS kind it may hold once (see
    /// [`windlass_kots::is_single_instance`]).
    #[error(
        "{second} and {first} are both a KOTS {kind}: a release may hold one (KOTS would use only one of them)"
    )]
    SecondSingleInstance {
        /// Where the first is (file and document).
        first: String,
        /// Where the second is.
        second: String,
        /// Its kind.
        kind: String,
    },
    /// The release holds two different licenses (copies of one license are allowed).
    #[error(
        "{second} and {first} hold different licenses: a release may hold one license (copies of it are left out)"
    )]
    SecondLicense {
        /// The first license file.
        first: String,
        /// The second.
        second: String,
    },
    /// A license file also holds other documents, which would otherwise be left out with it.
    #[error(
        "{path}: a license file may hold only its License, but it also holds {others}: move them to a file of their own"
    )]
    LicenseWithOtherDocuments {
        /// The license file.
        path: String,
        /// The other documents: `kind/name (document N, line L)`, comma-separated.
        others: String,
    },
    /// A file that is not a license file contains a license ID.
    #[error(
        "{path}: holds the license ID of {whose}; windlass never stores or copies a license ID, so a release file may not contain one: remove it"
    )]
    HoldsLicenseId {
        /// The file.
        path: String,
        /// Which license: "the license in use" or "the License in `<file>`".
        whose: String,
    },
    /// A chart archive cannot be read, or is over its limits.
    #[error("{path}: {source}")]
    ChartArchive {
        /// The archive.
        path: String,
        /// What is wrong.
        source: ChartError,
    },
    /// A template cannot be rendered, a `kots.io/exclude`/`kots.io/when` annotation is not a bool,
    /// or the Config or ConfigValues cannot be used (the message names the file or item).
    #[error("{0}")]
    Template(String),
    /// Required Config items have no value: the install stops before anything is written.
    #[error(
        "required config items have no value: {items}; give them in a ConfigValues file (--config-values)"
    )]
    ConfigNeeded {
        /// Every missing item: `name ("title" in group "group title")`, comma-separated.
        items: String,
    },
    /// A Kubernetes object's name or namespace is one Kubernetes refuses.
    #[error("{location}: `{field}` {value} is not a valid {what}: {problem}")]
    InvalidName {
        /// File, document and line.
        location: String,
        /// `metadata.name` or `metadata.namespace`.
        field: &'static str,
        /// The value, quoted and cut (see [`crate::names::shown`]).
        value: String,
        /// "ConfigMap name", "namespace", ...
        what: String,
        /// Which rule it breaks.
        problem: NameProblem,
    },
}

/// The contents and classification of one release file.
#[derive(Debug)]
pub enum FileContents {
    /// Parsed YAML documents.
    Yaml(Vec<Document>),
    /// A chart archive, read and found to be a gzip-compressed tar.
    ChartArchive(ChartArchive),
    /// A file holding a KOTS License (alone), whatever its name. Its bytes are dropped as soon as
    /// it is recognised.
    License,
    /// Anything else.
    Other,
}

/// One file of a release.
#[derive(Debug)]
pub struct ReleaseFile {
    /// Path relative to the release root, `/`-separated.
    pub path: String,
    /// Its bytes (empty for license files, which are never kept).
    pub bytes: Vec<u8>,
    /// Size on disk.
    pub size: u64,
    /// What it is.
    pub contents: FileContents,
}

impl ReleaseFile {
    /// Whether the file holds a KOTS `ConfigValues` (`userdata/config.yaml`): it may hold
    /// passwords, so, like a license file, it is never stored and not part of the digest.
    pub fn holds_config_values(&self) -> bool {
        matches!(&self.contents, FileContents::Yaml(documents) if documents.iter().any(is_config_values))
    }

    /// The file's class as recorded.
    pub fn class(&self) -> FileClass {
        match self.contents {
            FileContents::Yaml(_) => FileClass::Yaml,
            FileContents::ChartArchive(_) => FileClass::ChartArchive,
            FileContents::License => FileClass::License,
            FileContents::Other => FileClass::Other,
        }
    }
}

fn is_config_values(document: &Document) -> bool {
    document.kind == "ConfigValues" && document.api_version.starts_with("kots.io/")
}

/// Whether the raw file `relative` holds a KOTS `ConfigValues` (as
/// [`ReleaseFile::holds_config_values`] finds it once parsed).
fn config_values_file(relative: &str, bytes: &[u8]) -> bool {
    is_yaml(relative)
        && memmem::find(bytes, b"ConfigValues").is_some()
        && parse_documents(relative, bytes)
            .is_ok_and(|documents| documents.iter().any(is_config_values))
}

/// A release as read.
#[derive(Debug)]
pub struct Release {
    /// The release directory.
    pub root: PathBuf,
    /// Every file, in path order.
    pub files: Vec<ReleaseFile>,
}

impl Release {
    /// blake3 over every non-license file's path and contents, in path order.
    pub fn digest(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for file in &self.files {
            if matches!(file.contents, FileContents::License) || file.holds_config_values() {
                continue;
            }
            hasher.update(file.path.as_bytes());
            hasher.update(&[0]);
            hasher.update(blake3::hash(&file.bytes).as_bytes());
        }
        format!("blake3:{}", hasher.finalize().to_hex())
    }

    /// The path of the (first) license file inside the release, if any.
    pub fn license_file(&self) -> Option<&str> {
        self.license_files().next()
    }

    /// Every license file inside the release (copies of one license), in path order.
    pub fn license_files(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|file| matches!(file.contents, FileContents::License))
            .map(|file| file.path.as_str())
    }

    /// Every YAML document of the release, in file then document order.
    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.files.iter().flat_map(|file| match &file.contents {
            FileContents::Yaml(documents) => documents.as_slice(),
            _ => &[],
        })
    }

    /// The `kots.io/v1beta1` HelmCharts set aside because a `kots.io/v1beta2` HelmChart has the
    /// same release name (KOTS then uses the v1beta2 one), each with that v1beta2 HelmChart, in
    /// document order.
    pub fn superseded_helm_charts(&self) -> Vec<(&Document, &Document)> {
        let helm_charts = |version: &'static str| {
            self.documents().filter(move |document| {
                document.kind == "HelmChart" && document.api_version == version
            })
        };
        helm_charts("kots.io/v1beta1")
            .filter_map(|old| {
                let name = old.helm_chart_release_name()?;
                let new = helm_charts("kots.io/v1beta2")
                    .find(|new| new.helm_chart_release_name() == Some(name))?;
                Some((old, new))
            })
            .collect()
    }

    /// The chart archives no KOTS `HelmChart` document refers to, in path order. A HelmChart
    /// refers to an archive whose top-level `Chart.yaml` has its `spec.chart.name` and (when the
    /// HelmChart gives one) `spec.chart.chartVersion`.
    pub fn unreferenced_archives(&self) -> Vec<(&str, &ChartArchive)> {
        let superseded = self.superseded_helm_charts();
        let wanted: Vec<(&str, Option<&str>)> = self
            .documents()
            .filter(|document| {
                document.class == DocumentClass::KotsKind && document.kind == "HelmChart"
            })
            .filter(|document| {
                !superseded
                    .iter()
                    .any(|(old, _)| std::ptr::eq(*old, *document))
            })
            .filter_map(|document| {
                let chart = document.value.pointer("/spec/chart")?;
                let name = chart.get("name")?.as_str()?;
                let version = chart
                    .get("chartVersion")
                    .and_then(|version| version.as_str())
                    .filter(|version| !version.is_empty());
                Some((name, version))
            })
            .collect();
        self.files
            .iter()
            .filter_map(|file| match &file.contents {
                FileContents::ChartArchive(chart) => Some((file.path.as_str(), chart)),
                _ => None,
            })
            .filter(|(_, chart)| {
                !wanted.iter().any(|(name, version)| {
                    chart.name.as_deref() == Some(*name)
                        && version.is_none_or(|version| chart.version.as_deref() == Some(version))
                })
            })
            .collect()
    }
}

fn relative_path(root: &Path, path: &Path) -> Result<String, ReleaseError> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                parts.push(part.to_str().ok_or_else(|| ReleaseError::BadPath {
                    path: relative.to_string_lossy().into_owned(),
                })?)
            }
            _ => {
                return Err(ReleaseError::BadPath {
                    path: relative.to_string_lossy().into_owned(),
                });
            }
        }
    }
    Ok(parts.join("/"))
}

fn is_chart_archive(path: &str) -> bool {
    path.ends_with(".tgz") || path.ends_with(".tar.gz")
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Reads a release directory. `on_file` is called after each file with (files done, files total).
pub fn scan(
    root: &Path,
    limits: &Limits,
    on_file: impl FnMut(u64, u64),
) -> Result<Release, ReleaseError> {
    scan_cached(root, limits, None, None, None, on_file)
}

/// The files of a release as [`digest_keeping`] read them, kept (in the engine's memo) so that
/// `fetch_base` in the same process takes them instead of reading the release a second time.
#[derive(Debug, Default)]
pub struct ReleaseSnapshot {
    read: std::sync::Mutex<Option<SnapshotFiles>>,
}

#[derive(Debug)]
struct SnapshotFiles {
    canonical_root: PathBuf,
    limits: Limits,
    files: Vec<ReadFile>,
}

impl ReleaseSnapshot {
    /// The files read from `canonical_root` under `limits`, if this snapshot holds them; they are
    /// handed out once.
    fn take(&self, canonical_root: &Path, limits: &Limits) -> Option<Vec<ReadFile>> {
        let mut read = self
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let matches = read.as_ref().is_some_and(|snapshot| {
            snapshot.canonical_root == canonical_root && snapshot.limits == *limits
        });
        if matches {
            read.take().map(|snapshot| snapshot.files)
        } else {
            None
        }
    }

    fn keep(&self, canonical_root: PathBuf, limits: Limits, files: Vec<ReadFile>) {
        *self
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(SnapshotFiles {
            canonical_root,
            limits,
            files,
        });
    }
}

/// [`scan`], reusing and filling `cache` with the parsed documents, and taking the files from
/// `snapshot` when it holds this release read under the same limits. `license_id`, the ID of the
/// license in use, is searched for in every file besides those found to hold a License, as are the
/// IDs of the Licenses found.
pub fn scan_cached(
    root: &Path,
    limits: &Limits,
    cache: Option<&ParsedCache>,
    snapshot: Option<&ReleaseSnapshot>,
    license_id: Option<&SecretString>,
    on_file: impl FnMut(u64, u64),
) -> Result<Release, ReleaseError> {
    scan_templated(root, limits, cache, snapshot, license_id, None, on_file)
}

/// [`scan_cached`], rendering every YAML file's KOTS templates with `templates` before it is
/// parsed (the file's own bytes, what `upstream/` gets, stay as written; its documents are the
/// rendered text) and leaving out the documents `kots.io/exclude` or `kots.io/when` exclude.
pub fn scan_templated(
    root: &Path,
    limits: &Limits,
    cache: Option<&ParsedCache>,
    snapshot: Option<&ReleaseSnapshot>,
    license_id: Option<&SecretString>,
    templates: Option<&Templates>,
    mut on_file: impl FnMut(u64, u64),
) -> Result<Release, ReleaseError> {
    let canonical_root = fs::canonicalize(root).map_err(|source| ReleaseError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let read = match snapshot.and_then(|snapshot| snapshot.take(&canonical_root, limits)) {
        Some(read) => read,
        None => read_all(walk(&canonical_root, limits)?, limits)?,
    };
    let total = read.len() as u64;
    let rendered: Vec<Option<Vec<u8>>> = match templates {
        Some(templates) => {
            templates.prepare(&read)?;
            parallel_map(&read, PARALLEL_FROM, |file| {
                if is_yaml(&file.0) {
                    templates.render(&file.0, &file.1)
                } else {
                    Ok(None)
                }
            })
            .into_iter()
            .collect::<Result<_, _>>()?
        }
        None => Vec::new(),
    };
    // Parsing dominates on large releases: spread it over the cores, then classify in order.
    let parsed = parse_in_parallel(&read, &rendered, cache);
    let mut files = Vec::with_capacity(read.len());
    // The first license file and its ID; later ones must be copies of it.
    let mut license_at: Option<(String, Option<SecretString>)> = None;
    let mut objects: std::collections::HashMap<(String, String, String, String), String> =
        std::collections::HashMap::new();
    let mut single_instances: std::collections::HashMap<String, String> =
        std::collections::HashMap::new();
    for (done, ((relative, bytes, size), documents)) in read.into_iter().zip(parsed).enumerate() {
        let contents = if let Some(documents) = documents {
            let documents = documents?;
            if documents.iter().any(Document::is_license) {
                check_license_alone(&relative, &documents)?;
                let id = license_id_of(&documents[0]);
                match &license_at {
                    Some((first, first_id)) if *first_id != id => {
                        return Err(ReleaseError::SecondLicense {
                            first: first.clone(),
                            second: relative,
                        });
                    }
                    Some(_) => {}
                    None => license_at = Some((relative.clone(), id)),
                }
                FileContents::License
            } else {
                let documents = match templates {
                    Some(templates) => leave_out_excluded(templates, documents)?,
                    None => documents,
                };
                let holds_password =
                    templates.is_some_and(|templates| templates.holds_password(&relative));
                for document in &documents {
                    check_names(document, holds_password)?;
                    check_unique(&mut objects, document)?;
                    check_single_instance(&mut single_instances, document)?;
                }
                FileContents::Yaml(documents)
            }
        } else {
            FileContents::Other
        };
        let bytes = if matches!(contents, FileContents::License) {
            Vec::new()
        } else {
            bytes
        };
        files.push(ReleaseFile {
            path: relative,
            bytes,
            size,
            contents,
        });
        on_file(done as u64 + 1, total);
    }
    let mut needles: Vec<Needle<'_>> = Vec::new();
    if let Some(id) = license_id {
        needles.push(Needle {
            bytes: id.expose().as_bytes(),
            what: "the license in use".into(),
        });
    }
    if let Some((first, Some(id))) = &license_at
        && license_id != Some(id)
    {
        needles.push(Needle {
            bytes: id.expose().as_bytes(),
            what: format!("the License in {first}"),
        });
    }
    check_files_without_license_ids(&mut files, limits, &needles)?;
    Ok(Release {
        root: canonical_root,
        files,
    })
}

/// Searches every file that is not a license file for `needles`, and reads chart archives (which
/// are searched unpacked). The first problem in path order is reported.
fn check_files_without_license_ids(
    files: &mut [ReleaseFile],
    limits: &Limits,
    needles: &[Needle<'_>],
) -> Result<(), ReleaseError> {
    let finders: Vec<(memmem::Finder<'_>, &str)> = needles
        .iter()
        .filter(|needle| !needle.bytes.is_empty())
        .map(|needle| (memmem::Finder::new(needle.bytes), needle.what.as_str()))
        .collect();
    let charts = limits.charts();
    let checked = parallel_map(files, PARALLEL_FROM, |file| {
        if matches!(file.contents, FileContents::License) {
            return Ok(None);
        }
        if let Some((_, what)) = finders
            .iter()
            .find(|(finder, _)| finder.find(&file.bytes).is_some())
        {
            return Err(ReleaseError::HoldsLicenseId {
                path: file.path.clone(),
                whose: what.to_string(),
            });
        }
        if matches!(file.contents, FileContents::Other) && is_chart_archive(&file.path) {
            return read_chart_archive(&file.bytes, &charts, needles)
                .map(Some)
                .map_err(|source| match source {
                    ChartError::Holds { what, .. } => ReleaseError::HoldsLicenseId {
                        path: file.path.clone(),
                        whose: format!("{what} (inside the archive)"),
                    },
                    source => ReleaseError::ChartArchive {
                        path: file.path.clone(),
                        source,
                    },
                });
        }
        Ok(None)
    });
    for (file, checked) in files.iter_mut().zip(checked) {
        if let Some(chart) = checked? {
            file.contents = FileContents::ChartArchive(chart);
        }
    }
    Ok(())
}

/// A license file holds its License and nothing else: anything beside it would be left out
/// with it, unseen.
fn check_license_alone(path: &str, documents: &[Document]) -> Result<(), ReleaseError> {
    let first_license = documents.iter().position(Document::is_license);
    // Other documents are named by kind and name, unless one of those holds the license ID.
    let license_id = first_license.and_then(|index| license_id_of(&documents[index]));
    let withheld = |text: &str| match &license_id {
        Some(id) if text.contains(id.expose()) => "(withheld: holds the license ID)".to_string(),
        _ => text.to_string(),
    };
    let others: Vec<String> = documents
        .iter()
        .enumerate()
        .filter(|(index, _)| Some(*index) != first_license)
        .map(|(_, document)| {
            format!(
                "{}/{} (document {}, line {})",
                withheld(&document.kind),
                withheld(document.name.as_deref().unwrap_or("-")),
                document.index + 1,
                document.line
            )
        })
        .collect();
    if others.is_empty() {
        Ok(())
    } else {
        Err(ReleaseError::LicenseWithOtherDocuments {
            path: path.to_string(),
            others: others.join(", "),
        })
    }
}

/// `spec.licenseID` of a License document, trimmed as [`crate::license::read_license`] reads it.
fn license_id_of(document: &Document) -> Option<SecretString> {
    document
        .value
        .pointer("/spec/licenseID")
        .and_then(|id| id.as_str())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(SecretString::new)
}

/// A Kubernetes object's name and namespace are ones Kubernetes accepts (see [`crate::names`]).
/// When the document's file `holds_password` (its render read a password value), the refused
/// value is not quoted: it may be the password.
fn check_names(document: &Document, holds_password: bool) -> Result<(), ReleaseError> {
    if document.class != DocumentClass::KubernetesObject {
        return Ok(());
    }
    let invalid = |field, value: &str, what: String, problem| ReleaseError::InvalidName {
        location: document.location(),
        field,
        value: if holds_password {
            "(not shown: the file holds a password value)".to_string()
        } else {
            shown(value)
        },
        what,
        problem,
    };
    if let Some(name) = &document.name {
        check_object_name(api_group(&document.api_version), &document.kind, name).map_err(
            |problem| {
                invalid(
                    "metadata.name",
                    name,
                    format!("{} name", document.kind),
                    problem,
                )
            },
        )?;
    }
    if let Some(namespace) = &document.namespace {
        check_dns_label(namespace).map_err(|problem| {
            invalid("metadata.namespace", namespace, "namespace".into(), problem)
        })?;
    }
    Ok(())
}

/// Every file of the release, relative path and the path to read (a symlink's target), in
/// path order.
fn walk(canonical_root: &Path, limits: &Limits) -> Result<Vec<(String, PathBuf)>, ReleaseError> {
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(canonical_root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.file_name() != ".git")
    {
        let entry = entry.map_err(|error| {
            let path = error
                .path()
                .map(|path| relative_path(canonical_root, path).unwrap_or_default())
                .unwrap_or_default();
            ReleaseError::Read {
                path,
                source: error.into(),
            }
        })?;
        let file_type = entry.file_type();
        let relative = relative_path(canonical_root, entry.path())?;
        if file_type.is_dir() {
            continue;
        }
        let source = if file_type.is_symlink() {
            let target = fs::canonicalize(entry.path()).map_err(|source| ReleaseError::Read {
                path: relative.clone(),
                source,
            })?;
            if !target.starts_with(canonical_root) {
                return Err(ReleaseError::SymlinkOutside {
                    path: relative,
                    target: target.display().to_string(),
                });
            }
            if target.is_dir() {
                tracing::warn!(path = %relative, "skipping symlink to a directory inside the release");
                continue;
            }
            target
        } else if file_type.is_file() {
            entry.path().to_path_buf()
        } else {
            tracing::warn!(path = %relative, "skipping special file");
            continue;
        };
        entries.push((relative, source));
        if entries.len() > limits.max_files {
            return Err(ReleaseError::TooManyFiles {
                limit: limits.max_files,
            });
        }
    }
    Ok(entries)
}

/// A file's path relative to the release, bytes and size on disk.
type ReadFile = (String, Vec<u8>, u64);

/// Reads every file, holding each to the per-file and total limits. Big releases are read on as
/// many threads as there are cores; the error is still the one of the first bad file in path order
/// (a release over the total limit is read again on one thread to name the file where the limit
/// was passed, since the threads pass it in no particular order).
fn read_all(
    entries: Vec<(String, PathBuf)>,
    limits: &Limits,
) -> Result<Vec<ReadFile>, ReleaseError> {
    let total = AtomicU64::new(0);
    let read = parallel_map(&entries, PARALLEL_FROM, |entry| {
        read_one(entry, limits, &total)
    });
    match read.into_iter().collect::<Result<Vec<_>, _>>() {
        Err(ReleaseError::ReleaseTooLarge { .. }) => {
            let total = AtomicU64::new(0);
            entries
                .iter()
                .map(|entry| read_one(entry, limits, &total))
                .collect()
        }
        read => read,
    }
}

/// Reads one file, adding its size to `total` (shared by every thread reading the release). Once
/// the total limit is passed, nothing more is read.
fn read_one(
    (relative, source): &(String, PathBuf),
    limits: &Limits,
    total: &AtomicU64,
) -> Result<ReadFile, ReleaseError> {
    let too_large = || ReleaseError::ReleaseTooLarge {
        path: relative.clone(),
        limit: limits.max_total_bytes,
    };
    if total.load(Ordering::Relaxed) > limits.max_total_bytes {
        return Err(too_large());
    }
    // Only regular files are read (a symlink's target is checked once opened, so a symlink to a
    // FIFO or device is refused instead of blocking or reading without end), and at most one byte
    // past the limit.
    let bytes =
        windlass_files::read_regular_file(source, limits.max_file_bytes).map_err(|problem| {
            match problem {
                windlass_files::ReadError::TooLarge { size, cap } => ReleaseError::FileTooLarge {
                    path: relative.clone(),
                    size,
                    limit: cap,
                },
                problem => ReleaseError::Unreadable {
                    path: relative.clone(),
                    problem,
                },
            }
        })?;
    let size = bytes.len() as u64;
    if total.fetch_add(size, Ordering::Relaxed) + size > limits.max_total_bytes {
        return Err(too_large());
    }
    Ok((relative.clone(), bytes, size))
}

/// Parses every YAML file (its `rendered` text when it has one), and every other file that holds a
/// License (`None` for other files), on as many threads as there are cores.
fn parse_in_parallel(
    read: &[ReadFile],
    rendered: &[Option<Vec<u8>>],
    cache: Option<&ParsedCache>,
) -> Vec<Option<Result<Vec<Document>, DocumentError>>> {
    let reuse = cache.map_or(Reuse::Nothing, Reuse::Share);
    let texts: Vec<(&str, &[u8])> = read
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let bytes = match rendered.get(index) {
                Some(Some(text)) => text.as_slice(),
                _ => file.1.as_slice(),
            };
            (file.0.as_str(), bytes)
        })
        .collect();
    parallel_map(&texts, PARALLEL_FROM, |(path, bytes)| {
        if is_yaml(path) {
            Some(parse_documents_with(path, bytes, reuse))
        } else {
            license_documents(path, bytes).map(Ok)
        }
    })
}

/// The documents `kots.io/exclude` and `kots.io/when` keep (KOTS's own kinds are not judged), the
/// others noted in `templates`.
fn leave_out_excluded(
    templates: &Templates,
    documents: Vec<Document>,
) -> Result<Vec<Document>, ReleaseError> {
    kept_by_annotations(
        documents,
        &|document| {
            templates
                .holds_password(&document.file)
                .then_some("the file holds a password value")
        },
        &|document, annotation| templates.excluded(&document.file, document.index, annotation),
    )
    .map_err(ReleaseError::Template)
}

/// The documents `kots.io/exclude` and `kots.io/when` keep (KOTS's own kinds are not judged), each
/// one left out told to `excluded` with the annotation that decided. A value that is not a bool
/// is the error `<document>: <problem>`; when `holds_password` gives a reason (the document may
/// hold a password value), the value is left out of it and the reason said instead.
pub(crate) fn kept_by_annotations(
    documents: Vec<Document>,
    holds_password: &dyn Fn(&Document) -> Option<&'static str>,
    excluded: &dyn Fn(&Document, &'static str),
) -> Result<Vec<Document>, String> {
    let mut kept = Vec::with_capacity(documents.len());
    for document in documents {
        if document.class == DocumentClass::KotsKind {
            kept.push(document);
            continue;
        }
        match windlass_template::annotations::excluded(&document.value) {
            Ok(None) => kept.push(document),
            Ok(Some(left_out)) => excluded(&document, left_out.annotation),
            Err(error) => {
                let problem = match holds_password(&document) {
                    Some(reason) => format!(
                        "annotation {} is not a bool (use true or false); its value is not shown: {reason}",
                        error.annotation
                    ),
                    None => error.to_string(),
                };
                return Err(format!("{}: {problem}", document.location()));
            }
        }
    }
    Ok(kept)
}

/// The documents of a file, whatever its name, if they parse and one is a License (a copy of a
/// license under a name such as `license.yaml.bak` or `license.txt` is still a license).
fn license_documents(relative: &str, bytes: &[u8]) -> Option<Vec<Document>> {
    memmem::find(bytes, b"License")?;
    parse_documents(relative, bytes)
        .ok()
        .filter(|documents| documents.iter().any(Document::is_license))
}

/// The release digest alone, as [`scan`] computes it (license files, recognised by content in
/// every file, left out), without parsing files that cannot hold a License (fast enough to run before deciding whether an install can be resumed). A file that
/// fails to parse counts as a plain file here; [`scan`] reports it.
pub fn digest(root: &Path, limits: &Limits) -> Result<String, ReleaseError> {
    digest_keeping(root, limits, &ReleaseSnapshot::default())
}

/// [`digest`], keeping the files read in `snapshot` for [`scan_cached`].
///
/// Only a release directory that cannot be opened is an error here. A release that cannot be read
/// whole (a file over a limit, a symlink leading outside, an unreadable file) gets a digest of
/// that problem, `unreadable:blake3:<hex>`, so that the install starts and `fetch_base`, reading
/// the release again, fails with the problem and records it like any other bad input.
pub fn digest_keeping(
    root: &Path,
    limits: &Limits,
    snapshot: &ReleaseSnapshot,
) -> Result<String, ReleaseError> {
    let canonical_root = fs::canonicalize(root).map_err(|source| ReleaseError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let read = match walk(&canonical_root, limits).and_then(|entries| read_all(entries, limits)) {
        Ok(read) => read,
        Err(error) => {
            let mut hasher = blake3::Hasher::new();
            hasher.update(b"unreadable release\0");
            hasher.update(error.to_string().as_bytes());
            return Ok(format!("unreadable:blake3:{}", hasher.finalize().to_hex()));
        }
    };
    Ok(digest_of_read(canonical_root, limits, read, snapshot))
}

/// [`digest_keeping`] of a release held in memory (a replay rebuilds it from the recorded blobs):
/// `files`, by path relative to the release, as if read from a directory `canonical_root` (which
/// must exist: `fetch_base` canonicalises it) that holds them and nothing else. [`scan_cached`] of
/// `canonical_root` with `snapshot` then reads no file.
pub fn digest_keeping_files(
    canonical_root: PathBuf,
    limits: &Limits,
    files: Vec<(String, Vec<u8>)>,
    snapshot: &ReleaseSnapshot,
) -> String {
    let mut read: Vec<ReadFile> = files
        .into_iter()
        .map(|(relative, bytes)| {
            let size = bytes.len() as u64;
            (relative, bytes, size)
        })
        .collect();
    // The order a walk of the directory gives: by path component, each directory's files after it.
    read.sort_by(|a, b| Path::new(&a.0).cmp(Path::new(&b.0)));
    digest_of_read(canonical_root, limits, read, snapshot)
}

/// The digest of the files `read` from `canonical_root`, which `snapshot` then keeps.
fn digest_of_read(
    canonical_root: PathBuf,
    limits: &Limits,
    read: Vec<ReadFile>,
    snapshot: &ReleaseSnapshot,
) -> String {
    let mut hasher = blake3::Hasher::new();
    for (relative, bytes, _) in &read {
        if license_documents(relative, bytes).is_some() || config_values_file(relative, bytes) {
            continue;
        }
        hasher.update(relative.as_bytes());
        hasher.update(&[0]);
        hasher.update(blake3::hash(bytes).as_bytes());
    }
    snapshot.keep(canonical_root, *limits, read);
    format!("blake3:{}", hasher.finalize().to_hex())
}

/// Two documents of a KOTS kind a release may hold once are refused, naming both.
fn check_single_instance(
    seen: &mut std::collections::HashMap<String, String>,
    document: &Document,
) -> Result<(), ReleaseError> {
    if !windlass_kots::is_single_instance(&document.api_version, &document.kind) {
        return Ok(());
    }
    let here = document.location();
    if let Some(first) = seen.get(&document.kind) {
        return Err(ReleaseError::SecondSingleInstance {
            first: first.clone(),
            second: here,
            kind: document.kind.clone(),
        });
    }
    seen.insert(document.kind.clone(), here);
    Ok(())
}

/// Each Kubernetes object may appear once. Documents KOTS never deploys (its own kinds, support
/// bundles, redactors, ...) are not objects of the cluster and may share names.
fn check_unique(
    objects: &mut std::collections::HashMap<(String, String, String, String), String>,
    document: &Document,
) -> Result<(), ReleaseError> {
    if document.class != DocumentClass::KubernetesObject {
        return Ok(());
    }
    let Some(name) = &document.name else {
        return Ok(());
    };
    let group = api_group(&document.api_version);
    let namespace = document.namespace.clone().unwrap_or_default();
    let key = (
        group.to_string(),
        document.kind.clone(),
        namespace.clone(),
        name.clone(),
    );
    let here = document.location();
    if let Some(first) = objects.get(&key) {
        let kind = if group.is_empty() {
            document.kind.clone()
        } else {
            format!("{}.{group}", document.kind)
        };
        let name = if namespace.is_empty() {
            name.clone()
        } else {
            format!("{namespace}/{name}")
        };
        return Err(ReleaseError::DuplicateObject {
            first: first.clone(),
            second: here,
            kind,
            name,
        });
    }
    objects.insert(key, here);
    Ok(())
}
