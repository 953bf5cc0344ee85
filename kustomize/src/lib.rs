//! windlass's own build of a kustomization tree, for exactly the kustomize features windlass
//! writes: `resources` and the legacy `bases` (files, multi-document or not, and directories with
//! their own kustomization), `images` (`name`, `newName`, `newTag`, `digest`), strategic-merge
//! patches from `patches: [{path}]` and `patchesStrategicMerge`, and `namespace`. [`build`]
//! produces the objects `kubectl kustomize` (kustomize v5.6) produces, in its (legacy) order,
//! without starting a process or re-serializing YAML, so a release of 10,000 workloads builds in a
//! fraction of a second. Anything else in a kustomization is reported as
//! [`BuildError::Unsupported`] with every field named, so the caller can run the real kustomize
//! instead and say so; nothing is silently ignored.
//!
//! Each kustomization is built the way kustomize's `KustTarget` does: its resources are
//! accumulated depth-first in listed order (`bases` after `resources`), then its transformers run
//! over everything accumulated beneath it in kustomize's order — strategic-merge patches
//! (`patchesStrategicMerge`, then `patches`), `namespace`, `images` — so an outer overlay's entries
//! apply after inner ones. At the end, `{name, namespace}` references follow the objects a
//! `namespace:` moved, and the objects are sorted into kustomize's legacy order. The rules matched
//! are documented in the private modules `resource` (identity, scope, namespace, order), `image`,
//! `patch` and `reference`; `parse` parses files on every core.

mod image;
mod merge_keys;
mod parse;
mod patch;
mod patch_targets;
mod planned;
mod reference;
mod resource;

use std::collections::HashMap;

use rustc_hash::FxHashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use image::{ImageEntry, ImageTransformer, has_regex_syntax};
use parse::parse_file;
use patch_targets::{PatchDocument, apply_patches};
use planned::Planned;
pub use planned::PlannedTree;
use resource::{IdKey, Resource, set_namespace, sort_legacy};
use windlass_manifest::documents::{DocumentError, ParsedCache, Reuse};
use windlass_manifest::parallel::{parallel_map, parallel_map_mut};

/// Objects (or patch documents) per thread at least when work over them runs on every core:
/// fewer are done on the calling thread.
const OBJECTS_PER_THREAD: usize = 256;

/// Largest file [`build`] reads: kustomization, resource or patch.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The names kustomize accepts for a kustomization file, in the order it looks for them.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Why a kustomization tree could not be built natively.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A kustomization uses features the native build does not implement; run the real kustomize.
    #[error(
        "{}: kustomize features windlass does not build natively: {}",
        file.display(),
        fields.join(", ")
    )]
    Unsupported {
        /// The kustomization (or patch) file.
        file: PathBuf,
        /// Every unsupported field or construct found in it.
        fields: Vec<String>,
    },
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not a regular file, or opening or reading it failed.
    #[error("{}: {problem}", path.display())]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        problem: windlass_files::ReadError,
    },
    /// A file is larger than [`MAX_FILE_BYTES`].
    #[error("{}: {size} bytes, more than the {MAX_FILE_BYTES} a file may have", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A directory named as a resource or base has no kustomization file.
    #[error("{}: no kustomization.yaml, kustomization.yml or Kustomization", dir.display())]
    MissingKustomization {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory has more than one kustomization file.
    #[error("{}: more than one kustomization file", dir.display())]
    MultipleKustomizations {
        /// The directory.
        dir: PathBuf,
    },
    /// A kustomization file is not what kustomize accepts (bad YAML, wrong types).
    #[error("{}: {problem}", file.display())]
    InvalidKustomization {
        /// The kustomization file.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A resource or patch document is not valid YAML or not a Kubernetes object.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// A path leads outside the layout being built.
    #[error("{}: `{reference}` leads outside {}", file.display(), root.display())]
    OutsideRoot {
        /// The kustomization naming the path.
        file: PathBuf,
        /// The path as written.
        reference: String,
        /// The root of the layout.
        root: PathBuf,
    },
    /// A resource or patch file is not in or below its kustomization's directory (kustomize's
    /// default load restrictor refuses it too).
    #[error(
        "{}: file `{reference}` is not in or below the kustomization's directory",
        file.display()
    )]
    FileOutsideKustomization {
        /// The kustomization naming the file.
        file: PathBuf,
        /// The path as written.
        reference: String,
    },
    /// Kustomizations include each other in a cycle.
    #[error("{}: cycle: the kustomization includes itself", dir.display())]
    Cycle {
        /// A directory of the cycle.
        dir: PathBuf,
    },
    /// Two objects have the same identity.
    #[error("{origin}: {id} is already defined ({problem})")]
    DuplicateObject {
        /// Where the second one comes from.
        origin: String,
        /// The identity.
        id: String,
        /// How the conflict arose.
        problem: &'static str,
    },
    /// A strategic-merge patch does not name exactly one object.
    #[error("{origin}: patch target {id}: {problem}")]
    PatchTarget {
        /// The patch file and document.
        origin: String,
        /// The identity the patch names.
        id: String,
        /// `no object matches` or `several objects match`.
        problem: &'static str,
    },
    /// An object's containers are malformed where kustomize's image transformer fails too.
    #[error("{origin}: {problem}")]
    InvalidObject {
        /// The object's file and document.
        origin: String,
        /// What is wrong.
        problem: String,
    },
}

