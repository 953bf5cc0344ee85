//! The proxy under floods (issue 11): anonymous requests cost aggregated pull-log records, not a
//! durable write each; connections that send nothing are cut and cannot crowd out real pulls; and
//! an upstream that never answers fills only its own request slots. Each test measures on a real
//! proxy over loopback and prints the figure it checks.

use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use windlass_testkit::SilentServer;

use crate::support::{APP, Harness, LICENSE_ID, Options, assert_inspect_gets};

/// Anonymous requests in the flood of [`an_anonymous_flood_grows_the_state_by_less_than_a_megabyte`].
const ANONYMOUS_REQUESTS: usize = 20_000;

/// Concurrent keep-alive clients sending them.
const FLOOD_CLIENTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_grows_the_state_by_less_than_a_megabyte() {
    let harness = Harness::start_with(Options {
        limits: Some("  denied_log_interval_seconds: 1\n".into()),
        ..Options::default()
    })
    .await;
    // A path near the proxy's 4 KiB limit and a long user agent: each cost ~8 KB before.
    let repository = format!("{}app", "abcdefgh/".repeat(400));
    let path = format!("/v2/proxy/{APP}/vendor.example/{repository}/manifests/v1");
    let user_agent = "flood/".repeat(200);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {user_agent}\r\n\r\n");
    let before = harness.state_size();
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..FLOOD_CLIENTS {
        clients.push(tokio::spawn(pipelined_requests(
            harness.address,
            request.clone(),
            ANONYMOUS_REQUESTS / FLOOD_CLIENTS,
        )));
    }
    for client in clients {
        assert_eq!(
            client.await.expect("flood client"),
            ANONYMOUS_REQUESTS / FLOOD_CLIENTS,
            "every request is answered 401"
        );
    }
    let flood_time = started.elapsed();

    // The aggregated records arrive within a few flush intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (counted, records) = loop {
        let records: Vec<_> = harness
            .pulls()
            .into_iter()
            .filter(|record| {
                record.result == "unauthenticated" && record.source.as_deref() == Some("127.0.0.1")
            })
            .collect();
        let counted: u64 = records.iter().filter_map(|record| record.count).sum();
        if counted >= ANONYMOUS_REQUESTS as u64 || Instant::now() > deadline {
            break (counted, records);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        counted, ANONYMOUS_REQUESTS as u64,
        "every anonymous request is counted once"
    );
    let growth = harness.state_size().saturating_sub(before);
    println!(
        "{ANONYMOUS_REQUESTS} anonymous requests in {flood_time:?}: state grew by {growth} bytes, {} aggregated records",
        records.len()
    );
    assert!(growth < 1_000_000, "state grew by {growth} bytes");
    // At most one record per flush interval (plus the interval in progress when it started).
    assert!(
        records.len() as u64 <= flood_time.as_secs() + 3,
        "{} records for a {flood_time:?} flood",
        records.len()
    );
    for record in &records {
        let path = record.path.as_deref().expect("a sample path");
        let agent = record.user_agent.as_deref().expect("a sample user agent");
        assert!(record.truncated && path.len() <= windlass_proxy::MAX_LOGGED_BYTES);
        assert!(path.starts_with(&format!("/v2/proxy/{APP}/vendor.example/abcdefgh/")));
        assert!(path.ends_with("...[truncated]") && agent.ends_with("...[truncated]"));
        assert!(record.first_time.is_some() && record.time >= *record.first_time.as_ref().unwrap());
    }
}

/// Sends `request` `count` times on one keep-alive connection, pipelined (a raw client, so the
/// flood measures the proxy rather than an HTTP client), and returns how many `401` answers came
/// back before the connection ended or 120 s passed.
async fn pipelined_requests(address: std::net::SocketAddr, request: String, count: usize) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const MARK: &[u8] = b"HTTP/1.1 401 ";
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let batch = request.repeat(50);
        for _ in 0..count / 50 {
            if writer.write_all(batch.as_bytes()).await.is_err() {
                break;
            }
        }
        writer
    });
    let reading = async {
        let mut answered = 0;
        let mut pending = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        while answered < count {
            let read = reader.read(&mut buffer).await.expect("read answers");
            if read == 0 {
                break;
            }
            pending.extend_from_slice(&buffer[..read]);
            let mut start = 0;
            while let Some(at) = pending[start..]
                .windows(MARK.len())
                .position(|window| window == MARK)
            {
                answered += 1;
                start += at + MARK.len();
            }
            // Keep a tail that may hold the start of a mark split across reads.
            let keep_from = pending.len().saturating_sub(MARK.len()).max(start);
            pending.drain(..keep_from);
        }
        answered
    };
    let answered = tokio::time::timeout(Duration::from_secs(120), reading)
        .await
        .unwrap_or(0);
    drop(writing.await);
    answered
}

