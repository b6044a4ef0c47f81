//! What an operator watches: replies by outcome, receive latency, store
//! errors, held replies, assignment changes and what the limits refused, in
//! the Prometheus text format (`GET /metrics`).
//!
//! Built on [`prometheus_client`], the Prometheus project's own Rust client,
//! rather than the `metrics` facade with `metrics-exporter-prometheus`: its
//! registry is a value the app owns, with no global recorder installed behind
//! an embedding server's back, so two apps in one process keep apart and an
//! embedder can add ibiki's metrics to its own registry
//! ([`Metrics::register`]); and its label sets are types, so no label can
//! carry a phone number or a client id by mistake.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use ibiki_core::{
    AssignmentChange, Change, DynForwardStore, DynReplyStore, Receipt, ReplyStore, StoreError,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, LabelSetEncoder, prometheus_text,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::app::App;
use crate::limits::Refusal;
use crate::openapi::ErrorBody;

/// The route label of `POST /webhooks/sms`; a provider's route is its name.
pub(crate) const SMS_ROUTE: &str = "sms";

/// The route label of a `/webhooks/{provider}` naming no provider.
pub(crate) const UNKNOWN_ROUTE: &str = "unknown";

/// Upper bounds of the receive latency buckets, in seconds: 0.1 ms to 1 s,
/// about ×2.5 apart (an in-memory receive takes microseconds, a PostgreSQL
/// one a few milliseconds, a struggling one hundreds).
const RECEIVE_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Upper bounds of the delivery attempt buckets, in seconds: a local
/// receiver answers in a millisecond, a distant one in a hundred, a dying
/// one at the 15 s timeout.
const ATTEMPT_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0,
];

/// Upper bounds of the delivery lag buckets, in seconds: from a few
/// milliseconds (the first attempt) to the 28 hours of the retry schedule.
const LAG_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 1800.0, 7200.0, 18000.0,
    36000.0, 108000.0,
];

