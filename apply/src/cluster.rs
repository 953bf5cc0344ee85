//! The cluster as the apply stage talks to it: a [`kube::Client`] from a kubeconfig (built by
//! [`KubeClients`], the [`KubernetesClientFactory`] the binary injects) and raw requests on it, so
//! that every query parameter of server-side apply (`fieldManager`, `force`, `dryRun`) and every
//! header (`Retry-After`) is in reach. Resources are found through discovery, one request per
//! group-version, cached, and fetched again when a kind is missing (a CRD that just became
//! Established). 429 and 5xx answers, and connections that fail, are retried with the engine's
//! retry policy ([`windlass_engine::retry_delay`]), waiting at least what `Retry-After` asks (up to
//! five seconds); any other refusal comes back as an [`ApiFailure`] with the server's status,
//! reason and message. What a server answers is bounded: each answer must come within
//! [`REQUEST_DEADLINE`] and fit in [`MAX_ANSWER_BYTES`], a LIST stops at a repeated `continue`
//! token, and a refusal's message and causes are shortened before they reach the event log.

use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use windlass_engine::{FailureClass, KubernetesClientFactory, ServiceError, retry_delay};

use crate::credentials_in_text::redact_credentials;
use crate::order::ObjectKey;

/// The field manager windlass applies as.
pub const FIELD_MANAGER: &str = "windlass";

/// A client and the server it talks to: what [`KubeClients`] hands out (as `dyn Any`).
#[derive(Clone)]
pub struct KubeConnection {
    /// The client.
    pub client: kube::Client,
    /// The API server's URL, as the kubeconfig names it.
    pub server: String,
    /// The kubeconfig the client was built from (a file, or `$KUBECONFIG`'s `:`-separated
    /// list), for the tools that reach the same cluster (helm).
    pub kubeconfig: std::ffi::OsString,
    /// The context asked for (absent: the kubeconfig's current one).
    pub context: Option<String>,
}

/// The [`KubernetesClientFactory`] of the binary: reads the kubeconfig named by `--kubeconfig`,
/// else `$KUBECONFIG`, else `~/.kube/config`, and builds a client for the context asked for.
#[derive(Debug, Clone, Default)]
pub struct KubeClients {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
}

#[async_trait::async_trait]
impl KubernetesClientFactory for KubeClients {
    async fn client(
        &self,
        kube_context: Option<&str>,
    ) -> Result<Arc<dyn Any + Send + Sync>, ServiceError> {
        let options = KubeConfigOptions {
            context: kube_context.map(str::to_string),
            ..KubeConfigOptions::default()
        };
        // kube reads `$KUBECONFIG` when it names at least one file (empty entries are skipped).
        let named = std::env::var_os("KUBECONFIG")
            .filter(|list| std::env::split_paths(list).any(|path| !path.as_os_str().is_empty()));
        let shown = match (&self.kubeconfig, named) {
            (Some(path), _) => format!("kubeconfig {}", path.display()),
            (None, Some(list)) => {
                format!(
                    "the kubeconfig $KUBECONFIG names ({})",
                    list.to_string_lossy()
                )
            }
            (None, None) => "the kubeconfig ~/.kube/config".to_string(),
        };
        // kube calls any context it cannot find "the current context", even one named here.
        let failed = |error: kube::config::KubeconfigError| match (&error, kube_context) {
            (kube::config::KubeconfigError::LoadContext(_), Some(context)) => {
                ServiceError(format!("{shown} has no context {context:?}"))
            }
            _ => ServiceError(format!("{shown}: {error}")),
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(failed)?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => kube::Config::from_kubeconfig(&options).await,
        }
        .map_err(failed)?;
        let server = config.cluster_url.to_string();
        let client = if plain_http(&config) {
            plain_http_client(config)
        } else {
            // windlass retries with the engine's policy (a bounded `Retry-After`); kube's own
            // retry layer under it would multiply the attempts and wait whatever the server asks.
            let mut config = config;
            config.default_retry = false;
            kube::Client::try_from(config)
        }
        .map_err(|error| ServiceError(format!("{shown}: cannot build a client: {error}")))?;
        // Absolute, for tools run in a directory of their own.
        let absolute = |path: &std::path::Path| {
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .into_os_string()
        };
        let kubeconfig = match &self.kubeconfig {
            Some(path) => absolute(path),
            None => match std::env::var_os("KUBECONFIG").filter(|value| !value.is_empty()) {
                Some(list) => {
                    std::env::join_paths(std::env::split_paths(&list).map(|path| absolute(&path)))
                        .unwrap_or(list)
                }
                None => std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".kube/config").into_os_string())
                    .unwrap_or_default(),
            },
        };
        Ok(Arc::new(KubeConnection {
            client,
            server,
            kubeconfig,
            context: kube_context.map(str::to_string),
        }))
    }
}

