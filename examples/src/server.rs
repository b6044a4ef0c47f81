//! Starting, serving and stopping.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use ibiki_core::Normalizer;
use ibiki_http::{AdminToken, App, BearerAuth, Metrics, Refusal, WebhookSecret};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::config::Config;
use crate::connection::{ConnectionLimits, serve_connection};
use crate::store::open_store;

/// Why the server could not start or stopped with an error.
pub type StartError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs the server the configuration describes until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), StartError> {
    let bare_digits = config.bare_digits();
    let stores = open_store(config.database_url.as_ref(), &config.database).await?;
    let store = stores.replies;
    let admin_token = match config.admin_token {
        Some(token) => AdminToken::new(token),
        None => generated_token()?,
    };
    let mut normalizer = Normalizer::new().with_bare_digits(bare_digits);
    if let Some(region) = config.default_region {
        normalizer = normalizer.with_default_region(region);
    }
    warm_up_in_background(&normalizer);
    let require_signatures = config.providers.require_signatures;
    let auth = BearerAuth::new(admin_token, stores.keys);
    let mut app = App::new(store.clone(), auth)
        .with_normalizer(normalizer)
        .with_forwarding(stores.forwards.clone(), config.forwarding.policy());
    match config.webhook_secret {
        Some(secret) => app = app.with_webhook_secret(WebhookSecret::new(secret)),
        None if require_signatures => {
            tracing::warn!(
                "no webhook secret and signatures required: /webhooks/sms refuses every request"
            );
            app = app.refuse_unsigned_webhooks();
        }
        None => tracing::warn!("no webhook secret: unsigned webhooks are accepted"),
    }
    app = config.providers.apply(app)?;
    let router_limits = config.limits.router();
    app = app.with_limits(router_limits);
    // One signal for both: the live inbox streams end, then the server
    // finishes the requests in flight.
    let (stop, stopped) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown_signal().await;
        drop(stop);
    });
    let when_stopped = |mut stopped: tokio::sync::watch::Receiver<()>| async move {
        // Completes when the sender is dropped.
        let _ = stopped.changed().await;
    };
    let app = app.with_shutdown(when_stopped(stopped.clone()));
    let worker = config
        .forwarding
        .worker(stores.forwards, app.metrics().clone())?
        .map(|worker| tokio::spawn(worker.run(when_stopped(stopped.clone()))));
    let limits = config.limits.connections();
    let connections = Connections::new(limits).counted_in(app.metrics().clone());
    log_limits(&limits, &router_limits);
    let metrics = app.metrics().router(store);
    let listener = bind(config.listen, "--listen")?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    let metrics = match config.metrics_listen {
        Some(address) => {
            let listener = bind(address, "--metrics-listen")?;
            tracing::info!(
                address = %listener.local_addr()?,
                "serving /metrics without the admin token"
            );
            // Connections of their own: a scraper still gets in while the
            // API's connections are all taken.
            let scrapers = ConnectionLimits {
                max_connections: METRICS_CONNECTIONS,
                ..limits
            };
            let scrapers = Connections::new(scrapers).counted_in(app.metrics().clone());
            let stopped = when_stopped(stopped.clone());
            Some(tokio::spawn(async move {
                scrapers.serve(listener, metrics, stopped).await
            }))
        }
        None => None,
    };
    connections
        .serve(listener, app.router(), when_stopped(stopped))
        .await?;
    if let Some(metrics) = metrics {
        metrics.await??;
    }
    // In-flight attempts end (or time out) and are recorded before exit.
    if let Some(worker) = worker {
        worker.await?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Connections of the `--metrics-listen` address at once, at most: a few
/// scrapers. Part of the descriptors the connection cap leaves free.
const METRICS_CONNECTIONS: usize = 16;

/// Says the limits in force, the computed ones among them.
fn log_limits(connections: &ConnectionLimits, router: &ibiki_http::Limits) {
    tracing::info!(
        max_connections = connections.max_connections,
        header_read_timeout = ?connections.header_read_timeout,
        body_read_timeout = ?router.body_read_timeout,
        idle_timeout = ?connections.idle_timeout,
        send_timeout = ?connections.send_timeout,
        max_streams = router.max_streams,
        max_streams_per_client = router.max_streams_per_client,
        "limits"
    );
}

/// Listens on `address`, or says which address failed, and why, and which
/// flag chooses another.
fn bind(address: SocketAddr, flag: &str) -> Result<TcpListener, StartError> {
    listen(address).map_err(|error| {
        let hint = match error.kind() {
            io::ErrorKind::AddrInUse => format!(
                "the address is already in use (another ibiki-server?); choose another with {flag}"
            ),
            io::ErrorKind::PermissionDenied => {
                format!(
                    "not allowed (ports below 1024 need privileges); choose another with {flag}"
                )
            }
            _ => format!("{error}; choose another with {flag}"),
        };
        format!("cannot listen on {address}: {hint}").into()
    })
}

/// Connections the kernel completes and queues before the server accepts
/// them. The standard library's 128 overflows under a burst of new
/// connections (a provider's retries, an attack being refused), and every
/// connection past it waits a second for its SYN to be sent again; the
/// kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with a [`LISTEN_BACKLOG`] queue.
fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As the standard library does for listeners: a restart need not wait
    // for the old connections' TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Compiles the numbering metadata while the server already listens, so no
/// request pays for all of it (it takes seconds in a debug build). A detached
/// thread, not a runtime task: shutdown does not wait for it.
fn warm_up_in_background(normalizer: &Normalizer) {
    let normalizer = normalizer.clone();
    let spawned = std::thread::Builder::new()
        .name("warm-up".into())
        .spawn(move || {
            normalizer.warm_up();
            tracing::debug!("numbering metadata compiled");
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no warm-up thread: the first requests compile the metadata");
    }
}

/// Generates the admin token and prints it once, on stdout (logs go to stderr).
fn generated_token() -> Result<AdminToken, StartError> {
    let token = AdminToken::generate()?;
    println!(
        "admin token (generated; set IBIKI_ADMIN_TOKEN to choose one): {}",
        token.expose()
    );
    Ok(token)
}

/// Serves `router` on `listener` with the default [`ConnectionLimits`] until
/// `shutdown` completes, then lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    Connections::new(ConnectionLimits::default())
        .serve(listener, router, shutdown)
        .await
}

/// A listener's connections under [`ConnectionLimits`]: at most
/// `max_connections` at once (the next is closed as soon as it is accepted,
/// rather than let the process run out of file descriptors), each under the
/// timeouts; every refusal counted in the app's metrics.
///
/// The accept loop is `axum::serve`'s, which offers none of these limits.
#[derive(Debug, Clone)]
pub struct Connections {
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    metrics: Option<Metrics>,
}

impl Connections {
    /// Connections under `limits`, counted nowhere.
    pub fn new(limits: ConnectionLimits) -> Self {
        let slots = limits.max_connections.min(Semaphore::MAX_PERMITS);
        Self {
            limits,
            slots: Arc::new(Semaphore::new(slots)),
            metrics: None,
        }
    }

    /// Counts every connection a limit refused or closed in `metrics`
    /// ([`Metrics::refused`]).
    pub fn counted_in(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves `router` on `listener` until `shutdown` completes, then lets
    /// the requests in flight finish.
    pub async fn serve(
        &self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        // On a worker thread, which the runtime wakes for every ready
        // socket, rather than on the caller's (`main`'s, often), which needs
        // waking from another thread each time.
        let connections = self.clone();
        tokio::spawn(async move { connections.accept(listener, router, shutdown).await })
            .await
            .map_err(io::Error::other)
    }

    /// The accept loop, until `shutdown`; then it waits for every
    /// connection to finish.
    async fn accept(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        // Dropping the receiver tells every connection to stop; each holds
        // a clone of `open`, whose sender waits for them all.
        let (stop, stop_seen) = watch::channel(());
        tokio::spawn(async move {
            shutdown.await;
            drop(stop_seen);
        });
        let (all_closed, open) = watch::channel(());
        let mut cap_warned: Option<Instant> = None;
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        accept_failed(error).await;
                        continue;
                    }
                },
                () = stop.closed() => break,
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                self.refuse(stream, &mut cap_warned);
                continue;
            };
            let (router, stop, open) = (router.clone(), stop.clone(), open.clone());
            let (limits, metrics) = (self.limits, self.metrics.clone());
            tokio::spawn(async move {
                let stopping = async move { stop.closed().await };
                serve_connection(stream, router, limits, metrics, stopping).await;
                drop((slot, open));
            });
        }
        drop((open, listener));
        all_closed.closed().await;
    }

    /// Closes `stream` at once: the cap is reached. Counted; said in the log
    /// at most every [`CAP_WARNING_EVERY`].
    fn refuse(&self, stream: TcpStream, warned: &mut Option<Instant>) {
        drop(stream);
        if let Some(metrics) = &self.metrics {
            metrics.refused(Refusal::MaxConnections);
        }
        if warned.is_none_or(|at| at.elapsed() >= CAP_WARNING_EVERY) {
            *warned = Some(Instant::now());
            tracing::warn!(
                max_connections = self.limits.max_connections,
                "connection cap reached: new connections are closed at once"
            );
        }
    }
}

/// How often, at most, the log says the connection cap is reached.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// How long the accept loop waits after an error of the listener itself
/// (out of file descriptors or memory): it would fail again at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// An accept that failed: a connection gone before it was accepted is
/// nothing; anything else is logged and waited out.
async fn accept_failed(error: io::Error) {
    let gone = matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    );
    if !gone {
        tracing::error!(%error, "accepting a connection failed");
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => {
            sigterm.recv().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
