//! [`UpstreamClient`]: fetching manifests and blobs from the configured upstream registries with
//! their read-only credentials — HTTP Basic, or the Bearer token flow when the upstream challenges
//! with `Bearer` (tokens cached per upstream and repository until they expire, an hour at most;
//! a token answer is read through a 64 KiB cap). Every request has
//! a deadline, requests in flight are capped per upstream ([`crate::upstream_slots`]), and errors
//! never carry credentials or upstream URLs, because they may reach clients.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use tokio::sync::OwnedSemaphorePermit;

use crate::config::{Upstream, UpstreamCredentials};
use crate::path::PullPath;
use crate::upstream_slots::UpstreamSlots;

/// Limits of upstream requests.
#[derive(Debug, Clone)]
pub struct UpstreamLimits {
    /// Deadline to connect.
    pub connect_timeout: Duration,
    /// Deadline of a whole token or manifest request, and of the headers of a blob request.
    pub request_timeout: Duration,
    /// Deadline between two reads of a blob body.
    pub read_timeout: Duration,
}

impl Default for UpstreamLimits {
    fn default() -> UpstreamLimits {
        UpstreamLimits {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// Why an upstream could not be asked. Messages are safe to show to clients.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The host is not configured.
    #[error("unknown upstream")]
    UnknownUpstream,
    /// The upstream did not answer in time, refused the connection or broke it.
    #[error("upstream unreachable")]
    Unreachable,
    /// The upstream's token endpoint refused the proxy's credentials or answered nonsense.
    #[error("upstream token request failed")]
    Token,
    /// An upstream's `ca_file` cannot be used to build its HTTP client.
    #[error("an upstream's ca_file cannot be used")]
    Certificate,
    /// Every request slot of the upstream stayed busy for the whole wait (it answers slowly or
    /// not at all); other upstreams are not affected.
    #[error(
        "upstream {upstream} is busy: all {slots} of its request slots are in use, try again later"
    )]
    Busy {
        /// The upstream's host as configured.
        upstream: String,
        /// Its `max_concurrent_requests`.
        slots: usize,
    },
}

/// A response from an upstream, with the permit that counts it against its upstream's cap.
pub struct UpstreamResponse {
    /// The upstream's response.
    pub response: reqwest::Response,
    /// Held until the body has been consumed.
    pub permit: OwnedSemaphorePermit,
}

/// The most of an upstream's token answer that is read (a token is a few KiB).
const MAX_TOKEN_ANSWER_BYTES: usize = 64 * 1024;

/// The longest a token is cached, whatever its `expires_in` says (so no upstream's number can
/// overflow the clock's arithmetic).
const MAX_TOKEN_LIFETIME_SECONDS: u64 = 3600;

struct CachedToken {
    token: String,
    expires: Instant,
}

/// Fetches from the configured upstreams.
pub struct UpstreamClient {
    upstreams: BTreeMap<String, (Upstream, reqwest::Client)>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
    slots: UpstreamSlots,
    limits: UpstreamLimits,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("upstreams", &self.upstreams.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn basic_header(credentials: &UpstreamCredentials) -> HeaderValue {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        credentials.username,
        credentials.password.expose()
    ));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

fn bearer_header(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The `realm` and `service` of a `Bearer` challenge, if the response carries one.
fn bearer_challenge(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let values = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok());
    windlass_registry::parse_challenges(values)
        .into_iter()
        .filter(windlass_registry::Challenge::is_bearer)
        .find_map(|challenge| Some((challenge.realm?, challenge.service)))
}

impl UpstreamClient {
    /// A client for `upstreams` with `limits`; a request waits at most `slot_wait` for a free slot
    /// of its upstream (each upstream's `max_concurrent_requests`) before it fails with
    /// [`UpstreamError::Busy`].
    pub fn new(
        upstreams: BTreeMap<String, Upstream>,
        limits: UpstreamLimits,
        slot_wait: Duration,
    ) -> Result<UpstreamClient, UpstreamError> {
        let slots = UpstreamSlots::new(
            upstreams
                .iter()
                .map(|(host, upstream)| (host.clone(), upstream.max_concurrent_requests)),
            slot_wait,
        );
        // One client per upstream, so an upstream's extra CA is trusted for that upstream only.
        let mut clients = BTreeMap::new();
        for (host, upstream) in upstreams {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(limits.connect_timeout)
                .read_timeout(limits.read_timeout)
                .redirect(reqwest::redirect::Policy::limited(5));
            if let Some(pem) = &upstream.ca_pem {
                let certificates = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|_| UpstreamError::Certificate)?;
                builder = builder.tls_certs_merge(certificates);
            }
            let http = builder.build().map_err(|_| UpstreamError::Certificate)?;
            clients.insert(host, (upstream, http));
        }
        Ok(UpstreamClient {
            upstreams: clients,
            tokens: Mutex::new(HashMap::new()),
            slots,
            limits,
        })
    }

