//! `windlass config RELEASE_DIR`: evaluates the release's KOTS `Config` with a ConfigValues file
//! (`--config-values`, else `RELEASE_DIR/userdata/config.yaml` when it exists) as an install would,
//! and prints every item, its effective value (password values masked) and which required items
//! are missing, so a headless install can be prepared. Nothing is recorded.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Serialize;
use windlass_engine::Services;
use windlass_stages::templates::{
    base_context, evaluate_release_config, read_config_values_file, read_license_for_templates,
    yaml_files,
};
use windlass_template::config::missing_required;
use windlass_template::config_values::GivenValues;

use crate::cli::{ConfigArgs, GlobalArgs};
use crate::exit::{CliError, CliResult, Code};
use crate::read_commands::print_json;
// Ends quietly when the reader closes the pipe (`windlass config ... | head`).
use crate::stdout::println;

/// What a password value is printed as.
const MASK: &str = "********";

/// One item as `windlass config --json` prints it.
#[derive(Serialize)]
struct ItemView {
    name: String,
    title: String,
    group: String,
    group_title: String,
    #[serde(rename = "type")]
    item_type: String,
    value: String,
    default: String,
    effective: String,
    given: bool,
    required: bool,
    hidden: bool,
    shown: bool,
    missing: bool,
}

/// `windlass config --json`.
#[derive(Serialize)]
struct ConfigView {
    config_values: Option<String>,
    items: Vec<ItemView>,
    missing: Vec<String>,
    unknown_values: Vec<String>,
    warnings: Vec<String>,
}

/// `value`, or the mask for a password item (of type `password`, or built from one: its value
/// may hold the password).
fn masked(is_password: bool, value: &str) -> String {
    if is_password && !value.is_empty() {
        MASK.to_string()
    } else {
        value.to_string()
    }
}

/// What a release's templates read, found as an install finds it: the ConfigValues
/// (`--config-values`, else `RELEASE_DIR/userdata/config.yaml` when it exists) and the license
/// (`--license`, else `RELEASE_DIR/userdata/license.yaml` when it exists).
pub struct TemplateInputs {
    /// The ConfigValues file read, if any.
    pub values_path: Option<PathBuf>,
    /// Its values (none without a file).
    pub given: GivenValues,
    /// The license, if any.
    pub license: Option<windlass_engine::License>,
}

/// Reads [`TemplateInputs`]; a file that cannot be read is invalid input.
pub fn template_inputs(
    release_dir: &Path,
    config_values: Option<&PathBuf>,
    license: Option<&PathBuf>,
) -> Result<TemplateInputs, CliError> {
    let invalid = |error: anyhow::Error| CliError::new(Code::InvalidInput, error);
    let in_userdata = |name: &str| {
        let kots_layout = release_dir.join("userdata").join(name);
        kots_layout.is_file().then_some(kots_layout)
    };
    let values_path = config_values
        .cloned()
        .or_else(|| in_userdata("config.yaml"));
    let given = match &values_path {
        Some(path) => read_config_values_file(path).map_err(|error| invalid(error.into()))?,
        None => GivenValues::default(),
    };
    let license = license
        .cloned()
        .or_else(|| in_userdata("license.yaml"))
        .map(|path| read_license_for_templates(&path))
        .transpose()
        .map_err(|error| invalid(error.into()))?;
    Ok(TemplateInputs {
        values_path,
        given,
        license,
    })
}

/// Runs `windlass config`.
pub fn run(global: &GlobalArgs, args: &ConfigArgs) -> CliResult {
    let invalid = |error: anyhow::Error| CliError::new(Code::InvalidInput, error);
    if !args.release_dir.is_dir() {
        return Err(invalid(anyhow!(
            "release directory {}: not a directory",
            args.release_dir.display()
        )));
    }
    let TemplateInputs {
        values_path,
        given,
        license,
    } = template_inputs(
        &args.release_dir,
        args.config_values.as_ref(),
        args.license.as_ref(),
    )?;
    let files =
        yaml_files(&args.release_dir, 16 * 1024 * 1024).map_err(|error| invalid(error.into()))?;
    let base = base_context(license.as_ref(), &args.namespace);
    let Some(evaluated) = evaluate_release_config(&files, &given, &base, &Services::default())
        .map_err(|error| invalid(error.into()))?
    else {
        if global.json {
            print_json(&ConfigView {
                config_values: values_path.map(|path| path.display().to_string()),
                items: Vec::new(),
                missing: Vec::new(),
                unknown_values: Vec::new(),
                warnings: Vec::new(),
            })?;
        } else {
            println!("{} has no KOTS Config", args.release_dir.display());
        }
        return Ok(Code::Success);
    };
    let missing: Vec<String> = missing_required(&evaluated)
        .into_iter()
        .map(|item| item.name)
        .collect();
    if global.json {
        let items = evaluated
            .items
            .iter()
            .map(|item| {
                let item_type = item.value.item_type.clone();
                ItemView {
                    name: item.name.clone(),
                    title: item.title.clone(),
                    group: item.group.clone(),
                    group_title: item.group_title.clone(),
                    value: masked(item.value.is_password(), &item.value.value),
                    default: masked(item.value.is_password(), &item.value.default),
                    effective: masked(item.value.is_password(), item.value.effective()),
                    item_type,
                    given: item.given,
                    required: item.required,
                    hidden: item.hidden,
                    shown: item.shown,
                    missing: missing.contains(&item.name),
                }
            })
            .collect();
        print_json(&ConfigView {
            config_values: values_path.map(|path| path.display().to_string()),
            items,
            missing,
            unknown_values: evaluated.unknown_values.clone(),
            warnings: evaluated.warnings.clone(),
        })?;
        return Ok(Code::Success);
    }
    let mut group = None;
    for item in &evaluated.items {
        if group.as_ref() != Some(&item.group) {
            println!("{} ({})", item.group_title, item.group);
            group = Some(item.group.clone());
        }
        let item_type = if item.value.item_type.is_empty() {
            "text"
        } else {
            item.value.item_type.as_str()
        };
        let mut notes = Vec::new();
        if missing.contains(&item.name) {
            notes.push("MISSING: required");
        } else if item.required {
            notes.push("required");
        }
        if item.given {
            notes.push("given");
        }
        if item.hidden {
            notes.push("hidden");
        }
        if !item.shown {
            notes.push("not shown");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  [{}]", notes.join(", "))
        };
        println!(
            "  {} ({item_type}) {:?} = {:?}{notes}",
            item.name,
            item.title,
            masked(item.value.is_password(), item.value.effective())
        );
    }
    for name in &evaluated.unknown_values {
        println!("warning: the config values give {name}, which the Config does not have");
    }
    for warning in &evaluated.warnings {
        println!("warning: {warning}");
    }
    if missing.is_empty() {
        println!("every required item has a value");
    } else {
        println!("missing required items: {}", missing.join(", "));
    }
    Ok(Code::Success)
}
