//! [`ProxyServer`]: the axum server that answers pulls. Every request under `/v2/` is
//! authenticated with HTTP Basic (`LICENSE_ID` and the license ID, or the older `<id>:<id>`) against
//! the license store, read afresh on each request so a revoke or an expiry takes effect at once.
//! Pull paths are then checked against the license's app slug and against the apps (and
//! repositories) their upstream serves, mapped to that upstream, fetched
//! with the upstream's credentials, digest-verified and streamed back; every pull and every refusal
//! of a license the store holds is appended to the pull log, while anonymous requests, unknown
//! credentials and malformed requests are only counted in memory and written in aggregate
//! ([`crate::pull_log`]). Anything else gets the registry error format.
//! Connections are accepted and limited in [`crate::connections`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use windlass_state::SecretString;

use crate::access::{AccessDenial, UpstreamAccess};
use crate::config::ProxyConfig;
use crate::connections::{ClientAddress, ConnectionLimits};
use crate::errors::{API_VERSION_HEADER, registry_error};
use crate::path::{PathProblem, PullKind, PullPath, is_sha256_digest, parse_pull_path};
use crate::pull_log::{DeniedRequest, DeniedRequests};
use crate::store::{ProxyStore, PullRecord, StoreError, StoredLicense};
use crate::upstream::{UpstreamClient, UpstreamError, UpstreamLimits};

/// Largest manifest the proxy buffers (manifests are verified before they are sent).
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// How long a request may take until its response headers are ready.
const RESPONSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);

/// The username clients send with the license ID as password.
const LICENSE_USERNAME: &str = "LICENSE_ID";

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration serves neither plain HTTP nor TLS.
    #[error("the configuration has no `tls` and does not say `plain_http: true`")]
    NoTransport,
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The state directory cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The upstream HTTP client cannot be built.
    #[error("cannot build the upstream client: {0}")]
    Upstream(#[from] UpstreamError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address from the configuration.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("proxy server failed: {0}")]
    Serve(std::io::Error),
}

struct Shared {
    store: Arc<ProxyStore>,
    upstreams: UpstreamClient,
    /// Which apps and repositories each upstream serves, by upstream host.
    access: BTreeMap<String, UpstreamAccess>,
    denied: DeniedRequests,
}

/// A bound proxy server; [`ProxyServer::run`] serves until the process ends.
pub struct ProxyServer {
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    connection_limits: ConnectionLimits,
    denied_log_interval: std::time::Duration,
}

impl std::fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyServer")
            .field("local_addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl ProxyServer {
    /// Opens the store in the configured state directory, loads the TLS certificate and key (unless
    /// `plain_http: true`) and binds the listen address.
    pub async fn bind(config: &ProxyConfig) -> Result<ProxyServer, ServeError> {
        let store = Arc::new(ProxyStore::open(&config.state)?);
        ProxyServer::bind_with_store(config, store, UpstreamLimits::default()).await
    }

    /// Like [`ProxyServer::bind`], with a store already open and explicit upstream limits.
    pub async fn bind_with_store(
        config: &ProxyConfig,
        store: Arc<ProxyStore>,
        limits: UpstreamLimits,
    ) -> Result<ProxyServer, ServeError> {
        // TLS when configured; plain HTTP only when the configuration says so.
        let tls = match (&config.tls, config.plain_http) {
            (Some(files), false) => Some(crate::tls::acceptor(files)?),
            (_, true) => None,
            (None, false) => return Err(ServeError::NoTransport),
        };
        let upstreams = UpstreamClient::new(
            config.upstreams.clone(),
            limits,
            config.limits.upstream_slot_wait,
        )?;
        let access = config
            .upstreams
            .iter()
            .map(|(host, upstream)| (host.clone(), upstream.access.clone()))
            .collect();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                address: config.listen,
                source,
            })?;
        store.set_pull_log_max_bytes(config.limits.pull_log_max_bytes);
        Ok(ProxyServer {
            listener,
            tls,
            shared: Arc::new(Shared {
                denied: DeniedRequests::new(store.clone()),
                store,
                upstreams,
                access,
            }),
            connection_limits: ConnectionLimits {
                max_connections: config.limits.max_connections,
                idle_timeout: config.client_header_timeout,
            },
            denied_log_interval: config.limits.denied_log_interval,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Serve)
    }

    /// Serves until `shutdown` completes, writing the counts of refused requests to the pull log
    /// every `limits.denied_log_interval_seconds` and once more at the end.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let router = Router::new()
            .fallback(handle)
            .with_state(self.shared.clone());
        let shared = self.shared.clone();
        let interval = self.denied_log_interval;
        let flusher = AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                shared.denied.flush().await;
            }
        }));
        let served = crate::connections::serve(
            self.listener,
            self.tls,
            router,
            shutdown,
            self.connection_limits,
        )
        .await;
        drop(flusher);
        self.shared.denied.flush().await;
        served
    }

    /// Serves for ever.
    pub async fn run(self) -> Result<(), ServeError> {
        self.run_until(std::future::pending()).await
    }
}

