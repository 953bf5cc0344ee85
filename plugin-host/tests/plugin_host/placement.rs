//! Placing plugins in the built-in pipeline: transforms at the source of their document set,
//! checks beside the stage named, chains in declaration order, and every misplacement refused.

use serde_json::json;
use windlass_engine::StageSpec;
use windlass_plugin_host::{
    InProcessPlugin, Placement, PluginDeclaration, PluginRole, PluginRun, PluginSet,
};

fn pipeline() -> Vec<StageSpec> {
    windlass_stages::default_pipeline(&Default::default())
}

fn exec(name: &str, placement: Placement) -> PluginDeclaration {
    PluginDeclaration {
        name: name.into(),
        run: PluginRun::Exec {
            program: "/bin/true".into(),
            args: vec![],
        },
        placement,
        timeout_seconds: 5,
        max_output_bytes: 1024,
        config: json!({}),
        declared_at: format!("c.yaml: plugins[{name}]"),
    }
}

fn test_kind(name: &str) -> windlass_engine::StageKind {
    windlass_engine::StageKind::new(name, "a test plugin", |_| {
        Err("not built in this test".into())
    })
}

fn check_plugin() -> PluginSet {
    PluginSet::new(vec![InProcessPlugin {
        kind: test_kind("gate"),
        role: PluginRole::Check,
        schemas: &[],
        default_placement: None,
    }])
}

fn inputs<'a>(specs: &'a [StageSpec], name: &str) -> Vec<&'a str> {
    specs
        .iter()
        .find(|spec| spec.name == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
        .inputs
        .iter()
        .map(String::as_str)
        .collect()
}

#[test]
fn a_transform_before_plan_overrides_sits_at_the_base_documents_source() {
    let specs = PluginSet::default()
        .insert(
            pipeline(),
            &[exec("label", Placement::Before("plan_overrides".into()))],
        )
        .expect("placed");
    assert_eq!(inputs(&specs, "label"), ["fetch_base"]);
    for stage in ["write_base", "probe_images"] {
        assert_eq!(inputs(&specs, stage), ["label"], "{stage}");
    }
    assert_eq!(inputs(&specs, "plan_overrides"), ["label", "probe_images"]);
    let label = specs.iter().find(|spec| spec.name == "label").unwrap();
    assert_eq!(label.kind, "krm_function");
    assert_eq!(label.config["documents"], "base");
}

#[test]
fn a_transform_after_render_midstream_replaces_it_for_what_follows_and_chains() {
    let mut specs = pipeline();
    specs.push(StageSpec::new(
        "apply",
        "apply",
        &["render_midstream", "provision_secrets"],
    ));
    let specs = PluginSet::default()
        .insert(
            specs,
            &[
                exec("first", Placement::After("render_midstream".into())),
                exec("second", Placement::Before("apply".into())),
            ],
        )
        .expect("placed");
    assert_eq!(inputs(&specs, "first"), ["render_midstream"]);
    assert_eq!(inputs(&specs, "second"), ["first"]);
    assert_eq!(inputs(&specs, "apply"), ["second", "provision_secrets"]);
    let second = specs.iter().find(|spec| spec.name == "second").unwrap();
    assert_eq!(second.config["documents"], "rendered");
}

#[test]
fn a_check_waits_for_its_stage_and_holds_back_what_follows() {
    let check = |name: &str, placement| PluginDeclaration {
        run: PluginRun::Stage {
            kind: "gate".into(),
        },
        ..exec(name, placement)
    };
    let specs = check_plugin()
        .insert(
            pipeline(),
            &[
                check("before-plan", Placement::Before("plan_overrides".into())),
                check("after-probe", Placement::After("probe_images".into())),
            ],
        )
        .expect("placed");
    // Placed second, after-probe also holds back before-plan, which reads probe_images too.
    assert_eq!(
        inputs(&specs, "before-plan"),
        ["fetch_base", "probe_images", "after-probe"]
    );
    assert_eq!(
        inputs(&specs, "plan_overrides"),
        ["fetch_base", "probe_images", "before-plan", "after-probe"]
    );
    assert_eq!(inputs(&specs, "after-probe"), ["probe_images"]);
}

#[test]
fn misplaced_plugins_are_refused_naming_the_declaration() {
    let problems = check_plugin()
        .insert(
            pipeline(),
            &[
                exec("a", Placement::After("nowhere".into())),
                exec("b", Placement::After("probe_images".into())),
                exec("c", Placement::Before("fetch_base".into())),
                exec("fetch_base", Placement::After("fetch_base".into())),
                PluginDeclaration {
                    run: PluginRun::Stage {
                        kind: "unknown".into(),
                    },
                    ..exec("d", Placement::After("fetch_base".into()))
                },
            ],
        )
        .expect_err("misplaced");
    let expected = [
        "c.yaml: plugins[a].after: the pipeline has no stage named nowhere",
        "c.yaml: plugins[b].after: probe_images is a probe_images stage, which holds no documents to transform",
        "c.yaml: plugins[c].before: no stage before fetch_base holds documents",
        "c.yaml: plugins[fetch_base].name: the pipeline already has a stage named fetch_base",
        "c.yaml: plugins[d].stage: this windlass has no in-process plugin unknown (it has: gate)",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(
            problem.starts_with(expected),
            "{problem} (expected {expected})"
        );
    }
}

#[test]
fn a_plugin_with_a_default_placement_joins_every_pipeline_that_has_its_stage() {
    // The shape a packaging kind takes: an in-process transform of the base documents, placed
    // without a declaration.
    let plugins = PluginSet::new(vec![InProcessPlugin {
        kind: test_kind("package_charts"),
        role: PluginRole::Transform(windlass_plugin_host::DocumentSet::Base),
        schemas: &[],
        default_placement: Some(Placement::After("fetch_base".into())),
    }]);
    let specs = plugins
        .insert(
            pipeline(),
            &[exec("label", Placement::Before("probe_images".into()))],
        )
        .expect("placed");
    assert_eq!(inputs(&specs, "package_charts"), ["fetch_base"]);
    assert_eq!(
        inputs(&specs, "label"),
        ["package_charts"],
        "declared plugins come after"
    );
    assert_eq!(inputs(&specs, "write_base"), ["label"]);
    let charts = specs
        .iter()
        .find(|spec| spec.name == "package_charts")
        .unwrap();
    assert_eq!(charts.kind, "package_charts");
    // A pipeline without fetch_base does not get it.
    let only_render = vec![StageSpec::new("render_midstream", "render_midstream", &[])];
    assert_eq!(
        plugins
            .insert(only_render, &[])
            .expect("nothing to place")
            .len(),
        1
    );
}
