//! The `tracing` spans of receives and assignment changes (feature
//! `tracing`), at debug level, each closed by one event saying what came of
//! it.
//!
//! A span carries the provider's message id, the client and counts: never a
//! phone number (personal data, and the `to` of a reply is someone's number
//! as much as the `from`) nor a message body. The message id and the client
//! are what an operator follows a reply by.

use ibiki_core::{AssignmentChange, Change, ClientId, InboundReply, MessageId};
use ibiki_core::{Receipt, StoreError};
use tracing::span::EnteredSpan;

/// The span of one receive, entered.
pub(crate) fn receive(reply: &InboundReply) -> EnteredSpan {
    tracing::debug_span!(
        "receive",
        message_id = reply.message_id.as_ref().map(MessageId::as_str),
        destination = reply.to.kind(),
    )
    .entered()
}

/// What came of a receive, inside its span.
pub(crate) fn received(result: &Result<Receipt, StoreError>) {
    match result {
        Ok(receipt) => tracing::debug!(
            outcome = receipt.as_str(),
            client = receipt.client().map(ClientId::as_str),
            "reply received"
        ),
        Err(error) => tracing::debug!(error = %error, "reply not received"),
    }
}

/// The span of one assignment change of `numbers` numbers, entered.
pub(crate) fn change(client: &ClientId, change: Change, numbers: usize) -> EnteredSpan {
    tracing::debug_span!(
        "change_numbers",
        client = client.as_str(),
        change = change.as_str(),
        numbers
    )
    .entered()
}

/// What came of an assignment change, inside its span.
pub(crate) fn changed(result: &Result<AssignmentChange, StoreError>) {
    match result {
        Ok(change) => tracing::debug!(
            added = change.added.len(),
            removed = change.removed.len(),
            released = change.released,
            count = change.count(),
            "numbers changed"
        ),
        Err(error) => tracing::debug!(error = %error, "numbers not changed"),
    }
}
