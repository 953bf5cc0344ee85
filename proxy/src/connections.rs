//! Accepting and serving client connections under two limits, so idle or half-open connections
//! can never use up the process's file descriptors and starve real pulls.
//!
//! - **Idle deadline.** A connection with no request in flight for `client_header_timeout_seconds`
//!   is closed: one that never sends a byte, one stuck in its TLS handshake, one trickling the
//!   HTTP/2 preface or its first request's headers, and a keep-alive connection between requests.
//!   (hyper's own header timeout starts only once the HTTP/1 parser runs, which a connection that
//!   sends nothing never reaches.)
//! - **Connection cap.** At most `limits.max_connections` connections are open. When a new one
//!   arrives at the cap, the oldest connection that never sent a request is closed to make room,
//!   else the oldest with no request in flight; a connection serving a request is never closed.
//!   When every open connection is serving a request, new ones wait in the listen backlog.
//!   Should accepting still fail for lack of descriptors, one idle connection is closed.
//!
//! Each request carries its client's address ([`ClientAddress`]) for the pull log.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use crate::server::ServeError;

/// The address of the client that sent a request (a request extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub(crate) SocketAddr);

/// How long to pause accepting when the process is out of file descriptors.
const OUT_OF_DESCRIPTORS_PAUSE: Duration = Duration::from_millis(10);

/// How often to look again when every open connection is serving a request.
const ALL_BUSY_PAUSE: Duration = Duration::from_millis(20);

/// The limits [`serve`] applies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Connections open at once.
    pub(crate) max_connections: usize,
    /// How long a connection may go without a request in flight.
    pub(crate) idle_timeout: Duration,
}

/// What the tracker knows of one open connection.
#[derive(Debug)]
struct ConnectionState {
    /// Whether a request has ever arrived on it.
    requested: AtomicBool,
    /// Requests whose responses are not finished.
    active: AtomicUsize,
    /// When it last became idle, in milliseconds since the tracker started.
    idle_since: AtomicU64,
    /// Told when the tracker closes it to make room.
    close: Notify,
}

/// The open connections, in accept order.
#[derive(Debug)]
struct Tracker {
    open: Mutex<BTreeMap<u64, Arc<ConnectionState>>>,
    next_id: AtomicU64,
    max_connections: usize,
    started: Instant,
}

/// A connection's place in the tracker, given up when dropped.
struct Registration {
    tracker: Arc<Tracker>,
    id: u64,
    state: Arc<ConnectionState>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tracker.lock().remove(&self.id);
    }
}