/// ibiki's metrics: counters the app updates as it serves, and the held
/// replies gauge, read from the store at each scrape
/// ([`refresh`](Self::refresh)) so that it is right across several servers
/// sharing one database, and after a restart.
///
/// Cloning is cheap and every clone updates the same metrics. Every label
/// value comes from a closed set (outcomes, reasons, error kinds, the
/// configured providers' names): never a number, a client or a message.
///
/// Serve them with the app's `GET /metrics` (behind the admin
/// authentication), [`router`](Self::router) on an address of their own, or
/// your own registry:
///
/// ```
/// use std::sync::Arc;
///
/// use ibiki_core::DynReplyStore;
/// use ibiki_http::prometheus_client::registry::Registry;
/// use ibiki_http::{AdminToken, App};
/// use ibiki_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<DynReplyStore> = Arc::new(MemoryStore::new());
/// let app = App::new(store.clone(), AdminToken::new("change-me".parse()?));
/// let metrics = app.metrics().clone();
///
/// // Beside your own metrics, in your own registry:
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// // At each scrape, read the held replies gauge from the store first.
/// metrics.refresh(&*store).await;
/// let mut text = String::new();
/// ibiki_http::prometheus_client::encoding::text::encode(&mut text, &registry)?;
/// assert!(text.contains("ibiki_held_replies 0"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    replies: Family<ReplyLabels, Counter>,
    receive_seconds: Histogram,
    store_errors: Family<StoreErrorLabels, Counter>,
    changes: Family<ChangeLabels, Counter>,
    numbers_assigned: Counter,
    numbers_unassigned: Counter,
    released: Counter,
    rerouted: Counter,
    refusals: Family<RefusalLabels, Counter>,
    held: Arc<StoreGauge>,
    deliveries: Family<DeliveryLabels, Counter>,
    attempt_seconds: Histogram,
    lag_seconds: Histogram,
    pending: Arc<StoreGauge>,
    forwards: OnceLock<Arc<DynForwardStore>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, all at zero, in a registry of their own.
    pub fn new() -> Self {
        let mut inner = Inner {
            registry: Registry::default(),
            replies: Family::default(),
            receive_seconds: Histogram::new(RECEIVE_BUCKETS),
            store_errors: Family::default(),
            changes: Family::default(),
            numbers_assigned: Counter::default(),
            numbers_unassigned: Counter::default(),
            released: Counter::default(),
            rerouted: Counter::default(),
            refusals: Family::default(),
            held: Arc::new(StoreGauge::new(
                "ibiki_held_replies",
                "Replies held right now, waiting for someone to own their number (read from the \
                 store at each scrape).",
            )),
            deliveries: Family::default(),
            attempt_seconds: Histogram::new(ATTEMPT_BUCKETS),
            lag_seconds: Histogram::new(LAG_BUCKETS),
            pending: Arc::new(StoreGauge::new(
                "ibiki_deliveries_pending",
                "Replies waiting to be delivered to their clients' endpoints, on every server \
                 (read from the store at each scrape).",
            )),
            forwards: OnceLock::new(),
        };
        for outcome in DeliveryOutcome::ALL {
            let _ = inner.deliveries.get_or_create(&DeliveryLabels(outcome));
        }
        // Every kind shows from the start, at 0: an alert on its rate then
        // works before the first error.
        for kind in StoreErrorKind::ALL {
            let _ = inner.store_errors.get_or_create(&StoreErrorLabels(kind));
        }
        for reason in Refusal::ALL {
            let _ = inner.refusals.get_or_create(&RefusalLabels(reason));
        }
        let mut registry = Registry::default();
        inner.register(&mut registry);
        inner.registry = registry;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Registers every ibiki metric into `registry` (an embedding server's),
    /// under the same `ibiki_` names: they stay shared with this value.
    /// Call [`refresh`](Self::refresh) before encoding it.
    pub fn register(&self, registry: &mut Registry) {
        self.inner.register(registry);
    }

    /// Reads the number of held replies from `store` for the next encoding;
    /// if the store fails, the gauge is left out (and the store error
    /// counted) rather than showing a stale value.
    pub async fn refresh<S: ReplyStore + ?Sized>(&self, store: &S) {
        let held = match store.held_count().await {
            Ok(count) => i64::try_from(count).unwrap_or(i64::MAX),
            Err(error) => {
                tracing::warn!(error = %error, "held replies not counted");
                self.store_error(&error);
                StoreGauge::UNKNOWN
            }
        };
        self.inner.held.count.store(held, Ordering::Relaxed);
        if let Some(forwards) = self.inner.forwards.get() {
            let pending = match forwards.pending_forwards().await {
                Ok(count) => i64::try_from(count).unwrap_or(i64::MAX),
                Err(error) => {
                    tracing::warn!(error = %error, "pending deliveries not counted");
                    self.store_error(&error);
                    StoreGauge::UNKNOWN
                }
            };
            self.inner.pending.count.store(pending, Ordering::Relaxed);
        }
    }

    /// Reads the pending deliveries gauge from `forwards` at each
    /// [`refresh`](Self::refresh) (the first store given stays).
    pub fn count_forwards_of(&self, forwards: Arc<DynForwardStore>) {
        let _ = self.inner.forwards.set(forwards);
    }

    /// One attempt to deliver a reply to its client's endpoint: how it ended
    /// and how long it took. A forwarding worker reports here.
    pub fn delivery_attempt(&self, outcome: DeliveryOutcome, took: Duration) {
        self.inner
            .deliveries
            .get_or_create(&DeliveryLabels(outcome))
            .inc();
        self.inner.attempt_seconds.observe(took.as_secs_f64());
    }

    /// A reply delivered to its client's endpoint `lag` after it reached the
    /// inbox.
    pub fn delivery_lag(&self, lag: Duration) {
        self.inner.lag_seconds.observe(lag.as_secs_f64());
    }

    /// Refreshes the gauge from `store`, then encodes every metric in the
    /// Prometheus text format (version 0.0.4).
    pub async fn render<S: ReplyStore + ?Sized>(&self, store: &S) -> Result<String, fmt::Error> {
        self.refresh(store).await;
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }

    /// `GET /metrics` alone, without authentication: for an address only a
    /// scraper on a private network reaches.
    pub fn router(&self, store: Arc<DynReplyStore>) -> Router {
        Router::new()
            .route("/metrics", axum::routing::get(serve_unauthenticated))
            .with_state((self.clone(), store))
    }

    /// One reply given to the store by `route`, what came of it and how long
    /// the store took.
    /// `unreadable`: its destination could not be read as a number.
    pub(crate) fn received(
        &self,
        route: &'static str,
        result: &Result<Receipt, StoreError>,
        unreadable: bool,
        took: Duration,
    ) {
        let outcome = match result {
            Ok(Receipt::Held) if unreadable => Outcome::Held("unreadable_destination"),
            Ok(Receipt::Held) => Outcome::Held("unowned"),
            Ok(receipt) => Outcome::Received(receipt.as_str()),
            Err(_) => Outcome::Failed,
        };
        self.inner.receive_seconds.observe(took.as_secs_f64());
        self.outcome(route, outcome);
    }

    /// A webhook request refused by `route` before any reply reached the
    /// store; `code` is its error code.
    pub(crate) fn rejected(&self, route: &'static str, code: &str) {
        self.outcome(route, Outcome::Rejected(Reason::from_code(code)));
    }

    /// A provider event that carries no reply (a delivery report...).
    pub(crate) fn skipped(&self, route: &'static str) {
        self.outcome(route, Outcome::Skipped);
    }

    fn outcome(&self, route: &'static str, outcome: Outcome) {
        self.inner
            .replies
            .get_or_create(&ReplyLabels { route, outcome })
            .inc();
    }

    /// A store call that failed.
    pub(crate) fn store_error(&self, error: &StoreError) {
        self.store_error_kind(StoreErrorKind::of(error));
    }

    pub(crate) fn store_error_kind(&self, kind: StoreErrorKind) {
        self.inner
            .store_errors
            .get_or_create(&StoreErrorLabels(kind))
            .inc();
    }

    /// An assignment change the store made.
    pub(crate) fn assignment_changed(&self, change: Change, result: &AssignmentChange) {
        let inner = &self.inner;
        inner
            .changes
            .get_or_create(&ChangeLabels(change.as_str()))
            .inc();
        inner.numbers_assigned.inc_by(result.added.len() as u64);
        inner.numbers_unassigned.inc_by(result.removed.len() as u64);
        inner.released.inc_by(result.released);
    }

    /// A held reply an operator delivered by hand.
    pub(crate) fn rerouted(&self) {
        self.inner.rerouted.inc();
    }

    /// A connection or request a limit refused or cut short. The router
    /// counts its own ([`Refusal::BodyTimeout`], [`Refusal::MaxStreams`]);
    /// a server reports its connection-level ones here, so that one
    /// counter shows them all.
    pub fn refused(&self, reason: Refusal) {
        self.inner
            .refusals
            .get_or_create(&RefusalLabels(reason))
            .inc();
    }
}

impl Inner {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "ibiki_replies_received",
            "Replies posted to the webhooks, by route (sms, or the provider) and outcome: \
             routed, held (with the reason: unowned or unreadable_destination), duplicate \
             (a retry), failed (the store failed; the provider retries), skipped (a provider \
             event without a reply) or rejected (with the reason)",
            self.replies.clone(),
        );
        registry.register(
            "ibiki_reply_receive_duration_seconds",
            "Time the store took to route and record one reply",
            self.receive_seconds.clone(),
        );
        registry.register(
            "ibiki_store_errors",
            "Store calls that failed, by kind: unavailable and backend are the store's \
             failures, conflict and invalid_cursor the caller's",
            self.store_errors.clone(),
        );
        registry.register(
            "ibiki_assignment_changes",
            "Assignment changes made, by kind of change: replace, add or remove",
            self.changes.clone(),
        );
        registry.register(
            "ibiki_numbers_assigned",
            "Numbers that gained an owner through assignment changes",
            self.numbers_assigned.clone(),
        );
        registry.register(
            "ibiki_numbers_unassigned",
            "Numbers that lost their owner through assignment changes",
            self.numbers_unassigned.clone(),
        );
        registry.register(
            "ibiki_held_replies_released",
            "Held replies that assignment changes delivered to their new owner",
            self.released.clone(),
        );
        registry.register(
            "ibiki_held_replies_rerouted",
            "Held replies an operator delivered by hand (POST /api/admin/held/{id}/deliver)",
            self.rerouted.clone(),
        );
        registry.register(
            "ibiki_refusals",
            "Connections and requests a limit refused or cut short, by reason: header_timeout, \
             idle and send_timeout (connection closed), body_timeout (408, connection closed), \
             max_connections (closed as soon as accepted), max_streams (live stream answered 429)",
            self.refusals.clone(),
        );
        registry.register(
            "ibiki_deliveries",
            "Attempts to deliver replies to clients' endpoints, by outcome: delivered (a 2xx), \
             attempt_failed (retried on the schedule) or exhausted (the schedule is spent: \
             failed until retried by hand)",
            self.deliveries.clone(),
        );
        registry.register(
            "ibiki_delivery_attempt_duration_seconds",
            "Time one delivery attempt took, from connecting to the response's end",
            self.attempt_seconds.clone(),
        );
        registry.register(
            "ibiki_delivery_lag_seconds",
            "Time from a reply reaching the inbox to its delivery to the client's endpoint",
            self.lag_seconds.clone(),
        );
        registry.register_collector(Box::new(self.held.clone()));
        registry.register_collector(Box::new(self.pending.clone()));
    }
}

