//! Parsing the proxy's request paths: `/v2/proxy/<app slug>/<upstream host>/<repository...>/
//! (manifests|blobs)/<reference>` and `.../tags/list`. Every component is checked against the OCI distribution
//! grammar, so traversal (`..`), percent-encoding, empty components and odd characters are refused
//! before anything reaches an upstream.

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

/// Parses the raw (not percent-decoded) path of a request.
pub fn parse_pull_path(path: &str) -> Result<PullPath, PathProblem> {
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
    // app, host, at least one repository component, kind, reference.
    if parts.len() < 5 {
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
    let upstream_host = parts[1];
    let repository = &parts[2..parts.len() - 2];
    if !is_valid_slug(app_slug) {
        return Err(PathProblem::Malformed("invalid app slug"));
    }
    if !crate::config::is_valid_host(upstream_host) {
        return Err(PathProblem::Malformed("invalid upstream host"));
    }
    if !repository
        .iter()
        .all(|component| is_repository_component(component))
    {
        return Err(PathProblem::Malformed("invalid repository name"));
    }
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
        upstream_host: upstream_host.to_string(),
        repository: repository.join("/"),
        kind,
        reference: reference.to_string(),
    })
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

    #[test]
    fn parses_manifests_and_blobs_with_nested_repositories() {
        let path =
            parse_pull_path("/v2/proxy/my-app/vendor.example/team/sub/app/manifests/v1").unwrap();
        assert_eq!(path.app_slug, "my-app");
        assert_eq!(path.upstream_host, "vendor.example");
        assert_eq!(path.repository, "team/sub/app");
        assert_eq!(path.kind, PullKind::Manifest);
        assert_eq!(path.reference, "v1");
        let path =
            parse_pull_path(&format!("/v2/proxy/my-app/host:5000/app/blobs/{DIGEST}")).unwrap();
        assert_eq!(path.kind, PullKind::Blob);
        assert_eq!(path.upstream_host, "host:5000");
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
        ] {
            assert!(
                matches!(parse_pull_path(path), Err(PathProblem::Malformed(_))),
                "{path}"
            );
        }
        for path in [
            "/v2/_catalog",
            "/v2/proxy/my-app/vendor.example/app/tags/other",
            "/v2/proxy/my-app/vendor.example/manifests/v1",
            "/v2/other/app/manifests/v1",
        ] {
            assert_eq!(parse_pull_path(path), Err(PathProblem::NotFound), "{path}");
        }
    }
}
