//! The application: its state and its router.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use ibiki_core::{
    AddressPolicy, ClientId, Destination, DynForwardStore, DynReplyStore, InboundReply, Normalizer,
    Receipt, StoreError,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authenticator, require_access};
use crate::body_deadline::limit_body_time;
use crate::error::{ApiError, StoreFailed};
use crate::limits::{Limits, Refusal};
use crate::metrics::Metrics;
use crate::openapi::{ErrorBody, Health};
use crate::sms_signature::WebhookSecret;
use crate::stream_slots::{StreamSlot, StreamSlots};
use crate::{
    admin, deliveries, endpoint, events, held, history, inbox, keys, metrics, openapi, pages,
    provider_webhook, sms_webhook,
};
use ibiki_providers::{MAX_BODY_BYTES, PublicUrl, Registry};

/// Largest webhook body, in bytes: a reply is at most a few KiB.
pub const WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

/// Largest admin body, in bytes: room for a list at the normalizer's own
/// 64 KiB limit plus its JSON quoting, so that limit answers with its own
/// error code.
pub const ADMIN_BODY_LIMIT: usize = 256 * 1024;

/// Everything a request needs: the store, the normalizer, the secrets and
/// the SMS providers.
#[derive(Debug)]
pub struct App {
    store: Arc<DynReplyStore>,
    normalizer: Normalizer,
    auth: Arc<dyn Authenticator>,
    webhook_secret: Option<WebhookSecret>,
    unsigned_webhooks_refused: bool,
    providers: Registry,
    public_url: Option<PublicUrl>,
    shutdown: Shutdown,
    metrics: Metrics,
    limits: Limits,
    streams: Arc<StreamSlots>,
    forwards: Option<Arc<DynForwardStore>>,
    endpoint_policy: AddressPolicy,
}

/// A signal that ends the live streams, started by the first stream.
type Signal = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// When the live streams end: never, or once the app's shutdown signal
/// completes.
#[derive(Debug)]
struct Shutdown {
    /// `true` once the signal completed; dropped unsent when there is none.
    closed: tokio::sync::watch::Receiver<bool>,
    /// The signal and the sender it completes, until a stream starts them.
    pending: Mutex<Option<PendingSignal>>,
}

struct PendingSignal(Signal, tokio::sync::watch::Sender<bool>);

impl std::fmt::Debug for PendingSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingSignal(..)")
    }
}

impl Shutdown {
    fn never() -> Self {
        let (_, closed) = tokio::sync::watch::channel(false);
        Self {
            closed,
            pending: Mutex::new(None),
        }
    }

    fn on(signal: Signal) -> Self {
        let (close, closed) = tokio::sync::watch::channel(false);
        Self {
            closed,
            pending: Mutex::new(Some(PendingSignal(signal, close))),
        }
    }

