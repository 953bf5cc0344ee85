//! Image references. Parsing and Docker-compatible normalisation (`redis` → `docker.io/library/redis`,
//! `index.docker.io` → `docker.io`, ports kept) follow Docker's grammar ([`super::grammar`]); this
//! type also keeps the string exactly as written, and whether a tag was written at all, because
//! kustomize matches image names literally and a reference without a tag must stay without one.

use std::fmt;

use super::grammar;

/// The Docker Hub registry as written in normalised references.
pub const DOCKER_HUB: &str = "docker.io";

/// An image reference, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    written: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing was written.
    #[error("the image reference is empty")]
    Empty,
    /// The string does not parse.
    #[error("{written:?} is not a valid image reference: {reason}")]
    Invalid {
        /// The string.
        written: String,
        /// What the parser said.
        reason: String,
    },
}

impl ImageReference {
    /// Parses a reference as Docker would, keeping the original string.
    pub fn parse(written: &str) -> Result<ImageReference, ReferenceError> {
        if written.trim().is_empty() {
            return Err(ReferenceError::Empty);
        }
        let parsed = grammar::parse(written).map_err(|error| ReferenceError::Invalid {
            written: written.chars().take(300).collect(),
            reason: error.to_string(),
        })?;
        Ok(ImageReference {
            written: written.to_string(),
            registry: parsed.registry,
            repository: parsed.repository,
            tag: parsed.tag.map(str::to_string),
            digest: parsed.digest.map(str::to_string),
        })
    }

    /// A reference from parts [`ImageReference::parse`] produced earlier and were recorded (the
    /// event log holds them), so a later stage does not parse the string again.
    pub fn from_recorded_parts(
        written: String,
        registry: String,
        repository: String,
        tag: Option<String>,
        digest: Option<String>,
    ) -> ImageReference {
        ImageReference {
            written,
            registry,
            repository,
            tag,
            digest,
        }
    }

    /// The reference exactly as written.
    pub fn written(&self) -> &str {
        &self.written
    }

    /// The normalised registry host (with port if any), e.g. `docker.io`, `quay.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The normalised repository path, e.g. `library/redis`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, only if one was written.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was written.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`, e.g. `docker.io/library/redis`: the name kustomize entries use.
    pub fn normalized_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as written, without tag or digest, e.g. `redis` for `redis:7`.
    pub fn name_as_written(&self) -> &str {
        name_as_written(&self.written)
    }

    /// What to ask the registry for: the digest if written (a digest wins), else the tag, else
    /// `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether the image lives on Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// The part of a written reference before its tag and digest.
fn name_as_written(written: &str) -> &str {
    let without_digest = written.split_once('@').map_or(written, |(name, _)| name);
    let last_slash = without_digest.rfind('/').map_or(0, |index| index + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}
