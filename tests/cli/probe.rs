//! `windlass install` and `windlass images --probe` against real registries on loopback (Debian's
//! `docker-registry`, images pushed with skopeo, via `windlass-testkit`): a public image stays
//! public with the digest the registry reports, a private one is proxied, a second install reuses
//! the first one's results without a single request (each image's from the newest install that
//! probed it), and the strict policy stops an install whose
//! registry cannot be reached.

use std::path::Path;

use windlass_testkit::{RegistriesFile, TestRegistry, free_port};

use crate::{json, run, windlass};

fn release_with(dir: &Path, images: &[&str]) {
    let containers: String = images
        .iter()
        .enumerate()
        .map(|(index, image)| format!("        - name: c{index}\n          image: {image}\n"))
        .collect();
    std::fs::create_dir_all(dir.join("userdata")).unwrap();
    std::fs::write(
        dir.join("userdata/license.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: l\nspec:\n  appSlug: my-app\n  licenseID: cli-probe-license\n  licenseSequence: 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n{containers}"
        ),
    )
    .unwrap();
}

fn probed_images(state: &Path, install_id: &str) -> serde_json::Value {
    let events = json(run(windlass(state).args(["events", install_id, "--json"])));
    events
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "ImagesProbed")
        .expect("ImagesProbed recorded")["payload"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_probes_real_registries_and_reuses_results_in_the_next_install() {
    let open = TestRegistry::open().await;
    let locked = TestRegistry::htpasswd().await;
    let public_digest = open.push_image("team/web:1.0", "public layer");
    locked.push_image("team/api:2.0", "private layer");
    let work = tempfile::tempdir().unwrap();
    let registries = RegistriesFile::new()
        .route("public.example", &open)
        .route("vendor.example", &locked)
        .write(work.path());
    let release = tempfile::tempdir().unwrap();
    release_with(
        release.path(),
        &["public.example/team/web:1.0", "vendor.example/team/api:2.0"],
    );
    let state = tempfile::tempdir().unwrap();
    let install = |state: &Path| {
        json(run(windlass(state)
            .args(["install", "--json", "--registries"])
            .arg(&registries)
            .arg(release.path())))
    };

    let first = install(state.path());
    assert_eq!(first["status"], "completed");
    let first_id = first["install_id"].as_str().unwrap().to_string();
    let probed = probed_images(state.path(), &first_id);
    let images = probed["images"].as_array().unwrap();
    assert_eq!(images[0]["image"], "public.example/team/web:1.0");
    assert_eq!(images[0]["outcome"], "public");
    assert_eq!(images[0]["private"], false);
    assert_eq!(images[0]["digest"], public_digest.as_str());
    assert_eq!(images[1]["image"], "vendor.example/team/api:2.0");
    assert_eq!(images[1]["outcome"], "auth_required");
    assert_eq!(images[1]["private"], true);
    assert_eq!(images[1]["evidence"]["challenge"]["scheme"], "Basic");
    assert!(probed["requests_made"].as_u64().unwrap() >= 4);

    // The same release again: a new install, whose results all come from the first one.
    let second = install(state.path());
    let second_id = second["install_id"].as_str().unwrap();
    assert_ne!(second_id, first_id);
    let reused = probed_images(state.path(), second_id);
    assert_eq!(reused["requests_made"], 0, "no registry was asked again");
    for image in reused["images"].as_array().unwrap() {
        assert_eq!(image["source"]["kind"], "cache");
        assert_eq!(image["source"]["install_id"], first_id.as_str());
    }
    assert_eq!(reused["images"][0]["private"], false);
    assert_eq!(reused["images"][1]["private"], true);

    // With the cache off, the registries are asked again.
    let third = json(run(windlass(state.path())
        .args([
            "install",
            "--json",
            "--probe-cache-ttl",
            "0",
            "--registries",
        ])
        .arg(&registries)
        .arg(release.path())));
    let third_id = third["install_id"].as_str().unwrap();
    let asked = probed_images(state.path(), third_id);
    assert!(asked["requests_made"].as_u64().unwrap() >= 4);

    // A release with only the public image, probed afresh: the newest fact now covers one of the
    // two images, so the next install takes that one from it and reads on, past it, for the other.
    let public_only = tempfile::tempdir().unwrap();
    release_with(public_only.path(), &["public.example/team/web:1.0"]);
    let fourth = json(run(windlass(state.path())
        .args([
            "install",
            "--json",
            "--probe-cache-ttl",
            "0",
            "--registries",
        ])
        .arg(&registries)
        .arg(public_only.path())));
    let fourth_id = fourth["install_id"].as_str().unwrap();
    let fifth = install(state.path());
    let reused = probed_images(state.path(), fifth["install_id"].as_str().unwrap());
    assert_eq!(reused["requests_made"], 0, "no registry was asked again");
    assert_eq!(reused["images"][0]["source"]["install_id"], fourth_id);
    assert_eq!(reused["images"][1]["source"]["install_id"], third_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_probe_reports_outcomes_and_digests_from_a_real_registry() {
    let open = TestRegistry::open().await;
    let digest = open.push_image("team/tool:3", "tool layer");
    let work = tempfile::tempdir().unwrap();
    let registries = RegistriesFile::new()
        .route("tools.example", &open)
        .write(work.path());
    let release = tempfile::tempdir().unwrap();
    release_with(
        release.path(),
        &["tools.example/team/tool:3", "tools.example/team/missing:1"],
    );
    let state = tempfile::tempdir().unwrap();
    let probed = json(run(windlass(state.path())
        .args(["images", "--probe", "--json", "--registries"])
        .arg(&registries)
        .arg(release.path())));
    assert_eq!(probed[0]["outcome"], "public");
    assert_eq!(probed[0]["digest"], digest.as_str());
    assert_eq!(probed[1]["outcome"], "not_found");
    assert_eq!(
        probed[1]["private"], true,
        "KOTS: anything not public is private"
    );
    assert!(
        probed[1]["reason"].as_str().unwrap().contains("404"),
        "{}",
        probed[1]["reason"]
    );
}

#[test]
fn the_strict_policy_stops_an_install_whose_registry_is_unreachable() {
    let nothing_listens = free_port();
    let work = tempfile::tempdir().unwrap();
    let registries = work.path().join("registries.yaml");
    std::fs::write(
        &registries,
        format!("registries:\n  gone.example:\n    endpoint: http://127.0.0.1:{nothing_listens}\n"),
    )
    .unwrap();
    let release = tempfile::tempdir().unwrap();
    release_with(release.path(), &["gone.example/team/app:1"]);
    let state = tempfile::tempdir().unwrap();
    let output = run(windlass(state.path())
        .args(["install", "--probe-policy", "strict", "--registries"])
        .arg(&registries)
        .arg(release.path()));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stage probe_images failed")
            && stderr.contains("gone.example/team/app:1 (unreachable"),
        "{stderr}"
    );

    // The default policy proxies the same image and says why.
    let output = run(windlass(state.path())
        .args(["install", "--registries"])
        .arg(&registries)
        .arg(release.path()));
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 unreachable image(s) proxied"),
        "{stdout}"
    );
}
