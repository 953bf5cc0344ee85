//! [`Prober`]: runs probes concurrently under the [`ProbeConfig`] limits. One `GET /v2/` per
//! registry endpoint, and one token per (endpoint, repository) until it nears expiry, are fetched
//! once and shared by every image that needs them; there is one HTTP client (and so one
//! connection pool) per CA configuration.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::{Mutex as AsyncMutex, OnceCell, Semaphore};
use tokio::task::JoinSet;

use crate::body::read_capped_body;
use crate::challenge::{self, Challenge};
use crate::settings::{CaBundle, Credentials, Secret, normalise_host};
use crate::transport::Transport;
use crate::{ProbeConfig, ProbeEvidence, ProbeOutcome, ProbeResult, ProbeTarget, RegistrySettings};

/// The manifest types a probe accepts: OCI index and manifest, Docker v2 list and manifest.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Where Docker Hub (`docker.io`) serves the registry API.
const DOCKER_HUB_ENDPOINT: &str = "https://registry-1.docker.io";

/// The most of a token endpoint's answer that is read: a token is a few KiB (a JWT with its
/// certificate chain); an answer larger than this is refused as unreadable.
const MAX_TOKEN_ANSWER_BYTES: usize = 64 * 1024;

/// The most of the body of `/v2/` that is read (to hand the connection back to the pool); a larger
/// one is left unread and its connection closed.
const MAX_PING_BODY_BYTES: usize = 64 * 1024;

/// The lifetime a token's `expires_in` may give it at most (a prober serves one batch of probes):
/// anything longer counts as this, so no registry's number can overflow the clock's arithmetic.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The lifetime of a token whose answer gives no `expires_in`, as the token specification says.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Why a [`Prober`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    /// A limit in the [`ProbeConfig`] is zero.
    #[error("invalid probe configuration: {0}")]
    Config(&'static str),
    /// The HTTP client could not be built, e.g. the TLS configuration with an extra CA failed.
    #[error("cannot set up the HTTP client{}: {message}", ca_file.as_ref().map(|f| format!(" with CA file {}", f.display())).unwrap_or_default())]
    Client {
        /// The CA file configured for the client, if any.
        ca_file: Option<PathBuf>,
        /// What failed.
        message: String,
    },
}

/// Probes registries. Build one per batch of probes: it keeps `/v2/` answers and token refusals
/// for its lifetime, and tokens until they near expiry.
pub struct Prober {
    inner: Arc<Inner>,
}

struct Inner {
    default_client: Client,
    hosts: HashMap<String, HostRoute>,
    transport: Transport,
    global: Semaphore,
    max_per_host: usize,
    per_endpoint: Mutex<HashMap<String, Arc<Semaphore>>>,
    pings: SharedAnswers<String, Ping>,
    tokens: TokenSlots,
}

/// The latest token answer per (endpoint, repository). The async lock makes concurrent probes of
/// one repository wait for a single token request.
type TokenSlots = Mutex<HashMap<(String, String), Arc<AsyncMutex<Option<TokenStep>>>>>;

/// Answers computed once per key and shared by every probe that needs them.
type SharedAnswers<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

/// How to reach one configured host.
struct HostRoute {
    endpoint: Option<String>,
    client: Client,
    credentials: Option<Credentials>,
}

/// How to reach the registry of one target.
struct Route<'a> {
    host: String,
    endpoint: String,
    client: &'a Client,
    credentials: Option<&'a Credentials>,
}

/// The shared answer of `GET <endpoint>/v2/`.
#[derive(Clone)]
enum Ping {
    Answered {
        statuses: Vec<u16>,
        challenge: Option<Challenge>,
    },
    Failed(Stop),
}

/// The shared answer of the token endpoint for one repository.
#[derive(Clone)]
enum TokenStep {
    /// A token, or `None` when the endpoint answered 200 without one (the manifest request then
    /// goes without and the registry decides). It is reused until 90% of its `expires_in`
    /// (default 60 s, as the token specification says; at most an hour) has passed.
    Granted {
        statuses: Vec<u16>,
        token: Option<Secret>,
        reuse_until: Instant,
    },
    Refused(Stop),
}

