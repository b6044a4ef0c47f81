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
    pub(crate) receive_batch: String,
    pub(crate) change_numbers: String,
    pub(crate) owner_of: String,
    pub(crate) owner_at: String,
    pub(crate) history: String,
    pub(crate) numbers_of: String,
    pub(crate) list_clients: String,
    pub(crate) list_clients_prefixed: String,
    pub(crate) inbox: String,
    pub(crate) held: String,
    pub(crate) deliver_held: String,
    pub(crate) reply: String,
    pub(crate) held_count: String,
    pub(crate) prune_delivered: String,
    pub(crate) add_key: String,
    pub(crate) keys_of: String,
    pub(crate) revoke_key: String,
    pub(crate) key_owner: String,
}

/// The columns a key is read from, as `keys::KeyRow` expects them.
const KEY_COLUMNS: &str = "id, client_id, prefix, created_at, last_used_at";

/// The columns a listed reply is read from, as `ReplyRow` expects them.
const REPLY_COLUMNS: &str = "id, message_id, to_number, to_unparsed, from_address, body, \
    received_at, delivery, delivered_at, client_id IS NOT NULL AS delivered";

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = schema.quoted();
        Self {
            receive: format!("SELECT duplicate, owner FROM {s}.receive($1, $2, $3, $4, $5, $6)"),
            // A batch of receives in one statement, outside any transaction
            // block: the statement commits it (see `receive.rs`).
            receive_batch: format!(
                "SELECT duplicate, owner FROM {s}.receive_batch($1::text[], $2::text[], \
                 $3::text[], $4::text[], $5::text[], $6::timestamptz[])"
            ),
            change_numbers: format!(
                "SELECT added, removed, numbers, released, conflict_numbers, conflict_owners \
                 FROM {s}.change_numbers($1, $2, $3)"
            ),
            owner_of: format!("SELECT client_id FROM {s}.assignments WHERE phone_number = $1"),
            // One index scan of number_history_owner_at_idx, first row
            // (see the migration; `tests/postgres/schema.rs` checks the plan).
            owner_at: format!(
                "SELECT h.client_id, h.change FROM {s}.number_history AS h \
                 WHERE h.phone_number = $1 AND h.at <= $2 \
                 ORDER BY h.at DESC, h.seq DESC LIMIT 1"
            ),
            // Oldest first, after the event whose seq is the cursor ($2; 0
            // for the first page).
            history: format!(
                "SELECT h.client_id, h.change, h.at, h.seq FROM {s}.number_history AS h \
                 WHERE h.phone_number = $1 AND ($2 = 0 OR (h.at, h.seq) > \
                 (SELECT c.at, c.seq FROM {s}.number_history AS c \
                 WHERE c.seq = $2 AND c.phone_number = $1)) \
                 ORDER BY h.at, h.seq LIMIT $3"
            ),
            numbers_of: format!("SELECT phone_number FROM {s}.assignments WHERE client_id = $1"),
            // The first page passes '': every client id sorts after it; so
            // does a listing from '' ($3). A page's numbers come in the same
            // statement.
            list_clients: format!(
                "SELECT client_id, array_agg(phone_number ORDER BY phone_number) AS numbers \
                 FROM {s}.assignments WHERE client_id > $1 AND client_id >= $3 \
                 GROUP BY client_id ORDER BY client_id LIMIT $2"
            ),
            // The ids starting with a prefix are a range of
            // assignments_client_idx: from the prefix ($3) to the prefix with
            // its last character incremented ($4; the column is COLLATE "C",
            // whose order is the code points').
            list_clients_prefixed: format!(
                "SELECT client_id, array_agg(phone_number ORDER BY phone_number) AS numbers \
                 FROM {s}.assignments WHERE client_id > $1 AND client_id >= $3 AND client_id < $4 \
                 GROUP BY client_id ORDER BY client_id LIMIT $2"
            ),
            inbox: format!(
                "SELECT {REPLY_COLUMNS}, delivery_seq AS position FROM {s}.replies \
                 WHERE client_id = $1 AND delivery_seq > $2 ORDER BY delivery_seq LIMIT $3"
            ),
            deliver_held: format!("SELECT outcome, owner FROM {s}.deliver_held($1, $2, $3)"),
            reply: format!("SELECT {REPLY_COLUMNS}, id AS position FROM {s}.replies WHERE id = $1"),
            held: format!(
                "SELECT {REPLY_COLUMNS}, id AS position FROM {s}.replies \
                 WHERE client_id IS NULL AND id > $1 ORDER BY id LIMIT $2"
            ),
            // Counted on the partial index `replies_held_idx`: an index-only
            // scan of the held rows, never the delivered ones.
            held_count: format!("SELECT count(*) FROM {s}.replies WHERE client_id IS NULL"),
            prune_delivered: format!("SELECT {s}.prune_delivered($1, $2)"),
            add_key: format!(
                "INSERT INTO {s}.api_keys (client_id, digest, prefix) VALUES ($1, $2, $3) \
                 RETURNING {KEY_COLUMNS}"
            ),
            keys_of: format!(
                "SELECT {KEY_COLUMNS} FROM {s}.api_keys WHERE client_id = $1 ORDER BY id"
            ),
            revoke_key: format!("DELETE FROM {s}.api_keys WHERE client_id = $1 AND id = $2"),
            // The lookup, and the renewal of last_used_at only when it is
            // older than the resolution ($2 seconds): one row written per key
            // and minute at most, whatever the request rate.
            key_owner: format!(
                "WITH found AS (SELECT id, client_id, last_used_at FROM {s}.api_keys \
                 WHERE digest = $1), \
                 renewed AS (UPDATE {s}.api_keys AS k SET last_used_at = now() FROM found \
                 WHERE k.id = found.id AND (found.last_used_at IS NULL \
                 OR found.last_used_at < now() - make_interval(secs => $2))) \
                 SELECT client_id FROM found"
            ),
        }
    }
}
