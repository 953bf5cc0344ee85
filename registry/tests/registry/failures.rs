//! Outcomes a real registry cannot be made to produce on demand, from the testkit's stubs: 403, 429 with `Retry-After`, 500, a refused connection, a socket that never
//! answers, connections closed without an answer, a token endpoint answering far too much — plus
//! the per-endpoint concurrency bound.

use std::time::{Duration, Instant};

use windlass_registry::{ProbeConfig, ProbeOutcome, ProbeResult};
use windlass_testkit::{
    Answer, ClosingServer, PaddedTokenRegistry, SilentServer, StubRegistry, free_port,
};

use crate::support::{plain_http, probe, quick_config, target};

async fn probe_one(host: &str, config: ProbeConfig) -> (ProbeResult, u64) {
    let (_settings_dir, settings) = plain_http(&[host]);
    let (mut results, requests) = probe(
        settings,
        config,
        vec![target(
            &format!("{host}/team/app:v1"),
            host,
            "team/app",
            "v1",
        )],
    )
    .await;
    (results.remove(0), requests)
}

#[tokio::test]
async fn stub_403_is_denied() {
    let stub = StubRegistry::start(|_| Answer::status(403)).await;
    let (result, _) = probe_one(&stub.host(), quick_config()).await;
    assert_eq!(result.outcome, ProbeOutcome::Denied, "{result:?}");
    assert_eq!(result.evidence.status_codes, vec![200, 403]);
    assert_eq!(stub.manifest_requests(), 1, "403 is final");
}

#[tokio::test]
async fn stub_500_is_a_server_error_after_the_retries() {
    let stub = StubRegistry::start(|_| Answer::status(500)).await;
    let (result, requests) = probe_one(&stub.host(), quick_config()).await;
    assert_eq!(result.outcome, ProbeOutcome::ServerError, "{result:?}");
    assert_eq!(result.evidence.status_codes, vec![200, 500, 500, 500]);
    assert_eq!(result.evidence.attempts, 3);
    assert_eq!(requests, 4);
}

#[tokio::test]
async fn stub_500_then_200_is_public() {
    let stub = StubRegistry::start(|attempt| {
        if attempt == 0 {
            Answer::status(503)
        } else {
            Answer::status(200).header("docker-content-digest", "sha256:feed")
        }
    })
    .await;
    let (result, _) = probe_one(&stub.host(), quick_config()).await;
    assert_eq!(result.outcome, ProbeOutcome::Public, "{result:?}");
    assert_eq!(result.evidence.digest.as_deref(), Some("sha256:feed"));
    assert_eq!(result.evidence.attempts, 2);
}