/// A probe that ended before the manifest request.
#[derive(Clone)]
struct Stop {
    outcome: ProbeOutcome,
    statuses: Vec<u16>,
    attempts: u32,
    reason: String,
}

/// What the manifest request carries.
enum Authorization<'a> {
    Anonymous,
    Bearer {
        token: &'a Secret,
        with_credentials: bool,
    },
    Basic(&'a Credentials),
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl Prober {
    /// Builds a prober: one HTTP client for the system roots and one per distinct extra CA.
    pub fn new(settings: RegistrySettings, config: ProbeConfig) -> Result<Prober, ProbeSetupError> {
        if config.max_in_flight == 0 {
            return Err(ProbeSetupError::Config("max_in_flight must be at least 1"));
        }
        if config.max_per_host == 0 {
            return Err(ProbeSetupError::Config("max_per_host must be at least 1"));
        }
        if config.max_attempts == 0 {
            return Err(ProbeSetupError::Config("max_attempts must be at least 1"));
        }
        if config.request_deadline.is_zero() {
            return Err(ProbeSetupError::Config("request_deadline must be positive"));
        }
        let default_client = build_client(&config, None)?;
        let mut clients_by_ca: HashMap<Vec<u8>, Client> = HashMap::new();
        let mut hosts = HashMap::new();
        for (host, host_settings) in settings.hosts {
            let client = match &host_settings.ca {
                None => default_client.clone(),
                Some(ca) => match clients_by_ca.get(&ca.pem) {
                    Some(client) => client.clone(),
                    None => {
                        let client = build_client(&config, Some(ca))?;
                        clients_by_ca.insert(ca.pem.clone(), client.clone());
                        client
                    }
                },
            };
            hosts.insert(
                host,
                HostRoute {
                    endpoint: host_settings.endpoint,
                    client,
                    credentials: host_settings.credentials,
                },
            );
        }
        Ok(Prober {
            inner: Arc::new(Inner {
                default_client,
                hosts,
                transport: Transport::new(&config),
                global: Semaphore::new(config.max_in_flight),
                max_per_host: config.max_per_host,
                per_endpoint: Mutex::new(HashMap::new()),
                pings: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Probes every target, at most `max_in_flight` at once and `max_per_host` per endpoint.
    /// `on_done(done, total)` is called after each one finishes. The results are in the order of
    /// `targets`. Never fails: every failure is an outcome.
    pub async fn probe_all(
        &self,
        targets: Vec<ProbeTarget>,
        on_done: impl Fn(usize, usize) + Send + Sync,
    ) -> Vec<ProbeResult> {
        let total = targets.len();
        let mut results: Vec<Option<ProbeResult>> = vec![None; total];
        let mut tasks = JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let inner = Arc::clone(&self.inner);
            tasks.spawn(async move { (index, inner.probe(target).await) });
        }
        let mut done = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, result)) => {
                    results[index] = Some(result);
                    done += 1;
                    on_done(done, total);
                }
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => panic!("a probe task was cancelled while its set was alive: {error}"),
            }
        }
        results
            .into_iter()
            .map(|result| result.expect("every probe task reports its result"))
            .collect()
    }

    /// HTTP requests sent so far by this prober, retries and token requests included.
    pub fn requests_made(&self) -> u64 {
        self.inner.transport.requests_made()
    }
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("configured_hosts", &self.inner.hosts.len())
            .field("requests_made", &self.requests_made())
            .finish_non_exhaustive()
    }
}