/// How a delivery attempt ended, as `ibiki_deliveries_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// A `2xx`: delivered.
    Delivered,
    /// Failed; another attempt is scheduled.
    AttemptFailed,
    /// Failed, and the schedule is spent: the delivery is failed.
    Exhausted,
}

impl DeliveryOutcome {
    const ALL: [Self; 3] = [Self::Delivered, Self::AttemptFailed, Self::Exhausted];

    /// The label value: `delivered`, `attempt_failed` or `exhausted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::AttemptFailed => "attempt_failed",
            Self::Exhausted => "exhausted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DeliveryLabels(DeliveryOutcome);

impl EncodeLabelSet for DeliveryLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        [("outcome", self.0.as_str())].encode(encoder)
    }
}

/// A gauge read from the store at each scrape: the last count read, or
/// nothing when the last read failed (or none was made).
#[derive(Debug)]
struct StoreGauge {
    name: &'static str,
    help: &'static str,
    count: AtomicI64,
}

impl StoreGauge {
    const UNKNOWN: i64 = -1;

    fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            count: AtomicI64::new(Self::UNKNOWN),
        }
    }
}

impl Collector for StoreGauge {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let count = self.count.load(Ordering::Relaxed);
        if count == Self::UNKNOWN {
            return Ok(());
        }
        let gauge = ConstGauge::new(count);
        let metric = encoder.encode_descriptor(self.name, self.help, None, gauge.metric_type())?;
        gauge.encode(metric)
    }
}

