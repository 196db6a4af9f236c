//! The admin HTTP endpoint: `GET /metrics` (the [`Metrics`] registry as
//! OpenMetrics text), `GET /healthz` and `GET /readyz` (the [`Health`]
//! flags), `POST /admin/reload` (a [`ReloadHook`], when the server
//! gives one) and `GET /admin/features/health` (the online feature store's
//! health as JSON, a [`FeaturesHook`], when the server runs a store) and
//! `GET /admin/monitor` (every worker's model monitoring report), on its
//! own thread.
//!
//! # Trade-offs
//!
//! The endpoint is hyper's HTTP/1.1 server on a single-threaded tokio
//! runtime, on a thread of its own, so nothing it does can delay a worker,
//! and a slow or idle client costs a parked task, not the thread: a
//! Kubernetes probe is answered while hundreds of connections sit idle or
//! trickle bytes. Its bounds ([`AdminLimits`]):
//!
//! - at most [`AdminLimits::connections_max`] connections at once; one
//!   more is closed at accept;
//! - a request head must arrive within [`AdminLimits::request_timeout`]
//!   (hyper's header read timeout; then the connection is closed) and fit
//!   [`AdminLimits::head_max_bytes`] (else `431`); a malformed head gets
//!   `400`;
//! - a connection lives at most [`AdminLimits::connection_timeout`],
//!   whatever it does (keep-alive included), so a client that stops
//!   reading its response is dropped too;
//! - request bodies are never read: no route takes one, and a connection
//!   whose request announced one is closed after the answer;
//! - reloads run one at a time (the hook serialises them) on the
//!   runtime's blocking pool, so a reload reading files never holds up a
//!   probe.
//!
//! [`AdminServer::stop`] signals the runtime and joins its thread; tasks
//! still serving connections are dropped, which closes their sockets. The
//! caller chooses the address; bind it to loopback unless scrapers come
//! from elsewhere, since the endpoint has no authentication.

use super::{Metrics, METRICS_CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

/// The `Content-Type` of `/healthz` and of error responses.
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The shortest timeout [`AdminServer::spawn_with_limits`] accepts; shorter
/// ones (zero included) are raised to it.
const TIMEOUT_MIN: Duration = Duration::from_millis(1);

/// The smallest head limit hyper supports (its read buffer's minimum).
const HEAD_MIN_BYTES: usize = 8 * 1024;

/// How long the accept loop waits after an accept error that concerns the
/// listener (out of descriptors, say) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(20);

/// Why the admin endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listening socket could not be bound (address in use, not local,
    /// no permission).
    #[error("cannot bind the admin HTTP endpoint to {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The event loop (the tokio runtime) could not be created.
    #[error("cannot set up the admin HTTP endpoint's event loop")]
    EventLoop {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The admin thread could not be started.
    #[error("cannot start the admin HTTP endpoint's thread")]
    Spawn {
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Process health as `/healthz` reports it: serving (`200 ok`) until
/// [`Health::set_draining`], then draining (`503 draining`). Cheap to clone
/// (an `Arc` inside); clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Health {
    draining: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
}

impl Health {
    /// A serving process.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the process as draining: it takes no new work and is about to
    /// stop. There is no way back.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Marks the process ready to serve (`/readyz`): the model is loaded
    /// into every engine and every worker's event loop runs.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether it is ready and not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// Whether [`Health::set_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// Limits of the admin endpoint ([`AdminServer::spawn_with_limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminLimits {
    /// A request head must arrive whole within this long (for the first
    /// request, from accept); otherwise the connection is closed.
    pub request_timeout: Duration,
    /// A connection is closed this long after accept, whatever it is
    /// doing.
    pub connection_timeout: Duration,
    /// The request head (request line and headers) may be at most this
    /// long (at least 8 KiB); otherwise the client gets `431`.
    pub head_max_bytes: usize,
    /// Connections served at once; one more is closed at accept.
    pub connections_max: usize,
}

impl Default for AdminLimits {
    /// 2 s to send a head, 10 s per connection, 16 KiB of head, 1024
    /// connections.
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(10),
            head_max_bytes: 16 * 1024,
            connections_max: 1024,
        }
    }
}

impl AdminLimits {
    /// The limits with zero or tiny values raised to workable minimums.
    fn sanitized(self) -> Self {
        Self {
            request_timeout: self.request_timeout.max(TIMEOUT_MIN),
            connection_timeout: self.connection_timeout.max(TIMEOUT_MIN),
            head_max_bytes: self.head_max_bytes.max(HEAD_MIN_BYTES),
            connections_max: self.connections_max.max(1),
        }
    }
}

