//! The accept loop of an in-process test server, spawned on the test's tokio runtime and aborted
//! when its owner is dropped, so a server never outlives the test that started it.

use std::fmt;
use std::future::Future;

use tokio::task::JoinHandle;

/// A server's accept loop on the test's runtime, aborted when dropped.
pub(crate) struct ServerTask(JoinHandle<()>);

impl ServerTask {
    /// Spawns `server` on the current tokio runtime.
    pub(crate) fn spawn(server: impl Future<Output = ()> + Send + 'static) -> ServerTask {
        ServerTask(tokio::spawn(server))
    }
}

impl fmt::Debug for ServerTask {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ServerTask")
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
