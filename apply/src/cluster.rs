//! The cluster as the apply stage talks to it: a [`kube::Client`] from a kubeconfig (built by
//! [`KubeClients`], the [`KubernetesClientFactory`] the binary injects) and raw requests on it, so
//! that every query parameter of server-side apply (`fieldManager`, `force`, `dryRun`) and every
//! header (`Retry-After`) is in reach. Resources are found through discovery, one request per
//! group-version, cached, and fetched again when a kind is missing (a CRD that just became
//! Established). 429 and 5xx answers, and connections that fail, are retried with the engine's
//! retry policy ([`windlass_engine::retry_delay`]), waiting at least what `Retry-After` asks (up to
//! five seconds); any other refusal comes back as an [`ApiFailure`] with the server's status,
//! reason and message.

use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use windlass_engine::{FailureClass, KubernetesClientFactory, ServiceError, retry_delay};

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
        let shown = self
            .kubeconfig
            .as_ref()
            .map(|path| format!("kubeconfig {}", path.display()))
            .unwrap_or_else(|| "the kubeconfig ($KUBECONFIG or ~/.kube/config)".to_string());
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|error| ServiceError(format!("{shown}: {error}")))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => kube::Config::from_kubeconfig(&options).await,
        }
        .map_err(|error| ServiceError(format!("{shown}: {error}")))?;
        let server = config.cluster_url.to_string();
        let client = if plain_http(&config) {
            plain_http_client(config)
        } else {
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
#[error("{status} {reason}: {message}")]
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
    /// Whether retrying may help (429, 5xx, no answer) — after the retries ran out.
    pub fn is_transient(&self) -> bool {
        self.status == 0 || self.status == 429 || self.status >= 500
    }

    /// Whether the server refused an immutable field change.
    pub fn is_immutable_field(&self) -> bool {
        self.status == 422
            && (self.message.contains("field is immutable")
                || self.causes.iter().any(|cause| {
                    cause
                        .get("message")
                        .and_then(Value::as_str)
                        .is_some_and(|message| message.contains("immutable"))
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

/// The API server, as the apply stage uses it.
pub struct Cluster {
    connection: KubeConnection,
    /// Discovery per `apiVersion`: kind → resource.
    discovery: tokio::sync::Mutex<HashMap<String, Arc<HashMap<String, ResourceInfo>>>>,
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
        }
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
            let (failure, retry_after) = match self.connection.client.send(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = response.into_body().collect_bytes().await;
                    match bytes {
                        Ok(bytes) if (200..300).contains(&status) => {
                            return serde_json::from_slice(&bytes).map_err(|error| ApiFailure {
                                status,
                                reason: "BadResponse".into(),
                                message: format!(
                                    "{method} {path}: the answer is not JSON: {error}"
                                ),
                                causes: Vec::new(),
                            });
                        }
                        Ok(bytes) => (failure_of(status, &bytes), retry_after),
                        Err(error) => (
                            ApiFailure {
                                status: 0,
                                reason: "ConnectionFailed".into(),
                                message: format!("{method} {path}: {error}"),
                                causes: Vec::new(),
                            },
                            None,
                        ),
                    }
                }
                Err(error) => (
                    ApiFailure {
                        status: 0,
                        reason: "ConnectionFailed".into(),
                        message: format!("{method} {path}: {error}"),
                        causes: Vec::new(),
                    },
                    None,
                ),
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

    /// The resources of `api_version`, from discovery (cached; `refresh` asks again).
    async fn resources(
        &self,
        api_version: &str,
        refresh: bool,
    ) -> Result<Arc<HashMap<String, ResourceInfo>>, ApiFailure> {
        if !refresh && let Some(found) = self.discovery.lock().await.get(api_version) {
            return Ok(found.clone());
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
        }
    }

    /// Every object at a collection path, page by page.
    pub async fn list(&self, collection: &str) -> Result<Vec<Value>, ApiFailure> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let path = match &next {
                Some(token) => format!("{collection}?limit=500&continue={}", encode(token)),
                None => format!("{collection}?limit=500"),
            };
            let mut page = self.call(Method::GET, &path, None, None).await?;
            if let Some(Value::Array(found)) = page.get_mut("items").map(Value::take) {
                items.extend(found);
            }
            next = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|token| !token.is_empty())
                .map(str::to_string);
            if next.is_none() {
                return Ok(items);
            }
        }
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
        self.call(
            Method::DELETE,
            &Self::object_path(key, info),
            Some(content_type::JSON),
            Some(bytes),
        )
        .await
    }
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
                reason: status_object
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                message: status_object
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                causes: status_object
                    .pointer("/details/causes")
                    .and_then(Value::as_array)
                    .cloned()
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
            message: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            causes: Vec::new(),
        },
    }
}