    /// Whether `host` is a configured upstream.
    pub fn knows(&self, host: &str) -> bool {
        self.upstreams.contains_key(host)
    }

    /// Sends `method` for `path` to its upstream, forwarding the client's `Accept` values, doing
    /// the upstream's authentication.
    pub async fn fetch(
        &self,
        method: reqwest::Method,
        path: &PullPath,
        accept: &[HeaderValue],
    ) -> Result<UpstreamResponse, UpstreamError> {
        let (upstream, http) = self
            .upstreams
            .get(&path.upstream_host)
            .ok_or(UpstreamError::UnknownUpstream)?;
        let permit = self
            .slots
            .acquire(&path.upstream_host)
            .await
            .ok_or(UpstreamError::UnknownUpstream)?
            .map_err(|busy| UpstreamError::Busy {
                upstream: path.upstream_host.clone(),
                slots: busy.slots,
            })?;
        let url = format!(
            "{}/v2/{}/{}/{}",
            upstream.endpoint.as_str().trim_end_matches('/'),
            path.repository,
            path.kind.segment(),
            path.reference
        );
        let scope = format!("repository:{}:pull", path.repository);
        let cache_key = (path.upstream_host.clone(), scope.clone());
        let cached = {
            let tokens = self
                .tokens
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            tokens
                .get(&cache_key)
                .filter(|token| token.expires > Instant::now())
                .map(|token| token.token.clone())
        };
        let authorization = match (&cached, &upstream.credentials) {
            (Some(token), _) => bearer_header(token),
            (None, Some(credentials)) => Some(basic_header(credentials)),
            (None, None) => None,
        };
        let response = self
            .send(http, &method, &url, accept, authorization)
            .await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(UpstreamResponse { response, permit });
        }
        let Some((realm, service)) = bearer_challenge(response.headers()) else {
            return Ok(UpstreamResponse { response, permit });
        };
        let token = self
            .token(http, upstream, &realm, service.as_deref(), &scope)
            .await?;
        let response = self
            .send(http, &method, &url, accept, bearer_header(&token.token))
            .await?;
        self.tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(cache_key, token);
        Ok(UpstreamResponse { response, permit })
    }

    async fn send(
        &self,
        http: &reqwest::Client,
        method: &reqwest::Method,
        url: &str,
        accept: &[HeaderValue],
        authorization: Option<HeaderValue>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut request = http.request(method.clone(), url);
        for value in accept {
            request = request.header(ACCEPT, value.clone());
        }
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        // The deadline covers the headers only: blob bodies are bounded by the read timeout.
        match tokio::time::timeout(self.limits.request_timeout, request.send()).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => {
                tracing::debug!(error = %error.without_url(), "upstream request failed");
                Err(UpstreamError::Unreachable)
            }
            Err(_) => Err(UpstreamError::Unreachable),
        }
    }

    async fn token(
        &self,
        http: &reqwest::Client,
        upstream: &Upstream,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<CachedToken, UpstreamError> {
        let mut url = reqwest::Url::parse(realm).map_err(|_| UpstreamError::Token)?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let mut request = http.get(url).timeout(self.limits.request_timeout);
        if let Some(credentials) = &upstream.credentials {
            request = request.header(AUTHORIZATION, basic_header(credentials));
        }
        let response = request.send().await.map_err(|_| UpstreamError::Token)?;
        if !response.status().is_success() {
            return Err(UpstreamError::Token);
        }
        let body = windlass_registry::read_capped_body(response, MAX_TOKEN_ANSWER_BYTES)
            .await
            .map_err(|_| UpstreamError::Token)?;
        let body: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| UpstreamError::Token)?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|token| token.as_str())
            .filter(|token| !token.is_empty())
            .ok_or(UpstreamError::Token)?
            .to_string();
        let lifetime = body
            .get("expires_in")
            .and_then(|seconds| seconds.as_u64())
            .unwrap_or(60)
            .min(MAX_TOKEN_LIFETIME_SECONDS);
        // Renew a little early, so a token never expires between the check and its use.
        let usable = Duration::from_secs(lifetime.saturating_sub(5).max(1));
        let now = Instant::now();
        Ok(CachedToken {
            token,
            expires: now.checked_add(usable).unwrap_or(now),
        })
    }
}
