//! Placing plugin stages in a pipeline: each declaration becomes a stage spec wired into the
//! stage list, in declaration order.
//!
//! - A **transform** (every exec plugin, and an in-process plugin registered as
//!   [`PluginRole::Transform`]) changes a set of documents at its source, so that every stage
//!   after sees what it returns: the base documents (placed `after: fetch_base`, or `before:` any
//!   stage that reads them — `write_base`, `probe_images`, `plan_overrides`, `provision_secrets`,
//!   `render_midstream`) or the rendered objects (`after: render_midstream`, or `before:` a stage
//!   that reads them, such as `apply`). It takes the source stage (or the plugin before it on the
//!   same set) as its one input and replaces it among the inputs of every stage that read it, and
//!   it records the source's fact again, transformed (`BaseFetched` or `MidstreamRendered`).
//! - A **check** ([`PluginRole::Check`]) reads facts and may fail the install, changing nothing:
//!   `after: S` takes `S` as its input and becomes an input of every stage that read `S`;
//!   `before: S` takes `S`'s inputs and becomes one of `S`'s.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use windlass_engine::StageSpec;

use crate::declaration::{Placement, PluginDeclaration, PluginRun};
use crate::events::DocumentSet;
use crate::{KRM_FUNCTION_KIND, PluginRole, PluginSet};

/// The stage kind whose fact holds each document set at its source.
fn source_kind(set: DocumentSet) -> &'static str {
    match set {
        DocumentSet::Base => "fetch_base",
        DocumentSet::Rendered => "render_midstream",
    }
}

