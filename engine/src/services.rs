//! The services a stage gets from whoever runs it, instead of reaching for the world itself: an
//! HTTP client, a factory of Kubernetes clients, a clock, a random source and named locks held
//! across processes. The binary supplies
//! the real ones ([`Services::default`]); a replay supplies a [`Clock`] and a [`RandomSource`] that
//! hand back the values the original run recorded, and a test supplies whatever it needs to
//! observe. The engine knows no Kubernetes types: [`KubernetesClientFactory`] hands out a client as
//! `dyn Any`, which the stage that applies objects downcasts to the client type it was built with.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Exclusive locks by name, held across processes for as long as the answer lives (a real run:
/// the state directory's `locks/`, [`StateDirLocks`]).
pub trait NamedLocks: Send + Sync {
    /// Takes lock `name`, or answers `Ok(None)` at once when another process holds it.
    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn Any + Send + Sync>>, ServiceError>;
}

/// [`NamedLocks`] in a state directory: `windlass_state::try_lock_in` under its root.
#[derive(Debug, Clone)]
pub struct StateDirLocks(pub std::path::PathBuf);

impl NamedLocks for StateDirLocks {
    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn Any + Send + Sync>>, ServiceError> {
        match windlass_state::try_lock_in(&self.0, name) {
            Ok(Some(lock)) => Ok(Some(Box::new(lock))),
            Ok(None) => Ok(None),
            Err(error) => Err(ServiceError(error.to_string())),
        }
    }
}

/// A service could not provide what a stage asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(pub String);

/// The time now, as the stages see it.
pub trait Clock: Send + Sync {
    /// The current instant in UTC.
    fn now(&self) -> time::OffsetDateTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
}

/// A random source for runs that must draw nothing new (a replay whose stages recorded no random
/// values): every request fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRandom;

impl RandomSource for NoRandom {
    fn fill(&self, _bytes: &mut [u8]) -> Result<(), ServiceError> {
        Err(ServiceError(
            "no random source for this run: a replay takes random values from the recorded facts"
                .into(),
        ))
    }
}

/// A clock stopped at one instant (for replays and tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub time::OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> time::OffsetDateTime {
        self.0
    }
}

/// Random bytes, as the stages see them.
pub trait RandomSource: Send + Sync {
    /// Fills `bytes` with random bytes.
    fn fill(&self, bytes: &mut [u8]) -> Result<(), ServiceError>;
}

/// The operating system's random source.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, bytes: &mut [u8]) -> Result<(), ServiceError> {
        getrandom::fill(bytes)
            .map_err(|error| ServiceError(format!("the system's random source failed: {error}")))
    }
}

/// Hands out Kubernetes clients. The stage that applies objects (see the apply issue) implements
/// it with a real client; until then the default, [`NoKubernetes`], refuses.
#[async_trait::async_trait]
pub trait KubernetesClientFactory: Send + Sync {
    /// A client for the kubeconfig context `kube_context` (the current context when `None`), as
    /// `dyn Any`: the caller downcasts it to the client type this factory was built to return.
    async fn client(
        &self,
        kube_context: Option<&str>,
    ) -> Result<Arc<dyn Any + Send + Sync>, ServiceError>;
}

/// A [`KubernetesClientFactory`] for runs that never talk to a cluster: every request fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKubernetes;

#[async_trait::async_trait]
impl KubernetesClientFactory for NoKubernetes {
    async fn client(
        &self,
        _kube_context: Option<&str>,
    ) -> Result<Arc<dyn Any + Send + Sync>, ServiceError> {
        Err(ServiceError(
            "no kubernetes client is configured for this run".into(),
        ))
    }
}

/// A shared HTTP client, built on first use unless one was supplied. Cloning shares it (and its
/// connection pool).
#[derive(Clone, Default)]
pub struct HttpClient {
    client: Arc<OnceLock<reqwest::Client>>,
    /// Set for runs that must not touch the network (a replay): every request for the client
    /// fails.
    refused: Option<&'static str>,
}

impl HttpClient {
    /// A client that is never handed out: [`HttpClient::client`] fails saying `why` (a replay uses
    /// it, so that a stage reaching for the network fails instead of asking).
    pub fn refusing(why: &'static str) -> HttpClient {
        HttpClient {
            client: Arc::default(),
            refused: Some(why),
        }
    }

    /// Wraps a client the caller configured (proxies, certificates, timeouts).
    pub fn from_client(client: reqwest::Client) -> HttpClient {
        HttpClient {
            client: Arc::new(OnceLock::from(client)),
            refused: None,
        }
    }

    /// The client: the supplied one, or one with windlass's user agent built now.
    pub fn client(&self) -> Result<&reqwest::Client, ServiceError> {
        if let Some(why) = self.refused {
            return Err(ServiceError(format!("no network for this run: {why}")));
        }
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let built = reqwest::Client::builder()
            .user_agent(concat!("windlass/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ServiceError(format!("cannot set up an http client: {error}")))?;
        Ok(self.client.get_or_init(|| built))
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HttpClient")
            .field("built", &self.client.get().is_some())
            .finish()
    }
}

/// Everything injected into a stage's `build` and `run`. Cloning is cheap (shared handles).
#[derive(Clone)]
pub struct Services {
    /// For stages that talk HTTP.
    pub http: HttpClient,
    /// For stages that talk to a cluster.
    pub kubernetes: Arc<dyn KubernetesClientFactory>,
    /// The time now; a replay supplies the recorded times.
    pub clock: Arc<dyn Clock>,
    /// Random bytes; a replay supplies the recorded bytes.
    pub random: Arc<dyn RandomSource>,
    /// Set by a replay: the facts the original run recorded, from which a stage answers what it
    /// would otherwise ask the world (see [`crate::recorded_run`]).
    pub recorded: Option<Arc<crate::recorded_run::RecordedRun>>,
    /// Set by a replay: the stages' output directory is kept here instead of on the disk (see
    /// [`crate::memory_output`]).
    pub output_in_memory: Option<Arc<crate::memory_output::MemoryOutput>>,
    /// Locks held across processes; `None` (a replay, a test) takes none.
    pub locks: Option<Arc<dyn NamedLocks>>,
    /// The state directory the install records into, when it is on the disk (what a stage
    /// writing elsewhere must keep clear of); `None` in a replay or a test.
    pub state_dir: Option<std::path::PathBuf>,
}

impl Services {
    /// These services for an install recording into the state directory at `root`: its path,
    /// and its locks unless the caller supplied others.
    pub fn with_state_dir(mut self, root: &std::path::Path) -> Services {
        if self.locks.is_none() {
            self.locks = Some(Arc::new(StateDirLocks(root.to_path_buf())));
        }
        self.state_dir = Some(root.to_path_buf());
        self
    }
}

impl Default for Services {
    /// The real world: a lazily built HTTP client, no cluster, the system clock and the OS random
    /// source.
    fn default() -> Services {
        Services {
            http: HttpClient::default(),
            kubernetes: Arc::new(NoKubernetes),
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
            recorded: None,
            output_in_memory: None,
            locks: None,
            state_dir: None,
        }
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Services")
            .field("http", &self.http)
            .field("replaying", &self.recorded.is_some())
            .field("output_in_memory", &self.output_in_memory.is_some())
            .finish_non_exhaustive()
    }
}
