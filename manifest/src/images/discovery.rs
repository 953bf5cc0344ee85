//! Finding every image in a release's documents, with provenance: file, document, apiVersion,
//! kind, namespace, name and field path. Pod specs are found where Kubernetes and KOTS look for
//! them (`spec` of a Pod; `spec.template.spec` and `spec.jobTemplate.spec.template.spec` of any
//! kind, so custom resources shaped like workloads count too), in `containers`, `initContainers`
//! and `ephemeralContainers`; KOTS `Application.spec.additionalImages` are images an operator starts
//! at run time; user rules add fields of custom resources. Every reference is parsed, and an empty or
//! invalid one is an error naming file, object and field.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::images::reference::{ImageReference, ReferenceError};
use crate::images::rules::{ImageRule, PathStep, parse_path};

/// One document to search.
#[derive(Debug, Clone, Copy)]
pub struct SourceDocument<'a> {
    /// The release file.
    pub file: &'a str,
    /// The document's position in the file, from 0.
    pub index: usize,
    /// `apiVersion`.
    pub api_version: &'a str,
    /// `kind`.
    pub kind: &'a str,
    /// `metadata.namespace`.
    pub namespace: Option<&'a str>,
    /// `metadata.name`.
    pub name: Option<&'a str>,
    /// The parsed document.
    pub value: &'a serde_json::Value,
}

/// Where one image was found (wire format: part of events and `--json` output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUse {
    /// The release file.
    pub file: String,
    /// The document's position in the file, from 0.
    pub document: usize,
    /// `apiVersion` of the object.
    pub api_version: String,
    /// `kind` of the object.
    pub kind: String,
    /// Its namespace, if set.
    pub namespace: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// The field, e.g. `spec.template.spec.initContainers[0].image`.
    pub field: String,
    /// For a container's image: where the pod spec holding the container sits, recorded here so
    /// that nothing parses `field` back to find it. Absent for images outside a pod spec
    /// (`additionalImages`, image-field rules that point elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<PodSpec>,
    /// Listed in `Application.spec.additionalImages`: started at run time, never patched.
    pub runtime_only: bool,
}

/// One distinct image string and every place it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundImage {
    /// The parsed reference.
    pub reference: ImageReference,
    /// Every use, in release order.
    pub uses: Vec<ImageUse>,
}

impl FoundImage {
    /// Whether every use is an `additionalImages` entry.
    pub fn runtime_only(&self) -> bool {
        self.uses.iter().all(|image_use| image_use.runtime_only)
    }
}

/// An image field that does not hold a valid reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} (document {document}) {kind} {object}: field {field}: {problem}")]
pub struct DiscoveryError {
    /// The file.
    pub file: String,
    /// The document, from 1.
    pub document: usize,
    /// The object's kind.
    pub kind: String,
    /// `namespace/name` or `name`.
    pub object: String,
    /// The field path.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

/// Where a pod spec sits in an object (wire format: part of `ImageUse`, written as its dotted
/// path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PodSpec {
    /// `spec`: a Pod.
    #[serde(rename = "spec")]
    Pod,
    /// `spec.template.spec`: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ...
    #[serde(rename = "spec.template.spec")]
    Template,
    /// `spec.jobTemplate.spec.template.spec`: CronJob.
    #[serde(rename = "spec.jobTemplate.spec.template.spec")]
    JobTemplate,
}

impl PodSpec {
    /// The object keys leading to the pod spec, from the root.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            PodSpec::Pod => &["spec"],
            PodSpec::Template => &["spec", "template", "spec"],
            PodSpec::JobTemplate => &["spec", "jobTemplate", "spec", "template", "spec"],
        }
    }

    /// The dotted path, e.g. `spec.template.spec`.
    pub fn path(self) -> &'static str {
        match self {
            PodSpec::Pod => "spec",
            PodSpec::Template => "spec.template.spec",
            PodSpec::JobTemplate => "spec.jobTemplate.spec.template.spec",
        }
    }
}

/// The pod specs every object is searched for (a Pod's own `spec` only for kind Pod).
const POD_SPECS: &[PodSpec] = &[PodSpec::Template, PodSpec::JobTemplate];
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// The pod spec an image field sits in, read from the field path itself, when the field is an
/// image of one of its container lists: [`PodSpec::Template`] for
/// `spec.template.spec.containers[0].image`. Used for image-field rules (whose paths are the
/// user's) and to upcast uses recorded before the location was; containers found by discovery
/// carry theirs directly.
pub fn pod_spec_of_field(field: &str) -> Option<PodSpec> {
    let prefix = ["containers[", "initContainers[", "ephemeralContainers["]
        .iter()
        .filter_map(|list| field.find(&format!(".{list}")))
        .min()
        .map(|cut| &field[..cut])?;
    [PodSpec::Pod, PodSpec::Template, PodSpec::JobTemplate]
        .into_iter()
        .find(|pod_spec| pod_spec.path() == prefix)
}