#[tokio::test]
async fn stub_429_honours_retry_after_then_succeeds() {
    let stub = StubRegistry::start(|attempt| {
        if attempt == 0 {
            Answer::status(429).header("retry-after", "1")
        } else {
            Answer::status(200).header("docker-content-digest", "sha256:cafe")
        }
    })
    .await;
    let config = ProbeConfig {
        max_retry_after: Duration::from_secs(5),
        ..quick_config()
    };
    let started = Instant::now();
    let (result, _) = probe_one(&stub.host(), config).await;
    assert_eq!(result.outcome, ProbeOutcome::Public, "{result:?}");
    assert_eq!(result.evidence.status_codes, vec![200, 429, 200]);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was not honoured ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn stub_429_forever_is_rate_limited_with_retry_after_capped() {
    let stub = StubRegistry::start(|_| Answer::status(429).header("retry-after", "3600")).await;
    let config = ProbeConfig {
        max_retry_after: Duration::from_millis(200),
        ..quick_config()
    };
    let started = Instant::now();
    let (result, _) = probe_one(&stub.host(), config).await;
    assert_eq!(result.outcome, ProbeOutcome::RateLimited, "{result:?}");
    assert_eq!(result.evidence.status_codes, vec![200, 429, 429, 429]);
    assert_eq!(result.evidence.attempts, 3);
    // Two waits capped at 200 ms, not an hour; the bound is generous on purpose.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connection_refused_is_unreachable_without_retries() {
    let host = format!("127.0.0.1:{}", free_port());
    let (result, requests) = probe_one(&host, quick_config()).await;
    assert_eq!(result.outcome, ProbeOutcome::Unreachable, "{result:?}");
    assert!(result.evidence.status_codes.is_empty());
    assert!(
        result.evidence.reason.to_lowercase().contains("refused"),
        "{}",
        result.evidence.reason
    );
    assert_eq!(requests, 1);
}

#[tokio::test]
async fn silent_server_is_unreachable_within_the_deadline() {
    let silent = SilentServer::start().await;
    let host = silent.host();
    let deadline = Duration::from_millis(300);
    let config = ProbeConfig {
        request_deadline: deadline,
        ..quick_config()
    };
    // Three images behind the silent server: the shared /v2/ check times out once.
    let (_settings_dir, settings) = plain_http(&[&host]);
    let targets = (0..3)
        .map(|n| {
            target(
                &format!("{host}/team/app:v{n}"),
                &host,
                "team/app",
                &format!("v{n}"),
            )
        })
        .collect();
    let started = Instant::now();
    let (results, requests) = probe(settings, config, targets).await;
    let elapsed = started.elapsed();
    for result in &results {
        assert_eq!(result.outcome, ProbeOutcome::Unreachable, "{result:?}");
        assert!(
            result.evidence.reason.contains("deadline"),
            "{}",
            result.evidence.reason
        );
    }
    assert_eq!(requests, 1, "a timeout is not retried");
    // A generous bound (10x the deadline), not a benchmark.
    assert!(elapsed < deadline * 10, "took {elapsed:?}");
}

#[tokio::test]
async fn connections_closed_without_an_answer_are_retried_then_unreachable() {
    let closing = ClosingServer::start().await;
    let (result, requests) = probe_one(&closing.host(), quick_config()).await;
    assert_eq!(result.outcome, ProbeOutcome::Unreachable, "{result:?}");
    assert_eq!(result.evidence.attempts, 3);
    assert_eq!(requests, 3);
    assert!(closing.connections() >= 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrency_per_endpoint_is_bounded() {
    let stub = StubRegistry::start(|_| {
        Answer::status(200)
            .header("docker-content-digest", "sha256:slow")
            .after(Duration::from_millis(50))
    })
    .await;
    let config = ProbeConfig {
        max_per_host: 3,
        max_in_flight: 32,
        ..quick_config()
    };
    let host = stub.host();
    let (_settings_dir, settings) = plain_http(&[&host]);
    let targets = (0..20)
        .map(|n| {
            target(
                &format!("{host}/team/app{n}:v1"),
                &host,
                &format!("team/app{n}"),
                "v1",
            )
        })
        .collect();
    let (results, requests) = probe(settings, config, targets).await;
    assert!(
        results
            .iter()
            .all(|result| result.outcome == ProbeOutcome::Public)
    );
    assert_eq!(requests, 21);
    let most = stub.most_in_flight();
    assert!(
        (2..=3).contains(&most),
        "at most three at once, and more than one: {most}"
    );
}

/// A token endpoint whose answer is huge (64 MiB of JSON whitespace, valid JSON however long):
/// the probe reads at most 64 KiB of it — nothing when the length is announced, up to the cap
/// when it is not — and fails, saying why, instead of holding the whole answer in memory.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_token_answer_is_refused_at_the_cap() {
    const PADDING: u64 = 64 * 1024 * 1024;
    for announce_length in [true, false] {
        let stub = PaddedTokenRegistry::start(PADDING, announce_length).await;
        let (result, _) = probe_one(&stub.host(), quick_config()).await;
        assert_eq!(result.outcome, ProbeOutcome::ServerError, "{result:?}");
        assert!(
            result
                .evidence
                .reason
                .contains("without a readable token: its answer is larger than 64 KiB"),
            "{}",
            result.evidence.reason
        );
        // The sockets' buffers hold a few MiB; the rest was never sent.
        let written = stub.token_bytes_written();
        assert!(
            written < PADDING / 2,
            "the client read {written} bytes of the token answer (announced length: {announce_length})"
        );
    }
}

/// The stub's token answer, small enough, is read: the cap is not in the way of a real token.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_answer_under_the_cap_is_read() {
    let stub = PaddedTokenRegistry::start(32 * 1024, false).await;
    let (result, _) = probe_one(&stub.host(), quick_config()).await;
    assert_eq!(result.outcome, ProbeOutcome::Public, "{result:?}");
}
