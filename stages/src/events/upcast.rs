//! Upcasters of the built-in stages' events: pure functions from a stored payload of version `n`
//! to version `n + 1`, applied on read (stored records are never rewritten).

use serde_json::{Map, Value};
use windlass_manifest::images::discovery::pod_spec_of_field;
use windlass_manifest::images::reference::ImageReference;

/// `ImagesProbed` version 1 → 2: each image gets its parsed `tag` and `pinned_digest`, and each
/// container use its `pod_spec` location, derived from the recorded strings (which discovery had
/// parsed and checked when it recorded them).
pub fn images_probed_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    let images = payload
        .get_mut("images")
        .and_then(Value::as_array_mut)
        .ok_or("ImagesProbed v1 payload has no images list")?;
    for image in images {
        let image = image
            .as_object_mut()
            .ok_or("ImagesProbed v1 image is not an object")?;
        let written = image
            .get("image")
            .and_then(Value::as_str)
            .ok_or("ImagesProbed v1 image has no image reference")?;
        let reference = ImageReference::parse(written)
            .map_err(|error| format!("ImagesProbed v1 image {written:?}: {error}"))?;
        let text = |part: Option<&str>| part.map_or(Value::Null, Value::from);
        image.insert("tag".into(), text(reference.tag()));
        image.insert("pinned_digest".into(), text(reference.digest()));
        for image_use in image
            .get_mut("uses")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            add_pod_spec(image_use)?;
        }
    }
    Ok(payload)
}

fn add_pod_spec(image_use: &mut Value) -> Result<(), String> {
    let image_use: &mut Map<String, Value> = image_use
        .as_object_mut()
        .ok_or("ImagesProbed v1 use is not an object")?;
    let runtime_only = image_use
        .get("runtime_only")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let field = image_use.get("field").and_then(Value::as_str).unwrap_or("");
    if let Some(pod_spec) = pod_spec_of_field(field).filter(|_| !runtime_only) {
        image_use.insert("pod_spec".into(), Value::from(pod_spec.path()));
    }
    Ok(())
}

/// `BaseFetched` and `BaseWritten` version 1 → 2, and `BaseFetched` 2 → 3: the payload is
/// unchanged. Version 2 lets a document or a written file be named by keyed fingerprint instead of
/// a blob (when its text holds a password value); version 3 lets a HelmChart's values and helm's
/// output be named so too (`values` and `output_blob` null on a chart not excluded). Every older
/// record names blobs and values, which the newer version reads as they are.
pub fn unchanged(payload: Value) -> Result<Value, String> {
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_v1_image_gets_its_reference_parts_and_each_container_use_its_pod_spec() {
        let v1 = json!({"images": [{
            "image": "quay.io/org/api:1.2@sha256:0123456789012345678901234567890123456789012345678901234567890123",
            "uses": [
                {"field": "spec.jobTemplate.spec.template.spec.initContainers[1].image", "runtime_only": false},
                {"field": "spec.additionalImages[0]", "runtime_only": true},
            ],
        }]});
        let v2 = images_probed_v1_to_v2(v1).unwrap();
        let image = &v2["images"][0];
        assert_eq!(image["tag"], json!("1.2"));
        assert!(
            image["pinned_digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:0123")
        );
        assert_eq!(
            image["uses"][0]["pod_spec"],
            json!("spec.jobTemplate.spec.template.spec")
        );
        assert!(image["uses"][1].get("pod_spec").is_none());
    }

    #[test]
    fn a_v1_payload_without_images_is_refused() {
        assert!(images_probed_v1_to_v2(json!({"policy": "kots"})).is_err());
    }
}
