//! Starting and stopping the server, and the handle tests hold: its URL, a kubeconfig for it,
//! the request log and counts, fault injection, and direct access to objects for what a real
//! cluster's controllers would do (readiness in `/status`) or a second field manager would write.
//!
//! The server runs on its own thread and Tokio runtime, so synchronous tests (driving kubectl)
//! and asynchronous ones can both use it; dropping the handle stops it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::faults::Fault;
use crate::handlers;
use crate::objects::{Behaviour, DeleteOptions, State, WriteContext};
use crate::patch_refusal::PatchMechanism;
use crate::requests::{RequestCounts, RequestLog, RequestRecord};

/// How to start a server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen (default `127.0.0.1:0`, an ephemeral loopback port).
    pub listen: SocketAddr,
    /// How long after creation a CRD becomes Established (default 0: at once).
    pub crd_established_delay: Duration,
    /// Empty and remove Terminating namespaces (default off, as envtest).
    pub namespace_controller: bool,
    /// Delete dependents of deleted owners and honour Foreground/Orphan (default off).
    pub garbage_collector: bool,
    /// How many changes watches can resume from (default 10,000).
    pub watch_history: usize,
    /// How often watches with `allowWatchBookmarks` get a bookmark (default 1 s).
    pub bookmark_interval: Duration,
    /// How many request records are kept (counts are kept regardless; default 1,000,000).
    pub request_log_limit: usize,
    /// The largest request body accepted (default 16 MiB; the real server allows 3 MiB objects).
    pub body_limit: usize,
    /// Namespaces that exist at start (default `default`, `kube-system`, `kube-public`,
    /// `kube-node-lease`).
    pub namespaces: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            crd_established_delay: Duration::ZERO,
            namespace_controller: false,
            garbage_collector: false,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(1),
            request_log_limit: 1_000_000,
            body_limit: 16 * 1024 * 1024,
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        }
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Tokio runtime or the server thread could not be created.
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
}

/// What the request handlers share.
pub struct Shared {
    /// Objects, types and behaviour.
    pub state: Mutex<State>,
    /// The request log.
    pub log: Mutex<RequestLog>,
    /// Installed faults.
    pub faults: Mutex<Vec<Fault>>,
    /// The bound address.
    pub address: SocketAddr,
    /// Bookmark period of watches.
    pub bookmark_interval: Duration,
    /// Largest request body.
    pub body_limit: usize,
}

