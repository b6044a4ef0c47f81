//! `GET /api/clients/{userId}/events` over a store that counts its inbox
//! reads: a caught-up stream reads nothing while its inbox is quiet when the
//! store offers wake-ups, and falls back to reading on a timer when it does
//! not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, HeldTarget, HistoryEvent,
    InboundReply, InboxSignals, Page, PageRequest, PhoneNumber, Receipt, ReplyStore, StoreError,
    StoredReply,
};
use ibiki_http::POLL_INTERVAL;
use ibiki_memory::MemoryStore;
use serde_json::json;
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::support::{admin, app_over, assign_ok, reply, request, webhook};

/// The memory store, counting inbox reads, with or without its wake-ups.
#[derive(Debug, Default)]
struct Counted {
    inner: MemoryStore,
    inbox_reads: AtomicUsize,
    without_signals: bool,
}

impl Counted {
    fn reads(&self) -> usize {
        self.inbox_reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AssignmentStore for Counted {
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        self.inner.change_numbers(client, numbers, change).await
    }

    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        self.inner.numbers_of(client).await
    }

    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        self.inner.owner_of(number).await
    }

    async fn owner_at(
        &self,
        number: PhoneNumber,
        at: OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        self.inner.owner_at(number, at).await
    }

    async fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        self.inner.history(number, page).await
    }

    async fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        self.inner.list_clients(prefix, page).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[async_trait]
impl ReplyStore for Counted {
    async fn receive(&self, reply: InboundReply) -> Result<Receipt, StoreError> {
        self.inner.receive(reply).await
    }

    async fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError> {
        self.inbox_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.inbox(client, page).await
    }

    async fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        self.inner.held(page).await
    }

    async fn deliver_held(&self, id: u64, target: &HeldTarget) -> Result<StoredReply, StoreError> {
        self.inner.deliver_held(id, target).await
    }

    async fn prune_delivered(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune_delivered(before, limit).await
    }

    fn inbox_signals(&self) -> Option<InboxSignals> {
        if self.without_signals {
            None
        } else {
            self.inner.inbox_signals()
        }
    }
}

/// An open stream's body, read as text.
struct Events(
    BoxStream<'static, Result<axum::body::Bytes, axum::Error>>,
    String,
);

impl Events {
    async fn open(router: &Router, user_id: &str) -> Self {
        let path = format!("/api/clients/{user_id}/events");
        let request = request(Method::GET, &path, admin(), None, Body::empty());
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        Self(
            response.into_body().into_data_stream().boxed(),
            String::new(),
        )
    }

    /// The text received until it holds `needle`, within `within`.
    async fn until(&mut self, needle: &str, within: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + within;
        while !self.1.contains(needle) {
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Ok(Some(Ok(bytes))) => self.1.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(other) => return Err(format!("the stream ended: {other:?}")),
                Err(_) => return Err(format!("no {needle:?} within {within:?}: {:?}", self.1)),
            }
        }
        Ok(())
    }

    /// Whether no event arrives for `duration`; what came before is
    /// forgotten.
    async fn quiet_for(&mut self, duration: Duration) -> bool {
        self.1.clear();
        self.until("event:", duration).await.is_err()
    }
}

fn router_over(store: &Arc<Counted>) -> Router {
    app_over(Arc::clone(store) as Arc<ibiki_core::DynReplyStore>).router()
}

#[tokio::test]
async fn a_caught_up_stream_reads_nothing_until_its_inbox_gets_a_reply() {
    let store = Arc::new(Counted::default());
    let router = router_over(&store);
    assign_ok(&router, "123", json!("+14155550100")).await;
    assign_ok(&router, "456", json!("+14155550199")).await;
    let mut stream = Events::open(&router, "123").await;
    stream
        .until("ibiki inbox", Duration::from_secs(2))
        .await
        .expect("greeted");
    // The handler's read and the stream's first: caught up.
    let quiet = POLL_INTERVAL * 3;
    assert!(stream.quiet_for(quiet).await);
    assert_eq!(store.reads(), 2, "no read while the inbox is quiet");

    // Another client's reply wakes nothing.
    webhook(&router, &reply("SM1", "+14155550199", "not yours")).await;
    assert!(stream.quiet_for(quiet).await);
    assert_eq!(store.reads(), 2, "another inbox's reply");

    let sent = Instant::now();
    webhook(&router, &reply("SM2", "+14155550100", "yours")).await;
    stream
        .until("yours", Duration::from_secs(1))
        .await
        .expect("the reply, woken");
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert!(!stream.1.contains("not yours"));
    // The read that found it, then the one that found nothing more.
    assert!(stream.quiet_for(quiet).await);
    assert!((3..=4).contains(&store.reads()), "{} reads", store.reads());
}

#[tokio::test]
async fn without_wake_ups_a_stream_reads_on_a_timer() {
    let store = Arc::new(Counted {
        without_signals: true,
        ..Counted::default()
    });
    let router = router_over(&store);
    assign_ok(&router, "123", json!("+14155550100")).await;
    let mut stream = Events::open(&router, "123").await;
    stream
        .until("ibiki inbox", Duration::from_secs(2))
        .await
        .expect("greeted");
    assert!(stream.quiet_for(POLL_INTERVAL * 3).await);
    assert!(store.reads() >= 4, "it polls: {} reads", store.reads());
    webhook(&router, &reply("SM1", "+14155550100", "polled")).await;
    stream
        .until("polled", Duration::from_secs(1))
        .await
        .expect("found by polling");
}
