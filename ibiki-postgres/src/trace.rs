//! The `tracing` spans of receives, receive batches, assignment changes and
//! forwarding claims and outcomes, at debug level, each closed by one event
//! saying what came of it.
//!
//! Always on: a span costs nanoseconds beside a round trip to the server.
//! A span carries the provider's message id, the client and counts: never a
//! phone number (personal data, the `to` of a reply as much as its `from`)
//! nor a message body. The message id and the client are what an operator
//! follows a reply by.

use std::future::Future;

use ibiki_core::{
    AssignmentChange, AttemptOutcome, Change, ClientId, ForwardClaim, InboundReply, Lease,
    MessageId, Receipt, StoreError,
};
use tracing::Instrument;

/// Runs `receive` on `reply` in a `receive` span.
pub(crate) async fn receive<F>(
    reply: InboundReply,
    receive: impl FnOnce(InboundReply) -> F,
) -> Result<Receipt, StoreError>
where
    F: Future<Output = Result<Receipt, StoreError>>,
{
    let span = tracing::debug_span!(
        "receive",
        message_id = reply.message_id.as_ref().map(MessageId::as_str),
        destination = reply.to.kind(),
    );
    let result = receive(reply).instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(receipt) => tracing::debug!(
            outcome = receipt.as_str(),
            client = receipt.client().map(ClientId::as_str),
            "reply received"
        ),
        Err(error) => tracing::debug!(error = %error, "reply not received"),
    });
    result
}

/// The span of a batch of `batch_size` receives committed together.
pub(crate) fn batch(batch_size: usize) -> tracing::Span {
    tracing::debug_span!("receive_batch", batch_size)
}

/// Runs `work`, the change of `numbers` numbers, in a `change_numbers` span.
pub(crate) async fn change<F>(
    client: &ClientId,
    change: Change,
    numbers: usize,
    work: F,
) -> Result<AssignmentChange, StoreError>
where
    F: Future<Output = Result<AssignmentChange, StoreError>>,
{
    let span = tracing::debug_span!(
        "change_numbers",
        client = client.as_str(),
        change = change.as_str(),
        numbers
    );
    let result = work.instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(change) => tracing::debug!(
            added = change.added.len(),
            removed = change.removed.len(),
            released = change.released,
            count = change.count(),
            "numbers changed"
        ),
        Err(error) => tracing::debug!(error = %error, "numbers not changed"),
    });
    result
}

/// Runs `work`, a claim of at most `limit` forwards, in a `claim_forwards`
/// span.
pub(crate) async fn claim<F>(limit: u32, work: F) -> Result<Vec<ForwardClaim>, StoreError>
where
    F: Future<Output = Result<Vec<ForwardClaim>, StoreError>>,
{
    let span = tracing::debug_span!("claim_forwards", limit);
    let result = work.instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(claims) => tracing::debug!(claimed = claims.len(), "forwards claimed"),
        Err(error) => tracing::debug!(error = %error, "forwards not claimed"),
    });
    result
}

/// Runs `work`, recording `outcome` under `lease`, in a `finish_forward`
/// span: the forward, the attempt, and whether it was delivered.
pub(crate) async fn finish<F>(
    lease: Lease,
    outcome: &AttemptOutcome,
    work: F,
) -> Result<bool, StoreError>
where
    F: Future<Output = Result<bool, StoreError>>,
{
    let (delivered, status) = match outcome {
        AttemptOutcome::Delivered { status } => (true, Some(*status)),
        AttemptOutcome::Failed { status, .. } => (false, *status),
    };
    let span = tracing::debug_span!(
        "finish_forward",
        forward = lease.forward,
        attempt = lease.attempt,
        delivered,
        status,
    );
    let result = work.instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(true) => tracing::debug!(outcome = "recorded", "forward attempt recorded"),
        Ok(false) => tracing::debug!(outcome = "superseded", "forward attempt refused"),
        Err(error) => tracing::debug!(error = %error, "forward attempt not recorded"),
    });
    result
}

/// Runs `work`, recording `count` outcomes, in a `finish_forwards` span.
pub(crate) async fn finish_all<F>(count: usize, work: F) -> Result<Vec<bool>, StoreError>
where
    F: Future<Output = Result<Vec<bool>, StoreError>>,
{
    let span = tracing::debug_span!("finish_forwards", count);
    let result = work.instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(recorded) => tracing::debug!(
            recorded = recorded.iter().filter(|r| **r).count(),
            "forward attempts recorded"
        ),
        Err(error) => tracing::debug!(error = %error, "forward attempts not recorded"),
    });
    result
}