/// Aborts a background task when dropped (when the server stops or its task is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The license ID in a `Basic` `Authorization` header, if there is one of an accepted shape.
fn license_id_from(headers: &HeaderMap) -> Option<SecretString> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = SecretString::new(String::from_utf8(decoded).ok()?);
    let (username, password) = decoded.expose().split_once(':')?;
    if password.is_empty() {
        return None;
    }
    if username == LICENSE_USERNAME || username == password {
        Some(SecretString::new(password))
    } else {
        None
    }
}

/// What the license check concluded.
enum Access {
    Granted(StoredLicense),
    Denied {
        fingerprint: Option<String>,
        result: &'static str,
        message: &'static str,
    },
    StoreFailed,
}

async fn check_license(shared: &Arc<Shared>, headers: &HeaderMap) -> Access {
    let Some(license_id) = license_id_from(headers) else {
        return Access::Denied {
            fingerprint: None,
            result: "unauthenticated",
            message: "authentication required",
        };
    };
    let shared = shared.clone();
    let looked_up = tokio::task::spawn_blocking(move || {
        let fingerprint = shared.store.fingerprint(&license_id);
        shared
            .store
            .get(&license_id)
            .map(|record| (fingerprint, record))
    })
    .await;
    let (fingerprint, record) = match looked_up {
        Ok(Ok(found)) => found,
        Ok(Err(error)) => {
            tracing::error!(%error, "license store unreadable");
            return Access::StoreFailed;
        }
        Err(_) => return Access::StoreFailed,
    };
    match record {
        None => Access::Denied {
            fingerprint: Some(fingerprint),
            result: "unknown_license",
            message: "invalid credentials",
        },
        Some(record) if record.revoked => Access::Denied {
            fingerprint: Some(fingerprint),
            result: "revoked",
            message: "license revoked",
        },
        Some(record) if record.is_expired(OffsetDateTime::now_utc()) => Access::Denied {
            fingerprint: Some(fingerprint),
            result: "expired",
            message: "license expired",
        },
        Some(record) => Access::Granted(record),
    }
}

fn base_record(method: &Method, path: Option<&PullPath>) -> PullRecord {
    PullRecord {
        app: path.map(|path| path.app_slug.clone()),
        image: path.map(|path| format!("{}/{}", path.upstream_host, path.repository)),
        kind: path.map(|path| path.kind.name().to_string()),
        method: method.as_str().to_string(),
        reference: path.map(|path| path.reference.clone()),
        ..PullRecord::default()
    }
}

async fn record(store: &Arc<ProxyStore>, record: PullRecord) {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.record_pull(record)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::error!(%error, "cannot append to the pull log"),
        Err(error) => tracing::error!(%error, "pull log task failed"),
    }
}

/// Answers a request, or 504 if the answer's headers are not ready within
/// [`RESPONSE_DEADLINE`] (bodies are bounded by the upstream read timeout instead).
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match tokio::time::timeout(RESPONSE_DEADLINE, answer(shared, request)).await {
        Ok(response) => response,
        Err(_) => registry_error(
            StatusCode::GATEWAY_TIMEOUT,
            "UNAVAILABLE",
            "the upstream did not answer in time",
        ),
    }
}

/// Counts a refused or malformed request in memory, for the pull log's aggregated records.
fn count_denied(
    shared: &Shared,
    source: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    reason: &'static str,
    fingerprint: Option<String>,
) {
    shared.denied.count(DeniedRequest {
        source,
        reason,
        fingerprint,
        method: method.as_str(),
        path,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok()),
    });
}