/// `specs` with the plugin stages of `declarations` inserted (see the module documentation), or
/// every problem found.
pub fn insert_plugins(
    mut specs: Vec<StageSpec>,
    declarations: &[PluginDeclaration],
    plugins: &PluginSet,
) -> Result<Vec<StageSpec>, Vec<String>> {
    let mut problems = Vec::new();
    // The stage each set's source stage is read through now (the last plugin placed on it).
    let mut tips: HashMap<String, String> = HashMap::new();
    // Plugin transforms placed so far: name → (set, source stage).
    let mut transforms: HashMap<String, (DocumentSet, String)> = HashMap::new();
    for declaration in declarations {
        let at = &declaration.declared_at;
        let key = declaration.placement.key();
        let target = declaration.placement.stage();
        if specs.iter().any(|spec| spec.name == declaration.name) {
            problems.push(format!(
                "{at}.name: the pipeline already has a stage named {}",
                declaration.name
            ));
            continue;
        }
        let Some(target_position) = specs.iter().position(|spec| spec.name == target) else {
            problems.push(format!(
                "{at}.{key}: the pipeline has no stage named {target} (it has {})",
                specs
                    .iter()
                    .map(|spec| spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        let (kind, role, config) = match &declaration.run {
            PluginRun::Exec { .. } => (KRM_FUNCTION_KIND.to_string(), None, Value::Null),
            PluginRun::Stage { kind } => match plugins.get(kind) {
                Some(plugin) => (kind.clone(), Some(plugin.role), declaration.config.clone()),
                None => {
                    problems.push(format!(
                        "{at}.stage: this windlass has no in-process plugin {kind} (it has: {})",
                        plugins.kind_names().join(", ")
                    ));
                    continue;
                }
            },
        };
        let set = match role {
            Some(PluginRole::Check) => None,
            Some(PluginRole::Transform(set)) => Some(Some(set)),
            None => Some(None),
        };
        match set {
            None => {
                let mut spec = StageSpec::new(&declaration.name, &kind, &[]);
                spec.config = config;
                place_check(&mut specs, spec, &declaration.placement, target_position);
            }
            Some(required) => {
                let found = transformed_set(&specs, &transforms, &declaration.placement);
                let (set, source) = match (found, required) {
                    (Ok((set, _)), Some(required)) if set != required => {
                        problems.push(format!(
                            "{at}.{key}: {} transforms the {} documents, and {key} {target} is where the {} ones are",
                            declaration.name,
                            required.as_str(),
                            set.as_str()
                        ));
                        continue;
                    }
                    (Ok(found), _) => found,
                    (Err(problem), _) => {
                        problems.push(format!("{at}.{key}: {problem}"));
                        continue;
                    }
                };
                let tip = tips.get(&source).cloned().unwrap_or(source.clone());
                let mut spec = StageSpec::new(&declaration.name, &kind, &[&tip]);
                spec.config = match &declaration.run {
                    PluginRun::Exec { program, args } => serde_json::json!({
                        "exec": program,
                        "args": args,
                        "documents": set,
                        "timeout_seconds": declaration.timeout_seconds,
                        "max_output_bytes": declaration.max_output_bytes,
                        "config": declaration.config,
                    }),
                    PluginRun::Stage { .. } => config,
                };
                for other in &mut specs {
                    for input in &mut other.inputs {
                        if *input == tip {
                            *input = declaration.name.clone();
                        }
                    }
                }
                let tip_position = specs
                    .iter()
                    .position(|spec| spec.name == tip)
                    .expect("the tip is a stage of the pipeline");
                specs.insert(tip_position + 1, spec);
                tips.insert(source.clone(), declaration.name.clone());
                transforms.insert(declaration.name.clone(), (set, source));
            }
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

/// Which document set a transform placed at `placement` changes, and the stage that is its
/// source.
fn transformed_set(
    specs: &[StageSpec],
    transforms: &HashMap<String, (DocumentSet, String)>,
    placement: &Placement,
) -> Result<(DocumentSet, String), String> {
    let kind_of = |name: &str| {
        specs
            .iter()
            .find(|spec| spec.name == name)
            .map(|spec| spec.kind.as_str())
    };
    let source_of = |name: &str| -> Option<(DocumentSet, String)> {
        if let Some(found) = transforms.get(name) {
            return Some(found.clone());
        }
        [DocumentSet::Rendered, DocumentSet::Base]
            .into_iter()
            .find(|set| kind_of(name) == Some(source_kind(*set)))
            .map(|set| (set, name.to_string()))
    };
    const WHERE: &str = "a KRM function transforms the base documents (place it after fetch_base or before a stage that reads them) or the rendered objects (after render_midstream, or before a stage that reads them)";
    match placement {
        Placement::After(stage) => source_of(stage).ok_or_else(|| {
            format!(
                "{stage} is a {} stage, which holds no documents to transform: {WHERE}",
                kind_of(stage).unwrap_or("?")
            )
        }),
        Placement::Before(stage) => {
            // The nearest sources among the stage's ancestors: rendered objects win over the
            // base documents they were built from.
            let mut seen = BTreeSet::new();
            let mut stack: Vec<String> = specs
                .iter()
                .find(|spec| &spec.name == stage)
                .map(|spec| spec.inputs.clone())
                .unwrap_or_default();
            let mut found: Vec<(DocumentSet, String)> = Vec::new();
            while let Some(name) = stack.pop() {
                if !seen.insert(name.clone()) {
                    continue;
                }
                if let Some(source) = source_of(&name) {
                    found.push(source);
                }
                if let Some(spec) = specs.iter().find(|spec| spec.name == name) {
                    stack.extend(spec.inputs.iter().cloned());
                }
            }
            found
                .iter()
                .find(|(set, _)| *set == DocumentSet::Rendered)
                .or_else(|| found.first())
                .cloned()
                .ok_or_else(|| format!("no stage before {stage} holds documents: {WHERE}"))
        }
    }
}

/// Places a check stage (see the module documentation).
fn place_check(
    specs: &mut Vec<StageSpec>,
    mut spec: StageSpec,
    placement: &Placement,
    target_position: usize,
) {
    match placement {
        Placement::After(stage) => {
            spec.inputs = vec![stage.clone()];
            for other in specs.iter_mut() {
                if other.inputs.contains(stage) {
                    other.inputs.push(spec.name.clone());
                }
            }
            specs.insert(target_position + 1, spec);
        }
        Placement::Before(_) => {
            spec.inputs = specs[target_position].inputs.clone();
            specs[target_position].inputs.push(spec.name.clone());
            specs.insert(target_position, spec);
        }
    }
}