/// Connects to `address` and waits (up to 20 s) for the proxy to close the connection without
/// the client sending a byte; returns how long that took.
async fn closed_after_sending_nothing(address: std::net::SocketAddr) -> Duration {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let started = Instant::now();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buffer))
        .await
        .expect("the proxy closes a silent connection well before 20 s");
    // Closed cleanly or with a reset: either way the read ended before the deadline above.
    drop(read);
    assert!(buffer.is_empty(), "the proxy sent {} bytes", buffer.len());
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_cut_after_the_header_timeout() {
    for tls in [false, true] {
        let harness = Harness::start_with(Options {
            tls,
            client_header_timeout_seconds: Some(1),
            ..Options::default()
        })
        .await;
        let waited = closed_after_sending_nothing(harness.address).await;
        // 1 s configured; before, plain connections were never cut and TLS ones after 10 s.
        assert!(
            waited < Duration::from_secs(5),
            "tls {tls}: closed after {waited:?}"
        );
    }
}

/// Idle connections in the flood of
/// [`authenticated_pulls_get_through_a_flood_of_idle_connections`], ten times the cap.
const IDLE_CONNECTIONS: usize = 2_000;

/// The proxy's `limits.max_connections` in that test.
const CONNECTION_CAP: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_pulls_get_through_a_flood_of_idle_connections() {
    let harness = Harness::start_with(Options {
        // Far longer than the test: idle connections go because of the cap, not the timeout.
        client_header_timeout_seconds: Some(600),
        limits: Some(format!("  max_connections: {CONNECTION_CAP}\n")),
        ..Options::default()
    })
    .await;
    let address = harness.address;
    let flood = tokio::task::spawn_blocking(move || {
        (0..IDLE_CONNECTIONS)
            .map(|_| {
                let stream =
                    std::net::TcpStream::connect_timeout(&address, Duration::from_secs(10))
                        .expect("connect");
                stream.set_nonblocking(true).expect("non-blocking");
                stream
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("flood");

    let started = Instant::now();
    assert_inspect_gets(&harness.image(APP, "team/app:v1"), &harness.digest).await;
    println!(
        "authenticated pull with {IDLE_CONNECTIONS} idle connections open (cap {CONNECTION_CAP}): {:?}",
        started.elapsed()
    );

    // The proxy keeps at most the cap open: the others were closed to make room.
    let closed = |streams: &[std::net::TcpStream]| {
        streams
            .iter()
            .filter(|stream| {
                let mut reader: &std::net::TcpStream = stream;
                let mut byte = [0u8; 1];
                !matches!(reader.read(&mut byte), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut count = closed(&flood);
    while count < IDLE_CONNECTIONS - CONNECTION_CAP && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        count = closed(&flood);
    }
    assert!(
        count >= IDLE_CONNECTIONS - CONNECTION_CAP,
        "only {count} of {IDLE_CONNECTIONS} idle connections were closed"
    );
}

/// Requests sent to the upstream that never answers: more than the old global cap of 64.
const HANGING_REQUESTS: usize = 70;

/// The default `limits.upstream_max_concurrent_requests`.
const DEFAULT_UPSTREAM_SLOTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_upstream_fails_fast_and_never_delays_a_healthy_one() {
    let silent = SilentServer::start().await;
    let harness = Harness::start_with(Options {
        more_upstreams: Some(format!(
            "  stuck.example:\n    endpoint: http://{}\n    apps: [my-app]\n",
            silent.host()
        )),
        // The hanging requests then last until the proxy's 90 s response deadline.
        upstream_request_timeout: Some(Duration::from_secs(300)),
        ..Options::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let url = harness.manifest_url("stuck.example", "team/app", "v1");
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let mut hanging = Vec::new();
    for _ in 0..HANGING_REQUESTS {
        let request = client.get(&url).basic_auth("LICENSE_ID", Some(LICENSE_ID));
        let answers = answers.clone();
        hanging.push(tokio::spawn(async move {
            let started = Instant::now();
            let response = request.send().await.expect("GET through the proxy");
            let status = response.status();
            let body: serde_json::Value = response.json().await.expect("error JSON");
            let _ = answers.send((status, body, started.elapsed()));
        }));
    }
    // Every request beyond the upstream's slots fails fast, naming the upstream.
    for _ in DEFAULT_UPSTREAM_SLOTS..HANGING_REQUESTS {
        let (status, body, waited) = tokio::time::timeout(Duration::from_secs(20), answered.recv())
            .await
            .expect("requests beyond the slots are answered within 20 s")
            .expect("answer");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(
            message.contains("stuck.example") && message.contains("busy"),
            "{message}"
        );
        assert!(waited < Duration::from_secs(10), "failed after {waited:?}");
    }

    // The healthy upstream answers while the other one's slots are all taken.
    let started = Instant::now();
    assert_inspect_gets(&harness.image(APP, "team/app:v1"), &harness.digest).await;
    let healthy = started.elapsed();
    println!(
        "healthy-upstream pull while {DEFAULT_UPSTREAM_SLOTS} requests hang on another upstream: {healthy:?}"
    );
    // Those requests are still hanging (until the proxy's 90 s response deadline): the pull did
    // not wait for them.
    assert!(
        answered.try_recv().is_err(),
        "a hanging request ended before the healthy pull finished"
    );
    assert_eq!(
        hanging
            .iter()
            .filter(|request| !request.is_finished())
            .count(),
        DEFAULT_UPSTREAM_SLOTS
    );
    for request in hanging {
        request.abort();
    }
}
