//! The one retry policy: how long to wait before attempt `attempt + 1` after a failure, or `None`
//! to give up. Only transient failures are retried, with exponential backoff.

use std::time::Duration;

use crate::stage::FailureClass;

/// Attempts a stage gets in total for transient failures.
pub const MAX_ATTEMPTS: u32 = 4;
const BASE_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// The delay before retrying after attempt `attempt` (from 1) failed with `class`.
pub fn retry_delay(class: FailureClass, attempt: u32) -> Option<Duration> {
    match class {
        FailureClass::Transient if attempt < MAX_ATTEMPTS => {
            let factor = 1u32 << (attempt.saturating_sub(1)).min(16);
            Some((BASE_DELAY * factor).min(MAX_DELAY))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_then_give_up() {
        let delays: Vec<_> = (1..=MAX_ATTEMPTS)
            .map(|attempt| retry_delay(FailureClass::Transient, attempt))
            .collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_millis(250)),
                Some(Duration::from_millis(500)),
                Some(Duration::from_millis(1000)),
                None
            ]
        );
    }

    #[test]
    fn permanent_and_invalid_input_are_never_retried() {
        assert_eq!(retry_delay(FailureClass::Permanent, 1), None);
        assert_eq!(retry_delay(FailureClass::InvalidInput, 1), None);
    }
}