async fn answer(shared: Arc<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let headers = request.headers().clone();
    let source = request
        .extensions()
        .get::<ClientAddress>()
        .map(|address| address.0.ip());
    drop(request);
    let denied = |reason: &'static str, fingerprint: Option<String>| {
        count_denied(
            &shared,
            source,
            &headers,
            &method,
            &path,
            reason,
            fingerprint,
        );
    };

    if path != "/v2" && !path.starts_with("/v2/") {
        denied("not_found", None);
        return registry_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "not a registry API path",
        );
    }
    if method != Method::GET && method != Method::HEAD {
        denied("method_not_allowed", None);
        return registry_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry serves pulls only",
        );
    }
    let parsed = parse_pull_path(&path, |name| shared.upstreams.knows(name));
    let license = match check_license(&shared, &headers).await {
        Access::Granted(license) => license,
        Access::Denied {
            fingerprint,
            result,
            message,
        } => {
            // A license the store holds (revoked or expired) pulling: logged like any pull.
            // Anything else anyone can send, as fast as they like: counted, not written one by one.
            let known = matches!(result, "revoked" | "expired");
            match parsed.as_ref() {
                Ok(pull) if known => {
                    let mut entry = base_record(&method, Some(pull));
                    entry.license_fingerprint = fingerprint;
                    entry.result = result.to_string();
                    record(&shared.store, entry).await;
                }
                _ => denied(result, fingerprint.filter(|_| known)),
            }
            return registry_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        }
        Access::StoreFailed => {
            return registry_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "license store unavailable",
            );
        }
    };
    if path == "/v2" || path == "/v2/" {
        let mut response = (StatusCode::OK, "{}").into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
            .headers_mut()
            .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
        return response;
    }
    let pull = match parsed {
        Ok(pull) => pull,
        Err(PathProblem::NotFound) => {
            denied("not_found", None);
            return registry_error(
                StatusCode::NOT_FOUND,
                "UNSUPPORTED",
                "not served by this proxy",
            );
        }
        Err(PathProblem::Malformed(problem)) => {
            denied("bad_request", None);
            return registry_error(StatusCode::BAD_REQUEST, "NAME_INVALID", problem);
        }
    };
    let mut entry = base_record(&method, Some(&pull));
    entry.license_fingerprint = Some(license.fingerprint.clone());
    if pull.app_slug != license.app_slug {
        entry.result = "wrong_app".into();
        record(&shared.store, entry).await;
        return registry_error(
            StatusCode::FORBIDDEN,
            "DENIED",
            "this license does not grant pulls for that app",
        );
    }
    if !shared.upstreams.knows(&pull.upstream_host) {
        entry.result = "unknown_upstream".into();
        record(&shared.store, entry).await;
        return registry_error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "unknown upstream registry",
        );
    }
    // The license is for this app; the upstream must also serve this app (and this repository).
    if let Err(denial) = shared
        .access
        .get(&pull.upstream_host)
        .map_or(Err(AccessDenial::AppNotBound), |access| {
            access.check(&pull.app_slug, &pull.repository)
        })
    {
        entry.result = denial.result().into();
        record(&shared.store, entry).await;
        return registry_error(StatusCode::FORBIDDEN, "DENIED", denial.message());
    }
    let accept: Vec<HeaderValue> = headers.get_all(header::ACCEPT).iter().cloned().collect();
    let upstream_method = if method == Method::HEAD {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let fetched = match shared
        .upstreams
        .fetch(upstream_method, &pull, &accept)
        .await
    {
        Ok(fetched) => fetched,
        Err(error) => {
            entry.result = match error {
                UpstreamError::UnknownUpstream => "unknown_upstream",
                UpstreamError::Unreachable => "upstream_unreachable",
                UpstreamError::Token => "upstream_token_failed",
                UpstreamError::Certificate => "upstream_unreachable",
                UpstreamError::Busy { .. } => "upstream_busy",
            }
            .into();
            record(&shared.store, entry).await;
            if let UpstreamError::Busy { .. } = error {
                let mut response = registry_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    &error.to_string(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            }
            return registry_error(StatusCode::BAD_GATEWAY, "UNAVAILABLE", &error.to_string());
        }
    };
    let status = fetched.response.status();
    if status != reqwest::StatusCode::OK {
        entry.result = format!("upstream_status_{}", status.as_u16());
        record(&shared.store, entry).await;
        return match status.as_u16() {
            404 => match pull.kind {
                PullKind::Manifest => registry_error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                ),
                PullKind::Blob => {
                    registry_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown")
                }
                PullKind::TagList => {
                    registry_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository unknown")
                }
            },
            429 => registry_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "upstream rate limit",
            ),
            _ => registry_error(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                &format!("upstream answered {}", status.as_u16()),
            ),
        };
    }
    let upstream_headers = fetched.response.headers().clone();
    let upstream_digest = upstream_headers
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let mut passed = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
        if let Some(value) = upstream_headers.get(&name) {
            passed.insert(name, value.clone());
        }
    }
    passed.insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    // What the served object must hash to, when known before serving.
    let expected = if pull.kind == PullKind::TagList {
        None
    } else if is_sha256_digest(&pull.reference) {
        Some(pull.reference.clone())
    } else {
        upstream_digest
            .clone()
            .filter(|digest| digest.starts_with("sha256:"))
    };

    if method == Method::HEAD {
        let digest = expected.clone().or(upstream_digest);
        if let Some(digest) = &digest
            && let Ok(value) = HeaderValue::from_str(digest)
        {
            passed.insert("docker-content-digest", value);
        }
        entry.digest = digest;
        entry.result = "served".into();
        record(&shared.store, entry).await;
        let mut response = StatusCode::OK.into_response();
        *response.headers_mut() = passed;
        return response;
    }

    match pull.kind {
        PullKind::Manifest | PullKind::TagList => {
            serve_small(
                &shared,
                fetched.response,
                pull.kind,
                expected,
                passed,
                entry,
            )
            .await
        }
        PullKind::Blob => serve_blob(&shared, fetched, pull.reference.clone(), passed, entry),
    }
}