/// Whether the kubeconfig names an `http://` server reached directly (no proxy): no TLS to set
/// up, so none of what TLS needs is loaded.
fn plain_http(config: &kube::Config) -> bool {
    config.cluster_url.scheme() == Some(&http::uri::Scheme::HTTP) && config.proxy_url.is_none()
}

/// A client for an `http://` server (`kubectl proxy`, a test API server). kube's own client
/// builds a TLS connector whatever the scheme, and with no certificate authority in the
/// kubeconfig that loads and parses every certificate of the system's trust store (about 20 ms
/// of each command's start, for a connection that never uses TLS). This one is kube's stack
/// without TLS (and without its request tracing): the server's base URL, the kubeconfig's
/// credentials and impersonation headers, over a plain keep-alive connection pool.
fn plain_http_client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt;
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_nodelay(true);
    let pool = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, kube::client::Body>(connector);
    // Boxed errors, as every layer above answers with.
    let pool = tower::ServiceExt::map_err(pool, tower::BoxError::from);
    let headers = config.extra_headers_layer()?;
    let base = config.base_uri_layer();
    let builder = kube::client::ClientBuilder::new(pool, config.default_namespace.clone())
        .with_layer(&headers);
    Ok(match config.auth_layer()? {
        Some(auth) => builder.with_layer(&auth).with_layer(&base).build(),
        None => builder.with_layer(&base).build(),
    })
}

/// A refusal by the API server (or a request that could not be made).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status}{}{reason}: {message}", if reason.is_empty() { "" } else { " " })]
pub struct ApiFailure {
    /// The HTTP status (0 when no answer came).
    pub status: u16,
    /// The Status `reason` (`Conflict`, `Invalid`, ...).
    pub reason: String,
    /// The Status `message`.
    pub message: String,
    /// `details.causes`.
    pub causes: Vec<Value>,
}

impl ApiFailure {
    /// Whether retrying may help (429, 5xx, no answer) — after the retries ran out. Not the 500
    /// of a body the server cannot type ([`ApiFailure::is_untypable`]): sent again, it is
    /// refused again.
    pub fn is_transient(&self) -> bool {
        (self.status == 0 || self.status == 429 || self.status >= 500) && !self.is_untypable()
    }

    /// Whether the server could not type the object sent against its schema:
    /// structured-merge-diff's `failed to create typed patch object` (two list items of one key
    /// such as a repeated env name, an item without its key, a field the schema does not
    /// declare), which a real server answers with a 500 that no retry changes. (Clients that
    /// retry every 500 retry this for ever.)
    pub fn is_untypable(&self) -> bool {
        self.status == 500 && self.message.contains("failed to create typed patch object")
    }

    /// Whether the server refused a change to a field that cannot change once set: "field is
    /// immutable" (selectors, a Service's clusterIP, a Job's template, a Secret's type, an
    /// `immutable: true` ConfigMap), "spec is immutable after creation" (a PVC), "cannot change
    /// roleRef" (RoleBindings) and "updates to statefulset spec for fields other than ..."
    /// (a StatefulSet's volumeClaimTemplates, selector, serviceName): the refusals that only
    /// deleting and creating the object again gets past.
    pub fn is_immutable_field(&self) -> bool {
        const SIGNS: [&str; 3] = [
            "immutable",
            "cannot change roleRef",
            "updates to statefulset spec for fields other than",
        ];
        let says_so = |text: &str| SIGNS.iter().any(|sign| text.contains(sign));
        self.status == 422
            && (says_so(&self.message)
                || self.causes.iter().any(|cause| {
                    cause
                        .get("message")
                        .and_then(Value::as_str)
                        .is_some_and(says_so)
                }))
    }
}

/// One resource of a group-version, from discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The plural name used in paths.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl ResourceInfo {
    /// Namespaces' resource (core `v1`, cluster-scoped), known without discovery.
    pub fn namespaces() -> ResourceInfo {
        ResourceInfo {
            plural: "namespaces".into(),
            namespaced: false,
        }
    }
}

