//! An operator's re-route of a held reply: one call of the schema's
//! `deliver_held` function, then the reply as delivered.

use ibiki_core::{ClientId, HeldTarget, PhoneNumber, StoreError, StoredReply};

use crate::deadline::Db;
use crate::error::backend;
use crate::read;
use crate::sql::Statements;

pub(crate) async fn deliver_held(
    db: &Db,
    sql: &Statements,
    id: u64,
    target: &HeldTarget,
) -> Result<StoredReply, StoreError> {
    // Ids are bigint identities: a larger one names no reply.
    let Ok(row_id) = i64::try_from(id) else {
        return Err(StoreError::NoSuchReply(id));
    };
    let (client, number): (Option<&ClientId>, Option<PhoneNumber>) = match target {
        HeldTarget::Client(client) => (Some(client), None),
        HeldTarget::Number(number) => (None, Some(*number)),
    };
    let (outcome, _owner): (String, Option<ClientId>) = db
        .lease()
        .await?
        .run(|conn| {
            sqlx::query_as(&sql.deliver_held)
                .bind(row_id)
                .bind(client)
                .bind(number)
                .fetch_one(conn)
        })
        .await?;
    match (outcome.as_str(), number) {
        ("delivered", _) => read::reply(db, &sql.reply, row_id)
            .await?
            .ok_or_else(|| backend("a re-routed reply is gone")),
        ("not_found", _) => Err(StoreError::NoSuchReply(id)),
        ("not_held", _) => Err(StoreError::NotHeld(id)),
        ("unowned", Some(number)) => Err(StoreError::Unowned(number)),
        (other, _) => Err(backend(format!("deliver_held answered {other:?}"))),
    }
}