/// Serves a manifest (verified against `expected` before anything is sent) or a tag list, both
/// buffered up to [`MAX_MANIFEST_BYTES`].
async fn serve_small(
    shared: &Arc<Shared>,
    response: reqwest::Response,
    kind: PullKind,
    expected: Option<String>,
    mut passed: HeaderMap,
    mut entry: PullRecord,
) -> Response {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            entry.result = "upstream_interrupted".into();
            record(&shared.store, entry).await;
            return registry_error(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                "upstream interrupted",
            );
        };
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            entry.result = "manifest_too_large".into();
            record(&shared.store, entry).await;
            return registry_error(
                StatusCode::BAD_GATEWAY,
                "MANIFEST_INVALID",
                "manifest too large",
            );
        }
        body.extend_from_slice(&chunk);
    }
    let digest = format!("sha256:{:x}", Sha256::digest(&body));
    entry.digest = Some(digest.clone());
    if expected
        .as_ref()
        .is_some_and(|expected| *expected != digest)
    {
        entry.result = "digest_mismatch".into();
        record(&shared.store, entry).await;
        return registry_error(
            StatusCode::BAD_GATEWAY,
            "DIGEST_INVALID",
            "the upstream's manifest does not match its digest",
        );
    }
    if kind == PullKind::Manifest
        && let Ok(value) = HeaderValue::from_str(&digest)
    {
        passed.insert("docker-content-digest", value);
    }
    passed.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    entry.bytes = body.len() as u64;
    entry.result = "served".into();
    record(&shared.store, entry).await;
    let mut response = Body::from(body).into_response();
    *response.headers_mut() = passed;
    response
}

/// State of a blob being streamed: the last chunk is held back until the whole blob has been
/// hashed, so a client never receives all the bytes of a blob whose digest does not match.
struct BlobStream {
    upstream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    hasher: Sha256,
    held: Option<Bytes>,
    expected: String,
    sent: u64,
    done: bool,
    entry: Option<PullRecord>,
    store: Arc<ProxyStore>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl BlobStream {
    async fn finish(&mut self, result: &str) {
        if let Some(mut entry) = self.entry.take() {
            entry.result = result.to_string();
            entry.bytes = self.sent;
            record(&self.store, entry).await;
        }
    }
}

impl Drop for BlobStream {
    fn drop(&mut self) {
        // Dropped before the end: the client went away (or the server shut down) mid-blob.
        if let Some(mut entry) = self.entry.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            entry.result = "client_disconnected".into();
            entry.bytes = self.sent;
            let store = self.store.clone();
            runtime.spawn(async move { record(&store, entry).await });
        }
    }
}

fn serve_blob(
    shared: &Arc<Shared>,
    fetched: crate::upstream::UpstreamResponse,
    expected: String,
    mut passed: HeaderMap,
    mut entry: PullRecord,
) -> Response {
    entry.digest = Some(expected.clone());
    if let Ok(value) = HeaderValue::from_str(&expected) {
        passed.insert("docker-content-digest", value);
    }
    let state = BlobStream {
        upstream: Box::pin(fetched.response.bytes_stream()),
        hasher: Sha256::new(),
        held: None,
        expected,
        sent: 0,
        done: false,
        entry: Some(entry),
        store: shared.store.clone(),
        _permit: fetched.permit,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            match state.upstream.next().await {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    state.hasher.update(&chunk);
                    if let Some(previous) = state.held.replace(chunk) {
                        state.sent += previous.len() as u64;
                        return Some((Ok(previous), state));
                    }
                }
                Some(Err(_)) => {
                    state.done = true;
                    state.finish("upstream_interrupted").await;
                    return Some((Err(std::io::Error::other("upstream interrupted")), state));
                }
                None => {
                    state.done = true;
                    let digest = format!("sha256:{:x}", state.hasher.clone().finalize());
                    if digest != state.expected {
                        tracing::warn!(expected = %state.expected, actual = %digest, "upstream blob does not match its digest");
                        state.finish("digest_mismatch").await;
                        return Some((Err(std::io::Error::other("digest mismatch")), state));
                    }
                    let last = state.held.take();
                    state.sent += last.as_ref().map_or(0, |last| last.len() as u64);
                    state.finish("served").await;
                    return last.map(|last| (Ok(last), state));
                }
            }
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    *response.headers_mut() = passed;
    response
}