/// The API server, as the apply stage uses it.
pub struct Cluster {
    connection: KubeConnection,
    /// Discovery per `apiVersion`: kind → resource.
    discovery: tokio::sync::Mutex<HashMap<String, Arc<HashMap<String, ResourceInfo>>>>,
    /// Per `apiVersion`, held while its discovery is asked: objects handled concurrently that
    /// all miss the cache (or all refresh it) ask once, not once each.
    discovering: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// How long one request may wait for its whole answer.
    request_deadline: Duration,
    /// How large an answer may be.
    answer_limit: usize,
}

/// How long one request may wait for its whole answer before the attempt counts as a failed
/// connection (and is retried): a little more than the minute a real API server gives a
/// request before it answers 504 itself (`--request-timeout`).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(70);

/// The largest answer read from the API server. A page of 500 large objects is a few tens of
/// MiB; anything past this is refused rather than held in memory.
pub const MAX_ANSWER_BYTES: usize = 256 << 20;

/// The most pages one LIST may take (500 objects each), and so the most objects of one kind
/// windlass reads: a server that hands out `continue` tokens forever is stopped here.
const MAX_LIST_PAGES: usize = 10_000;

/// The longest server message (and cause message) kept from a refusal: messages go into the
/// event log and onto the terminal, and a webhook may answer with megabytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The most `details.causes` kept from a refusal.
const MAX_CAUSES: usize = 50;

