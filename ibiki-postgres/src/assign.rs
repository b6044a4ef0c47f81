//! Assignment changes: one call of the schema's `change_numbers` function,
//! which checks, changes and releases held replies in one statement.

use ibiki_core::{AssignmentChange, Change, ClientId, Conflict, PhoneNumber, StoreError};

use crate::deadline::Db;
use crate::error::backend;

/// What `change_numbers` returns: the change, or the conflicts that stopped it.
#[derive(sqlx::FromRow)]
struct ChangeRow {
    added: Vec<PhoneNumber>,
    removed: Vec<PhoneNumber>,
    /// NULL when the change was refused.
    numbers: Option<Vec<PhoneNumber>>,
    released: i64,
    conflict_numbers: Vec<PhoneNumber>,
    conflict_owners: Vec<ClientId>,
}

pub(crate) async fn change(
    db: &Db,
    statement: &str,
    client: &ClientId,
    numbers: &[PhoneNumber],
    change: Change,
) -> Result<AssignmentChange, StoreError> {
    let row: ChangeRow = db
        .lease()
        .await?
        .run(|conn| {
            sqlx::query_as(statement)
                .bind(client)
                .bind(change.as_str())
                .bind(numbers)
                .fetch_one(conn)
        })
        .await?;
    row.into_change(client)
}

impl ChangeRow {
    fn into_change(self, client: &ClientId) -> Result<AssignmentChange, StoreError> {
        if !self.conflict_numbers.is_empty() {
            return Err(StoreError::Conflict(conflicts(
                self.conflict_numbers,
                self.conflict_owners,
            )));
        }
        let numbers = self
            .numbers
            .ok_or_else(|| backend("change_numbers returned neither numbers nor conflicts"))?;
        Ok(AssignmentChange {
            client: client.clone(),
            added: ascending(self.added),
            removed: ascending(self.removed),
            numbers: ascending(numbers),
            released: u64::try_from(self.released).map_err(backend)?,
        })
    }
}

/// Pairs numbers with owners, in [`PhoneNumber`] order (SQL sorts them as text).
fn conflicts(numbers: Vec<PhoneNumber>, owners: Vec<ClientId>) -> Vec<Conflict> {
    let mut conflicts: Vec<Conflict> = numbers
        .into_iter()
        .zip(owners)
        .map(|(phone_number, owner)| Conflict {
            phone_number,
            owner,
        })
        .collect();
    conflicts.sort_unstable_by_key(|c| c.phone_number);
    conflicts
}

fn ascending(mut numbers: Vec<PhoneNumber>) -> Vec<PhoneNumber> {
    numbers.sort_unstable();
    numbers
}