/// Builds the kustomization in `overlay` (and everything it includes) natively, returning the
/// objects `kubectl kustomize <overlay>` prints, in the same order. Paths may not lead outside
/// the layout: the parent of the nearest `overlays` directory above `overlay`, or `overlay`
/// itself when there is none (see [`build_within`]).
pub fn build(overlay: &Path) -> Result<Vec<Value>, BuildError> {
    build_cached(overlay, &ParsedCache::default(), &PlannedTree::default())
}

/// [`build`], taking the documents of resources and patches out of `cache` when it holds them
/// (the build is their last reader), and every file and directory inside a directory of
/// `planned` from it, never from the disk.
pub fn build_cached(
    overlay: &Path,
    cache: &ParsedCache,
    planned: &PlannedTree,
) -> Result<Vec<Value>, BuildError> {
    let overlay = canonical(overlay, planned)?;
    let root = overlay
        .ancestors()
        .find(|ancestor| ancestor.file_name().is_some_and(|name| name == "overlays"))
        .and_then(Path::parent)
        .unwrap_or(&overlay)
        .to_path_buf();
    build_within_cached(&overlay, &root, cache, planned)
}

/// [`build`] with an explicit root: every file and directory read must be inside `root`.
pub fn build_within(overlay: &Path, root: &Path) -> Result<Vec<Value>, BuildError> {
    build_within_cached(
        overlay,
        root,
        &ParsedCache::default(),
        &PlannedTree::default(),
    )
}

fn build_within_cached(
    overlay: &Path,
    root: &Path,
    cache: &ParsedCache,
    planned: &PlannedTree,
) -> Result<Vec<Value>, BuildError> {
    let overlay = canonical(overlay, planned)?;
    let root = canonical(root, planned)?;
    let mut builder = Builder {
        root,
        stack: Vec::new(),
        cache,
        planned,
        canonical_dirs: Default::default(),
    };
    let mut resources = builder.kustomization(&overlay)?;
    reference::fix_references(&mut resources).map_err(|ambiguous| BuildError::Unsupported {
        file: overlay.clone(),
        fields: vec![ambiguous.0],
    })?;
    sort_legacy(&mut resources);
    Ok(resources
        .into_iter()
        .map(|resource| resource.value)
        .collect())
}