    /// Completes when the streams must end; starts watching the signal on
    /// the first call (from a request, inside the runtime).
    fn closing(&self) -> impl Future<Output = ()> + Send + use<> {
        let pending = match self.pending.lock() {
            Ok(mut pending) => pending.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(PendingSignal(signal, close)) = pending {
            tokio::spawn(async move {
                signal.await;
                let _ = close.send(true);
            });
        }
        let mut closed = self.closed.clone();
        async move {
            // No signal at all (the sender is gone, never having sent): the
            // streams run until their clients leave.
            if closed.wait_for(|closed| *closed).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl App {
    /// An app over `store`, its `/api` routes guarded by `auth`
    /// ([`BearerAuth`](crate::BearerAuth) for the operator's token and
    /// clients' keys, an [`AdminToken`](crate::AdminToken) for the operator
    /// alone, or your own [`Authenticator`]), with the default normalizer,
    /// unsigned webhooks and no provider webhooks (every
    /// `/webhooks/{provider}` answers 404).
    pub fn new(store: Arc<DynReplyStore>, auth: impl Authenticator) -> Self {
        Self {
            store,
            normalizer: Normalizer::new(),
            auth: Arc::new(auth),
            webhook_secret: None,
            unsigned_webhooks_refused: false,
            providers: Registry::new(),
            public_url: None,
            shutdown: Shutdown::never(),
            metrics: Metrics::new(),
            limits: Limits::default(),
            streams: Arc::new(StreamSlots::new(&Limits::default())),
            forwards: None,
            endpoint_policy: AddressPolicy::PublicOnly,
        }
    }

    /// Serves clients' endpoints and deliveries
    /// (`/api/admin/clients/{userId}/endpoint`, `…/deliveries`, and the
    /// client's own under `/api/clients/{userId}/…`) from `forwards`:
    /// usually the same store as the app's, which creates each reply's
    /// forward as it records the reply. Endpoint URLs are checked against
    /// `policy`. Without it those routes answer 404
    /// `forwarding_not_enabled`. The app only manages forwards: a worker
    /// (`ibiki-forward`) sends them.
    pub fn with_forwarding(
        mut self,
        forwards: Arc<DynForwardStore>,
        policy: AddressPolicy,
    ) -> Self {
        self.metrics.count_forwards_of(forwards.clone());
        self.forwards = Some(forwards);
        self.endpoint_policy = policy;
        self
    }

    /// Uses `limits` instead of the defaults: the body read timeout and the
    /// caps on open live streams.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.streams = Arc::new(StreamSlots::new(&limits));
        self.limits = limits;
        self
    }

    /// Ends the live inbox streams (`/api/clients/{userId}/events`, which
    /// never end by themselves) once `signal` completes: give it the signal
    /// of your server's graceful shutdown, which otherwise waits for every
    /// open stream's client to leave.
    pub fn with_shutdown(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Shutdown::on(Box::pin(signal));
        self
    }

    /// Uses `normalizer` for admin input and inbound numbers.
    pub fn with_normalizer(mut self, normalizer: Normalizer) -> Self {
        self.normalizer = normalizer;
        self
    }

    /// Requires webhooks signed with `secret`.
    pub fn with_webhook_secret(mut self, secret: WebhookSecret) -> Self {
        self.webhook_secret = Some(secret);
        self
    }

    /// Without a webhook secret, refuses every `/webhooks/sms` request with
    /// 401 instead of accepting it unchecked (with a secret, signatures are
    /// required anyway).
    pub fn refuse_unsigned_webhooks(mut self) -> Self {
        self.unsigned_webhooks_refused = true;
        self
    }

    /// Serves each provider of `providers` at `/webhooks/{name}` (`GET` too
    /// where it sends `GET`).
    pub fn with_providers(mut self, providers: Registry) -> Self {
        self.providers = providers;
        self
    }

    /// The public base URL providers call, for the URL-signed schemes
    /// (Twilio, Plivo) behind a reverse proxy: each request's path and query
    /// are appended to it. Without one, the URL is `http://` and the
    /// request's `Host` header.
    pub fn with_public_url(mut self, public_url: PublicUrl) -> Self {
        self.public_url = Some(public_url);
        self
    }

    /// The app's metrics, served at `GET /metrics`: clone them to serve them
    /// elsewhere ([`Metrics::router`]) or to add them to your own registry
    /// ([`Metrics::register`]).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn unsigned_webhooks_refused(&self) -> bool {
        self.unsigned_webhooks_refused
    }

    pub(crate) fn providers(&self) -> &Registry {
        &self.providers
    }

    pub(crate) fn public_url(&self) -> Option<&PublicUrl> {
        self.public_url.as_ref()
    }

    pub(crate) fn store(&self) -> &DynReplyStore {
        &*self.store
    }

    /// The forward store, or 404 `forwarding_not_enabled`.
    pub(crate) fn forwards(&self) -> Result<&DynForwardStore, ApiError> {
        self.forwards.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "forwarding_not_enabled",
                "this server does not forward replies to clients' endpoints",
            )
        })
    }

    pub(crate) fn endpoint_policy(&self) -> AddressPolicy {
        self.endpoint_policy
    }

    pub(crate) fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    pub(crate) fn auth(&self) -> &dyn Authenticator {
        &*self.auth
    }

    pub(crate) fn webhook_secret(&self) -> Option<&WebhookSecret> {
        self.webhook_secret.as_ref()
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A slot for one more live stream of `client`, or 429 (counted).
    pub(crate) fn stream_slot(&self, client: &ClientId) -> Result<StreamSlot, ApiError> {
        self.streams.take(client).inspect_err(|_| {
            self.metrics.refused(Refusal::MaxStreams);
        })
    }

    /// Gives one reply to the store, counted and timed under `route`.
    pub(crate) async fn receive(
        &self,
        route: &'static str,
        reply: InboundReply,
    ) -> Result<Receipt, StoreError> {
        let unreadable = match &reply.to {
            Destination::Unparsed(raw) => Some(self.unreadable_because(raw)),
            Destination::Number(_) => None,
        };
        let started = Instant::now();
        let result = self.store.receive(reply).await;
        self.metrics
            .received(route, &result, unreadable.is_some(), started.elapsed());
        if let (Ok(Receipt::Held), Some(reason)) = (&result, unreadable) {
            // The reason, never the number: it is personal data.
            tracing::warn!(route, %reason, "reply held: its destination is not a readable number");
        }
        result
    }

    /// Why the normalizer cannot read `raw` as a number (it could not when
    /// the reply was made; asked again only for the log line).
    fn unreadable_because(&self, raw: &str) -> String {
        match self.normalizer.canonicalize_inbound(raw) {
            Err(error) => error.to_string(),
            Ok(_) => "unreadable".to_owned(),
        }
    }

    /// Completes when the live streams must end.
    pub(crate) fn closing(&self) -> impl Future<Output = ()> + Send + use<> {
        self.shutdown.closing()
    }

    /// ibiki's routes, without a fallback: merge them into your own
    /// `Router`, whose fallback then answers every other path.
    pub fn routes(self) -> Router {
        let app = Arc::new(self);
        let (api, _) = api_routes()
            .route_layer(middleware::from_fn_with_state(app.clone(), require_access))
            .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
            .split_for_parts();
        let (public, _) = public_routes()
            .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
            .split_for_parts();
        let (providers, _) = provider_routes()
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .split_for_parts();
        api.merge(public)
            .merge(providers)
            .layer(middleware::from_fn_with_state(
                app.clone(),
                count_store_errors,
            ))
            .layer(middleware::from_fn_with_state(app.clone(), limit_body_time))
            .with_state(app)
    }

    /// The dashboard pages (`/`, `/held`, `/inbox/{userId}`,
    /// `/clients/{userId}/deliveries`, `/assets/*`), without state: merge
    /// them beside [`App::routes`] where the dashboard should be served. They read everything through the `/api` routes,
    /// signed in with the admin token.
    pub fn pages() -> Router {
        pages::router()
    }

    /// The whole server's router: [`App::routes`], [`App::pages`], JSON 404
    /// and 405 answers and a debug log line per request.
    pub fn router(self) -> Router {
        self.routes()
            .merge(Self::pages())
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(middleware::from_fn(log_request))
    }
}

