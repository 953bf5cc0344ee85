//! Parsing the proxy's request paths: `/v2/proxy/<app slug>/<image name>/(manifests|blobs)/
//! <reference>` and `.../tags/list`, where the image name is written as in an image reference
//! (the planner puts the image as the vendor wrote it after the slug). Its upstream is read the
//! way Docker reads a reference: the first segment is a registry host only if it has a `.` or a
//! `:`, is `localhost` or has an uppercase letter, or if it names a configured upstream (a host
//! alias such as `vendor-5000`); otherwise the image is on Docker Hub (`docker.io`) and the whole
//! name is its repository. `index.docker.io` is `docker.io`, and a one-segment Docker Hub
//! repository is in `library/`. Every component is checked against the OCI distribution grammar,
//! so traversal (`..`), percent-encoding, empty components and odd characters are refused before
//! anything reaches an upstream.

/// What a pull path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPath {
    /// The app slug after `/v2/proxy/`.
    pub app_slug: String,
    /// The upstream host as written in image references.
    pub upstream_host: String,
    /// The repository in the upstream, e.g. `team/app`.
    pub repository: String,
    /// Manifest or blob.
    pub kind: PullKind,
    /// A tag or a digest (always a digest for blobs).
    pub reference: String,
}

/// The two kinds of object a client pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullKind {
    /// `.../manifests/<reference>`.
    Manifest,
    /// `.../blobs/<digest>`.
    Blob,
    /// `.../tags/list` (the reference is `list`), which `skopeo inspect` asks for.
    TagList,
}

impl PullKind {
    /// `manifests` or `blobs`, as in the path.
    pub fn segment(self) -> &'static str {
        match self {
            PullKind::Manifest => "manifests",
            PullKind::Blob => "blobs",
            PullKind::TagList => "tags",
        }
    }

    /// `manifest` or `blob`, as in the pull log.
    pub fn name(self) -> &'static str {
        match self {
            PullKind::Manifest => "manifest",
            PullKind::Blob => "blob",
            PullKind::TagList => "tags",
        }
    }
}

/// Why a path is not a pull path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// Not under `/v2/proxy/` or not ending in manifests/blobs: nothing is served there (404).
    NotFound,
    /// Under `/v2/proxy/` but malformed (traversal, bad characters, bad reference): 400.
    Malformed(&'static str),
}

/// Docker Hub as the proxy's configuration and pull log name it.
pub(crate) const DOCKER_HUB: &str = "docker.io";

/// Docker Hub's older name, read as [`DOCKER_HUB`].
pub(crate) const DOCKER_HUB_LEGACY: &str = "index.docker.io";

/// Parses the raw (not percent-decoded) path of a request. `names_upstream` says whether a first
/// segment that is not a registry host by Docker's rule is nonetheless the name of a configured
/// upstream (a host alias).
pub fn parse_pull_path(
    path: &str,
    names_upstream: impl Fn(&str) -> bool,
) -> Result<PullPath, PathProblem> {
    let Some(rest) = path.strip_prefix("/v2/proxy/") else {
        return Err(PathProblem::NotFound);
    };
    if path.len() > 4096 {
        return Err(PathProblem::Malformed("path too long"));
    }
    if rest.contains('%') || rest.contains('\\') {
        return Err(PathProblem::Malformed("encoded characters are not allowed"));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == "." || *part == "..")
    {
        return Err(PathProblem::Malformed("empty, `.` or `..` path component"));
    }
    // app, at least one image name component, kind, reference.
    if parts.len() < 4 {
        return Err(PathProblem::NotFound);
    }
    let kind = match parts[parts.len() - 2] {
        "manifests" => PullKind::Manifest,
        "blobs" => PullKind::Blob,
        "tags" => PullKind::TagList,
        _ => return Err(PathProblem::NotFound),
    };
    let reference = parts[parts.len() - 1];
    if kind == PullKind::TagList && reference != "list" {
        return Err(PathProblem::NotFound);
    }
    let app_slug = parts[0];
    if !is_valid_slug(app_slug) {
        return Err(PathProblem::Malformed("invalid app slug"));
    }
    let (upstream_host, repository) =
        upstream_and_repository(&parts[1..parts.len() - 2], names_upstream)?;
    let reference_ok = match kind {
        PullKind::Manifest => is_tag(reference) || is_sha256_digest(reference),
        PullKind::Blob => is_sha256_digest(reference),
        PullKind::TagList => reference == "list",
    };

    if !reference_ok {
        return Err(PathProblem::Malformed("invalid reference"));
    }
    Ok(PullPath {
        app_slug: app_slug.to_string(),
        upstream_host,
        repository,
        kind,
        reference: reference.to_string(),
    })
}

/// Splits an image name (the path segments between the slug and `manifests`/`blobs`/`tags`) into
/// its upstream and the repository in it, as described at the top of this file.
fn upstream_and_repository(
    name: &[&str],
    names_upstream: impl Fn(&str) -> bool,
) -> Result<(String, String), PathProblem> {
    let (host, repository) = match name.split_first() {
        Some((first, rest))
            if !rest.is_empty() && (is_registry_host(first) || names_upstream(first)) =>
        {
            (*first, rest)
        }
        _ => (DOCKER_HUB, name),
    };
    if !crate::config::is_valid_host(host) {
        return Err(PathProblem::Malformed("invalid upstream host"));
    }
    if !repository
        .iter()
        .all(|component| is_repository_component(component))
    {
        return Err(PathProblem::Malformed("invalid repository name"));
    }
    let host = if host == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        host
    };
    let repository = match repository {
        [only] if host == DOCKER_HUB => format!("library/{only}"),
        _ => repository.join("/"),
    };
    Ok((host.to_string(), repository))
}