/// What came of one reply, or of a request that carried none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    /// Recorded in an inbox, or a retry: `Receipt::as_str`.
    Received(&'static str),
    /// Held, and why: `unowned` (nobody owns the number) or
    /// `unreadable_destination` (the destination is not a number).
    Held(&'static str),
    Failed,
    Skipped,
    Rejected(Reason),
}

/// Why a webhook request was refused: the error codes of
/// [`WebhookError`](ibiki_providers::WebhookError) and of
/// `/webhooks/sms`'s signature and payload checks, grouped so the set stays
/// small and the same across routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    MissingSignature,
    BadSignature,
    StaleSignature,
    SignaturesRequired,
    TooLarge,
    BodyTimeout,
    UnsupportedMediaType,
    MethodNotAllowed,
    OtherProviderPayload,
    UnknownProvider,
    BadPayload,
}

impl Reason {
    /// The reason of an error code; a payload error for any other code.
    fn from_code(code: &str) -> Self {
        match code {
            "missing_signature" => Self::MissingSignature,
            "invalid_signature" => Self::BadSignature,
            "stale_signature" | "stale_timestamp" => Self::StaleSignature,
            "signatures_required" => Self::SignaturesRequired,
            "payload_too_large" => Self::TooLarge,
            "body_timeout" => Self::BodyTimeout,
            "unsupported_media_type" => Self::UnsupportedMediaType,
            "method_not_allowed" => Self::MethodNotAllowed,
            "other_provider_payload" => Self::OtherProviderPayload,
            "unknown_provider" => Self::UnknownProvider,
            _ => Self::BadPayload,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::BadSignature => "bad_signature",
            Self::StaleSignature => "stale_signature",
            Self::SignaturesRequired => "signatures_required",
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::OtherProviderPayload => "other_provider_payload",
            Self::UnknownProvider => "unknown_provider",
            Self::BadPayload => "bad_payload",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReplyLabels {
    route: &'static str,
    outcome: Outcome,
}

impl EncodeLabelSet for ReplyLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            Outcome::Received(receipt) => receipt,
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Held(reason) => {
                let labels = [
                    ("route", self.route),
                    ("outcome", "held"),
                    ("reason", reason),
                ];
                return labels.encode(encoder);
            }
            Outcome::Rejected(reason) => {
                let labels = [
                    ("route", self.route),
                    ("outcome", "rejected"),
                    ("reason", reason.as_str()),
                ];
                return labels.encode(encoder);
            }
        };
        [("route", self.route), ("outcome", outcome)].encode(encoder)
    }
}

/// The kind of a [`StoreError`], as the `kind` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StoreErrorKind {
    Conflict,
    InvalidCursor,
    Unavailable,
    Backend,
}

impl StoreErrorKind {
    const ALL: [Self; 4] = [
        Self::Conflict,
        Self::InvalidCursor,
        Self::Unavailable,
        Self::Backend,
    ];