/// `bytes` as a message says it: in MiB when whole MiB, else in bytes.
fn size_in_words(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// `Accept` for whole objects.
const JSON: &str = "application/json";
/// `Accept` for a LIST of the objects' metadata alone, whole objects from a server that cannot
/// (client-go's metadata client asks the same way).
pub const METADATA_LIST: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

/// Request content types.
pub mod content_type {
    /// Server-side apply.
    pub const APPLY: &str = "application/apply-patch+yaml";
    /// JSON patch.
    pub const JSON_PATCH: &str = "application/json-patch+json";
    /// A JSON body.
    pub const JSON: &str = "application/json";
}

impl Cluster {
    /// A cluster reached through `connection`.
    pub fn new(connection: KubeConnection) -> Cluster {
        Cluster {
            connection,
            discovery: tokio::sync::Mutex::new(HashMap::new()),
            discovering: tokio::sync::Mutex::new(HashMap::new()),
            request_deadline: REQUEST_DEADLINE,
            answer_limit: MAX_ANSWER_BYTES,
        }
    }

    /// This cluster with another cap on an answer's size (tests use a small one).
    pub fn with_answer_limit(mut self, bytes: usize) -> Cluster {
        self.answer_limit = bytes;
        self
    }

    /// This cluster with another deadline for each request's answer (tests use a short one).
    pub fn with_request_deadline(mut self, deadline: Duration) -> Cluster {
        self.request_deadline = deadline;
        self
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.connection.server
    }

    /// Sends one request, retrying 429, 5xx and failed connections with the engine's retry
    /// policy; returns the JSON body of a 2xx answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Value, ApiFailure> {
        self.call_as(method, path, content_type, body).await
    }

    /// [`Cluster::call`], decoding the answer as `T` (a shape that reads only what the caller
    /// needs is much cheaper than a [`Value`] of a page of a thousand objects).
    pub async fn call_as<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<T, ApiFailure> {
        self.send_as(method, path, JSON, content_type, body).await
    }

    /// [`Cluster::call_as`] with the `Accept` header given.
    async fn send_as<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<T, ApiFailure> {
        let mut attempt = 1;
        loop {
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(http::header::ACCEPT, accept);
            if let Some(content_type) = content_type {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
            }
            let request = builder
                .body(kube::client::Body::from(body.clone().unwrap_or_default()))
                .map_err(|error| ApiFailure {
                    status: 0,
                    reason: "BadRequest".into(),
                    message: format!("cannot build the request for {path}: {error}"),
                    causes: Vec::new(),
                })?;
            let (failure, retry_after) = match self.send_once(request, &method, path).await {
                Ok(bytes) => {
                    return serde_json::from_slice(&bytes).map_err(|error| ApiFailure {
                        status: 200,
                        reason: "BadResponse".into(),
                        message: format!("{method} {path}: the answer is not JSON: {error}"),
                        causes: Vec::new(),
                    });
                }
                Err(failed) => failed,
            };
            if !failure.is_transient() {
                return Err(failure);
            }
            let Some(delay) = retry_delay(FailureClass::Transient, attempt) else {
                return Err(failure);
            };
            let delay = retry_after
                .map(|asked| asked.min(Duration::from_secs(5)).max(delay))
                .unwrap_or(delay);
            tracing::debug!(%path, status = failure.status, ?delay, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One request: the body of a 2xx answer, or the failure and the `Retry-After` it asked
    /// for. The answer must come within [`Cluster::request_deadline`] and be at most
    /// [`MAX_ANSWER_BYTES`] long: a server that hangs or floods fails the attempt (a hang as a
    /// transient failure, retried; a flood as a permanent one).
    async fn send_once(
        &self,
        request: Request<kube::client::Body>,
        method: &Method,
        path: &str,
    ) -> Result<bytes::Bytes, (ApiFailure, Option<Duration>)> {
        use http_body_util::BodyExt;
        let connection_failed = |message: String| ApiFailure {
            status: 0,
            reason: "ConnectionFailed".into(),
            message,
            causes: Vec::new(),
        };
        let exchange = async {
            let response = self
                .connection
                .client
                .send(request)
                .await
                .map_err(|error| (connection_failed(format!("{method} {path}: {error}")), None))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let limited = http_body_util::Limited::new(response.into_body(), self.answer_limit);
            let bytes = match limited.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error)
                    if error
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    let failure = ApiFailure {
                        status,
                        reason: "AnswerTooLarge".into(),
                        message: format!(
                            "{method} {path}: the API server's answer is larger than {}",
                            size_in_words(self.answer_limit)
                        ),
                        causes: Vec::new(),
                    };
                    return Err((failure, None));
                }
                Err(error) => {
                    return Err((connection_failed(format!("{method} {path}: {error}")), None));
                }
            };
            if (200..300).contains(&status) {
                Ok(bytes)
            } else {
                Err((failure_of(status, &bytes), retry_after))
            }
        };
        match tokio::time::timeout(self.request_deadline, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err((
                connection_failed(format!(
                    "{method} {path}: no answer within {}s",
                    self.request_deadline.as_secs()
                )),
                None,
            )),
        }
    }

    /// The resources of `api_version`, from discovery (cached; `refresh` asks again).
    async fn resources(
        &self,
        api_version: &str,
        refresh: bool,
    ) -> Result<Arc<HashMap<String, ResourceInfo>>, ApiFailure> {
        let cached = self.discovery.lock().await.get(api_version).cloned();
        if !refresh && let Some(found) = cached {
            return Ok(found);
        }
        let gate = self
            .discovering
            .lock()
            .await
            .entry(api_version.to_string())
            .or_default()
            .clone();
        let _asking = gate.lock().await;
        // Asked meanwhile by whoever held the gate: what it found is as new as asking again.
        if let Some(now) = self.discovery.lock().await.get(api_version).cloned()
            && (!refresh || cached.is_none_or(|before| !Arc::ptr_eq(&before, &now)))
        {
            return Ok(now);
        }
        let path = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let list = match self.call(Method::GET, &path, None, None).await {
            Ok(list) => list,
            Err(failure) if failure.status == 404 => Value::Null,
            Err(failure) => return Err(failure),
        };
        let mut resources = HashMap::new();
        for resource in list
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(kind)) = (
                resource.get("name").and_then(Value::as_str),
                resource.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            resources.insert(
                kind.to_string(),
                ResourceInfo {
                    plural: name.to_string(),
                    namespaced: resource
                        .get("namespaced")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                },
            );
        }
        let resources = Arc::new(resources);
        self.discovery
            .lock()
            .await
            .insert(api_version.to_string(), resources.clone());
        Ok(resources)
    }

    /// The resource of `key`'s kind, or `None` when the server does not serve it.
    pub async fn resource(&self, key: &ObjectKey) -> Result<Option<ResourceInfo>, ApiFailure> {
        let api_version = key.api_version();
        if let Some(found) = self.resources(&api_version, false).await?.get(&key.kind) {
            return Ok(Some(found.clone()));
        }
        Ok(self
            .resources(&api_version, true)
            .await?
            .get(&key.kind)
            .cloned())
    }

    /// The resource of `key`'s kind in the version `key` names or, when the server no longer
    /// serves that version (a cluster upgraded past `policy/v1beta1`, a CRD that stopped
    /// serving `v1alpha1`), in another version of its group the server serves (the group's
    /// preferred one first), with `key` in that version; `None` when no version of the group
    /// serves the kind. Objects outlive the versions they were written in: what was applied in
    /// one is read and deleted in another.
    pub async fn resource_served(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<(ObjectKey, ResourceInfo)>, ApiFailure> {
        if let Some(info) = self.resource(key).await? {
            return Ok(Some((key.clone(), info)));
        }
        if key.group.is_empty() {
            return Ok(None);
        }
        let group = match self
            .call(Method::GET, &format!("/apis/{}", key.group), None, None)
            .await
        {
            Ok(group) => group,
            Err(failure) if failure.status == 404 => return Ok(None),
            Err(failure) => return Err(failure),
        };
        let version_of = |entry: &Value| {
            entry
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let preferred = group.get("preferredVersion").and_then(version_of);
        let mut versions: Vec<String> = preferred.into_iter().collect();
        for version in group
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(version_of)
        {
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        for version in versions
            .into_iter()
            .filter(|version| *version != key.version)
        {
            let served = ObjectKey {
                version,
                ..key.clone()
            };
            if let Some(info) = self.resource(&served).await? {
                return Ok(Some((served, info)));
            }
        }
        Ok(None)
    }

    /// The collection path of a resource (in `namespace` when given).
    pub fn collection_path(
        key: &ObjectKey,
        info: &ResourceInfo,
        namespace: Option<&str>,
    ) -> String {
        let base = if key.group.is_empty() {
            format!("/api/{}", key.version)
        } else {
            format!("/apis/{}/{}", key.group, key.version)
        };
        match namespace.filter(|_| info.namespaced) {
            Some(namespace) => format!("{base}/namespaces/{namespace}/{}", info.plural),
            None => format!("{base}/{}", info.plural),
        }
    }

    /// The path of one object.
    pub fn object_path(key: &ObjectKey, info: &ResourceInfo) -> String {
        format!(
            "{}/{}",
            Self::collection_path(key, info, key.namespace.as_deref()),
            key.name
        )
    }

    /// The cluster's identity: the uid of its `kube-system` namespace, which every cluster has
    /// from its start to its end, whatever URL reaches it. `None` when the server does not let
    /// it be read or answers something else (the URL then names the cluster, as before); `Err`
    /// only for what retries did not cure (no answer, 429, 5xx).
    pub async fn identity(&self) -> Result<Option<String>, ApiFailure> {
        #[derive(serde::Deserialize)]
        struct Namespace {
            metadata: Metadata,
        }
        #[derive(serde::Deserialize)]
        struct Metadata {
            #[serde(default)]
            uid: Option<String>,
        }
        match self
            .call_as::<Namespace>(Method::GET, "/api/v1/namespaces/kube-system", None, None)
            .await
        {
            Ok(namespace) => Ok(namespace.metadata.uid.filter(|uid| !uid.is_empty())),
            Err(failure) if failure.is_transient() => Err(failure),
            // A refusal (401, 403, 404, a proxy's 400 or 405) or an answer that is not a
            // Namespace: the URL names the cluster.
            Err(_) => Ok(None),
        }
    }

    /// The object, or `None` when it does not exist.
    pub async fn get(
        &self,
        key: &ObjectKey,
        info: &ResourceInfo,
    ) -> Result<Option<Value>, ApiFailure> {
        match self
            .call(Method::GET, &Self::object_path(key, info), None, None)
            .await
        {
            Ok(object) => Ok(Some(object)),
            Err(failure) if failure.status == 404 => Ok(None),
            Err(failure) => Err(failure),
        }
    }

    /// Every object at a collection path, page by page, each as the server wrote it (checked to
    /// be JSON, not decoded: most are only looked at through their metadata, `kube_apply`'s
    /// `LiveObject`). With `metadata_only`, the server is asked for the objects' metadata alone
    /// (`PartialObjectMetadataList`, which real API servers serve for any resource, built-in or
    /// custom), whole objects accepted from a server that cannot (each item still has its
    /// `metadata` where the caller looks).
    pub async fn list_raw(
        &self,
        collection: &str,
        metadata_only: bool,
    ) -> Result<Vec<Box<serde_json::value::RawValue>>, ApiFailure> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            items: Option<Vec<Box<serde_json::value::RawValue>>>,
            #[serde(default)]
            metadata: Option<PageMetadata>,
        }
        #[derive(serde::Deserialize)]
        struct PageMetadata {
            #[serde(default, rename = "continue")]
            next: Option<String>,
        }
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        let (mut pages, mut previous) = (0, None);
        loop {
            let path = match &next {
                Some(token) => format!("{collection}?limit=500&continue={}", encode(token)),
                None => format!("{collection}?limit=500"),
            };
            let accept = if metadata_only { METADATA_LIST } else { JSON };
            let page: Page = self.send_as(Method::GET, &path, accept, None, None).await?;
            items.extend(page.items.unwrap_or_default());
            next = page
                .metadata
                .and_then(|metadata| metadata.next)
                .filter(|token| !token.is_empty());
            if next.is_none() {
                return Ok(items);
            }
            pages += 1;
            check_pages(collection, pages, &previous, &next)?;
            previous = next.clone();
        }
    }

    /// Every object at a collection path, page by page ([`Cluster::list_raw`], decoded).
    pub async fn list(&self, collection: &str) -> Result<Vec<Value>, ApiFailure> {
        self.list_raw(collection, false)
            .await?
            .iter()
            .map(|item| {
                serde_json::from_str(item.get()).map_err(|error| ApiFailure {
                    status: 200,
                    reason: "BadResponse".into(),
                    message: format!("GET {collection}: an item is not JSON: {error}"),
                    causes: Vec::new(),
                })
            })
            .collect()
    }

    /// Server-side apply of `body` (a serialized object) as [`FIELD_MANAGER`].
    pub async fn apply(
        &self,
        key: &ObjectKey,
        info: &ResourceInfo,
        body: &[u8],
        force: bool,
        dry_run: bool,
    ) -> Result<Value, ApiFailure> {
        self.apply_as(key, info, body, force, dry_run).await
    }

    /// [`Cluster::apply`], decoding the answer as `T`.
    pub async fn apply_as<T: serde::de::DeserializeOwned>(
        &self,
        key: &ObjectKey,
        info: &ResourceInfo,
        body: &[u8],
        force: bool,
        dry_run: bool,
    ) -> Result<T, ApiFailure> {
        let mut path = format!(
            "{}?fieldManager={FIELD_MANAGER}&force={force}",
            Self::object_path(key, info)
        );
        if dry_run {
            path.push_str("&dryRun=All");
        }
        self.call_as(
            Method::PATCH,
            &path,
            Some(content_type::APPLY),
            Some(body.to_vec()),
        )
        .await
    }

    /// A JSON patch of one object, as [`FIELD_MANAGER`].
    pub async fn json_patch(
        &self,
        key: &ObjectKey,
        info: &ResourceInfo,
        patch: &Value,
    ) -> Result<Value, ApiFailure> {
        let path = format!(
            "{}?fieldManager={FIELD_MANAGER}",
            Self::object_path(key, info)
        );
        let bytes = serde_json::to_vec(patch).expect("a JSON value always serializes");
        self.call(
            Method::PATCH,
            &path,
            Some(content_type::JSON_PATCH),
            Some(bytes),
        )
        .await
    }

    /// Deletes one object if its uid is still `uid` (background propagation).
    pub async fn delete(
        &self,
        key: &ObjectKey,
        info: &ResourceInfo,
        uid: &str,
        dry_run: bool,
    ) -> Result<Value, ApiFailure> {
        let mut options = serde_json::json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
            "preconditions": { "uid": uid },
        });
        if dry_run {
            options["dryRun"] = serde_json::json!(["All"]);
        }
        let bytes = serde_json::to_vec(&options).expect("a JSON value always serializes");
        let mut path = Self::object_path(key, info);
        if dry_run {
            // In the query as well as the body: some servers and proxies read only one of them.
            path.push_str("?dryRun=All");
        }
        self.call(Method::DELETE, &path, Some(content_type::JSON), Some(bytes))
            .await
    }
}

