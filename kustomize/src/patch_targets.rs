//! Applying a kustomization's strategic-merge patch documents, each to the one object whose
//! current or earlier identity it names (kustomize's `GetById(patch.OrgId())`), in listed order.
//! A patch never changes an object's identity (`patch::apply` keeps its namespace, as kustomize
//! does), so every target is found before any is merged. On a big release every patch names an
//! object of its own (the midstream's pull-secret patches, one per workload): then the order
//! cannot matter, and the patches are merged on every core. Two patches of one object are merged
//! one by one. Either way the error reported is the one a serial loop meets first.

use std::path::PathBuf;

use rustc_hash::FxHashMap;
use windlass_manifest::documents::Document;
use windlass_manifest::parallel::{parallel_map, parallel_map_mut};

use crate::patch;
use crate::resource::{IdKey, ResId, Resource};
use crate::{BuildError, OBJECTS_PER_THREAD};

/// One document of a patch file, with the file as the build names it.
pub(crate) struct PatchDocument {
    pub path: PathBuf,
    pub document: Document,
}

/// Merges `documents` into `resources` in order (see the module documentation).
pub(crate) fn apply_patches(
    documents: &[PatchDocument],
    resources: &mut [Resource],
) -> Result<(), BuildError> {
    if documents.is_empty() {
        return Ok(());
    }
    let index = identity_index(resources);
    let ids = parallel_map(documents, OBJECTS_PER_THREAD, |patch| {
        ResId::of(&patch.document.value)
    });
    let (targets, missing_target) = targets(documents, &ids, &index);
    if all_distinct(&targets, resources.len()) {
        apply_in_parallel(documents, &targets, resources)?;
    } else {
        for (patch, &position) in documents.iter().zip(&targets) {
            patch::apply(&mut resources[position].value, &patch.document.value)
                .map_err(|unsupported| unsupported_patch(patch, unsupported))?;
        }
    }
    missing_target.map_or(Ok(()), Err)
}