/// Every route, with its documentation: what [`App::router`] serves and
/// [`openapi_document`](crate::openapi_document) describes.
pub(crate) fn routes() -> OpenApiRouter<Arc<App>> {
    api_routes().merge(public_routes()).merge(provider_routes())
}

/// The `/api` routes, behind the admin token.
fn api_routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(admin::update_phone_numbers))
        .routes(routes!(admin::phone_numbers))
        .routes(routes!(admin::route))
        .routes(routes!(history::history))
        .routes(routes!(admin::clients))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(admin::client_phone_numbers))
        .routes(routes!(held::list))
        .routes(routes!(held::deliver))
        .routes(routes!(inbox::messages))
        .routes(routes!(events::events))
        .routes(routes!(
            endpoint::admin_put,
            endpoint::admin_get,
            endpoint::admin_delete
        ))
        .routes(routes!(endpoint::admin_secret))
        .routes(routes!(endpoint::admin_rotate))
        .routes(routes!(endpoint::admin_replay))
        .routes(routes!(deliveries::admin_list))
        .routes(routes!(deliveries::admin_retry))
        .routes(routes!(endpoint::own_put, endpoint::own_get))
        .routes(routes!(endpoint::own_secret))
        .routes(routes!(endpoint::own_rotate))
        .routes(routes!(deliveries::own_list))
        .routes(routes!(deliveries::own_retry))
        .routes(routes!(metrics::serve))
}

/// The public routes.
fn public_routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(sms_webhook::receive))
        .routes(routes!(healthz))
        .routes(routes!(openapi::serve_document))
}

/// The providers' webhooks, whose bodies may be larger than ibiki's own.
fn provider_routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(
        provider_webhook::receive_post,
        provider_webhook::receive_get
    ))
}

/// 200 when the store can take a reply now (for PostgreSQL: a connection of
/// the pool answers within the call timeout, on a server that accepts
/// writes), 503 otherwise: the same check a receive needs, within the same
/// deadline, so a load balancer never sees a healthy server that cannot
/// record a reply.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses(
        (status = 200, description = "The store can take a reply now", body = Health),
        (status = 503, description = "The store cannot take a reply now", body = ErrorBody),
    )
)]
async fn healthz(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    app.store().ping().await?;
    Ok((
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
        .into_response())
}

/// Counts the store error an answer reports ([`StoreFailed`]), whichever
/// route met it.
async fn count_store_errors(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(StoreFailed(kind)) = response.extensions().get() {
        app.metrics().store_error_kind(*kind);
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// Logs every request at debug, with its status and duration.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}