/// Stops a LIST whose server hands out the same `continue` token twice in a row, or more pages
/// than [`MAX_LIST_PAGES`]: a server that never ends a list would otherwise be read forever.
fn check_pages(
    collection: &str,
    pages: usize,
    previous: &Option<String>,
    next: &Option<String>,
) -> Result<(), ApiFailure> {
    let refusal = |message: String| ApiFailure {
        status: 200,
        reason: "BadResponse".into(),
        message,
        causes: Vec::new(),
    };
    if next.is_some() && previous == next {
        return Err(refusal(format!(
            "GET {collection}: the API server gave the same continue token twice; the list never ends"
        )));
    }
    if pages >= MAX_LIST_PAGES {
        return Err(refusal(format!(
            "GET {collection}: more than {MAX_LIST_PAGES} pages of 500; stopped reading"
        )));
    }
    Ok(())
}

/// Percent-encodes a continue token for a query string.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The [`ApiFailure`] of a non-2xx answer: its Status if it is one, else the body's start.
fn failure_of(status: u16, body: &[u8]) -> ApiFailure {
    match serde_json::from_slice::<Value>(body) {
        Ok(status_object)
            if status_object.get("kind").and_then(Value::as_str) == Some("Status") =>
        {
            ApiFailure {
                status,
                reason: shortened(
                    status_object
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                ),
                message: redacted_and_shortened(
                    status_object
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                ),
                causes: status_object
                    .pointer("/details/causes")
                    .and_then(Value::as_array)
                    .map(|causes| {
                        causes
                            .iter()
                            .take(MAX_CAUSES)
                            .map(shortened_cause)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        }
        _ => ApiFailure {
            status,
            reason: http::StatusCode::from_u16(status)
                .ok()
                .and_then(|code| code.canonical_reason())
                .unwrap_or("")
                .to_string(),
            message: redact_credentials(&String::from_utf8_lossy(&body[..body.len().min(512)]))
                .into_owned(),
            causes: Vec::new(),
        },
    }
}

/// `text`, cut to [`MAX_MESSAGE_BYTES`] with a note of how much was left out.
fn shortened(text: &str) -> String {
    crate::credentials_in_text::shortened(text, MAX_MESSAGE_BYTES)
}

/// A server's `text` without the credentials it may quote, cut as [`shortened`] cuts it.
fn redacted_and_shortened(text: &str) -> String {
    crate::credentials_in_text::redacted_and_shortened(text, MAX_MESSAGE_BYTES)
}

/// One `details.causes` entry with its text fields shortened and nothing else kept.
fn shortened_cause(cause: &Value) -> Value {
    let mut kept = serde_json::Map::new();
    for field in ["type", "message", "field", "reason"] {
        if let Some(text) = cause.get(field).and_then(Value::as_str) {
            kept.insert(
                field.to_string(),
                Value::String(redacted_and_shortened(text)),
            );
        }
    }
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    //! The limits put on what an API server answers, against a loopback socket that answers
    //! badly on purpose (no API server misbehaves on request, so these speak raw HTTP/1.1).
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server answering every request with `answer(request line)` (nothing at all
    /// for `None`, holding the connection open), and a cluster pointed at it.
    async fn cluster_answering(answer: fn(&str) -> Option<String>) -> Cluster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let line = text.lines().next().unwrap_or_default().to_string();
                    match answer(&line) {
                        Some(response) => {
                            let _ = socket.write_all(response.as_bytes()).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        let config = kube::Config::new(url.parse().unwrap());
        let connection = KubeConnection {
            client: plain_http_client(config).unwrap(),
            server: url,
            kubeconfig: Default::default(),
            context: None,
        };
        Cluster::new(connection)
    }

    fn response(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn a_server_that_never_answers_fails_each_attempt_at_the_deadline() {
        let cluster = cluster_answering(|_| None)
            .await
            .with_request_deadline(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let failure = cluster
            .call(Method::GET, "/api/v1/namespaces/a", None, None)
            .await
            .unwrap_err();
        assert_eq!(failure.status, 0, "{failure}");
        assert!(failure.message.contains("no answer within"), "{failure}");
        // Four attempts of 200 ms with the engine's backoff between them, not a hang.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn an_answer_larger_than_the_cap_fails_naming_the_cap_and_is_not_retried() {
        let cluster = cluster_answering(|_| {
            let big = format!(
                r#"{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"a"}},"data":{{"x":"{}"}}}}"#,
                "x".repeat(4096)
            );
            Some(response("200 OK", &big))
        })
        .await
        .with_answer_limit(1024);
        let failure = cluster
            .call(Method::GET, "/api/v1/namespaces/a/configmaps/a", None, None)
            .await
            .unwrap_err();
        assert_eq!(failure.reason, "AnswerTooLarge", "{failure}");
        assert!(
            failure
                .message
                .contains("the API server's answer is larger than 1024 bytes"),
            "{failure}"
        );
        assert!(!failure.is_transient(), "a flood is not retried");
        assert_eq!(size_in_words(MAX_ANSWER_BYTES), "256 MiB");
    }

    #[tokio::test]
    async fn a_list_whose_continue_token_repeats_is_stopped() {
        let cluster = cluster_answering(|_| {
            Some(response(
                "200 OK",
                r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"continue":"again"},"items":[{"metadata":{"name":"a"}}]}"#,
            ))
        })
        .await;
        let failure = cluster
            .list("/api/v1/namespaces/a/configmaps")
            .await
            .unwrap_err();
        assert!(failure.message.contains("same continue token"), "{failure}");
        let failure = cluster
            .list_raw("/api/v1/namespaces/a/configmaps", true)
            .await
            .unwrap_err();
        assert!(failure.message.contains("same continue token"), "{failure}");
    }

    #[tokio::test]
    async fn a_refusal_keeps_a_shortened_message_and_a_few_causes() {
        let cluster = cluster_answering(|_| {
            let long = "x".repeat(100_000);
            let causes: Vec<Value> = (0..500)
                .map(|index| {
                    serde_json::json!({"type": "FieldValueInvalid", "field": format!("f{index}"), "message": long, "extra": long})
                })
                .collect();
            let status = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid",
                "code": 422, "message": format!("ConfigMap \"a\" is invalid: {long}"),
                "details": {"causes": causes},
            });
            Some(response("422 Unprocessable Entity", &status.to_string()))
        })
        .await;
        let failure = cluster
            .call(Method::GET, "/api/v1/namespaces/a/configmaps/a", None, None)
            .await
            .unwrap_err();
        assert_eq!((failure.status, failure.reason.as_str()), (422, "Invalid"));
        assert!(
            failure
                .message
                .starts_with("ConfigMap \"a\" is invalid: xxx")
        );
        assert!(
            failure.message.len() < MAX_MESSAGE_BYTES + 100,
            "{}",
            failure.message.len()
        );
        assert!(failure.message.ends_with("more bytes left out)"));
        assert_eq!(failure.causes.len(), MAX_CAUSES);
        assert!(failure.causes[0].get("extra").is_none());
        assert!(failure.causes[0]["message"].as_str().unwrap().len() < MAX_MESSAGE_BYTES + 100);
        assert_eq!(failure.causes[1]["field"], "f1");
    }

    /// A webhook's refusal quoting a pull secret, then a megabyte more: kept short, its
    /// credentials out, the whole length counted, and only its head scanned.
    #[test]
    fn a_huge_refusal_is_redacted_in_its_head_and_cut() {
        use base64::Engine;
        let docker_config = base64::engine::general_purpose::STANDARD
            .encode(r#"{"auths":{"proxy.example":{"auth":"TElDRU5TRV9JRDpzM2NyZXQ="}}}"#);
        let message = format!(
            "admission webhook \"audit\" denied the request: {{\"data\":{{\".dockerconfigjson\":\"{docker_config}\"}}}} {}",
            "x".repeat(1 << 20)
        );
        let body = serde_json::json!({"kind": "Status", "message": message, "reason": "Forbidden"});
        let failure = failure_of(403, body.to_string().as_bytes());
        assert!(
            !failure.message.contains(&docker_config),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("denied the request"),
            "{}",
            failure.message
        );
        assert!(failure.message.len() < MAX_MESSAGE_BYTES + 100);
        assert!(failure.message.ends_with("more bytes left out)"));
    }

    #[test]
    fn the_refusals_only_a_recreate_gets_past_are_recognised() {
        let refusal = |message: &str| ApiFailure {
            status: 422,
            reason: "Invalid".into(),
            message: message.into(),
            causes: Vec::new(),
        };
        for message in [
            "Deployment.apps \"api\" is invalid: spec.selector: Invalid value: {}: field is immutable",
            "RoleBinding.rbac.authorization.k8s.io \"r\" is invalid: roleRef: Invalid value: {}: cannot change roleRef",
            "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            "PersistentVolumeClaim \"data\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ] {
            assert!(refusal(message).is_immutable_field(), "{message}");
        }
        assert!(
            !refusal("ConfigMap \"a\" is invalid: metadata.name: Invalid value")
                .is_immutable_field()
        );
        let conflict = ApiFailure {
            status: 409,
            ..refusal("field is immutable")
        };
        assert!(!conflict.is_immutable_field());
    }
}
