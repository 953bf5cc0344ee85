//! `documents::ParsedCache`, the engine-memo cache that lets `probe_images` and the native build
//! reuse what `fetch_base` parsed (and the native build the patches `render_midstream` wrote),
//! changes speed and never results: a reused document equals a
//! fresh parse, `Take` hands a document out once, and an install whose runner memo already holds
//! every document records the same facts and renders the same files as one that parses them.

use std::path::Path;
use windlass_state::EventPayload;

use serde_json::Value;
use windlass_engine::InstallState;
use windlass_manifest::documents::{ParsedCache, Reuse, parse_documents, parse_documents_with};
use windlass_stages::PipelineOptions;
use windlass_stages::events::{BaseFetched, ImagesProbed, MidstreamRendered};
use windlass_stages::probe_images::ProbeImagesConfig;

use crate::support::{Installer, fact, files_under, temp_dir};

const MULTI: &str = "# two workloads\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: quay.io/my-org/api:1\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  namespace: jobs\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: job\n              image: nginx:1.25\n";

const CONFIG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  enabled: \"yes\"\n  count: \"3\"\n";

const LICENSE: &str = "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: parsed-cache-test-license\n  licenseSequence: 1\n";

fn values(file: &str, text: &str, reuse: Reuse<'_>) -> Vec<Value> {
    parse_documents_with(file, text.as_bytes(), reuse)
        .unwrap_or_else(|error| panic!("{file}: {error}"))
        .into_iter()
        .map(|document| Value::clone(&document.value))
        .collect()
}

#[test]
fn a_reused_document_equals_a_fresh_parse_and_take_hands_it_out_once() {
    let fresh = values("multi.yaml", MULTI, Reuse::Nothing);
    assert_eq!(fresh.len(), 2);
    let cache = ParsedCache::default();

    assert_eq!(values("multi.yaml", MULTI, Reuse::Share(&cache)), fresh);
    assert_eq!((cache.len(), cache.reused()), (2, 0), "parsed and kept");
    assert_eq!(values("multi.yaml", MULTI, Reuse::Share(&cache)), fresh);
    assert_eq!((cache.len(), cache.reused()), (2, 2), "reused, still kept");

    assert_eq!(values("multi.yaml", MULTI, Reuse::Take(&cache)), fresh);
    assert_eq!((cache.len(), cache.reused()), (0, 4), "taken out");
    assert_eq!(values("multi.yaml", MULTI, Reuse::Take(&cache)), fresh);
    assert_eq!(
        (cache.len(), cache.reused()),
        (0, 4),
        "parsed again, not kept"
    );

    // The same text under another file name is the same document; locations follow the file.
    let shared = parse_documents_with("base/multi.yaml", MULTI.as_bytes(), Reuse::Share(&cache))
        .expect("parses");
    let again =
        parse_documents_with("other.yaml", MULTI.as_bytes(), Reuse::Share(&cache)).expect("parses");
    assert_eq!(cache.reused(), 6);
    assert_eq!(again[1].location(), "other.yaml (document 2, line 13)");
    assert_eq!(
        shared[1].location(),
        "base/multi.yaml (document 2, line 13)"
    );
    assert_eq!(again[1].namespace.as_deref(), Some("jobs"));
}

#[test]
fn an_error_is_reported_the_same_with_a_cache_and_is_not_kept() {
    let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\nkind: [unclosed\n";
    let plain = parse_documents("broken.yaml", broken.as_bytes()).expect_err("invalid");
    let cache = ParsedCache::default();
    let cached = parse_documents_with("broken.yaml", broken.as_bytes(), Reuse::Share(&cache))
        .expect_err("invalid");
    assert_eq!(cached.to_string(), plain.to_string());
    assert!(
        cached
            .to_string()
            .starts_with("broken.yaml (document 2, line 6)"),
        "{cached}"
    );
    assert_eq!(cache.len(), 1, "only the valid first document is kept");
}

fn write_release(root: &Path) {
    std::fs::create_dir_all(root.join("manifests")).unwrap();
    std::fs::create_dir_all(root.join("userdata")).unwrap();
    std::fs::write(root.join("manifests/multi.yaml"), MULTI).unwrap();
    std::fs::write(root.join("manifests/config.yaml"), CONFIG).unwrap();
    std::fs::write(root.join("userdata/license.yaml"), LICENSE).unwrap();
}

fn options() -> PipelineOptions {
    PipelineOptions {
        probe: ProbeImagesConfig {
            offline: true,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What an install recorded, without what legitimately differs between two state directories
/// (install ids, times, keyed fingerprints).
fn recorded(state: &InstallState) -> (BaseFetched, Vec<(String, String, bool)>, Vec<String>) {
    let fetched: BaseFetched = fact(state, "fetch_base", BaseFetched::EVENT_TYPE);
    let probed: ImagesProbed = fact(state, "probe_images", ImagesProbed::EVENT_TYPE);
    let rendered: MidstreamRendered =
        fact(state, "render_midstream", MidstreamRendered::EVENT_TYPE);
    let images = probed
        .images
        .iter()
        .map(|image| {
            (
                image.image.clone(),
                image.outcome.to_string(),
                image.private,
            )
        })
        .collect();
    let files = rendered
        .rendered_files
        .iter()
        .map(|file| format!("{} {:?}", file.path, file.blob))
        .collect();
    (fetched, images, files)
}

#[tokio::test]
async fn an_install_with_every_document_already_parsed_records_and_renders_the_same() {
    let release = temp_dir();
    write_release(release.path());
    let pipeline = windlass_stages::default_pipeline(&options());

    let parsing = Installer::with_pipeline(&pipeline);
    let parsing_out = temp_dir();
    let parsed_state = parsing
        .install(
            parsing.request(release.path(), parsing_out.path()),
            "parsing",
        )
        .await;
    let parsing_cache = parsing.runner.memo.get::<ParsedCache>();
    // Three documents outside the license: probe_images shares them all, and the native build
    // takes the three Kubernetes objects and the two pull-secret patches render_midstream wrote.
    assert_eq!(
        parsing_cache.reused(),
        8,
        "probe and render reuse what was parsed"
    );

    let reusing = Installer::with_pipeline(&pipeline);
    let reusing_cache = reusing.runner.memo.get::<ParsedCache>();
    for (file, text) in [("multi.yaml", MULTI), ("config.yaml", CONFIG)] {
        parse_documents_with(file, text.as_bytes(), Reuse::Share(&reusing_cache)).unwrap();
    }
    let reusing_out = temp_dir();
    let reused_state = reusing
        .install(
            reusing.request(release.path(), reusing_out.path()),
            "reusing",
        )
        .await;
    assert_eq!(
        reusing_cache.reused(),
        11,
        "fetch_base found every document parsed as well"
    );

    assert_eq!(recorded(&reused_state), recorded(&parsed_state));
    let rendered = |out: &Path| files_under(&out.join("rendered"));
    let parsed_files = rendered(parsing_out.path());
    assert_eq!(parsed_files.len(), 4, "three objects and the pull secret");
    assert_eq!(rendered(reusing_out.path()), parsed_files);
}
