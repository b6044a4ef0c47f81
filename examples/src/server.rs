//! Starting, serving and stopping.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use ibiki_core::Normalizer;
use ibiki_http::{AdminToken, App, BearerAuth, WebhookSecret};
use tokio::net::TcpListener;

use crate::config::Config;
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
    let mut app = App::new(store.clone(), auth).with_normalizer(normalizer);
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
    let metrics = app.metrics().router(store);
    let listener = bind(config.listen, "--listen").await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    let metrics = match config.metrics_listen {
        Some(address) => {
            let listener = bind(address, "--metrics-listen").await?;
            tracing::info!(
                address = %listener.local_addr()?,
                "serving /metrics without the admin token"
            );
            Some(tokio::spawn(serve(
                listener,
                metrics,
                when_stopped(stopped.clone()),
            )))
        }
        None => None,
    };
    serve(listener, app.router(), when_stopped(stopped)).await?;
    if let Some(metrics) = metrics {
        metrics.await??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Listens on `address`, or says which address failed, and why, and which
/// flag chooses another.
async fn bind(address: SocketAddr, flag: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(address).await.map_err(|error| {
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

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
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