/// A running test API server; stops when dropped.
pub struct TestApiServer {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApiServer {
    /// Starts a server on its own thread.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the runtime cannot start.
    pub fn start(options: Options) -> Result<Self, StartError> {
        let listener =
            std::net::TcpListener::bind(options.listen).map_err(|source| StartError::Bind {
                address: options.listen,
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(StartError::Runtime)?;
        let address = listener.local_addr().map_err(StartError::Runtime)?;
        let behaviour = Behaviour {
            crd_established_delay: options.crd_established_delay,
            namespace_controller: options.namespace_controller,
            garbage_collector: options.garbage_collector,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(
                behaviour,
                options.watch_history,
                &options.namespaces,
            )),
            log: Mutex::new(RequestLog::new(options.request_log_limit)),
            faults: Mutex::new(Vec::new()),
            address,
            bookmark_interval: options.bookmark_interval,
            body_limit: options.body_limit,
        });
        // One worker: every request takes the state's lock, so a second worker only added
        // lock contention and cross-thread wake-ups (measured: a first apply of 1,000 objects
        // 9% slower with two).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-apiserver")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("test-apiserver".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(_) => return,
                    };
                    let controllers = for_thread.clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            controllers
                                .state
                                .lock()
                                .expect("server state lock")
                                .tick(Instant::now());
                        }
                    });
                    let app = axum::Router::new()
                        .fallback(handlers::handle)
                        .with_state(for_thread);
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(StartError::Runtime)?;
        Ok(Self {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.address)
    }

    /// A kubeconfig whose current context (`context`) points at this server, default
    /// namespace `default`, no credentials.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: default\ncurrent-context: {context}\nusers:\n- name: {context}\n  user: {{}}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes `kubeconfig_yaml("windlass-test")` to `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml("windlass-test"))
    }

    /// Request counts so far.
    pub fn counts(&self) -> RequestCounts {
        self.shared.log.lock().expect("request log lock").counts()
    }

    /// Request records so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().expect("request log lock").records()
    }

    /// Forgets recorded requests and counts.
    pub fn reset_requests(&self) {
        self.shared.log.lock().expect("request log lock").reset();
    }

    /// Installs a fault (first match wins, in installation order).
    pub fn add_fault(&self, fault: Fault) {
        self.shared
            .faults
            .lock()
            .expect("fault list lock")
            .push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().expect("fault list lock").clear();
    }

    /// Drops the watch history, so watches from any earlier resourceVersion get 410 Expired.
    pub fn compact_history(&self) {
        self.state().store.compact();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().store.revision()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("server state lock")
    }

    fn resource_type(
        state: &State,
        api_version: &str,
        kind: &str,
    ) -> Result<ResourceType, ApiError> {
        state
            .catalog
            .find_kind(api_version, kind)
            .cloned()
            .ok_or_else(|| ApiError::not_found(kind, api_version, ""))
    }

    /// The object, as a GET would return it.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.state();
        let t = Self::resource_type(&state, api_version, kind).ok()?;
        state.get(&t, namespace, name).ok()
    }

    /// Every object of a kind (in a namespace, or everywhere with `None`).
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let state = self.state();
        let Ok(t) = Self::resource_type(&state, api_version, kind) else {
            return Vec::new();
        };
        state
            .store
            .list(&t.group, &t.plural, namespace)
            .into_iter()
            .map(|(_, object)| State::present(&t, object))
            .collect()
    }

    fn names(object: &Value) -> (String, String, String, String) {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        (
            text("/apiVersion"),
            text("/kind"),
            text("/metadata/namespace"),
            text("/metadata/name"),
        )
    }

    /// Creates an object as `manager` (Update operation), bypassing HTTP.
    ///
    /// # Errors
    ///
    /// As a POST would fail.
    pub fn create_as(&self, manager: &str, object: Value) -> Result<Value, ApiError> {
        let (api_version, kind, namespace, _) = Self::names(&object);
        let mut state = self.state();
        let t = Self::resource_type(&state, &api_version, &kind)?;
        let context = WriteContext {
            manager: manager.to_owned(),
            ..WriteContext::default()
        };
        state
            .create(&t, &namespace, object, &context)
            .map(Arc::unwrap_or_clone)
    }

    /// Server-side applies `object` as `manager` (a second field manager in conflict tests).
    ///
    /// # Errors
    ///
    /// As an apply PATCH would fail (409 on conflicts unless `force`).
    pub fn apply_as(&self, manager: &str, object: Value, force: bool) -> Result<Value, ApiError> {
        let (api_version, kind, namespace, name) = Self::names(&object);
        let mut state = self.state();
        let t = Self::resource_type(&state, &api_version, &kind)?;
        let context = WriteContext {
            manager: manager.to_owned(),
            force,
            ..WriteContext::default()
        };
        state
            .apply(&t, &namespace, &name, object, &context)
            .map(Arc::unwrap_or_clone)
    }

    /// Merge-patches the object as `manager` (Update operation), e.g. a controller or a user
    /// editing a field another manager applied.
    ///
    /// # Errors
    ///
    /// As a merge PATCH would fail.
    pub fn merge_patch_as(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let t = Self::resource_type(&state, api_version, kind)?;
        let context = WriteContext {
            manager: manager.to_owned(),
            ..WriteContext::default()
        };
        state
            .patch_live(
                &t,
                namespace,
                name,
                PatchMechanism::Document,
                |live| Ok(crate::patch::merge_patch(live, &patch)),
                &context,
            )
            .map(Arc::unwrap_or_clone)
    }

    /// Merges `status` into the object's status (a JSON merge patch: a null removes a field)
    /// through the status subresource as manager `test-controller`, the way
    /// a controller reports readiness (types without a status subresource get it written too).
    ///
    /// # Errors
    ///
    /// 404 when the object does not exist.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let t = Self::resource_type(&state, api_version, kind)?;
        let context = WriteContext {
            manager: "test-controller".to_owned(),
            subresource: if t.status_subresource {
                "status".to_owned()
            } else {
                String::new()
            },
            ..WriteContext::default()
        };
        state
            .patch_live(
                &t,
                namespace,
                name,
                PatchMechanism::Document,
                |live| Ok(crate::patch::merge_patch(live, &json!({"status": status}))),
                &context,
            )
            .map(Arc::unwrap_or_clone)
    }

    /// Writes the status a healthy controller would for a Deployment, StatefulSet, DaemonSet,
    /// ReplicaSet (all replicas ready, observedGeneration current), Job (Complete),
    /// PersistentVolumeClaim (Bound) or CRD (Established); any other kind is left alone.
    ///
    /// # Errors
    ///
    /// 404 when the object does not exist.
    pub fn make_ready(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let object = self
            .get(api_version, kind, namespace, name)
            .ok_or_else(|| ApiError::not_found(kind, api_version, name))?;
        let generation = object
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        let replicas = object
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let stamp = crate::objects::now();
        let status = match kind {
            "Deployment" => json!({
                "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": stamp, "lastTransitionTime": stamp},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed.", "lastUpdateTime": stamp, "lastTransitionTime": stamp}
                ]
            }),
            "StatefulSet" | "ReplicaSet" => json!({
                "observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas,
                "availableReplicas": replicas, "currentReplicas": replicas, "updatedReplicas": replicas,
                "currentRevision": format!("{name}-1"), "updateRevision": format!("{name}-1")
            }),
            "DaemonSet" => json!({
                "observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1,
                "numberAvailable": 1, "numberMisscheduled": 0, "numberReady": 1, "updatedNumberScheduled": 1
            }),
            "Job" => json!({
                "succeeded": 1, "startTime": stamp, "completionTime": stamp,
                "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp}]
            }),
            "PersistentVolumeClaim" => json!({"phase": "Bound"}),
            "CustomResourceDefinition" => {
                self.state().establish_crd(name);
                return self
                    .get(api_version, kind, namespace, name)
                    .ok_or_else(|| ApiError::not_found(kind, api_version, name));
            }
            _ => return Ok(object),
        };
        self.set_status(api_version, kind, namespace, name, status)
    }

    /// Deletes an object as a client would (Background propagation), bypassing HTTP.
    ///
    /// # Errors
    ///
    /// 404 when it does not exist.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let t = Self::resource_type(&state, api_version, kind)?;
        state
            .delete(
                &t,
                namespace,
                name,
                &DeleteOptions::default(),
                &WriteContext::default(),
            )
            .map(|deleted| deleted.object)
    }

    /// Removes every finalizer of an object (as the controller owning them would); an object
    /// being deleted then goes.
    ///
    /// # Errors
    ///
    /// 404 when it does not exist.
    pub fn remove_finalizers(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut state = self.state();
        let t = Self::resource_type(&state, api_version, kind)?;
        let context = WriteContext {
            manager: "test-controller".to_owned(),
            ..WriteContext::default()
        };
        let is_namespace = t.group.is_empty() && t.kind == "Namespace";
        state
            .patch_live(
                &t,
                namespace,
                name,
                PatchMechanism::Document,
                |live| {
                    let mut patch = json!({"metadata": {"finalizers": null}});
                    if is_namespace {
                        patch["spec"] = json!({"finalizers": null});
                    }
                    Ok(crate::patch::merge_patch(live, &patch))
                },
                &context,
            )
            .map(Arc::unwrap_or_clone)
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