/// Docker's test for the first segment of a reference being a registry host rather than the
/// start of a Docker Hub repository: a `.` or a `:`, `localhost`, or an uppercase letter (which no
/// repository may hold).
fn is_registry_host(segment: &str) -> bool {
    segment.contains(['.', ':'])
        || segment == "localhost"
        || segment.bytes().any(|byte| byte.is_ascii_uppercase())
}

/// Lowercase letters, digits and dashes, as KOTS app slugs are.
pub(crate) fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 253
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, simplified: lowercase alphanumerics and separators, not at
/// either end.
pub(crate) fn is_repository_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 255
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `sha256:` and 64 lowercase hex digits: the only digest algorithm the proxy verifies.
pub(crate) fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// The upstreams of these tests: `vendor.example` and the host alias `vendor-5000`.
    fn configured(name: &str) -> bool {
        matches!(name, "vendor.example" | "vendor-5000")
    }

    fn parse(path: &str) -> Result<PullPath, PathProblem> {
        parse_pull_path(path, configured)
    }

    #[test]
    fn parses_manifests_and_blobs_with_nested_repositories() {
        let path = parse("/v2/proxy/my-app/vendor.example/team/sub/app/manifests/v1").unwrap();
        assert_eq!(path.app_slug, "my-app");
        assert_eq!(path.upstream_host, "vendor.example");
        assert_eq!(path.repository, "team/sub/app");
        assert_eq!(path.kind, PullKind::Manifest);
        assert_eq!(path.reference, "v1");
        let path = parse(&format!("/v2/proxy/my-app/host:5000/app/blobs/{DIGEST}")).unwrap();
        assert_eq!(path.kind, PullKind::Blob);
        assert_eq!(path.upstream_host, "host:5000");
    }

    /// The image names the planner writes after the slug, read as Docker reads a reference.
    #[test]
    fn an_image_name_without_a_registry_host_is_on_docker_hub() {
        for (image, upstream, repository) in [
            ("myorg/private", "docker.io", "myorg/private"),
            ("redis", "docker.io", "library/redis"),
            ("library/redis", "docker.io", "library/redis"),
            ("docker.io/redis", "docker.io", "library/redis"),
            ("docker.io/library/redis", "docker.io", "library/redis"),
            ("docker.io/myorg/private", "docker.io", "myorg/private"),
            (
                "index.docker.io/library/redis",
                "docker.io",
                "library/redis",
            ),
            ("index.docker.io/redis", "docker.io", "library/redis"),
            (
                "index.docker.io/myorg/private",
                "docker.io",
                "myorg/private",
            ),
            ("myorg/team/app", "docker.io", "myorg/team/app"),
            // Docker's `splitDockerDomain`: a `.`, a `:`, `localhost` or an uppercase letter.
            ("localhost/team/app", "localhost", "team/app"),
            ("Vendor/app", "Vendor", "app"),
            ("vendor.example/app", "vendor.example", "app"),
            // A configured upstream named without a `.` (a host alias) is that upstream...
            ("vendor-5000/team/app", "vendor-5000", "team/app"),
            // ...but only when a repository follows it.
            ("vendor-5000", "docker.io", "library/vendor-5000"),
            ("vendor.example", "docker.io", "library/vendor.example"),
        ] {
            let path = parse(&format!("/v2/proxy/my-app/{image}/manifests/7"))
                .unwrap_or_else(|problem| panic!("{image}: {problem:?}"));
            assert_eq!(
                (path.upstream_host.as_str(), path.repository.as_str()),
                (upstream, repository),
                "{image}"
            );
        }
    }

    #[test]
    fn refuses_traversal_encoding_and_bad_references() {
        for path in [
            "/v2/proxy/my-app/vendor.example/../etc/manifests/v1",
            "/v2/proxy/my-app/vendor.example/./app/manifests/v1",
            "/v2/proxy/my-app/vendor.example//app/manifests/v1",
            "/v2/proxy/my-app/vendor.example/%2e%2e/manifests/v1",
            "/v2/proxy/my-app/vendor.example/App/manifests/v1",
            "/v2/proxy/my-app/vendor.example/app/blobs/v1",
            "/v2/proxy/my-app/vendor.example/app/manifests/sha256:short",
            "/v2/proxy/My_App/vendor.example/app/manifests/v1",
            "/v2/proxy/my-app/vendor..example/app/manifests/v1",
            "/v2/proxy/my-app/Redis/manifests/v1",
            "/v2/proxy/my-app/myorg/App/manifests/v1",
        ] {
            assert!(
                matches!(parse(path), Err(PathProblem::Malformed(_))),
                "{path}"
            );
        }
        for path in [
            "/v2/_catalog",
            "/v2/proxy/my-app/vendor.example/app/tags/other",
            "/v2/proxy/my-app/manifests/v1",
            "/v2/other/app/manifests/v1",
        ] {
            assert_eq!(parse(path), Err(PathProblem::NotFound), "{path}");
        }
    }
}
