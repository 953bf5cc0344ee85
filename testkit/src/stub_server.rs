//! Stand-ins for registries misbehaving in ways the real registry cannot be made to: a stub HTTP
//! registry whose manifest answers are scripted (403, 429 with `Retry-After`, 500, slow answers),
//! a socket that accepts connections and never answers, and one that closes every connection
//! without answering. `/v2/` of the stub answers 200 without a challenge. A bearer-token stub
//! ([`PaddedTokenRegistry`]) answers its token requests with bodies of any size. Each listens on
//! 127.0.0.1 and stops when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use tokio::io::AsyncReadExt as _;

use crate::server_task::ServerTask;

/// A scripted manifest answer: status, headers, and a delay before answering.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// Headers (lower-case names) and their values.
    pub headers: Vec<(&'static str, String)>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Answer {
    /// `status` at once, no headers.
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header; `name` must be lower case.
    pub fn header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Answers after `delay`.
    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

/// A running stub registry: `/v2/` answers 200, any other request is a manifest request answered
/// by the script.
#[derive(Debug)]
pub struct StubRegistry {
    host: String,
    manifest_requests: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    _task: ServerTask,
}

impl StubRegistry {
    /// Starts a stub whose n-th manifest request (0-based) gets `script(n)`.
    ///
    /// # Panics
    ///
    /// When 127.0.0.1 has no free port, or (while serving) `script` gives an invalid status or
    /// header.
    pub async fn start(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> StubRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stub registry");
        let host = listener.local_addr().expect("stub address").to_string();
        let manifest_requests = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most_in_flight = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let (requests, current, most) = (
            Arc::clone(&manifest_requests),
            Arc::clone(&in_flight),
            Arc::clone(&most_in_flight),
        );
        let manifests = move || {
            let (script, requests, current, most) = (
                Arc::clone(&script),
                Arc::clone(&requests),
                Arc::clone(&current),
                Arc::clone(&most),
            );
            async move {
                let index = requests.fetch_add(1, Ordering::SeqCst);
                let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let answer = script(index);
                tokio::time::sleep(answer.delay).await;
                current.fetch_sub(1, Ordering::SeqCst);
                let mut response = StatusCode::from_u16(answer.status)
                    .expect("valid status")
                    .into_response();
                for (name, value) in answer.headers {
                    response.headers_mut().insert(
                        HeaderName::from_static(name),
                        HeaderValue::from_str(&value).expect("header value"),
                    );
                }
                response
            }
        };
        let app = axum::Router::new()
            .route("/v2/", axum::routing::get(|| async { "{}" }))
            .fallback(manifests);
        let task = ServerTask::spawn(async move {
            axum::serve(listener, app).await.expect("stub registry");
        });
        StubRegistry {
            host,
            manifest_requests,
            in_flight,
            most_in_flight,
            _task: task,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Manifest requests received so far.
    pub fn manifest_requests(&self) -> usize {
        self.manifest_requests.load(Ordering::SeqCst)
    }

    /// The most manifest requests that were in progress at once.
    pub fn most_in_flight(&self) -> usize {
        debug_assert_eq!(self.in_flight.load(Ordering::SeqCst), 0);
        self.most_in_flight.load(Ordering::SeqCst)
    }
}

/// A listener that accepts connections and holds them open without ever answering.
#[derive(Debug)]
pub struct SilentServer {
    host: String,
    _task: ServerTask,
}

impl SilentServer {
    /// Starts the listener on 127.0.0.1.
    ///
    /// # Panics
    ///
    /// When 127.0.0.1 has no free port.
    pub async fn start() -> SilentServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind silent server");
        let host = listener.local_addr().expect("address").to_string();
        let task = ServerTask::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        SilentServer { host, _task: task }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.host.clone()
    }
}

/// A listener that reads each request and closes the connection without answering, counting
/// connections.
#[derive(Debug)]
pub struct ClosingServer {
    host: String,
    connections: Arc<AtomicUsize>,
    _task: ServerTask,
}

impl ClosingServer {
    /// Starts the listener on 127.0.0.1.
    ///
    /// # Panics
    ///
    /// When 127.0.0.1 has no free port.
    pub async fn start() -> ClosingServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind closing server");
        let host = listener.local_addr().expect("address").to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = ServerTask::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buffer = [0u8; 1024];
                // Bounded: a client that never sends anything does not stall the others for long.
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
                drop(stream);
            }
        });
        ClosingServer {
            host,
            connections,
            _task: task,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A stub registry behind bearer tokens whose token endpoint answers with a body padded to a
/// given size, for the cap on token answers: `/v2/` answers 401 with a `Bearer` challenge whose
/// realm is `/token` on the same address; `/token` answers 200 with
/// `{"token":"stub-token",<padding spaces>"expires_in":60}` (valid JSON however long), written a
/// piece at a time so neither side need hold it; any other request answers 200 when it carries a
/// bearer token, else 401 with the challenge (as a registry's manifests do). The token
/// answer's length is announced in `Content-Length` or not at all (the body then ends when the
/// connection closes). Every answer closes its connection.
#[derive(Debug)]
pub struct PaddedTokenRegistry {
    host: String,
    token_bytes_written: Arc<std::sync::atomic::AtomicU64>,
    _task: ServerTask,
}

impl PaddedTokenRegistry {
    /// Starts the stub on 127.0.0.1 with `padding` bytes of padding in the token answer.
    ///
    /// # Panics
    ///
    /// When 127.0.0.1 has no free port.
    pub async fn start(padding: u64, announce_length: bool) -> PaddedTokenRegistry {
        use tokio::io::AsyncWriteExt as _;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind padded token registry");
        let host = listener.local_addr().expect("address").to_string();
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = Arc::clone(&written);
        let realm = format!("http://{host}/token");
        let task = ServerTask::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                let realm = realm.clone();
                tokio::spawn(async move {
                    let Some((path, has_bearer)) = read_request(&mut stream).await else {
                        return;
                    };
                    if path == "/v2/" || (!path.starts_with("/token") && !has_bearer) {
                        let answer = format!(
                            "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"{realm}\",service=\"stub\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                    } else if path.starts_with("/token") {
                        let head = br#"{"token":"stub-token","#;
                        let tail = br#""expires_in":60}"#;
                        let length = if announce_length {
                            format!(
                                "content-length: {}\r\n",
                                head.len() as u64 + padding + tail.len() as u64
                            )
                        } else {
                            String::new()
                        };
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n"
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err()
                            || stream.write_all(head).await.is_err()
                        {
                            return;
                        }
                        let piece = vec![b' '; 64 * 1024];
                        let mut left = padding;
                        while left > 0 {
                            let size = left.min(piece.len() as u64) as usize;
                            if stream.write_all(&piece[..size]).await.is_err() {
                                return;
                            }
                            counter.fetch_add(size as u64, Ordering::SeqCst);
                            left -= size as u64;
                        }
                        let _ = stream.write_all(tail).await;
                    } else {
                        let answer = "HTTP/1.1 200 OK\r\ndocker-content-digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        PaddedTokenRegistry {
            host,
            token_bytes_written: written,
            _task: task,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Padding bytes of token answers the stub managed to write so far: what a client that
    /// stopped reading left unread is missing from it (up to what the sockets buffer).
    pub fn token_bytes_written(&self) -> u64 {
        self.token_bytes_written.load(Ordering::SeqCst)
    }
}

/// Reads an HTTP request's head (at most 16 KiB, for at most 5 s) and returns its path and
/// whether it carries a bearer token.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(String, bool)> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let reading = async {
        while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                return None;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(5), reading)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let path = head.lines().next()?.split(' ').nth(1)?.to_owned();
    let has_bearer = head
        .lines()
        .any(|line| line.starts_with("authorization: bearer "));
    Some((path, has_bearer))
}
