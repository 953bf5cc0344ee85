//! `windlass-plugin-host` lets stages windlass does not ship join a pipeline. Two kinds:
//!
//! - **Exec plugins** ([`krm_stage`], stage kind `krm_function`): any program speaking the KRM
//!   function protocol ([`krm`]: a `config.kubernetes.io/v1` `ResourceList` on stdin and stdout),
//!   so a function written for `kustomize fn` works. It runs as a bounded subprocess ([`exec`]:
//!   cleared environment, temporary working directory, deadline, output cap), over the base
//!   documents or the rendered objects, and what it was given and returned is recorded
//!   ([`events::PluginRan`]) so that a replay uses the recorded output and never runs it.
//! - **In-process plugins**: a crate that implements the engine's `StageConfig`/`Stage` traits and
//!   exports an [`InProcessPlugin`] (its `StageKind`, its role and its event schemas); the binary
//!   lists the ones it is built with in a [`PluginSet`] (registration at build time, an explicit
//!   list). Packaging kinds can be registered the same way, as transforms of the base documents.
//!
//! Both are declared in a `plugins:` list ([`declaration`]) of the `--config` file or of a
//! pipeline file and placed in the pipeline by [`placement::insert_plugins`].

pub mod declaration;
pub mod events;
pub mod exec;
pub mod krm;
pub mod krm_stage;
pub mod placement;

use windlass_engine::{StageKind, StageSpec};
use windlass_state::EventSchema;

pub use declaration::{Placement, PluginDeclaration, PluginRun, read_declarations};
pub use events::{DocumentSet, PluginRan, SCHEMAS};

/// The stage kind of exec plugins.
pub const KRM_FUNCTION_KIND: &str = "krm_function";

/// What an in-process plugin does in a pipeline, which decides how it is placed (see
/// [`placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginRole {
    /// It reads facts and may fail the install, changing nothing: placed beside the stage named,
    /// as an extra input of what follows.
    Check,
    /// It changes a document set and records that set's fact again (`BaseFetched` or
    /// `MidstreamRendered`): placed at the set's source, in place of it for every later stage.
    Transform(DocumentSet),
}

/// An in-process plugin, as its crate exports it.
#[derive(Clone)]
pub struct InProcessPlugin {
    /// Its stage kind (name, description, factory).
    pub kind: StageKind,
    /// How it is placed.
    pub role: PluginRole,
    /// The event types its stage records, with their upcasters (empty when it records none of
    /// its own).
    pub schemas: &'static [EventSchema],
    /// Where it goes when no declaration names its kind: a plugin that is part of every pipeline
    /// it fits (a packaging kind) sets this; one that runs only when declared leaves it `None`.
    /// It is placed first, named after its kind, with an empty configuration; a pipeline without
    /// the stage it names simply does not get it.
    pub default_placement: Option<Placement>,
}

/// The in-process plugins a binary is built with, plus the exec plugin host: what it registers
/// and how it places declared plugins.
#[derive(Clone, Default)]
pub struct PluginSet {
    plugins: Vec<InProcessPlugin>,
}

impl PluginSet {
    /// The set of `plugins`.
    pub fn new(plugins: Vec<InProcessPlugin>) -> PluginSet {
        PluginSet { plugins }
    }

    /// The in-process plugin of stage kind `kind`.
    pub fn get(&self, kind: &str) -> Option<&InProcessPlugin> {
        self.plugins.iter().find(|plugin| plugin.kind.kind == kind)
    }

    /// The in-process plugins' kind names.
    pub fn kind_names(&self) -> Vec<String> {
        self.plugins
            .iter()
            .map(|plugin| plugin.kind.kind.clone())
            .collect()
    }

    /// Every stage kind to register: `krm_function` and each in-process plugin's.
    pub fn stage_kinds(&self) -> Vec<StageKind> {
        let mut kinds = vec![krm_stage::kind()];
        kinds.extend(self.plugins.iter().map(|plugin| plugin.kind.clone()));
        kinds
    }

    /// Every event schema table to open the log with: the host's and each plugin's.
    pub fn schemas(&self) -> Vec<&'static [EventSchema]> {
        let mut schemas = vec![SCHEMAS];
        schemas.extend(
            self.plugins
                .iter()
                .map(|plugin| plugin.schemas)
                .filter(|schemas| !schemas.is_empty()),
        );
        schemas
    }

    /// `specs` with the stages of `declarations` inserted (see [`placement::insert_plugins`]),
    /// after the plugins placed by default ([`InProcessPlugin::default_placement`]) that no
    /// declaration names.
    pub fn insert(
        &self,
        specs: Vec<StageSpec>,
        declarations: &[PluginDeclaration],
    ) -> Result<Vec<StageSpec>, Vec<String>> {
        let declared = |kind: &str| {
            declarations.iter().any(|declaration| {
                matches!(&declaration.run, PluginRun::Stage { kind: declared } if declared == kind)
            })
        };
        let mut all: Vec<PluginDeclaration> = self
            .plugins
            .iter()
            .filter_map(|plugin| {
                let placement = plugin.default_placement.clone()?;
                let kind = &plugin.kind.kind;
                let present = specs.iter().any(|spec| spec.name == placement.stage());
                (present && !declared(kind)).then(|| PluginDeclaration {
                    name: kind.clone(),
                    run: PluginRun::Stage { kind: kind.clone() },
                    placement,
                    timeout_seconds: declaration::DEFAULT_TIMEOUT_SECONDS,
                    max_output_bytes: declaration::DEFAULT_MAX_OUTPUT_BYTES,
                    config: serde_json::Value::Object(Default::default()),
                    declared_at: format!("in-process plugin {kind}"),
                })
            })
            .collect();
        all.extend(declarations.iter().cloned());
        placement::insert_plugins(specs, &all, self)
    }
}
