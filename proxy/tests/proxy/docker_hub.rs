//! Docker Hub images through the proxy, at the paths windlass's planner writes: the image as the
//! vendor wrote it after the slug (`myorg/private`, `redis`, `docker.io/redis`,
//! `index.docker.io/library/redis`, ...), all served by the upstream named `docker.io` with the
//! normalised repository (`library/` added to one-segment names). The real registry behind that
//! upstream is the harness's own, standing in for Docker Hub; a host alias upstream (`vendor-5000`)
//! keeps its paths.

use crate::support::{APP, Harness, LICENSE_ID, Options, assert_inspect_gets, creds, inspect};

/// `docker://<proxy>/proxy/my-app/<image>`: the reference a rendered manifest holds.
fn proxied(harness: &Harness, image: &str) -> String {
    format!("docker://{}/proxy/{APP}/{image}", harness.address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_images_pull_through_every_path_the_planner_writes() {
    let harness = Harness::start_with(Options {
        same_registry_as: vec!["docker.io"],
        ..Options::default()
    })
    .await;
    let private = harness
        .registry
        .push_image("myorg/private:2.0", "an organisation's image");
    let redis = harness
        .registry
        .push_image("library/redis:7", "an official image");

    for (image, digest) in [
        ("myorg/private:2.0", &private),
        ("docker.io/myorg/private:2.0", &private),
        ("index.docker.io/myorg/private:2.0", &private),
        ("redis:7", &redis),
        ("library/redis:7", &redis),
        ("docker.io/redis:7", &redis),
        ("docker.io/library/redis:7", &redis),
        ("index.docker.io/library/redis:7", &redis),
        ("index.docker.io/redis:7", &redis),
    ] {
        assert_inspect_gets(&proxied(&harness, image), digest).await;
    }

    let served: Vec<String> = harness
        .pulls()
        .into_iter()
        .filter(|pull| pull.result == "served")
        .filter_map(|pull| pull.image)
        .collect();
    assert!(
        served.iter().all(|image| {
            image == "docker.io/myorg/private" || image == "docker.io/library/redis"
        }),
        "the pull log names each image by its normalised name: {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_alias_upstream_keeps_its_paths_and_other_names_go_to_docker_hub() {
    let harness = Harness::start_with(Options {
        same_registry_as: vec!["vendor-5000"],
        ..Options::default()
    })
    .await;
    assert_inspect_gets(
        &proxied(&harness, "vendor-5000/team/app:v1"),
        &harness.digest,
    )
    .await;

    // Without a `docker.io` upstream, a Docker Hub image is not served, and says so.
    let output = inspect(&proxied(&harness, "team/app:v1"), &creds(LICENSE_ID)).await;
    assert!(!output.status.success(), "team/app is Docker Hub's");
    assert!(harness.pulls().iter().any(|pull| {
        pull.result == "unknown_upstream" && pull.image.as_deref() == Some("docker.io/team/app")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_repositories_are_bound_by_their_normalised_names() {
    let harness = Harness::start_with(Options {
        upstream_binding: Some("    apps: [my-app]\n    repositories: [library/redis]\n"),
        same_registry_as: vec!["docker.io"],
        ..Options::default()
    })
    .await;
    let redis = harness.registry.push_image("library/redis:7", "allowed");
    harness
        .registry
        .push_image("myorg/private:2.0", "not in repositories");

    assert_inspect_gets(&proxied(&harness, "redis:7"), &redis).await;
    let output = inspect(&proxied(&harness, "myorg/private:2.0"), &creds(LICENSE_ID)).await;
    assert!(!output.status.success(), "outside `repositories:`");
    assert!(harness.pulls().iter().any(|pull| {
        pull.result == "repository_not_allowed"
            && pull.image.as_deref() == Some("docker.io/myorg/private")
    }));
}