/// `path` canonical: as it is when it is a planned directory (planned directories are given by
/// canonical paths, and may exist in memory only), else as the file system resolves it.
fn canonical(path: &Path, planned: &PlannedTree) -> Result<PathBuf, BuildError> {
    if matches!(planned.lookup(path), Some(Planned::Directory)) {
        return Ok(path.to_path_buf());
    }
    path.canonicalize().map_err(|source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of the file at `path` (canonical, or inside a directory of `planned`).
fn read_file(planned: &PlannedTree, path: &Path) -> Result<Arc<[u8]>, BuildError> {
    match planned.lookup(path) {
        Some(Planned::File(bytes)) => within_limit(path, bytes.len() as u64).map(|()| bytes),
        Some(_) => Err(BuildError::Io {
            path: path.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        }),
        None => Ok(Arc::from(read_limited(path)?)),
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, BuildError> {
    windlass_files::read_regular_file(path, MAX_FILE_BYTES).map_err(|problem| match problem {
        windlass_files::ReadError::TooLarge { size, .. } => BuildError::TooLarge {
            path: path.to_path_buf(),
            size,
        },
        problem => BuildError::Unreadable {
            path: path.to_path_buf(),
            problem,
        },
    })
}

fn within_limit(path: &Path, size: u64) -> Result<(), BuildError> {
    if size > MAX_FILE_BYTES {
        return Err(BuildError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    Ok(())
}

/// What a kustomization file asks for, once checked.
#[derive(Default)]
struct Kustomization {
    /// `resources`, then `bases`.
    resources: Vec<String>,
    images: Vec<ImageEntry>,
    /// `patchesStrategicMerge` files, then `patches` paths.
    patches: Vec<String>,
    namespace: Option<String>,
}

fn strings(file: &Path, field: &str, value: &Value) -> Result<Vec<String>, BuildError> {
    let invalid = || BuildError::InvalidKustomization {
        file: file.to_path_buf(),
        problem: format!("`{field}` is not a list of strings"),
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

/// Reads and checks one kustomization file, collecting every unsupported field.
fn read_kustomization(file: &Path, bytes: &[u8]) -> Result<Kustomization, BuildError> {
    let invalid = |problem: String| BuildError::InvalidKustomization {
        file: file.to_path_buf(),
        problem,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|error| invalid(format!("not UTF-8: {error}")))?;
    let value = windlass_manifest::documents::parse_value(text).map_err(|error| {
        let message = error.to_string();
        invalid(format!(
            "invalid YAML: {}",
            message.lines().next().unwrap_or(&message)
        ))
    })?;
    let map = match value {
        Value::Object(map) => map,
        Value::Null => return Err(invalid("the kustomization is empty".into())),
        _ => return Err(invalid("not a mapping".into())),
    };
    let mut kustomization = Kustomization::default();
    let mut unsupported = Vec::new();
    let mut bases = Vec::new();
    let mut strategic_merge = Vec::new();
    let mut patches = Vec::new();
    for (key, value) in &map {
        match key.as_str() {
            "apiVersion" | "metadata" => {}
            "kind" => match value.as_str() {
                Some("Kustomization") => {}
                _ => unsupported.push(format!("kind: {}", display_scalar(value))),
            },
            "resources" => kustomization.resources = strings(file, key, value)?,
            "bases" => bases = strings(file, key, value)?,
            "namespace" => match value {
                Value::String(namespace) if !namespace.is_empty() => {
                    kustomization.namespace = Some(namespace.clone());
                }
                Value::String(_) | Value::Null => {}
                _ => return Err(invalid("`namespace` is not a string".into())),
            },
            "images" => {
                kustomization.images = images(file, value, &mut unsupported)?;
            }
            "patchesStrategicMerge" => {
                for entry in strings(file, key, value)? {
                    if entry.contains('\n') {
                        unsupported.push("patchesStrategicMerge (inline patch)".into());
                    } else {
                        strategic_merge.push(entry);
                    }
                }
            }
            "patches" => {
                let Value::Array(entries) = value else {
                    if value.is_null() {
                        continue;
                    }
                    return Err(invalid("`patches` is not a list".into()));
                };
                for (index, entry) in entries.iter().enumerate() {
                    let Value::Object(entry) = entry else {
                        return Err(invalid(format!("`patches[{index}]` is not a mapping")));
                    };
                    let mut path = None;
                    for (field, field_value) in entry {
                        match (field.as_str(), field_value) {
                            ("path", Value::String(text)) => path = Some(text.clone()),
                            _ => unsupported.push(format!("patches[{index}].{field}")),
                        }
                    }
                    if let Some(path) = path {
                        patches.push(path);
                    } else if !unsupported
                        .iter()
                        .any(|field| field.starts_with(&format!("patches[{index}].")))
                    {
                        return Err(invalid(format!("`patches[{index}]` has no `path`")));
                    }
                }
            }
            other => unsupported.push(other.to_string()),
        }
    }
    if !unsupported.is_empty() {
        return Err(BuildError::Unsupported {
            file: file.to_path_buf(),
            fields: unsupported,
        });
    }
    kustomization.resources.extend(bases);
    kustomization.patches = strategic_merge;
    kustomization.patches.extend(patches);
    Ok(kustomization)
}

fn display_scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn images(
    file: &Path,
    value: &Value,
    unsupported: &mut Vec<String>,
) -> Result<Vec<ImageEntry>, BuildError> {
    let invalid = |problem: String| BuildError::InvalidKustomization {
        file: file.to_path_buf(),
        problem,
    };
    let entries = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        _ => return Err(invalid("`images` is not a list".into())),
    };
    let mut result = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(invalid(format!("`images[{index}]` is not a mapping")));
        };
        let mut image = ImageEntry::default();
        for (field, field_value) in entry {
            let slot = match field.as_str() {
                "name" => &mut image.name,
                "newName" => &mut image.new_name,
                "newTag" => &mut image.new_tag,
                "digest" => &mut image.digest,
                _ => {
                    unsupported.push(format!("images[{index}].{field}"));
                    continue;
                }
            };
            match field_value {
                Value::String(text) => *slot = text.clone(),
                Value::Null => {}
                _ => {
                    return Err(invalid(format!(
                        "`images[{index}].{field}` is not a string"
                    )));
                }
            }
        }
        if has_regex_syntax(&image.name) {
            unsupported.push(format!(
                "images[{index}].name `{}` (regular-expression syntax)",
                image.name
            ));
        }
        result.push(image);
    }
    Ok(result)
}

/// Whether `reference` looks like a remote resource kustomize would fetch.
fn is_remote(reference: &str) -> bool {
    reference.contains("://")
        || reference.starts_with("git@")
        || reference.starts_with("github.com/")
        || reference.starts_with("gitlab.com/")
        || reference.starts_with("bitbucket.org/")
}

/// A `resources` entry, resolved: a kustomization directory, or the position of a file among
/// the files parsed together.
enum Entry {
    Directory(PathBuf),
    File(usize),
}

struct Builder<'cache> {
    cache: &'cache ParsedCache,
    /// Directories answered from memory, never from the disk.
    planned: &'cache PlannedTree,
    root: PathBuf,
    /// The kustomization directories being built, innermost last.
    stack: Vec<PathBuf>,
    /// Canonical forms of the directories resources were found in, by their joined path.
    canonical_dirs: std::cell::RefCell<HashMap<PathBuf, PathBuf>>,
}

/// A resolved path and whether it is a directory.
struct Resolved {
    path: PathBuf,
    is_dir: bool,
}

impl Builder<'_> {
    fn kustomization_file(&self, dir: &Path) -> Result<PathBuf, BuildError> {
        let is_file = |path: &PathBuf| match self.planned.lookup(path) {
            Some(planned) => matches!(planned, Planned::File(_)),
            None => path.is_file(),
        };
        let found: Vec<PathBuf> = KUSTOMIZATION_FILE_NAMES
            .iter()
            .map(|name| dir.join(name))
            .filter(is_file)
            .collect();
        match found.len() {
            0 => Err(BuildError::MissingKustomization {
                dir: dir.to_path_buf(),
            }),
            1 => Ok(found.into_iter().next().expect("one")),
            _ => Err(BuildError::MultipleKustomizations {
                dir: dir.to_path_buf(),
            }),
        }
    }

    /// Resolves `reference` (as written in `file`, in directory `dir`) to a canonical path inside
    /// the root. A plain relative reference whose last component is not a symlink is resolved by
    /// canonicalising only its directory (cached: a release has thousands of files in a few
    /// directories); anything else is canonicalised whole.
    fn resolve(&self, file: &Path, dir: &Path, reference: &str) -> Result<Resolved, BuildError> {
        let joined = dir.join(reference);
        let resolved = match self.resolve_planned(dir, reference) {
            Some(resolved) => resolved?,
            None => match self.resolve_in_known_directory(&joined, reference) {
                Some(resolved) => resolved,
                None => {
                    let path = joined.canonicalize().map_err(|source| {
                        if source.kind() == std::io::ErrorKind::NotFound && is_remote(reference) {
                            BuildError::Unsupported {
                                file: file.to_path_buf(),
                                fields: vec![format!("remote resource `{reference}`")],
                            }
                        } else {
                            BuildError::Io {
                                path: joined.clone(),
                                source,
                            }
                        }
                    })?;
                    let is_dir = path.is_dir();
                    Resolved { path, is_dir }
                }
            },
        };
        if !resolved.path.starts_with(&self.root) {
            return Err(BuildError::OutsideRoot {
                file: file.to_path_buf(),
                reference: reference.to_string(),
                root: self.root.clone(),
            });
        }
        Ok(resolved)
    }

    /// Resolves `reference` inside a planned directory, from memory alone: `None` when it does
    /// not lead into one (or is not a reference [`PlannedTree::lexical_join`] can follow).
    fn resolve_planned(&self, dir: &Path, reference: &str) -> Option<Result<Resolved, BuildError>> {
        if self.planned.is_empty() {
            return None;
        }
        let path = PlannedTree::lexical_join(dir, reference)?;
        Some(match self.planned.lookup(&path)? {
            Planned::File(_) => Ok(Resolved {
                path,
                is_dir: false,
            }),
            Planned::Directory => Ok(Resolved { path, is_dir: true }),
            Planned::Missing => Err(BuildError::Io {
                path,
                source: std::io::ErrorKind::NotFound.into(),
            }),
        })
    }

    fn resolve_in_known_directory(&self, joined: &Path, reference: &str) -> Option<Resolved> {
        let plain = Path::new(reference)
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
        if !plain {
            return None;
        }
        let (parent, name) = (joined.parent()?, joined.file_name()?);
        let cached = self.canonical_dirs.borrow().get(parent).cloned();
        let canonical_parent = match cached {
            Some(canonical) => canonical,
            None => {
                let canonical = parent.canonicalize().ok()?;
                self.canonical_dirs
                    .borrow_mut()
                    .insert(parent.to_path_buf(), canonical.clone());
                canonical
            }
        };
        let path = canonical_parent.join(name);
        let metadata = std::fs::symlink_metadata(&path).ok()?;
        if metadata.file_type().is_symlink() {
            return None;
        }
        Some(Resolved {
            path,
            is_dir: metadata.is_dir(),
        })
    }

    /// A file named by a kustomization must be in or below its directory.
    fn resolve_file(
        &self,
        file: &Path,
        dir: &Path,
        reference: &str,
    ) -> Result<PathBuf, BuildError> {
        let resolved = self.resolve(file, dir, reference)?;
        Self::inside(resolved.path, file, dir, reference)
    }

    fn inside(
        path: PathBuf,
        file: &Path,
        dir: &Path,
        reference: &str,
    ) -> Result<PathBuf, BuildError> {
        if !path.starts_with(dir) {
            return Err(BuildError::FileOutsideKustomization {
                file: file.to_path_buf(),
                reference: reference.to_string(),
            });
        }
        Ok(path)
    }

    /// Builds the kustomization in `dir` (canonical).
    fn kustomization(&mut self, dir: &Path) -> Result<Vec<Resource>, BuildError> {
        if self.stack.iter().any(|open| open == dir) {
            return Err(BuildError::Cycle {
                dir: dir.to_path_buf(),
            });
        }
        let file = self.kustomization_file(dir)?;
        let kustomization = read_kustomization(&file, &read_file(self.planned, &file)?)?;
        self.stack.push(dir.to_path_buf());
        let mut resources: Vec<Resource> = Vec::new();
        let mut seen: FxHashSet<IdKey> = FxHashSet::default();
        // Resolve every entry first, so the files can be parsed in parallel.
        let mut entries = Vec::with_capacity(kustomization.resources.len());
        let mut files = Vec::new();
        for reference in &kustomization.resources {
            let resolved = self.resolve(&file, dir, reference)?;
            if resolved.is_dir {
                entries.push(Entry::Directory(resolved.path));
            } else {
                files.push(Self::inside(resolved.path, &file, dir, reference)?);
                entries.push(Entry::File(files.len() - 1));
            }
        }
        let mut parsed = parallel_map(&files, 2, |path| {
            load_objects(path, &self.root, self.cache, read_file(self.planned, path))
        })
        .into_iter()
        .map(Some)
        .collect::<Vec<_>>();
        for entry in entries {
            let loaded = match entry {
                Entry::Directory(directory) => self.kustomization(&directory)?,
                Entry::File(index) => parsed[index].take().expect("each file is used once")?,
            };
            for resource in loaded {
                if !seen.insert(resource.key()) {
                    return Err(BuildError::DuplicateObject {
                        id: resource.id().to_string(),
                        origin: resource.origin,
                        problem: "the same object is listed twice",
                    });
                }
                resources.push(resource);
            }
        }
        self.stack.pop();
        self.patch(&file, dir, &kustomization.patches, &mut resources)?;
        if let Some(namespace) = &kustomization.namespace {
            let mut seen = FxHashSet::with_capacity_and_hasher(resources.len(), Default::default());
            for resource in &mut resources {
                set_namespace(resource, namespace);
                if !seen.insert(resource.key()) {
                    return Err(BuildError::DuplicateObject {
                        id: resource.id().to_string(),
                        origin: resource.origin.clone(),
                        problem: "setting the namespace makes two objects one",
                    });
                }
            }
        }
        if !kustomization.images.is_empty() {
            // Each run of objects has its own transformer (it remembers each image's result).
            let problems = parallel_map_mut(
                &mut resources,
                OBJECTS_PER_THREAD,
                || ImageTransformer::new(&kustomization.images),
                |transformer, resource| {
                    transformer.apply(&mut resource.value).err().map(|problem| {
                        BuildError::InvalidObject {
                            origin: resource.origin.clone(),
                            problem: problem.0,
                        }
                    })
                },
            );
            if let Some(problem) = problems.into_iter().flatten().next() {
                return Err(problem);
            }
        }
        Ok(resources)
    }

    /// Applies strategic-merge patch files, each document to the one object whose current or
    /// earlier identity it names (kustomize's `GetById(patch.OrgId())`). Every file is read
    /// first; a file that cannot be read or parsed is reported after the documents before it were
    /// merged (as the serial loop would have merged them first).
    fn patch(
        &self,
        file: &Path,
        dir: &Path,
        patches: &[String],
        resources: &mut [Resource],
    ) -> Result<(), BuildError> {
        let mut documents = Vec::new();
        let mut unreadable = None;
        for reference in patches {
            match self.patch_documents(file, dir, reference) {
                Ok(read) => documents.extend(read),
                Err(error) => {
                    unreadable = Some(error);
                    break;
                }
            }
        }
        apply_patches(&documents, resources)?;
        unreadable.map_or(Ok(()), Err)
    }

    /// The documents of the patch file `reference` names.
    fn patch_documents(
        &self,
        file: &Path,
        dir: &Path,
        reference: &str,
    ) -> Result<Vec<PatchDocument>, BuildError> {
        let path = self.resolve_file(file, dir, reference)?;
        let shown = display_relative(&path, &self.root);
        let bytes = read_file(self.planned, &path)?;
        Ok(parse_file(&shown, &bytes, Reuse::Take(self.cache))?
            .into_iter()
            .map(|document| PatchDocument {
                path: path.clone(),
                document,
            })
            .collect())
    }
}

/// `path` relative to `root` with `/` separators, for messages.
fn display_relative(path: &Path, root: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// The objects of one resource file.
fn load_objects(
    path: &Path,
    root: &Path,
    cache: &ParsedCache,
    bytes: Result<Arc<[u8]>, BuildError>,
) -> Result<Vec<Resource>, BuildError> {
    let bytes = bytes?;
    let shown = display_relative(path, root);
    let documents = parse_file(&shown, &bytes, Reuse::Take(cache))?;
    let mut objects = Vec::with_capacity(documents.len());
    for document in documents {
        if document.kind.ends_with("List") && document.value.get("items").is_some() {
            return Err(BuildError::Unsupported {
                file: path.to_path_buf(),
                fields: vec![format!(
                    "kind: {} (document {})",
                    document.kind,
                    document.index + 1
                )],
            });
        }
        objects.push(Resource {
            origin: document.location(),
            value: std::sync::Arc::unwrap_or_clone(document.value),
            previous: Vec::new(),
        });
    }
    Ok(objects)
}