impl Tracker {
    fn new(max_connections: usize) -> Tracker {
        Tracker {
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            max_connections: max_connections.max(1),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnectionState>>> {
        self.open
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn now_millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a new connection can be taken, closing one idle connection if at the cap.
    fn make_room(&self) -> bool {
        let mut open = self.lock();
        if open.len() < self.max_connections {
            return true;
        }
        Tracker::close_one_idle(&mut open)
    }

    /// Closes the oldest connection that never sent a request, else the oldest with no request in
    /// flight; false when every connection is serving a request.
    fn close_one_idle(open: &mut BTreeMap<u64, Arc<ConnectionState>>) -> bool {
        let idle = |state: &ConnectionState| state.active.load(Ordering::SeqCst) == 0;
        let victim = open
            .iter()
            .find(|(_, state)| idle(state) && !state.requested.load(Ordering::SeqCst))
            .or_else(|| open.iter().find(|(_, state)| idle(state)))
            .map(|(id, _)| *id);
        match victim.and_then(|id| open.remove(&id)) {
            Some(state) => {
                state.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn register(self: &Arc<Tracker>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let state = Arc::new(ConnectionState {
            requested: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_millis()),
            close: Notify::new(),
        });
        self.lock().insert(id, state.clone());
        Registration {
            tracker: self.clone(),
            id,
            state,
        }
    }
}

/// Accepts on `listener` until `shutdown`, handshaking TLS with `tls` when given, and serves each
/// connection with `router` under `limits` (see the module documentation).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> Result<(), ServeError> {
    let tracker = Arc::new(Tracker::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        if !tracker.make_room() {
            tokio::select! {
                () = tokio::time::sleep(ALL_BUSY_PAUSE) => continue,
                () = &mut shutdown => return Ok(()),
            }
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE / ENFILE: free a descriptor and let the kernel queue the rest.
                if matches!(error.raw_os_error(), Some(23 | 24)) {
                    tracing::warn!(%error, "out of file descriptors, closing an idle connection");
                    Tracker::close_one_idle(&mut tracker.lock());
                    tokio::time::sleep(OUT_OF_DESCRIPTORS_PAUSE).await;
                } else {
                    tracing::debug!(%error, "accept failed");
                }
                continue;
            }
        };
        // Responses are written whole; waiting for the client's ACK before sending would only
        // add delay.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let registration = tracker.register();
        tokio::spawn(serve_one(
            stream,
            peer,
            tls.clone(),
            router.clone(),
            registration,
            limits.idle_timeout,
        ));
    }
}

/// Serves one connection until it ends, is closed to make room, or stays idle past
/// `idle_timeout`.
async fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    registration: Registration,
    idle_timeout: Duration,
) {
    let state = registration.state.clone();
    let service = TrackedService {
        inner: TowerToHyperService::new(router),
        state: state.clone(),
        tracker: registration.tracker.clone(),
        peer,
    };
    let work = async move {
        match tls {
            None => serve_http(TokioIo::new(stream), service, idle_timeout).await,
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                match handshake.await {
                    Ok(Ok(stream)) => serve_http(TokioIo::new(stream), service, idle_timeout).await,
                    Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    };
    let mut work = std::pin::pin!(work);
    let tracker = registration.tracker.clone();
    loop {
        let idle_for = if state.active.load(Ordering::SeqCst) == 0 {
            Duration::from_millis(
                tracker
                    .now_millis()
                    .saturating_sub(state.idle_since.load(Ordering::SeqCst)),
            )
        } else {
            Duration::ZERO
        };
        if state.active.load(Ordering::SeqCst) == 0 && idle_for >= idle_timeout {
            tracing::debug!(%peer, "closing a connection idle for the header timeout");
            break;
        }
        tokio::select! {
            () = &mut work => break,
            () = state.close.notified() => {
                tracing::debug!(%peer, "closing an idle connection to make room");
                break;
            }
            () = tokio::time::sleep(idle_timeout - idle_for) => {}
        }
    }
    drop(registration);
}

async fn serve_http<I>(io: TokioIo<I>, service: TrackedService, header_timeout: Duration)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    if let Err(error) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// The router, counting each request as in flight on its connection until its response body has
/// been sent (or dropped), and tagging each request with its client's address.
#[derive(Clone)]
struct TrackedService {
    inner: TowerToHyperService<Router>,
    state: Arc<ConnectionState>,
    tracker: Arc<Tracker>,
    peer: SocketAddr,
}

/// One request in flight; its drop makes the connection idle again if it was the last.
struct InFlight {
    state: Arc<ConnectionState>,
    tracker: Arc<Tracker>,
}

impl InFlight {
    fn start(state: Arc<ConnectionState>, tracker: Arc<Tracker>) -> InFlight {
        state.requested.store(true, Ordering::SeqCst);
        state.active.fetch_add(1, Ordering::SeqCst);
        InFlight { state, tracker }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state
            .idle_since
            .store(self.tracker.now_millis(), Ordering::SeqCst);
        self.state.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for TrackedService {
    type Response = hyper::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(self.state.clone(), self.tracker.clone());
        request.extensions_mut().insert(ClientAddress(self.peer));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room_and_busy_ones_never_do() {
        let tracker = Arc::new(Tracker::new(2));
        let busy = tracker.register();
        let _busy_request = InFlight::start(busy.state.clone(), tracker.clone());
        let idle = tracker.register();
        assert!(tracker.make_room());
        assert!(!tracker.lock().contains_key(&idle.id));
        assert!(tracker.lock().contains_key(&busy.id));
        drop(idle);
        let second_busy = tracker.register();
        let _request = InFlight::start(second_busy.state.clone(), tracker.clone());
        assert!(
            !tracker.make_room(),
            "every connection is serving a request"
        );
    }

    #[test]
    fn connections_that_never_sent_a_request_go_before_kept_alive_ones() {
        let tracker = Arc::new(Tracker::new(2));
        let kept_alive = tracker.register();
        drop(InFlight::start(kept_alive.state.clone(), tracker.clone()));
        let silent = tracker.register();
        assert!(tracker.make_room());
        assert!(tracker.lock().contains_key(&kept_alive.id));
        assert!(!tracker.lock().contains_key(&silent.id));
    }
}