    pub(crate) fn of(error: &StoreError) -> Self {
        match error {
            StoreError::Conflict(_) => Self::Conflict,
            StoreError::InvalidCursor => Self::InvalidCursor,
            StoreError::Unavailable(_) => Self::Unavailable,
            // `StoreError` is non-exhaustive: a new kind is the store's failure.
            _ => Self::Backend,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::InvalidCursor => "invalid_cursor",
            Self::Unavailable => "unavailable",
            Self::Backend => "backend",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StoreErrorLabels(StoreErrorKind);

impl EncodeLabelSet for StoreErrorLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        [("kind", self.0.as_str())].encode(encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RefusalLabels(Refusal);

impl EncodeLabelSet for RefusalLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        [("reason", self.0.as_str())].encode(encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChangeLabels(&'static str);

impl EncodeLabelSet for ChangeLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        [("change", self.0)].encode(encoder)
    }
}

/// The scrape's answer: the text, or 500 if it could not be encoded.
async fn scrape(metrics: &Metrics, store: &DynReplyStore) -> Response {
    match metrics.render(store).await {
        Ok(text) => ([(CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "metrics not encoded");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /metrics` on the API port, behind the admin authentication.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every metric, in the Prometheus text format (version \
            0.0.4)", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A client key: this route is the operator's", body = ErrorBody),
    )
)]
pub(crate) async fn serve(State(app): State<Arc<App>>) -> Response {
    scrape(app.metrics(), app.store()).await
}

async fn serve_unauthenticated(
    State((metrics, store)): State<(Metrics, Arc<DynReplyStore>)>,
) -> Response {
    scrape(&metrics, &*store).await
}

#[cfg(test)]
mod tests {
    use ibiki_core::ClientId;

    use super::*;
    use ibiki_providers::WebhookError;

    fn text(metrics: &Metrics) -> String {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &metrics.inner.registry).expect("encodes");
        text
    }

    #[test]
    fn every_provider_error_has_a_reason_of_its_own() {
        let errors = [
            WebhookError::MissingSignature { header: "X" },
            WebhookError::BadSignature,
            WebhookError::MalformedSignature { header: "X" },
            WebhookError::SignaturesRequired { provider: "p" },
            WebhookError::StaleTimestamp {
                age_secs: 1,
                tolerance_secs: 0,
            },
            WebhookError::MethodNotAllowed {
                provider: "p",
                method: http::Method::PUT,
            },
            WebhookError::UnsupportedContentType {
                provider: "p",
                content_type: String::new(),
            },
            WebhookError::TooLarge { len: 2, max: 1 },
        ];
        for error in errors {
            assert_ne!(
                Reason::from_code(error.code()),
                Reason::BadPayload,
                "{error}"
            );
        }
        for error in [
            WebhookError::malformed("JSON body", "x"),
            WebhookError::missing("To"),
            WebhookError::invalid("To", "x"),
        ] {
            assert_eq!(Reason::from_code(error.code()), Reason::BadPayload);
        }
    }

    #[test]
    fn outcomes_are_counted_with_bounded_labels() {
        let metrics = Metrics::new();
        let client = ClientId::new("acme").expect("id");
        let routed = Ok(Receipt::Routed(client));
        metrics.received(SMS_ROUTE, &routed, false, Duration::from_micros(50));
        metrics.received(SMS_ROUTE, &routed, false, Duration::from_millis(3));
        metrics.rejected("twilio", "invalid_signature");
        let text = text(&metrics);
        assert!(
            text.contains("ibiki_replies_received_total{route=\"sms\",outcome=\"routed\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "ibiki_replies_received_total{route=\"twilio\",outcome=\"rejected\",\
                 reason=\"bad_signature\"} 1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("acme"), "no client in a label: {text}");
        assert!(
            text.contains("ibiki_reply_receive_duration_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ibiki_reply_receive_duration_seconds_count 2\n"),
            "{text}"
        );
        assert!(
            !text.contains("ibiki_held_replies "),
            "not read yet: {text}"
        );
    }

    #[test]
    fn every_refusal_reason_shows_from_the_start_and_counts() {
        let metrics = Metrics::new();
        metrics.refused(Refusal::MaxConnections);
        metrics.refused(Refusal::MaxConnections);
        let text = text(&metrics);
        for reason in Refusal::ALL {
            let count = if reason == Refusal::MaxConnections {
                2
            } else {
                0
            };
            let line = format!("ibiki_refusals_total{{reason=\"{reason}\"}} {count}\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
    }
}
