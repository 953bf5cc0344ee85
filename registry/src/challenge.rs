//! [`Challenge`]: a registry's `WWW-Authenticate` answer, parsed with the `http-auth` crate's
//! RFC 7235 parser (the one oci-client uses) and reduced to what a probe needs.

use serde::{Deserialize, Serialize};

/// A `WWW-Authenticate` challenge, e.g. `Bearer realm="https://auth.docker.io/token",
/// service="registry.docker.io"`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Challenge {
    /// The scheme as the registry wrote it, e.g. `Bearer` or `Basic`.
    pub scheme: String,
    /// Where to ask for a token (`Bearer`) or the protection space (`Basic`).
    pub realm: Option<String>,
    /// The `service` parameter to pass to the token endpoint.
    pub service: Option<String>,
    /// The `scope` the registry asked for, if it said.
    pub scope: Option<String>,
}

impl Challenge {
    /// Whether this is a `Bearer` (token) challenge.
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    /// Whether this is a `Basic` challenge.
    pub fn is_basic(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("basic")
    }
}

/// The challenges of every `WWW-Authenticate` value, in order. Values that do not parse are
/// skipped; a registry that sends garbage is then treated as asking for nothing.
pub fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Challenge> {
    let mut challenges = Vec::new();
    for value in values {
        let Ok(parsed) = http_auth::parse_challenges(value) else {
            continue;
        };
        for challenge in parsed {
            let param = |name: &str| {
                challenge
                    .params
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.to_unescaped())
            };
            challenges.push(Challenge {
                scheme: challenge.scheme.to_owned(),
                realm: param("realm"),
                service: param("service"),
                scope: param("scope"),
            });
        }
    }
    challenges
}

/// The challenge to act on: `Bearer` first (what registries mean when they offer both), then
/// `Basic`, then whatever came first.
pub(crate) fn preferred(challenges: Vec<Challenge>) -> Option<Challenge> {
    let position = challenges
        .iter()
        .position(Challenge::is_bearer)
        .or_else(|| challenges.iter().position(Challenge::is_basic))
        .or(if challenges.is_empty() { None } else { Some(0) })?;
    challenges.into_iter().nth(position)
}

/// The `error` parameter of a challenge (e.g. `insufficient_scope`), for reasons.
pub(crate) fn error_parameter<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let Ok(parsed) = http_auth::parse_challenges(value) else {
            continue;
        };
        for challenge in parsed {
            if let Some((_, error)) = challenge
                .params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("error"))
            {
                return Some(error.to_unescaped());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_docker_hub_bearer_challenge() {
        let value = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull""#;
        let challenge = preferred(parse_challenges([value].into_iter())).unwrap();
        assert!(challenge.is_bearer());
        assert_eq!(
            challenge.realm.as_deref(),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(challenge.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            challenge.scope.as_deref(),
            Some("repository:library/redis:pull")
        );
    }

    #[test]
    fn prefers_bearer_over_basic_and_reads_the_error() {
        let values = [
            r#"Basic realm="Registry Realm""#,
            r#"Bearer realm="http://a/token",error="insufficient_scope""#,
        ];
        let challenge = preferred(parse_challenges(values.into_iter())).unwrap();
        assert_eq!(challenge.scheme, "Bearer");
        assert_eq!(
            error_parameter(values.into_iter()).as_deref(),
            Some("insufficient_scope")
        );
    }

    #[test]
    fn garbage_is_no_challenge() {
        assert_eq!(preferred(parse_challenges(["\u{1}=,,"].into_iter())), None);
    }
}
