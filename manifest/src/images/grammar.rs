//! The grammar of an image reference, as Docker's `distribution/reference` package defines it and
//! `oci-spec` implements it with one large regular expression:
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [ domain "/" ] path-component { "/" path-component }
//! domain          := domain-component { "." domain-component } [ ":" port ]
//! domain-component:= [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component  := [a-z0-9]+ { separator [a-z0-9]+ }      separator := "." | "_" | "__" | "-"+
//! tag             := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest          := algorithm ":" hex{32,}   algorithm := [A-Za-z][A-Za-z0-9]* { [-_+.] [A-Za-z][A-Za-z0-9]* }
//! ```
//!
//! Two rules of Docker's that `oci-spec` leaves out are kept: a first segment with an uppercase
//! letter is a registry host (`MyOrg/app` is the repository `app` on the host `MyOrg`, never a
//! Docker Hub repository with an uppercase letter), and the hex of a sha256, sha384 or sha512
//! digest is lowercase (`go-digest` refuses `sha256:AB…` as an invalid checksum digest format).
//!
//! Written out by hand because compiling that expression (its `\w{0,127}` is Unicode-aware) costs
//! 40 to 140 ms in every process, more than a whole install of a thousand manifests. Tags are
//! ASCII here, as in Docker; `oci-spec` also accepts Unicode letters in tags. The tests compare
//! this parser with `oci-spec` on generated references.

use super::reference::DOCKER_HUB;

/// A reference cut into its parts, each checked against the grammar, with Docker's normalisation
/// of the registry and repository (`redis` is `docker.io` + `library/redis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The registry host (with port if written); `docker.io` when none is written.
    pub registry: String,
    /// The repository path.
    pub repository: String,
    /// The tag, if written.
    pub tag: Option<&'a str>,
    /// The digest (`algorithm:hex`), if written.
    pub digest: Option<&'a str>,
}

/// The longest repository path.
const MAX_REPOSITORY_CHARS: usize = 255;

/// Why a reference does not follow the grammar (the messages are `oci-spec`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    /// Nothing was written.
    #[error("repository name must have at least one component")]
    Empty,
    /// The name, tag or digest is malformed.
    #[error("invalid reference format")]
    Format,
    /// The repository path is too long.
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// The digest's hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestLength,
    /// The digest's algorithm is not sha256, sha384 or sha512.
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
    /// The digest's hex part has an uppercase letter (Docker's `go-digest` message).
    #[error("invalid checksum digest format")]
    DigestFormat,
}

/// Cuts `reference` into name, tag and digest, checking each against the grammar.
pub fn parse(reference: &str) -> Result<Parts<'_>, GrammarError> {
    if reference.is_empty() {
        return Err(GrammarError::Empty);
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => (
            &rest[..last_slash + colon],
            Some(&rest[last_slash + colon + 1..]),
        ),
        None => (rest, None),
    };
    if !is_name(name) || !tag.is_none_or(is_tag) || !digest.is_none_or(is_digest) {
        return Err(GrammarError::Format);
    }
    let (registry, repository) = split_domain(name);
    if repository.len() > MAX_REPOSITORY_CHARS {
        return Err(GrammarError::NameTooLong);
    }
    if let Some(digest) = digest {
        check_digest_length(digest)?;
    }
    Ok(Parts {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Docker's `splitDockerDomain`: the first path segment is a registry only if it has a `.` or a
/// `:`, is `localhost`, or has an uppercase letter; `index.docker.io` is `docker.io`; a
/// one-segment Docker Hub path is in `library/`.
fn split_domain(name: &str) -> (String, String) {
    let is_registry = |first: &str| {
        first.contains(['.', ':'])
            || first == "localhost"
            || first.bytes().any(|byte| byte.is_ascii_uppercase())
    };
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest)) if is_registry(first) => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };
    (registry.to_string(), repository)
}

fn is_name(name: &str) -> bool {
    if is_path(name) {
        return true;
    }
    match name.split_once('/') {
        Some((domain, path)) => is_domain(domain) && is_path(path),
        None => false,
    }
}

fn is_path(path: &str) -> bool {
    path.split('/').all(is_path_component)
}

fn is_lower_alphanumeric(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit()
}

/// `[a-z0-9]+ { separator [a-z0-9]+ }`: one component of a repository path.
pub(crate) fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !is_lower_alphanumeric(first) || !is_lower_alphanumeric(last) {
        return false;
    }
    // Between runs of [a-z0-9]: ".", "_", "__" or any number of "-".
    let mut position = 0;
    while position < bytes.len() {
        if is_lower_alphanumeric(bytes[position]) {
            position += 1;
            continue;
        }
        let start = position;
        while position < bytes.len() && !is_lower_alphanumeric(bytes[position]) {
            position += 1;
        }
        let separator = &component[start..position];
        let dashes = separator.bytes().all(|byte| byte == b'-');
        if !(dashes || matches!(separator, "." | "_" | "__")) {
            return false;
        }
    }
    true
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let port_ok =
        port.is_none_or(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    port_ok && host.split('.').all(is_domain_component)
}

