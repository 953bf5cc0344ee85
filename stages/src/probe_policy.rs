//! The probe policy: how a probe outcome becomes a decision. KOTS treats anything that is not a
//! successful anonymous manifest fetch as private (the default here too); the strict policy refuses
//! to guess when the registry could not be asked (`unreachable`) or answered with a server error.

use windlass_registry::ProbeOutcome;

use crate::events::{Decision, ProbePolicy};

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
