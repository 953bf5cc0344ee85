//! `windlass-manifest` is the manifest layer every stage and the native kustomize build stand on:
//! splitting YAML files into documents and classifying each as KOTS does ([`documents`], with a
//! fast path for plain YAML in `yaml_fast_path`, writing YAML as serde-saphyr does but faster in
//! [`yaml_text`], and the [`parsed_cache`] that lets a document be
//! parsed once per process), image references parsed the way Docker does and found with their provenance
//! ([`images`]), and work spread over the cores ([`parallel`]). It knows nothing of stages, events
//! or the engine.

pub mod documents;
pub mod images;
pub mod parallel;
pub mod parsed_cache;
mod yaml_fast_path;
pub mod yaml_text;