fn is_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((&first, rest)) => {
            is_word(first)
                && rest.len() <= 127
                && rest
                    .iter()
                    .all(|&byte| is_word(byte) || byte == b'.' || byte == b'-')
        }
        None => false,
    }
}

fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let bytes = part.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The hex part must be as long as the algorithm's output (only sha256/384/512 are known).
fn check_digest_length(digest: &str) -> Result<(), GrammarError> {
    let (algorithm, hex) = digest.split_once(':').ok_or(GrammarError::Format)?;
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(GrammarError::DigestAlgorithm),
    };
    if hex.len() != expected {
        return Err(GrammarError::DigestLength);
    }
    if hex.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return Err(GrammarError::DigestFormat);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_cut_and_normalised_as_docker_does() {
        let cases = [
            ("redis", "docker.io", "library/redis", None),
            (
                "localhost:5000",
                "docker.io",
                "library/localhost",
                Some("5000"),
            ),
            ("localhost/app:1", "localhost", "app", Some("1")),
            ("a.b:80/c/d__e--f", "a.b:80", "c/d__e--f", None),
            ("index.docker.io/redis", "docker.io", "library/redis", None),
            ("my-org/api:v1", "docker.io", "my-org/api", Some("v1")),
            // Docker reads a first segment with an uppercase letter as a registry host.
            ("MyOrg/app:1", "MyOrg", "app", Some("1")),
            ("Registry/team/app", "Registry", "team/app", None),
            ("myOrg/app", "myOrg", "app", None),
        ];
        for (reference, registry, repository, tag) in cases {
            let parts = parse(reference).unwrap_or_else(|error| panic!("{reference}: {error}"));
            assert_eq!(
                (
                    parts.registry.as_str(),
                    parts.repository.as_str(),
                    parts.tag
                ),
                (registry, repository, tag),
                "{reference}"
            );
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference = format!("quay.io/x/y:2@{digest}");
        let parts = parse(&reference).expect("valid");
        assert_eq!(
            (parts.tag, parts.digest),
            (Some("2"), Some(digest.as_str()))
        );
    }

    #[test]
    fn malformed_references_are_refused_with_oci_spec_reasons() {
        let cases = [
            ("", GrammarError::Empty),
            ("UPPER", GrammarError::Format),
            ("a//b", GrammarError::Format),
            ("a/b:", GrammarError::Format),
            ("a/b:bad tag", GrammarError::Format),
            ("a..b", GrammarError::Format),
            ("a___b", GrammarError::Format),
            ("-a.io/b", GrammarError::Format),
            ("a.io:/b", GrammarError::Format),
            ("a:b/c", GrammarError::Format),
            ("a@sha256:abc", GrammarError::Format),
            (
                "a@md5:0123456789abcdef0123456789abcdef",
                GrammarError::DigestAlgorithm,
            ),
            (
                "a@sha256:0123456789abcdef0123456789abcdef",
                GrammarError::DigestLength,
            ),
            // Uppercase in a repository path, wherever it is not read as a registry host.
            ("MyOrg/App:1", GrammarError::Format),
            ("myorg/App:1", GrammarError::Format),
            ("quay.io/MyOrg/app:1", GrammarError::Format),
            ("docker.io/MyOrg/app:1", GrammarError::Format),
            ("MyApp:1", GrammarError::Format),
        ];
        for (reference, expected) in cases {
            assert_eq!(parse(reference), Err(expected), "{reference:?}");
        }
        let long_tag = format!("a:{}", "t".repeat(129));
        assert_eq!(parse(&long_tag), Err(GrammarError::Format));
        assert!(parse(&format!("a:{}", "t".repeat(128))).is_ok());
        let long_name = format!("quay.io/{}", "n".repeat(256));
        assert_eq!(parse(&long_name), Err(GrammarError::NameTooLong));
        // A digest's hex is lowercase, whatever the algorithm.
        for (algorithm, length) in [("sha256", 64), ("sha384", 96), ("sha512", 128)] {
            let upper = format!("quay.io/a/b@{algorithm}:{}", "A".repeat(length));
            assert_eq!(parse(&upper), Err(GrammarError::DigestFormat), "{upper}");
            let mixed = format!("a:1@{algorithm}:{}F", "a".repeat(length - 1));
            assert_eq!(parse(&mixed), Err(GrammarError::DigestFormat), "{mixed}");
            let lower = format!("quay.io/a/b@{algorithm}:{}", "a".repeat(length));
            assert!(parse(&lower).is_ok(), "{lower}");
        }
    }
}
