//! Sending one request with the probe's retry rules: count it, retry transient failures (a
//! connection closed or reset without an answer, 5xx, 429 honouring a capped `Retry-After`) up to
//! `max_attempts`, and describe transport failures in one line (a failed name lookup as "no network
//! (DNS lookup failed)"). Deadlines, refused connections, DNS and TLS failures are final at once:
//! retrying them only multiplies the wait.

use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::ProbeConfig;

/// The answer to one logical request after its retries.
pub(crate) struct Exchange {
    /// The last response (possibly still a 429 or 5xx), or why there was none.
    pub(crate) result: Result<Response, TransportFailure>,
    /// Every status seen, one per answered attempt.
    pub(crate) statuses: Vec<u16>,
    /// How many times the request was sent.
    pub(crate) attempts: u32,
}

/// Why a request got no HTTP answer.
pub(crate) struct TransportFailure {
    /// One line: what failed, e.g. `tcp connect error: Connection refused (os error 111)`.
    pub(crate) reason: String,
}

/// Sends requests under the retry rules and counts every attempt.
pub(crate) struct Transport {
    max_attempts: u32,
    max_retry_after: Duration,
    deadline: Duration,
    requests: AtomicU64,
}

impl Transport {
    pub(crate) fn new(config: &ProbeConfig) -> Transport {
        Transport {
            max_attempts: config.max_attempts.max(1),
            max_retry_after: config.max_retry_after,
            deadline: config.request_deadline,
            requests: AtomicU64::new(0),
        }
    }

    /// Requests sent so far, retries included.
    pub(crate) fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sends the request `build` makes, again for each retry.
    pub(crate) async fn send(&self, build: impl Fn() -> RequestBuilder) -> Exchange {
        let mut statuses = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let last = attempt >= self.max_attempts;
            match build().send().await {
                Ok(response) => {
                    let status = response.status();
                    statuses.push(status.as_u16());
                    let delay = if status == StatusCode::TOO_MANY_REQUESTS {
                        retry_after(&response).unwrap_or_else(|| backoff(attempt))
                    } else if status.is_server_error() {
                        backoff(attempt)
                    } else {
                        Duration::ZERO
                    };
                    let retry = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !retry || last {
                        return Exchange {
                            result: Ok(response),
                            statuses,
                            attempts: attempt,
                        };
                    }
                    drop(response);
                    tokio::time::sleep(delay.min(self.max_retry_after)).await;
                }
                Err(error) => {
                    if last || !is_transient(&error) {
                        return Exchange {
                            result: Err(TransportFailure {
                                reason: self.describe(&error),
                            }),
                            statuses,
                            attempts: attempt,
                        };
                    }
                    tokio::time::sleep(backoff(attempt).min(self.max_retry_after)).await;
                }
            }
        }
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "no answer within the {} ms deadline",
                self.deadline.as_millis()
            );
        }
        // A failed name lookup, nearly always a machine without network: said plainly, instead of
        // the resolver's chain ("client error (Connect): dns error: failed to lookup address
        // information: ...").
        if is_dns_failure(error) {
            return "no network (DNS lookup failed)".to_owned();
        }
        // The chain of causes, without reqwest's own "error sending request for url (...)".
        let mut parts: Vec<String> = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !parts.iter().any(|part| part.contains(&text)) {
                parts.push(text);
            }
            source = cause.source();
        }
        if parts.is_empty() {
            error.to_string()
        } else {
            parts.join(": ")
        }
    }
}

/// Whether connecting failed in the name lookup (the connector reports it as `dns error`).
fn is_dns_failure(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause.to_string() == "dns error" {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A failure worth another attempt: the connection was made but closed or reset without an
/// answer. Deadlines and failures to connect at all (refused, DNS, TLS) are not.
fn is_transient(error: &reqwest::Error) -> bool {
    !error.is_timeout() && !error.is_connect() && !error.is_builder()
}

/// 200 ms, 400 ms, 800 ms, … before attempt `attempt + 1`.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.saturating_sub(1).min(10)))
}

/// A `Retry-After` given in seconds. (The HTTP-date form is rare from registries and falls back
/// to the backoff.)
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