fn build_client(config: &ProbeConfig, ca: Option<&CaBundle>) -> Result<Client, ProbeSetupError> {
    let failed = |message: String| ProbeSetupError::Client {
        ca_file: ca.map(|ca| ca.path.clone()),
        message,
    };
    let mut builder = Client::builder()
        .timeout(config.request_deadline)
        .connect_timeout(config.request_deadline)
        .pool_max_idle_per_host(config.max_per_host)
        .user_agent(concat!("windlass/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        let certificates = reqwest::Certificate::from_pem_bundle(&ca.pem)
            .map_err(|error| failed(error.to_string()))?;
        builder = builder.tls_certs_merge(certificates);
    }
    builder.build().map_err(|error| failed(error.to_string()))
}

impl Inner {
    async fn probe(&self, target: ProbeTarget) -> ProbeResult {
        let route = self.route(&target.registry);
        let host_slots = self.endpoint_slots(&route.endpoint);
        let _host_slot = host_slots
            .acquire()
            .await
            .expect("probe semaphores are never closed");
        let _global_slot = self
            .global
            .acquire()
            .await
            .expect("probe semaphores are never closed");
        let started = Instant::now();
        let mut evidence = ProbeEvidence {
            status_codes: Vec::new(),
            challenge: None,
            digest: None,
            attempts: 0,
            latency_ms: 0,
            endpoint: route.endpoint.clone(),
            reason: String::new(),
        };
        let outcome = self.run(&target, &route, &mut evidence).await;
        evidence.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        ProbeResult {
            target,
            outcome,
            evidence,
        }
    }

    fn route(&self, registry: &str) -> Route<'_> {
        let host = normalise_host(registry);
        let default_endpoint = || {
            if host == "docker.io" {
                DOCKER_HUB_ENDPOINT.to_owned()
            } else {
                format!("https://{host}")
            }
        };
        match self.hosts.get(&host) {
            Some(configured) => Route {
                endpoint: configured.endpoint.clone().unwrap_or_else(default_endpoint),
                client: &configured.client,
                credentials: configured.credentials.as_ref(),
                host,
            },
            None => Route {
                endpoint: default_endpoint(),
                client: &self.default_client,
                credentials: None,
                host,
            },
        }
    }

    fn endpoint_slots(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut slots = self.per_endpoint.lock().expect("no panics while locked");
        Arc::clone(
            slots
                .entry(endpoint.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_host))),
        )
    }

    /// The probe's steps; fills `evidence` and returns the outcome.
    async fn run(
        &self,
        target: &ProbeTarget,
        route: &Route<'_>,
        evidence: &mut ProbeEvidence,
    ) -> ProbeOutcome {
        let stop = |stop: Stop, evidence: &mut ProbeEvidence| {
            evidence.status_codes.extend(stop.statuses);
            evidence.attempts = stop.attempts;
            evidence.reason = stop.reason;
            stop.outcome
        };

        let challenge = match self.ping(route).await {
            Ping::Failed(failed) => return stop(failed, evidence),
            Ping::Answered {
                statuses,
                challenge,
            } => {
                evidence.status_codes.extend(statuses);
                evidence.challenge.clone_from(&challenge);
                challenge
            }
        };

        let token_step;
        let authorization = match &challenge {
            Some(challenge) if challenge.is_bearer() && challenge.realm.is_some() => {
                token_step = self.token(route, challenge, &target.repository).await;
                match &token_step {
                    TokenStep::Refused(refused) => return stop(refused.clone(), evidence),
                    TokenStep::Granted {
                        statuses, token, ..
                    } => {
                        evidence.status_codes.extend(statuses);
                        match token {
                            Some(token) => Authorization::Bearer {
                                token,
                                with_credentials: route.credentials.is_some(),
                            },
                            None => Authorization::Anonymous,
                        }
                    }
                }
            }
            Some(challenge) if challenge.is_basic() => match route.credentials {
                Some(credentials) => Authorization::Basic(credentials),
                None => Authorization::Anonymous,
            },
            _ => Authorization::Anonymous,
        };

        let url = format!(
            "{}/v2/{}/manifests/{}",
            route.endpoint, target.repository, target.reference
        );
        let exchange = self
            .transport
            .send(|| {
                let request = route.client.head(&url).header(ACCEPT, MANIFEST_TYPES);
                match &authorization {
                    Authorization::Anonymous => request,
                    Authorization::Bearer { token, .. } => request.bearer_auth(token.expose()),
                    Authorization::Basic(credentials) => request
                        .basic_auth(&credentials.username, Some(credentials.password.expose())),
                }
            })
            .await;
        evidence.status_codes.extend(exchange.statuses);
        evidence.attempts = exchange.attempts;
        let response = match exchange.result {
            Ok(response) => response,
            Err(failure) => {
                evidence.reason = format!("manifest request failed: {}", failure.reason);
                return ProbeOutcome::Unreachable;
            }
        };
        let status = response.status();
        let outcome = outcome_for_status(status);
        evidence.reason = match outcome {
            ProbeOutcome::Public => {
                evidence.digest = response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
                    .or_else(|| {
                        target
                            .reference
                            .contains(':')
                            .then(|| target.reference.clone())
                    });
                let how = match &authorization {
                    Authorization::Anonymous => "to an anonymous request".to_owned(),
                    Authorization::Bearer {
                        with_credentials: false,
                        ..
                    } => "with an anonymous pull token".to_owned(),
                    Authorization::Bearer {
                        with_credentials: true,
                        ..
                    } => format!(
                        "with a pull token obtained with the credentials configured for {}",
                        route.host
                    ),
                    Authorization::Basic(_) => {
                        format!("with the credentials configured for {}", route.host)
                    }
                };
                format!("manifest answered {status} {how}")
            }
            ProbeOutcome::AuthRequired => {
                let challenges = header_values(&response, WWW_AUTHENTICATE);
                let scheme = challenge::preferred(challenge::parse_challenges(
                    challenges.iter().map(String::as_str),
                ))
                .map(|challenge| format!(" ({} challenge)", challenge.scheme))
                .unwrap_or_default();
                let error = challenge::error_parameter(challenges.iter().map(String::as_str))
                    .map(|error| format!(", error {error}"))
                    .unwrap_or_default();
                format!(
                    "manifest answered {status}: the registry requires authentication{scheme}{error}"
                )
            }
            ProbeOutcome::Denied => format!("manifest answered {status}: access denied"),
            ProbeOutcome::NotFound => format!("manifest answered {status}: no such manifest"),
            ProbeOutcome::RateLimited => format!(
                "manifest answered {status} on each of {} attempts",
                exchange.attempts
            ),
            ProbeOutcome::ServerError if status.is_server_error() => format!(
                "manifest answered {status} on each of {} attempts",
                exchange.attempts
            ),
            ProbeOutcome::ServerError | ProbeOutcome::Unreachable => {
                format!("manifest answered an unexpected {status}")
            }
        };
        outcome
    }

    /// `GET <endpoint>/v2/`, once per endpoint.
    async fn ping(&self, route: &Route<'_>) -> Ping {
        let cell = {
            let mut pings = self.pings.lock().expect("no panics while locked");
            Arc::clone(pings.entry(route.endpoint.clone()).or_default())
        };
        cell.get_or_init(|| async {
            let url = format!("{}/v2/", route.endpoint);
            let exchange = self.transport.send(|| route.client.get(&url)).await;
            let response = match exchange.result {
                Ok(response) => response,
                Err(failure) => {
                    return Ping::Failed(Stop {
                        outcome: ProbeOutcome::Unreachable,
                        statuses: exchange.statuses,
                        attempts: exchange.attempts,
                        reason: format!("{url} failed: {}", failure.reason),
                    });
                }
            };
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                return Ping::Failed(Stop {
                    outcome: outcome_for_status(status),
                    statuses: exchange.statuses,
                    attempts: exchange.attempts,
                    reason: format!(
                        "{url} answered {status} on each of {} attempts",
                        exchange.attempts
                    ),
                });
            }
            let challenge = if status == StatusCode::UNAUTHORIZED {
                let values = header_values(&response, WWW_AUTHENTICATE);
                challenge::preferred(challenge::parse_challenges(
                    values.iter().map(String::as_str),
                ))
            } else {
                None
            };
            // Read the (small) body so the connection goes back to the pool; a large one is left
            // unread, and its connection closed.
            let _ = read_capped_body(response, MAX_PING_BODY_BYTES).await;
            Ping::Answered {
                statuses: exchange.statuses,
                challenge,
            }
        })
        .await
        .clone()
    }

    /// A pull token for `repository` from the challenge's realm, fetched once per (endpoint,
    /// repository) and again only when it is about to expire. A refusal is kept for the prober's
    /// lifetime.
    async fn token(&self, route: &Route<'_>, challenge: &Challenge, repository: &str) -> TokenStep {
        let slot = {
            let mut tokens = self.tokens.lock().expect("no panics while locked");
            Arc::clone(
                tokens
                    .entry((route.endpoint.clone(), repository.to_owned()))
                    .or_default(),
            )
        };
        let mut slot = slot.lock().await;
        if let Some(step) = slot.as_ref() {
            let reusable = match step {
                TokenStep::Granted { reuse_until, .. } => Instant::now() < *reuse_until,
                TokenStep::Refused(_) => true,
            };
            if reusable {
                return step.clone();
            }
        }
        let step = self.fetch_token(route, challenge, repository).await;
        *slot = Some(step.clone());
        step
    }

    async fn fetch_token(
        &self,
        route: &Route<'_>,
        challenge: &Challenge,
        repository: &str,
    ) -> TokenStep {
        let realm = challenge.realm.as_deref().unwrap_or_default();
        let mut url = match reqwest::Url::parse(realm) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => {
                return TokenStep::Refused(Stop {
                    outcome: ProbeOutcome::ServerError,
                    statuses: Vec::new(),
                    attempts: 0,
                    reason: format!("the registry's token realm `{realm}` is not an http(s) URL"),
                });
            }
        };
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &format!("repository:{repository}:pull"));
        }
        let requested_at = Instant::now();
        let exchange = self
            .transport
            .send(|| {
                let request = route.client.get(url.clone());
                match route.credentials {
                    Some(credentials) => request
                        .basic_auth(&credentials.username, Some(credentials.password.expose())),
                    None => request,
                }
            })
            .await;
        let refused = |outcome, reason| {
            TokenStep::Refused(Stop {
                outcome,
                statuses: exchange.statuses.clone(),
                attempts: exchange.attempts,
                reason,
            })
        };
        let response = match exchange.result {
            Ok(response) => response,
            Err(failure) => {
                return refused(
                    ProbeOutcome::Unreachable,
                    format!("token endpoint {realm} failed: {}", failure.reason),
                );
            }
        };
        let status = response.status();
        let who = if route.credentials.is_some() {
            "with the configured credentials"
        } else {
            "anonymously"
        };
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let values = header_values(&response, WWW_AUTHENTICATE);
            let error = challenge::error_parameter(values.iter().map(String::as_str))
                .map(|error| format!(", error {error}"))
                .unwrap_or_default();
            return refused(
                ProbeOutcome::AuthRequired,
                format!(
                    "token endpoint {realm} refused a pull token for {repository} {who} ({status}{error})"
                ),
            );
        }
        if !status.is_success() {
            return refused(
                outcome_for_status(status),
                format!("token endpoint {realm} answered {status}"),
            );
        }
        let answer = match read_capped_body(response, MAX_TOKEN_ANSWER_BYTES).await {
            Ok(body) => serde_json::from_slice::<TokenAnswer>(&body)
                .map_err(|error| format!("its answer is not a token answer: {error}")),
            Err(error) => Err(error.to_string()),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(problem) => {
                return refused(
                    ProbeOutcome::ServerError,
                    format!(
                        "token endpoint {realm} answered {status} without a readable token: {problem}"
                    ),
                );
            }
        };
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty());
        TokenStep::Granted {
            statuses: exchange.statuses.clone(),
            token: token.map(Secret::new),
            reuse_until: reuse_until(requested_at, answer.expires_in),
        }
    }
}