/// The admin HTTP endpoint, serving on its own thread: `GET /metrics`
/// (200, [`Metrics::render`]), `GET /healthz` (200 `ok` or 503 `draining`,
/// from [`Health`]); `HEAD` works too; any other path is 404, any other
/// method on these paths 405. See the module documentation for the limits.
///
/// Dropping it stops it, as [`AdminServer::stop`] does.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What every connection's service reads.
struct State {
    metrics: Metrics,
    health: Health,
    reload: Option<ReloadHook>,
    features_health: Option<FeaturesHook>,
}

/// What `GET /admin/features/health` answers: the feature store's health
/// as a JSON document (computed on the admin thread; it locks each of the
/// store's shards in turn for a moment).
pub type FeaturesHook = Arc<dyn Fn() -> String + Send + Sync>;

/// The optional routes of the admin endpoint.
#[derive(Clone, Default)]
pub struct AdminHooks {
    /// `POST /admin/reload`.
    pub reload: Option<ReloadHook>,
    /// `GET /admin/features/health`.
    pub features_health: Option<FeaturesHook>,
}

/// What `POST /admin/reload` runs (on a blocking thread of the admin
/// runtime, one at a time): `Ok` with a JSON body describing what now
/// serves, or `Err` with a JSON body saying why nothing changed.
pub type ReloadHook = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

impl AdminServer {
    /// Binds `addr` (port 0 picks a free port) and serves on a new thread
    /// with the default [`AdminLimits`].
    pub fn spawn(
        addr: SocketAddr,
        metrics: Metrics,
        health: Health,
    ) -> Result<AdminServer, MetricsError> {
        Self::spawn_with_limits(addr, metrics, health, AdminLimits::default())
    }

    /// As [`AdminServer::spawn`], with the given limits.
    pub fn spawn_with_limits(
        addr: SocketAddr,
        metrics: Metrics,
        health: Health,
        limits: AdminLimits,
    ) -> Result<AdminServer, MetricsError> {
        Self::spawn_with_reload(addr, metrics, health, limits, None)
    }

    /// As [`AdminServer::spawn_with_limits`], also serving `POST
    /// /admin/reload` with `reload` (without one, that path is 404).
    pub fn spawn_with_reload(
        addr: SocketAddr,
        metrics: Metrics,
        health: Health,
        limits: AdminLimits,
        reload: Option<ReloadHook>,
    ) -> Result<AdminServer, MetricsError> {
        let hooks = AdminHooks {
            reload,
            ..AdminHooks::default()
        };
        Self::spawn_with_hooks(addr, metrics, health, limits, hooks)
    }

    /// As [`AdminServer::spawn_with_limits`], also serving the routes
    /// `hooks` has (each is 404 without its hook).
    pub fn spawn_with_hooks(
        addr: SocketAddr,
        metrics: Metrics,
        health: Health,
        limits: AdminLimits,
        hooks: AdminHooks,
    ) -> Result<AdminServer, MetricsError> {
        let (listener, local_addr) = bind(addr)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| MetricsError::EventLoop { source })?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|source| MetricsError::EventLoop { source })?
        };
        let (stop, stopped) = oneshot::channel();
        let state = Arc::new(State {
            metrics,
            health,
            reload: hooks.reload,
            features_health: hooks.features_health,
        });
        let limits = limits.sanitized();
        let thread = thread::Builder::new()
            .name("cx-admin".to_owned())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, state, limits, stopped));
                // Tasks still serving connections are dropped with their
                // sockets; nothing of theirs needs to finish.
                runtime.shutdown_background();
            })
            .map_err(|source| MetricsError::Spawn { source })?;
        tracing::info!(addr = %local_addr, "admin HTTP endpoint listening");
        Ok(AdminServer {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the real port when `addr` had 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: signals the runtime and joins its thread. The
    /// listening socket and every connection are closed when this
    /// returns.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Signals the accept loop and joins the thread (once).
    fn shut_down(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if let Some(stop) = self.stop.take() {
            // An error means the loop already ended (and logged why).
            let _already_ended = stop.send(());
        }
        if thread.join().is_err() {
            tracing::error!("the admin HTTP thread panicked");
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Binds a non-blocking listener; returns it with its real address.
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), MetricsError> {
    let bind_error = |source| MetricsError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// Accepts connections, each served by its own task under the limits,
/// until `stopped` fires.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    limits: AdminLimits,
    mut stopped: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) if is_transient_accept_error(&err) => continue,
            Err(err) => {
                tracing::warn!(%err, "admin HTTP endpoint: accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(
                connections_max = limits.connections_max,
                "admin HTTP endpoint full; connection closed"
            );
            continue; // dropping the stream closes it
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _slot = slot;
            serve_connection(stream, state, limits).await;
        });
    }
}

