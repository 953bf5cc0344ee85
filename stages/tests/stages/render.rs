//! `provision_secrets` and `render_midstream` beyond what the oracle cases cover: an expired
//! license stops the install, `--kots-compat` adds the legacy secret, secret files are 0600, a
//! user-owned downstream overlay is never overwritten, and when it uses a kustomize feature the
//! native build lacks, the real kustomize builds it (on a copy only this user can read) and the
//! install says so.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use windlass_state::EventPayload;

use windlass_engine::{FailureClass, InstallState, InstallStatus};
use windlass_stages::PipelineOptions;
use windlass_stages::events::{Builder, MidstreamRendered};
use windlass_stages::probe_images::ProbeImagesConfig;
use windlass_stages::provision_secrets::ProvisionSecretsConfig;
use windlass_stages::render_midstream::RenderMidstreamConfig;
use windlass_testkit::kube_tools::kubectl;

use crate::support::{Installer, fact, temp_dir};

const APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n        - name: c\n          image: quay.io/my-org/api:1\n";

fn license(expires_at: &str) -> String {
    format!(
        "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: render-test-license\n  licenseSequence: 1\n  entitlements:\n    expires_at:\n      value: \"{expires_at}\"\n"
    )
}

fn release(expires_at: &str) -> tempfile::TempDir {
    let dir = temp_dir();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    std::fs::create_dir(dir.path().join("userdata")).unwrap();
    std::fs::write(
        dir.path().join("userdata/license.yaml"),
        license(expires_at),
    )
    .unwrap();
    dir
}

fn options() -> PipelineOptions {
    PipelineOptions {
        probe: ProbeImagesConfig {
            offline: true,
            ..Default::default()
        },
        render: RenderMidstreamConfig {
            external_kustomize: vec![kubectl().display().to_string(), "kustomize".into()],
        },
        ..Default::default()
    }
}

async fn install(options: &PipelineOptions, release: &Path, out: &Path, id: &str) -> InstallState {
    let installer = Installer::with_pipeline(&windlass_stages::default_pipeline(options));
    installer.install(installer.request(release, out), id).await
}

