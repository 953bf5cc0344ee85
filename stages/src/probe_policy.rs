//! The probe policy: how a probe outcome becomes a decision. KOTS treats anything that is not a
//! successful anonymous manifest fetch as private (the default here too); the strict policy refuses
//! to guess when the registry could not be asked (`unreachable`) or answered with a server error.

use serde::{Deserialize, Serialize};
use windlass_registry::ProbeOutcome;

/// Which policy maps outcomes to decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbePolicy {
    /// KOTS's rule: only `public` is public; every other outcome is private.
    #[default]
    Kots,
    /// Like KOTS, except `unreachable` and `server_error` are errors.
    Strict,
}

/// What the policy decided for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Pulled directly.
    Public,
    /// Pulled through the proxy.
    Private,
    /// The policy refuses to decide; the install stops.
    Error,
}

impl ProbePolicy {
    /// Parses `kots` or `strict`.
    pub fn parse(name: &str) -> Option<ProbePolicy> {
        match name {
            "kots" => Some(ProbePolicy::Kots),
            "strict" => Some(ProbePolicy::Strict),
            _ => None,
        }
    }

    /// The decision for an outcome.
    pub fn decide(self, outcome: ProbeOutcome) -> Decision {
        match (self, outcome) {
            (_, ProbeOutcome::Public) => Decision::Public,
            (ProbePolicy::Strict, ProbeOutcome::Unreachable | ProbeOutcome::ServerError) => {
                Decision::Error
            }
            _ => Decision::Private,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ProbeOutcome; 7] = [
        ProbeOutcome::Public,
        ProbeOutcome::AuthRequired,
        ProbeOutcome::Denied,
        ProbeOutcome::NotFound,
        ProbeOutcome::RateLimited,
        ProbeOutcome::ServerError,
        ProbeOutcome::Unreachable,
    ];

    #[test]
    fn kots_policy_makes_everything_but_public_private() {
        for outcome in ALL {
            let expected = if outcome == ProbeOutcome::Public {
                Decision::Public
            } else {
                Decision::Private
            };
            assert_eq!(ProbePolicy::Kots.decide(outcome), expected, "{outcome:?}");
        }
    }

    #[test]
    fn strict_policy_refuses_unreachable_and_server_errors() {
        for outcome in ALL {
            let expected = match outcome {
                ProbeOutcome::Public => Decision::Public,
                ProbeOutcome::Unreachable | ProbeOutcome::ServerError => Decision::Error,
                _ => Decision::Private,
            };
            assert_eq!(ProbePolicy::Strict.decide(outcome), expected, "{outcome:?}");
        }
    }
}
