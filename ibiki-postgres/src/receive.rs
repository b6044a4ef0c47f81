//! Receiving a reply: one call of the schema's `receive` function, which
//! routes and records it in one statement (see the migration for the locks).

use ibiki_core::{ClientId, Destination, InboundReply, MessageId, Receipt, StoreError};
use sqlx::PgPool;

use crate::error::store_error;

pub(crate) async fn receive(
    pool: &PgPool,
    statement: &str,
    reply: InboundReply,
) -> Result<Receipt, StoreError> {
    let (to_number, to_unparsed) = match &reply.to {
        Destination::Number(number) => (Some(*number), None),
        Destination::Unparsed(raw) => (None, Some(raw.as_str())),
    };
    let (duplicate, owner): (bool, Option<ClientId>) = sqlx::query_as(statement)
        .bind(reply.message_id.as_ref().map(MessageId::as_str))
        .bind(to_number)
        .bind(to_unparsed)
        .bind(&reply.from)
        .bind(&reply.body)
        .bind(reply.received_at)
        .fetch_one(pool)
        .await
        .map_err(store_error)?;
    Ok(match (duplicate, owner) {
        (true, _) => Receipt::Duplicate,
        (false, Some(client)) => Receipt::Routed(client),
        (false, None) => Receipt::Held,
    })
}
