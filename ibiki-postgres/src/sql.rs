//! The statements the store runs, with every name qualified by its schema.
//!
//! Names are qualified rather than found through `search_path`, so the store
//! works on any pool, including one built for other schemas
//! ([`PostgresStore::from_pool`](crate::PostgresStore::from_pool)). Each text
//! is built once per store; sqlx prepares it once per connection.

use crate::schema::Schema;

#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) receive: String,
    pub(crate) change_numbers: String,
    pub(crate) owner_of: String,
    pub(crate) numbers_of: String,
    pub(crate) list_clients: String,
    pub(crate) inbox: String,
    pub(crate) held: String,
}

/// The columns a listed reply is read from, as `ReplyRow` expects them.
const REPLY_COLUMNS: &str = "message_id, to_number, to_unparsed, from_address, body, received_at";

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = schema.quoted();
        Self {
            receive: format!("SELECT duplicate, owner FROM {s}.receive($1, $2, $3, $4, $5, $6)"),
            change_numbers: format!(
                "SELECT added, removed, numbers, released, conflict_numbers, conflict_owners \
                 FROM {s}.change_numbers($1, $2, $3)"
            ),
            owner_of: format!("SELECT client_id FROM {s}.assignments WHERE phone_number = $1"),
            numbers_of: format!("SELECT phone_number FROM {s}.assignments WHERE client_id = $1"),
            // The first page passes '': every client id sorts after it.
            list_clients: format!(
                "SELECT client_id, count(*) AS count FROM {s}.assignments \
                 WHERE client_id > $1 GROUP BY client_id ORDER BY client_id LIMIT $2"
            ),
            inbox: format!(
                "SELECT {REPLY_COLUMNS}, delivery_seq AS position FROM {s}.replies \
                 WHERE client_id = $1 AND delivery_seq > $2 ORDER BY delivery_seq LIMIT $3"
            ),
            held: format!(
                "SELECT {REPLY_COLUMNS}, id AS position FROM {s}.replies \
                 WHERE client_id IS NULL AND id > $1 ORDER BY id LIMIT $2"
            ),
        }
    }
}