/// Every identity (current and earlier) of every object, to the objects' positions.
fn identity_index(resources: &[Resource]) -> FxHashMap<IdKey, Vec<usize>> {
    // Tens of thousands of identities on a big release: hashed with Fx, not SipHash.
    let mut index: FxHashMap<IdKey, Vec<usize>> =
        FxHashMap::with_capacity_and_hasher(resources.len(), Default::default());
    for (position, resource) in resources.iter().enumerate() {
        let mut keys: Vec<IdKey> = Vec::with_capacity(resource.previous.len() + 1);
        for key in resource
            .previous
            .iter()
            .map(ResId::key)
            .chain([resource.key()])
        {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in keys {
            index.entry(key).or_default().push(position);
        }
    }
    index
}

/// The object each document names, up to the first that names no object (or several), whose
/// error is returned beside them.
fn targets(
    documents: &[PatchDocument],
    ids: &[ResId],
    index: &FxHashMap<IdKey, Vec<usize>>,
) -> (Vec<usize>, Option<BuildError>) {
    let mut targets = Vec::with_capacity(documents.len());
    for (patch, id) in documents.iter().zip(ids) {
        let problem = match index.get(&id.key()).map(Vec::as_slice).unwrap_or(&[]) {
            [one] => {
                targets.push(*one);
                continue;
            }
            [] => "no object matches",
            _ => "several objects match",
        };
        let error = BuildError::PatchTarget {
            origin: patch.document.location(),
            id: id.to_string(),
            problem,
        };
        return (targets, Some(error));
    }
    (targets, None)
}

/// Whether no object is the target of two patches.
fn all_distinct(targets: &[usize], objects: usize) -> bool {
    let mut patched = vec![false; objects];
    targets
        .iter()
        .all(|&position| !std::mem::replace(&mut patched[position], true))
}

/// Merges document `n` into object `targets[n]`, on every core; the first document (in order)
/// that could not be merged is the error.
fn apply_in_parallel(
    documents: &[PatchDocument],
    targets: &[usize],
    resources: &mut [Resource],
) -> Result<(), BuildError> {
    let mut patch_of: Vec<Option<usize>> = vec![None; resources.len()];
    for (document, &position) in targets.iter().enumerate() {
        patch_of[position] = Some(document);
    }
    let mut work: Vec<(&mut Resource, usize)> = resources
        .iter_mut()
        .zip(patch_of)
        .filter_map(|(resource, document)| document.map(|document| (resource, document)))
        .collect();
    let failures = parallel_map_mut(
        &mut work,
        OBJECTS_PER_THREAD,
        || (),
        |(), (resource, document)| {
            patch::apply(&mut resource.value, &documents[*document].document.value)
                .err()
                .map(|unsupported| (*document, unsupported))
        },
    );
    match failures
        .into_iter()
        .flatten()
        .min_by_key(|(document, _)| *document)
    {
        Some((document, unsupported)) => Err(unsupported_patch(&documents[document], unsupported)),
        None => Ok(()),
    }
}

fn unsupported_patch(patch: &PatchDocument, unsupported: patch::UnsupportedPatch) -> BuildError {
    BuildError::Unsupported {
        file: patch.path.clone(),
        fields: vec![format!(
            "{} (document {})",
            unsupported.0,
            patch.document.index + 1
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use windlass_manifest::documents::parse_documents;

    fn resources(count: usize) -> Vec<Resource> {
        (0..count)
            .map(|index| Resource {
                value: serde_json::json!({
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": { "name": format!("app-{index}") },
                    "spec": { "replicas": 1 },
                }),
                previous: Vec::new(),
                origin: format!("base/app.yaml (document {})", index + 1),
            })
            .collect()
    }

    fn patches(text: &str) -> Vec<PatchDocument> {
        parse_documents("patches.yaml", text.as_bytes())
            .expect("the patches parse")
            .into_iter()
            .map(|document| PatchDocument {
                path: PathBuf::from("overlays/midstream/patches.yaml"),
                document,
            })
            .collect()
    }

    fn replicas_patch(name: &str, replicas: u32) -> String {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n"
        )
    }

    #[test]
    fn a_patch_per_object_is_merged_into_each_on_every_core() {
        // More patches than one thread takes, so that the work is split when there are cores.
        let count = OBJECTS_PER_THREAD * 3;
        let mut objects = resources(count);
        let text: String = (0..count)
            .map(|index| replicas_patch(&format!("app-{index}"), index as u32 + 2))
            .collect();
        apply_patches(&patches(&text), &mut objects).expect("every patch has its object");
        for (index, object) in objects.iter().enumerate() {
            assert_eq!(object.value["spec"]["replicas"], index + 2, "app-{index}");
        }
    }

    #[test]
    fn two_patches_of_one_object_are_merged_in_their_order() {
        let mut objects = resources(OBJECTS_PER_THREAD * 2);
        let text = [
            replicas_patch("app-3", 5),
            replicas_patch("app-4", 6),
            replicas_patch("app-3", 7),
        ]
        .concat();
        let documents = patches(&text);
        let ids: Vec<ResId> = documents
            .iter()
            .map(|patch| ResId::of(&patch.document.value))
            .collect();
        let (found, missing) = targets(&documents, &ids, &identity_index(&objects));
        assert_eq!(
            (found.as_slice(), missing.is_none()),
            (&[3, 4, 3][..], true)
        );
        assert!(!all_distinct(&found, objects.len()));
        apply_patches(&documents, &mut objects).expect("merged");
        assert_eq!(objects[3].value["spec"]["replicas"], 7);
        assert_eq!(objects[4].value["spec"]["replicas"], 6);
    }

    #[test]
    fn a_patch_naming_an_earlier_namespace_finds_the_object_and_leaves_it_where_it_is() {
        // app-1 was in namespace `old` before a `namespace:` moved it to `new`: patches naming
        // `old` find it, and it stays in `new` (kubectl kustomize v5.6 agrees; the fixture
        // `patches-naming-an-earlier-namespace` checks it against kubectl).
        let mut objects = resources(2);
        objects[1].previous.push(ResId::of(&serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "app-1", "namespace": "old" },
        })));
        objects[1].value["metadata"]["namespace"] = "new".into();
        let first = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-1\n  namespace: old\nspec:\n  replicas: 3\n";
        let second = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-1\n  namespace: old\nspec:\n  paused: true\n";
        apply_patches(&patches(&[first, second].concat()), &mut objects).expect("merged");
        assert_eq!(objects[1].value["metadata"]["namespace"], "new");
        assert_eq!(objects[1].value["spec"]["replicas"], 3);
        assert_eq!(objects[1].value["spec"]["paused"], true);
        // An object without a namespace stays without one when the patch names `default`.
        let default = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-0\n  namespace: default\nspec:\n  replicas: 4\n";
        apply_patches(&patches(default), &mut objects).expect("merged");
        assert_eq!(
            objects[0].value["metadata"],
            serde_json::json!({ "name": "app-0" })
        );
        assert_eq!(objects[0].value["spec"]["replicas"], 4);
    }

    #[test]
    fn the_error_reported_is_the_first_a_serial_merge_meets() {
        let count = OBJECTS_PER_THREAD * 3;
        let unsupported = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-700\n$patch: delete\n";
        let no_target = replicas_patch("missing", 2);
        // An unsupported patch late in the list (merged on the second thread) comes before a patch
        // naming no object: the unsupported one is reported, as a serial merge would.
        let mut text: String = (0..count)
            .filter(|index| *index != 700)
            .map(|index| replicas_patch(&format!("app-{index}"), 2))
            .collect();
        text.push_str(unsupported);
        text.push_str(&no_target);
        let error = apply_patches(&patches(&text), &mut resources(count)).expect_err("refused");
        assert!(
            matches!(&error, BuildError::Unsupported { fields, .. } if fields[0].contains("`$patch`") && fields[0].contains(&format!("(document {count})"))),
            "{error}"
        );
        // The other way round, the missing object is reported.
        let mut text = no_target.clone();
        text.push_str(unsupported);
        let error = apply_patches(&patches(&text), &mut resources(count)).expect_err("refused");
        assert!(
            matches!(&error, BuildError::PatchTarget { problem: "no object matches", origin, .. } if origin.contains("document 1")),
            "{error}"
        );
    }
}
