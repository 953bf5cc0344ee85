//! Plugin declarations: the `plugins:` list of a windlass config file (`--config`) or of a
//! pipeline file, read and checked before anything is recorded. Each entry names the plugin, what
//! runs (`exec:` a program speaking the KRM function protocol, resolved relative to the file that
//! declares it and checked to be a regular file; or `stage:` the kind of an in-process plugin the
//! binary was built with), where it goes (`after:` or `before:` a stage), its limits and its
//! `config`. Every problem is reported, each named by the file and the key it is at
//! (`plugins[1].after`).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The default deadline of an exec plugin.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
/// The longest deadline accepted.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;
/// The default cap on what an exec plugin prints.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 * windlass_files::MIB;
/// The largest cap accepted.
pub const MAX_OUTPUT_BYTES: u64 = 1024 * windlass_files::MIB;

/// What a plugin runs.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginRun {
    /// An executable speaking the KRM function protocol.
    Exec {
        /// The program, absolute.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
    /// An in-process plugin: a stage kind the binary registered.
    Stage {
        /// The kind.
        kind: String,
    },
}

/// Where a plugin goes in the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Right after this stage.
    After(String),
    /// Right before this stage.
    Before(String),
}

impl Placement {
    /// The stage named.
    pub fn stage(&self) -> &str {
        match self {
            Placement::After(stage) | Placement::Before(stage) => stage,
        }
    }

    /// `after` or `before`.
    pub fn key(&self) -> &'static str {
        match self {
            Placement::After(_) => "after",
            Placement::Before(_) => "before",
        }
    }
}

/// One plugin declaration, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDeclaration {
    /// The plugin's name: its stage's name.
    pub name: String,
    /// What runs.
    pub run: PluginRun,
    /// Where it goes.
    pub placement: Placement,
    /// The deadline (exec plugins).
    pub timeout_seconds: u64,
    /// The output cap (exec plugins).
    pub max_output_bytes: u64,
    /// `config`: the function's `functionConfig` (exec) or the stage's configuration.
    pub config: Value,
    /// Where it was declared, for messages: `<file>: plugins[<n>]`.
    pub declared_at: String,
}

/// Reads the `plugins` value of the file `file` (shown as `shown`): `None` or null is no plugin.
/// Relative `exec` paths are resolved against the file's directory.
pub fn read_declarations(
    shown: &str,
    file: &Path,
    plugins: Option<&Value>,
) -> Result<Vec<PluginDeclaration>, Vec<String>> {
    let Some(plugins) = plugins.filter(|value| !value.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(list) = plugins.as_array() else {
        return Err(vec![format!(
            "{shown}: plugins: must be a list of plugin declarations"
        )]);
    };
    let directory = file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let mut declarations = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let at = format!("{shown}: plugins[{index}]");
        if let Some(declaration) = read_one(&at, directory, entry, &mut problems) {
            declarations.push(declaration);
        }
    }
    if problems.is_empty() {
        Ok(declarations)
    } else {
        Err(problems)
    }
}

const KEYS: &[&str] = &[
    "name",
    "exec",
    "args",
    "stage",
    "after",
    "before",
    "timeout_seconds",
    "max_output_bytes",
    "config",
];

fn read_one(
    at: &str,
    directory: &Path,
    entry: &Value,
    problems: &mut Vec<String>,
) -> Option<PluginDeclaration> {
    let Some(fields) = entry.as_object() else {
        problems.push(format!(
            "{at}: must be a mapping with name, exec or stage, after or before"
        ));
        return None;
    };
    let before = problems.len();
    for key in fields.keys() {
        if !KEYS.contains(&key.as_str()) {
            problems.push(format!(
                "{at}.{key}: unknown key (a plugin has {})",
                KEYS.join(", ")
            ));
        }
    }
    let mut text = |key: &str| match fields.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(value)) if !value.trim().is_empty() => Some(value.clone()),
        Some(_) => {
            problems.push(format!("{at}.{key}: must be a non-empty string"));
            None
        }
    };
    let name = text("name");
    let exec = text("exec");
    let stage = text("stage");
    let after = text("after");
    let before_stage = text("before");
    match &name {
        None if !fields.contains_key("name") => problems.push(format!("{at}.name: missing")),
        Some(name)
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            problems.push(format!(
                "{at}.name: {name:?} may hold only letters, digits, - and _"
            ));
        }
        _ => {}
    }
    let args = match fields.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) if args.iter().all(Value::is_string) => args
            .iter()
            .filter_map(|arg| arg.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            problems.push(format!("{at}.args: must be a list of strings"));
            Vec::new()
        }
    };
    let run = match (exec, stage) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{at}: give either exec (a program) or stage (an in-process plugin), not both"
            ));
            None
        }
        (None, None) => {
            if !fields.contains_key("exec") && !fields.contains_key("stage") {
                problems.push(format!(
                    "{at}: missing exec (a program speaking the KRM function protocol) or stage (an in-process plugin kind)"
                ));
            }
            None
        }
        (Some(exec), None) => {
            let program = directory.join(&exec);
            let program = std::path::absolute(&program).unwrap_or(program);
            match std::fs::metadata(&program) {
                Ok(metadata) if metadata.is_file() => Some(PluginRun::Exec { program, args }),
                Ok(_) => {
                    problems.push(format!(
                        "{at}.exec: {} is not a regular file",
                        program.display()
                    ));
                    None
                }
                Err(error) => {
                    problems.push(format!("{at}.exec: {}: {error}", program.display()));
                    None
                }
            }
        }
        (None, Some(kind)) => {
            if !args.is_empty() {
                problems.push(format!("{at}.args: only an exec plugin takes arguments"));
            }
            Some(PluginRun::Stage { kind })
        }
    };
    let placement = match (after, before_stage) {
        (Some(_), Some(_)) => {
            problems.push(format!("{at}: give either after or before, not both"));
            None
        }
        (Some(stage), None) => Some(Placement::After(stage)),
        (None, Some(stage)) => Some(Placement::Before(stage)),
        (None, None) => {
            if !fields.contains_key("after") && !fields.contains_key("before") {
                problems.push(format!(
                    "{at}: missing after or before (the stage the plugin runs after or before)"
                ));
            }
            None
        }
    };
    let mut number = |key: &str, default: u64, max: u64| match fields.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::Number(number)) => match number.as_u64() {
            Some(value) if (1..=max).contains(&value) => value,
            _ => {
                problems.push(format!(
                    "{at}.{key}: must be a whole number from 1 to {max}"
                ));
                default
            }
        },
        Some(_) => {
            problems.push(format!(
                "{at}.{key}: must be a whole number from 1 to {max}"
            ));
            default
        }
    };
    let timeout_seconds = number(
        "timeout_seconds",
        DEFAULT_TIMEOUT_SECONDS,
        MAX_TIMEOUT_SECONDS,
    );
    let max_output_bytes = number(
        "max_output_bytes",
        DEFAULT_MAX_OUTPUT_BYTES,
        MAX_OUTPUT_BYTES,
    );
    let config = match fields.get("config") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(config @ Value::Object(_)) => config.clone(),
        Some(_) => {
            problems.push(format!("{at}.config: must be a mapping"));
            Value::Null
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(PluginDeclaration {
        name: name?,
        run: run?,
        placement: placement?,
        timeout_seconds,
        max_output_bytes,
        config,
        declared_at: at.to_string(),
    })
}