fn at<'a>(value: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

struct Collector<'r> {
    found: IndexMap<String, FoundImage>,
    rules: &'r [(ImageRule, Vec<PathStep>)],
}

impl Collector<'_> {
    fn error(document: &SourceDocument, field: &str, problem: String) -> Box<DiscoveryError> {
        let object = match (document.namespace, document.name) {
            (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
            (None, Some(name)) => name.to_string(),
            _ => "(unnamed)".to_string(),
        };
        Box::new(DiscoveryError {
            file: document.file.to_string(),
            document: document.index + 1,
            kind: document.kind.to_string(),
            object,
            field: field.to_string(),
            problem,
        })
    }

    fn add(
        &mut self,
        document: &SourceDocument,
        field: String,
        value: &serde_json::Value,
        runtime_only: bool,
        pod_spec: Option<PodSpec>,
    ) -> Result<(), Box<DiscoveryError>> {
        let Some(written) = value.as_str() else {
            return Err(Self::error(
                document,
                &field,
                format!(
                    "expected an image reference string, found {}",
                    kind_of(value)
                ),
            ));
        };
        let image_use = ImageUse {
            file: document.file.to_string(),
            document: document.index,
            api_version: document.api_version.to_string(),
            kind: document.kind.to_string(),
            namespace: document.namespace.map(str::to_string),
            name: document.name.map(str::to_string),
            field,
            runtime_only,
            pod_spec,
        };
        // A release names few images many times: parse each spelling once.
        if let Some(found) = self.found.get_mut(written) {
            found.uses.push(image_use);
            return Ok(());
        }
        let reference = ImageReference::parse(written).map_err(|error| {
            let problem = match error {
                ReferenceError::Empty => "the image reference is empty".to_string(),
                other => other.to_string(),
            };
            Self::error(document, &image_use.field, problem)
        })?;
        self.found.insert(
            written.to_string(),
            FoundImage {
                reference,
                uses: vec![image_use],
            },
        );
        Ok(())
    }

    fn pod_spec(
        &mut self,
        document: &SourceDocument,
        pod_spec: PodSpec,
        spec: &serde_json::Value,
    ) -> Result<(), Box<DiscoveryError>> {
        for list_name in CONTAINER_LISTS {
            let Some(list) = spec.get(list_name) else {
                continue;
            };
            let list_field = format!("{}.{list_name}", pod_spec.path());
            let Some(containers) = list.as_array() else {
                if list.is_null() {
                    continue;
                }
                return Err(Self::error(document, &list_field, "is not a list".into()));
            };
            for (position, container) in containers.iter().enumerate() {
                let field = format!("{list_field}[{position}].image");
                let image = container.get("image").unwrap_or(&serde_json::Value::Null);
                if image.is_null() {
                    return Err(Self::error(
                        document,
                        &field,
                        "the container has no image".into(),
                    ));
                }
                self.add(document, field, image, false, Some(pod_spec))?;
            }
        }
        Ok(())
    }

    fn document(&mut self, document: &SourceDocument) -> Result<(), Box<DiscoveryError>> {
        let value = document.value;
        if document.kind == "Pod"
            && let Some(spec) = value.get("spec")
        {
            self.pod_spec(document, PodSpec::Pod, spec)?;
        }
        for &pod_spec in POD_SPECS {
            if let Some(spec) = at(value, pod_spec.keys()) {
                self.pod_spec(document, pod_spec, spec)?;
            }
        }
        if document.kind == "Application"
            && document.api_version.starts_with("kots.io/")
            && let Some(additional) = at(value, &["spec", "additionalImages"])
        {
            let Some(images) = additional.as_array() else {
                return Err(Self::error(
                    document,
                    "spec.additionalImages",
                    "is not a list".into(),
                ));
            };
            for (position, image) in images.iter().enumerate() {
                self.add(
                    document,
                    format!("spec.additionalImages[{position}]"),
                    image,
                    true,
                    None,
                )?;
            }
        }
        let rules = self.rules;
        for (rule, steps) in rules {
            let applies = rule.kind == document.kind
                && rule
                    .api_version
                    .as_deref()
                    .is_none_or(|version| version == document.api_version);
            if applies {
                self.rule(document, value, steps, String::new())?;
            }
        }
        Ok(())
    }

    fn rule(
        &mut self,
        document: &SourceDocument,
        value: &serde_json::Value,
        steps: &[PathStep],
        field: String,
    ) -> Result<(), Box<DiscoveryError>> {
        let join = |key: &str| {
            if field.is_empty() {
                key.to_string()
            } else {
                format!("{field}.{key}")
            }
        };
        match steps.split_first() {
            None => {
                let pod_spec = pod_spec_of_field(&field);
                self.add(document, field, value, false, pod_spec)
            }
            Some((PathStep::Key(key), rest)) => match value.get(key) {
                None | Some(serde_json::Value::Null) => Ok(()),
                Some(next) => self.rule(document, next, rest, join(key)),
            },
            Some((PathStep::EachOf(key), rest)) => match value.get(key) {
                None | Some(serde_json::Value::Null) => Ok(()),
                Some(serde_json::Value::Array(items)) => {
                    for (position, item) in items.iter().enumerate() {
                        self.rule(document, item, rest, format!("{}[{position}]", join(key)))?;
                    }
                    Ok(())
                }
                Some(_) => Err(Self::error(document, &join(key), "is not a list".into())),
            },
        }
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Finds every image in `documents`, distinct image strings in the order first found.
pub fn discover<'a>(
    documents: impl IntoIterator<Item = SourceDocument<'a>>,
    rules: &[ImageRule],
) -> Result<Vec<FoundImage>, Box<DiscoveryError>> {
    let parsed_rules: Vec<(ImageRule, Vec<PathStep>)> = rules
        .iter()
        .filter_map(|rule| {
            parse_path(&rule.path)
                .ok()
                .map(|steps| (rule.clone(), steps))
        })
        .collect();
    let documents: Vec<SourceDocument<'a>> = documents.into_iter().collect();
    // Each core searches a run of documents; the runs' findings are merged in release order, so
    // images keep the order they were first found in, uses stay in release order, and the first
    // error in release order is the one reported.
    let run_length = documents
        .len()
        .div_ceil(crate::parallel::threads())
        .max(DOCUMENTS_PER_RUN);
    let runs: Vec<&[SourceDocument<'a>]> = documents.chunks(run_length).collect();
    let mut runs = crate::parallel::parallel_map(&runs, 2, |run| {
        let mut collector = Collector {
            found: IndexMap::new(),
            rules: &parsed_rules,
        };
        for document in *run {
            collector.document(document)?;
        }
        Ok::<_, Box<DiscoveryError>>(collector.found)
    })
    .into_iter();
    // The first run's findings are the start; each later run's are merged into them.
    let mut found: IndexMap<String, FoundImage> = match runs.next() {
        Some(first) => first?,
        None => IndexMap::new(),
    };
    for run in runs {
        for (written, image) in run? {
            match found.entry(written) {
                indexmap::map::Entry::Occupied(mut earlier) => {
                    earlier.get_mut().uses.extend(image.uses);
                }
                indexmap::map::Entry::Vacant(slot) => {
                    slot.insert(image);
                }
            }
        }
    }
    Ok(found.into_values().collect())
}

/// Fewer documents than this are searched on one thread.
const DOCUMENTS_PER_RUN: usize = 256;

/// Whether a KOTS `Application` among `documents` sets `spec.proxyPublicImages: true`, which makes
/// every image private without probing. KOTS reads the field as YAML 1.1, so `yes`, `on` and `y`
/// (any case) are true as well.
pub fn proxies_public_images<'a>(documents: impl IntoIterator<Item = SourceDocument<'a>>) -> bool {
    documents.into_iter().any(|document| {
        document.kind == "Application"
            && document.api_version.starts_with("kots.io/")
            && match at(document.value, &["spec", "proxyPublicImages"]) {
                Some(serde_json::Value::Bool(value)) => *value,
                Some(serde_json::Value::String(word)) => {
                    windlass_kots::yaml_1_1_bool(word) == Some(true)
                }
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_spec_paths_follow_the_kind() {
        assert_eq!(
            pod_spec_of_field("spec.containers[0].image"),
            Some(PodSpec::Pod)
        );
        assert_eq!(
            pod_spec_of_field("spec.template.spec.initContainers[1].image"),
            Some(PodSpec::Template)
        );
        assert_eq!(
            pod_spec_of_field("spec.jobTemplate.spec.template.spec.containers[0].image"),
            Some(PodSpec::JobTemplate)
        );
        assert_eq!(pod_spec_of_field("spec.image"), None);
        assert_eq!(pod_spec_of_field("spec.sidecars[0].image"), None);
    }

    #[test]
    fn proxy_public_images_takes_the_boolean_words_kots_takes() {
        let proxies = |value: &str| {
            let documents = crate::documents::parse_documents(
                "kots.yaml",
                format!("apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: a\nspec:\n  proxyPublicImages: {value}\n").as_bytes(),
            )
            .unwrap();
            proxies_public_images(documents.iter().map(crate::documents::Document::as_source))
        };
        for word in ["true", "True", "yes", "Yes", "YES", "on", "On", "y", "Y"] {
            assert!(proxies(word), "{word}");
        }
        for word in [
            "false", "no", "No", "off", "OFF", "n", "N", "maybe", "1", "\"\"",
        ] {
            assert!(!proxies(word), "{word}");
        }
    }
}