/// When a token fetched at `requested_at` stops being reused: after 90% of its lifetime, which
/// is `expires_in` seconds within [`MAX_TOKEN_LIFETIME`] ([`DEFAULT_TOKEN_LIFETIME`] without one).
fn reuse_until(requested_at: Instant, expires_in: Option<u64>) -> Instant {
    let lifetime = expires_in
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
        .min(MAX_TOKEN_LIFETIME);
    requested_at
        .checked_add(lifetime.mul_f64(0.9))
        .unwrap_or(requested_at)
}

/// The outcome a final status means. 2xx is public; statuses a registry should not answer with
/// count as a server error.
fn outcome_for_status(status: StatusCode) -> ProbeOutcome {
    match status.as_u16() {
        200..=299 => ProbeOutcome::Public,
        401 => ProbeOutcome::AuthRequired,
        403 => ProbeOutcome::Denied,
        404 => ProbeOutcome::NotFound,
        429 => ProbeOutcome::RateLimited,
        _ => ProbeOutcome::ServerError,
    }
}

fn header_values(response: &Response, name: reqwest::header::HeaderName) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_endpoints_follow_docker() {
        let prober = Prober::new(RegistrySettings::empty(), ProbeConfig::default()).unwrap();
        let endpoint = |host: &str| prober.inner.route(host).endpoint;
        assert_eq!(endpoint("docker.io"), "https://registry-1.docker.io");
        assert_eq!(endpoint("Index.Docker.io"), "https://registry-1.docker.io");
        assert_eq!(endpoint("quay.io"), "https://quay.io");
        assert_eq!(endpoint("localhost:5000"), "https://localhost:5000");
    }

    #[test]
    fn a_token_is_reused_for_90_percent_of_its_lifetime_within_the_hour() {
        let now = Instant::now();
        let reuse = |expires_in| reuse_until(now, expires_in).duration_since(now);
        assert_eq!(reuse(None), Duration::from_secs(54));
        assert_eq!(reuse(Some(300)), Duration::from_secs(270));
        assert_eq!(reuse(Some(0)), Duration::ZERO);
        assert_eq!(reuse(Some(u64::MAX)), Duration::from_secs(3240));
    }

    #[test]
    fn zero_limits_are_refused() {
        for config in [
            ProbeConfig {
                max_in_flight: 0,
                ..ProbeConfig::default()
            },
            ProbeConfig {
                max_per_host: 0,
                ..ProbeConfig::default()
            },
            ProbeConfig {
                max_attempts: 0,
                ..ProbeConfig::default()
            },
            ProbeConfig {
                request_deadline: Duration::ZERO,
                ..ProbeConfig::default()
            },
        ] {
            let error = Prober::new(RegistrySettings::empty(), config).unwrap_err();
            assert!(matches!(error, ProbeSetupError::Config(_)), "{error}");
        }
    }

    #[tokio::test]
    async fn no_targets_make_no_requests() {
        let prober = Prober::new(RegistrySettings::empty(), ProbeConfig::default()).unwrap();
        let results = prober
            .probe_all(Vec::new(), |_, _| panic!("nothing to report"))
            .await;
        assert!(results.is_empty());
        assert_eq!(prober.requests_made(), 0);
    }

    #[test]
    fn status_mapping() {
        let outcome = |code| outcome_for_status(StatusCode::from_u16(code).unwrap());
        assert_eq!(outcome(200), ProbeOutcome::Public);
        assert_eq!(outcome(401), ProbeOutcome::AuthRequired);
        assert_eq!(outcome(403), ProbeOutcome::Denied);
        assert_eq!(outcome(404), ProbeOutcome::NotFound);
        assert_eq!(outcome(429), ProbeOutcome::RateLimited);
        assert_eq!(outcome(502), ProbeOutcome::ServerError);
        assert_eq!(outcome(400), ProbeOutcome::ServerError);
    }
}