#[tokio::test]
async fn the_license_expiry_is_judged_by_the_injected_clock() {
    // A license that expires in 2030 has expired for a run whose clock says 2031 (a replay of a
    // run from then must refuse it as that run did).
    let release = release("2030-01-01T00:00:00Z");
    let out = temp_dir();
    let mut installer = Installer::with_pipeline(&windlass_stages::default_pipeline(&options()));
    installer.runner.services.clock = Arc::new(windlass_engine::FixedClock(
        time::macros::datetime!(2031-06-01 00:00:00 UTC),
    ));
    let state = installer
        .install(installer.request(release.path(), out.path()), "clock")
        .await;
    let failure = state.failure.expect("the install fails");
    assert_eq!(failure.stage, "provision_secrets");
    assert!(
        failure
            .message
            .contains("the license expired at 2030-01-01T00:00:00Z"),
        "{}",
        failure.message
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn an_expired_license_stops_the_install() {
    let release = release("2020-01-01T00:00:00Z");
    let out = temp_dir();
    let state = install(&options(), release.path(), out.path(), "expired").await;
    assert_eq!(state.status, InstallStatus::Failed);
    let failure = state.failure.unwrap();
    assert_eq!(failure.stage, "provision_secrets");
    assert_eq!(failure.class, FailureClass::InvalidInput);
    assert!(
        failure
            .message
            .contains("the license expired at 2020-01-01T00:00:00Z"),
        "{}",
        failure.message
    );
    assert!(!out.path().join("overlays/midstream/secret.yaml").exists());
}

#[tokio::test]
async fn secrets_are_owner_only_and_kots_compat_adds_the_legacy_one() {
    let release = release("");
    let out = temp_dir();
    let mut options = options();
    options.secrets = ProvisionSecretsConfig { kots_compat: true };
    let state = install(&options, release.path(), out.path(), "compat").await;
    assert_eq!(
        state.status,
        InstallStatus::Completed,
        "{:?}",
        state.failure
    );
    assert_eq!(
        mode(&out.path().join("overlays/midstream/secret.yaml")),
        0o600
    );
    for name in [
        "my-app-registry-secret.yaml",
        "kotsadm-replicated-registry-secret.yaml",
    ] {
        assert_eq!(
            mode(&out.path().join("rendered/this-cluster").join(name)),
            0o600,
            "{name}"
        );
    }
    assert_eq!(
        mode(&out.path().join("rendered/this-cluster/app-deployment.yaml")),
        0o644
    );
    let rendered: MidstreamRendered =
        fact(&state, "render_midstream", MidstreamRendered::EVENT_TYPE);
    assert_eq!(rendered.builder, Builder::Native);
    let secrets: Vec<_> = rendered
        .rendered_files
        .iter()
        .filter(|file| file.blob.is_none())
        .collect();
    assert_eq!(secrets.len(), 2, "secrets are recorded by fingerprint only");
}

#[tokio::test]
async fn a_user_downstream_overlay_is_kept_and_built_by_kustomize_when_needed() {
    let release = release("");
    let out = temp_dir();
    let first = install(&options(), release.path(), out.path(), "first").await;
    assert_eq!(
        first.status,
        InstallStatus::Completed,
        "{:?}",
        first.failure
    );
    let downstream = out
        .path()
        .join("overlays/downstreams/this-cluster/kustomization.yaml");
    let user_overlay = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../midstream\ncommonLabels:\n  team: payments\n";
    std::fs::write(&downstream, user_overlay).unwrap();

    let second = install(&options(), release.path(), out.path(), "second").await;
    assert_eq!(
        second.status,
        InstallStatus::Completed,
        "{:?}",
        second.failure
    );
    assert_eq!(
        std::fs::read_to_string(&downstream).unwrap(),
        user_overlay,
        "never overwritten"
    );
    let rendered: MidstreamRendered =
        fact(&second, "render_midstream", MidstreamRendered::EVENT_TYPE);
    assert!(rendered.downstream_kept);
    let Builder::External { unsupported, .. } = &rendered.builder else {
        panic!("expected the external build, got {:?}", rendered.builder)
    };
    assert!(
        unsupported
            .iter()
            .any(|field| field.starts_with("commonLabels")),
        "{unsupported:?}"
    );
    let summary = second
        .stages
        .iter()
        .find(|stage| stage.name == "render_midstream")
        .unwrap();
    assert!(
        summary
            .summary
            .as_deref()
            .unwrap()
            .contains("which the native build does not implement")
    );
    let deployment =
        std::fs::read_to_string(out.path().join("rendered/this-cluster/app-deployment.yaml"))
            .unwrap();
    assert!(deployment.contains("team: payments"), "{deployment}");
    assert!(
        deployment.contains("proxy.replicated.com/proxy/my-app/quay.io/my-org/api:1"),
        "{deployment}"
    );
    assert!(
        !out.path().join(".windlass-external-build").exists(),
        "the copy the external build ran on is removed"
    );
}

/// The copy the external kustomize builds (every base/ file, the pull secret's overlay with the
/// license ID among them) is readable by this user alone while it exists: a directory 0700, files
/// 0600. The external command here is a script that lists the copy's modes, then runs kustomize.
#[tokio::test]
async fn the_external_builds_copy_is_readable_by_its_user_alone() {
    let release = release("");
    let out = temp_dir();
    let first = install(&options(), release.path(), out.path(), "first").await;
    assert_eq!(
        first.status,
        InstallStatus::Completed,
        "{:?}",
        first.failure
    );
    std::fs::write(
        out.path()
            .join("overlays/downstreams/this-cluster/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../midstream\ncommonLabels:\n  team: payments\n",
    )
    .unwrap();
    let tools = temp_dir();
    let modes = tools.path().join("modes");
    let script = tools.path().join("kustomize-listing-modes");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor overlay; do :; done\nroot=\"$overlay/../../..\"\nfind \"$root\" -printf '%m %y %P\\n' > '{}'\nexec '{}' kustomize \"$overlay\"\n",
            modes.display(),
            kubectl().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut listing = options();
    listing.render.external_kustomize = vec![script.display().to_string()];
    let second = install(&listing, release.path(), out.path(), "second").await;
    assert_eq!(
        second.status,
        InstallStatus::Completed,
        "{:?}",
        second.failure
    );
    let listed = std::fs::read_to_string(&modes).expect("the external build ran on the copy");
    let entries: Vec<(&str, &str, &str)> = listed
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        entries
            .iter()
            .any(|(_, kind, path)| *kind == "f" && path.contains("secret.yaml")),
        "{listed}"
    );
    let root = entries
        .iter()
        .find(|(_, _, path)| path.is_empty())
        .expect("the copy's root");
    assert_eq!(root.0, "700", "{listed}");
    for (mode, kind, path) in &entries {
        if *kind == "f" {
            assert_eq!(*mode, "600", "{path} in\n{listed}");
        }
    }
}

/// `render_midstream` builds `base/` from the recorded release, never from the disk: without
/// `write_base` in the pipeline, and with a broken `base/` left on disk, it renders the release.
#[tokio::test]
async fn the_midstream_is_built_from_the_recorded_release_not_from_base_on_disk() {
    let release = release("");
    let out = temp_dir();
    std::fs::create_dir(out.path().join("base")).unwrap();
    std::fs::write(
        out.path().join("base/kustomization.yaml"),
        "resources:\n  - not-there.yaml\n",
    )
    .unwrap();
    let pipeline: Vec<_> = windlass_stages::default_pipeline(&options())
        .into_iter()
        .filter(|stage| stage.name != "write_base")
        .collect();
    assert!(
        pipeline
            .iter()
            .all(|stage| !stage.inputs.contains(&"write_base".to_string())),
        "nothing in the default pipeline waits for write_base"
    );
    let installer = Installer::with_pipeline(&pipeline);
    let state = installer
        .install(installer.request(release.path(), out.path()), "no-base")
        .await;
    assert_eq!(
        state.status,
        InstallStatus::Completed,
        "{:?}",
        state.failure
    );
    let rendered: MidstreamRendered =
        fact(&state, "render_midstream", MidstreamRendered::EVENT_TYPE);
    assert_eq!(rendered.builder, Builder::Native);
    let deployment =
        std::fs::read_to_string(out.path().join("rendered/this-cluster/app-deployment.yaml"))
            .unwrap();
    assert!(
        deployment.contains("proxy.replicated.com/proxy/my-app/quay.io/my-org/api:1"),
        "{deployment}"
    );
    assert!(deployment.contains("imagePullSecrets"), "{deployment}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("base/kustomization.yaml")).unwrap(),
        "resources:\n  - not-there.yaml\n",
        "base/ on disk was neither read nor written"
    );
}
