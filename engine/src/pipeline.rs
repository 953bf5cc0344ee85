//! Pipelines: a list of [`StageSpec`]s (name, kind, inputs, config) turned into a validated DAG of
//! stage configurations. Building collects every problem — unknown kind, invalid config, duplicate
//! name, missing input, cycle — and reports them together, so a user fixes a pipeline in one go.
//! The runtime stages are built later, by the runner, for each install (see
//! [`StageConfig::build`]). Stage kinds are registered in a [`StageRegistry`] by name, with a
//! factory closure, so a kind may come from a plugin loaded at run time.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::events::PipelineStageRecord;
use crate::stage::StageConfig;

/// One stage as written in a pipeline definition.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    /// Unique name within the pipeline.
    pub name: String,
    /// Which registered stage kind to build.
    pub kind: String,
    /// Names of the stages whose facts this one reads; they run first.
    pub inputs: Vec<String>,
    /// The kind's configuration.
    pub config: serde_json::Value,
}

impl StageSpec {
    /// A spec with an empty configuration.
    pub fn new(name: &str, kind: &str, inputs: &[&str]) -> StageSpec {
        StageSpec {
            name: name.to_string(),
            kind: kind.to_string(),
            inputs: inputs.iter().map(|input| input.to_string()).collect(),
            config: serde_json::Value::Object(Default::default()),
        }
    }
}

/// Builds a stage config of one kind from its JSON configuration: a closure, so it may capture
/// what it needs (a plugin's handle, a test's probe).
pub type StageFactory =
    Arc<dyn Fn(&serde_json::Value) -> Result<Box<dyn StageConfig>, String> + Send + Sync>;

/// A stage kind that pipelines may use.
#[derive(Clone)]
pub struct StageKind {
    /// The kind's name, e.g. `fetch_base`.
    pub kind: String,
    /// What it does, for `--help`-style listings.
    pub description: String,
    /// How to build its config.
    pub factory: StageFactory,
}

impl StageKind {
    /// A kind named `kind` whose configurations `factory` reads.
    pub fn new(
        kind: impl Into<String>,
        description: impl Into<String>,
        factory: impl Fn(&serde_json::Value) -> Result<Box<dyn StageConfig>, String>
        + Send
        + Sync
        + 'static,
    ) -> StageKind {
        StageKind {
            kind: kind.into(),
            description: description.into(),
            factory: Arc::new(factory),
        }
    }
}

impl fmt::Debug for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StageKind")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// A second kind was registered under a name already taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stage kind {0:?} is registered twice")]
pub struct DuplicateKind(pub String);

/// The explicit list of stage kinds available to pipelines.
#[derive(Clone, Default)]
pub struct StageRegistry {
    kinds: BTreeMap<String, StageKind>,
}

impl StageRegistry {
    /// Registers the given kinds (a later kind of the same name replaces an earlier one; use
    /// [`StageRegistry::register`] to be told instead).
    pub fn new(kinds: &[StageKind]) -> StageRegistry {
        StageRegistry {
            kinds: kinds
                .iter()
                .map(|kind| (kind.kind.clone(), kind.clone()))
                .collect(),
        }
    }

    /// Adds a kind at run time (from a plugin, say), refusing a name already registered.
    pub fn register(&mut self, kind: StageKind) -> Result<(), DuplicateKind> {
        if self.kinds.contains_key(&kind.kind) {
            return Err(DuplicateKind(kind.kind));
        }
        self.kinds.insert(kind.kind.clone(), kind);
        Ok(())
    }

    /// Looks up a kind.
    pub fn get(&self, kind: &str) -> Option<&StageKind> {
        self.kinds.get(kind)
    }

    /// Every registered kind, by name.
    pub fn kinds(&self) -> impl Iterator<Item = &StageKind> {
        self.kinds.values()
    }
}

/// One problem with a pipeline definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineError {
    /// A stage names a kind nobody registered.
    UnknownKind {
        /// The stage.
        stage: String,
        /// The kind it asked for.
        kind: String,
    },
    /// A stage's configuration is invalid.
    InvalidConfig {
        /// The stage.
        stage: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// Two stages share a name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A stage names an input that is not in the pipeline.
    MissingInput {
        /// The stage.
        stage: String,
        /// The missing input.
        input: String,
    },
    /// Stages depend on each other in a cycle.
    Cycle {
        /// The stages in the cycle, sorted.
        stages: Vec<String>,
    },
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::UnknownKind { stage, kind } => {
                write!(f, "stage {stage:?}: unknown stage kind {kind:?}")
            }
            PipelineError::InvalidConfig { stage, problems } => {
                write!(
                    f,
                    "stage {stage:?}: invalid configuration: {}",
                    problems.join("; ")
                )
            }
            PipelineError::DuplicateName { name } => {
                write!(f, "stage name {name:?} is used more than once")
            }
            PipelineError::MissingInput { stage, input } => {
                write!(
                    f,
                    "stage {stage:?}: input {input:?} is not a stage of this pipeline"
                )
            }
            PipelineError::Cycle { stages } => {
                write!(
                    f,
                    "stages depend on each other in a cycle: {}",
                    stages.join(" → ")
                )
            }
        }
    }
}

/// Every problem found while building a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineErrors(pub Vec<PipelineError>);

impl fmt::Display for PipelineErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the pipeline has {} problem(s):", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PipelineErrors {}

/// A validated stage in a pipeline.
pub struct PipelineStage {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its inputs.
    pub inputs: Vec<String>,
    /// Its configuration as written (recorded in `InstallStarted`).
    pub config_value: serde_json::Value,
    /// Its validated configuration, which builds the runtime stage.
    pub config: Arc<dyn StageConfig>,
}

