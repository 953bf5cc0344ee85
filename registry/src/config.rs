//! [`ProbeConfig`]: the limits every probe runs under (deadlines, concurrency, retries).

use std::time::Duration;

/// Limits for a [`crate::Prober`]. `ProbeConfig::default()` gives the values below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Deadline of each HTTP request, connection included (default 10 s). A registry that
    /// accepts the connection and never answers costs at most this much per image.
    pub request_deadline: Duration,
    /// Requests in flight at once across all registries (default 32).
    pub max_in_flight: usize,
    /// Images probed at once against one registry endpoint (default 8).
    pub max_per_host: usize,
    /// Times a request is sent when the failure is transient — connection reset or closed
    /// without an answer, 5xx, 429 — before giving up (default 3). Deadlines, refused
    /// connections, DNS and TLS failures are not retried.
    pub max_attempts: u32,
    /// The longest wait honoured for a `Retry-After` header (default 5 s); longer values are cut
    /// to this.
    pub max_retry_after: Duration,
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig {
            request_deadline: Duration::from_secs(10),
            max_in_flight: 32,
            max_per_host: 8,
            max_attempts: 3,
            max_retry_after: Duration::from_secs(5),
        }
    }
}