/// Serves one connection's requests until it closes, fails, or outlives
/// [`AdminLimits::connection_timeout`].
async fn serve_connection(stream: tokio::net::TcpStream, state: Arc<State>, limits: AdminLimits) {
    let service = service_fn(move |request: Request<Incoming>| {
        let state = Arc::clone(&state);
        async move {
            let response = match (request.uri().path(), &state.reload) {
                (RELOAD_PATH, Some(hook)) => reload(&request, hook.clone()).await,
                _ => respond(&request, &state),
            };
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .max_buf_size(limits.head_max_bytes)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(limits.connection_timeout, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(%err, "admin HTTP connection failed"),
        Err(_elapsed) => tracing::debug!("admin HTTP connection outlived its time; closed"),
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_transient_accept_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The answer to one request: the route's, or 404 / 405.
fn respond(request: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let route = match request.uri().path() {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Healthz,
        "/readyz" => Route::Readyz,
        FEATURES_HEALTH_PATH => match &state.features_health {
            Some(hook) => Route::FeaturesHealth(hook),
            None => return text(StatusCode::NOT_FOUND, "no feature store\n"),
        },
        MONITOR_PATH => Route::Monitor,
        EXPERIMENTS_PATH => Route::Experiments,
        _ => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match route {
        Route::Metrics => with_type(
            StatusCode::OK,
            METRICS_CONTENT_TYPE,
            Bytes::from(state.metrics.render()),
        ),
        Route::Healthz if state.health.is_draining() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        Route::Healthz => text(StatusCode::OK, "ok\n"),
        Route::Readyz if state.health.is_ready() => text(StatusCode::OK, "ready\n"),
        Route::Readyz if state.health.is_draining() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        Route::Readyz => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
        Route::FeaturesHealth(hook) => with_type(
            StatusCode::OK,
            JSON_CONTENT_TYPE,
            Bytes::from(hook() + "\n"),
        ),
        Route::Monitor => with_type(
            StatusCode::OK,
            JSON_CONTENT_TYPE,
            Bytes::from(state.metrics.monitor_json() + "\n"),
        ),
        Route::Experiments => with_type(
            StatusCode::OK,
            JSON_CONTENT_TYPE,
            Bytes::from(state.metrics.experiments_json() + "\n"),
        ),
    }
}

/// The path of the live experiments' report (`docs/EXPERIMENTS.md`).
pub const EXPERIMENTS_PATH: &str = "/admin/experiments";

/// The path of the model monitor's state (`docs/MONITORING.md`).
pub const MONITOR_PATH: &str = "/admin/monitor";

/// The path of the feature store's health.
pub const FEATURES_HEALTH_PATH: &str = "/admin/features/health";

/// The path of the reload call.
pub const RELOAD_PATH: &str = "/admin/reload";

/// `POST /admin/reload`: runs the hook off the runtime's thread (a reload
/// reads and checks files), `200` with its JSON when it took, `422` when
/// nothing changed; other methods `405`.
async fn reload(request: &Request<Incoming>, hook: ReloadHook) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (status, body) = match tokio::task::spawn_blocking(move || hook()).await {
        Ok(Ok(body)) => (StatusCode::OK, body),
        Ok(Err(body)) => (StatusCode::UNPROCESSABLE_ENTITY, body),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"result":"error","error":"the reload panicked"}"#.to_string(),
        ),
    };
    with_type(status, JSON_CONTENT_TYPE, Bytes::from(body + "\n"))
}

/// The `Content-Type` of the reload call's answers.
const JSON_CONTENT_TYPE: &str = "application/json";

/// The endpoint's paths.
enum Route<'a> {
    Metrics,
    Healthz,
    Readyz,
    FeaturesHealth(&'a FeaturesHook),
    Monitor,
    Experiments,
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(
        status,
        TEXT_CONTENT_TYPE,
        Bytes::from_static(body.as_bytes()),
    )
}

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