/// A validated, acyclic pipeline.
pub struct Pipeline {
    /// The stages in a dependency-respecting order: the definition order wherever it respects
    /// the inputs.
    ordered: Vec<PipelineStage>,
    /// blake3 over every spec (name, kind, inputs, config), in definition order.
    fingerprint: String,
}

/// A spec that is not a duplicate, with its validated configuration if it is valid.
type AcceptedStage<'a> = (&'a StageSpec, Option<Arc<dyn StageConfig>>);

impl Pipeline {
    /// Builds a pipeline, collecting every problem before failing.
    pub fn build(
        specs: &[StageSpec],
        registry: &StageRegistry,
    ) -> Result<Pipeline, PipelineErrors> {
        let mut errors = Vec::new();
        // Node weights index into `accepted`: the specs that are not duplicates.
        let mut graph: DiGraph<usize, ()> = DiGraph::new();
        let mut by_name: HashMap<&str, NodeIndex> = HashMap::new();
        let mut accepted: Vec<AcceptedStage> = Vec::new();
        for spec in specs {
            let stage = validate_stage(spec, registry, &mut errors);
            if by_name.contains_key(spec.name.as_str()) {
                errors.push(PipelineError::DuplicateName {
                    name: spec.name.clone(),
                });
                continue;
            }
            by_name.insert(spec.name.as_str(), graph.add_node(accepted.len()));
            accepted.push((spec, stage));
        }
        for (position, (spec, _)) in accepted.iter().enumerate() {
            let to = NodeIndex::new(position);
            for input in &spec.inputs {
                match by_name.get(input.as_str()) {
                    Some(&from) => {
                        graph.add_edge(from, to, ());
                    }
                    None => errors.push(PipelineError::MissingInput {
                        stage: spec.name.clone(),
                        input: input.clone(),
                    }),
                }
            }
        }
        for component in tarjan_scc(&graph) {
            let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
            if component.len() > 1 || self_loop {
                let mut stages: Vec<String> = component
                    .iter()
                    .map(|&index| accepted[graph[index]].0.name.clone())
                    .collect();
                stages.sort();
                errors.push(PipelineError::Cycle { stages });
            }
        }
        if !errors.is_empty() {
            return Err(PipelineErrors(errors));
        }
        // Kahn's algorithm, always taking the earliest-defined stage whose inputs are all placed:
        // the definition order wherever it respects the inputs.
        let mut waiting_on: Vec<usize> = graph
            .node_indices()
            .map(|node| graph.neighbors_directed(node, Direction::Incoming).count())
            .collect();
        let mut ready: std::collections::BTreeSet<NodeIndex> = graph
            .node_indices()
            .filter(|node| waiting_on[node.index()] == 0)
            .collect();
        let mut order = Vec::with_capacity(waiting_on.len());
        while let Some(node) = ready.pop_first() {
            order.push(node);
            for next in graph.neighbors_directed(node, Direction::Outgoing) {
                waiting_on[next.index()] -= 1;
                if waiting_on[next.index()] == 0 {
                    ready.insert(next);
                }
            }
        }
        let mut slots: Vec<Option<AcceptedStage>> = accepted.into_iter().map(Some).collect();
        let ordered = order
            .into_iter()
            .map(|index| {
                let (spec, stage) = slots[graph[index]].take().expect("each node appears once");
                PipelineStage {
                    name: spec.name.clone(),
                    kind: spec.kind.clone(),
                    inputs: spec.inputs.clone(),
                    config_value: spec.config.clone(),
                    config: stage.expect("every stage is valid when there are no errors"),
                }
            })
            .collect();
        Ok(Pipeline {
            ordered,
            fingerprint: fingerprint(specs),
        })
    }

    /// The stages in a dependency-respecting order: the definition order wherever it respects
    /// the inputs.
    pub fn stages(&self) -> impl Iterator<Item = &PipelineStage> {
        self.ordered.iter()
    }

    /// A digest of the whole definition (names, kinds, inputs and configs): two pipelines with the
    /// same fingerprint run the same stages the same way.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Stage names in order.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages().map(|stage| stage.name.clone()).collect()
    }

    /// The pipeline as recorded in `InstallStarted`.
    pub fn record(&self) -> Vec<PipelineStageRecord> {
        self.stages()
            .map(|stage| PipelineStageRecord {
                name: stage.name.clone(),
                kind: stage.kind.clone(),
                inputs: stage.inputs.clone(),
                config: stage.config_value.clone(),
            })
            .collect()
    }
}

fn fingerprint(specs: &[StageSpec]) -> String {
    let mut hasher = blake3::Hasher::new();
    for spec in specs {
        for part in [&spec.name, &spec.kind] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        for input in &spec.inputs {
            hasher.update(input.as_bytes());
            hasher.update(&[1]);
        }
        hasher.update(spec.config.to_string().as_bytes());
        hasher.update(&[2]);
    }
    hasher.finalize().to_hex()[..32].to_string()
}

/// Reads and validates one stage's configuration, recording any problem in `errors`.
fn validate_stage(
    spec: &StageSpec,
    registry: &StageRegistry,
    errors: &mut Vec<PipelineError>,
) -> Option<Arc<dyn StageConfig>> {
    let Some(kind) = registry.get(&spec.kind) else {
        errors.push(PipelineError::UnknownKind {
            stage: spec.name.clone(),
            kind: spec.kind.clone(),
        });
        return None;
    };
    let problems = match (kind.factory)(&spec.config) {
        Err(problem) => vec![problem],
        Ok(config) => match config.validate() {
            Ok(()) => return Some(Arc::from(config)),
            Err(problems) => problems,
        },
    };
    errors.push(PipelineError::InvalidConfig {
        stage: spec.name.clone(),
        problems,
    });
    None
}
