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
    pub(crate) batch_lock_numbers: String,
    pub(crate) batch_owners: String,
    pub(crate) batch_insert: String,
    pub(crate) change_numbers: String,
    pub(crate) owner_of: String,
    pub(crate) owner_at: String,
    pub(crate) history: String,
    pub(crate) numbers_of: String,
    pub(crate) list_clients: String,
    pub(crate) inbox: String,
    pub(crate) held: String,
    pub(crate) deliver_held: String,
    pub(crate) reply: String,
    pub(crate) held_count: String,
    pub(crate) prune_delivered: String,
}

/// The columns a listed reply is read from, as `ReplyRow` expects them.
const REPLY_COLUMNS: &str = "id, message_id, to_number, to_unparsed, from_address, body, \
    received_at, delivery, delivered_at, client_id IS NOT NULL AS delivered";

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = schema.quoted();
        Self {
            receive: format!("SELECT duplicate, owner FROM {s}.receive($1, $2, $3, $4, $5, $6)"),
            // A batch of receives (see `receive.rs`): the ids already
            // recorded, and the number locks ($1), ascending.
            batch_lock_numbers: format!(
                "SELECT ARRAY(SELECT r.message_id FROM {s}.replies AS r \
                 WHERE r.message_id = ANY ($2::text[])) AS recorded \
                 FROM {s}.require_read_committed() AS checked, {s}.lock_numbers($1::text[]) AS locked"
            ),
            // The owners (a snapshot taken after the number locks), then
            // their delivery locks: ascending by lock key, each key once (a
            // subquery with DISTINCT and ORDER BY is not merged into the
            // outer query, so the locks are taken in its order), all taken
            // before the first row is returned.
            batch_owners: format!(
                "WITH owners AS MATERIALIZED (SELECT a.phone_number, a.client_id \
                 FROM {s}.assignments AS a WHERE a.phone_number = ANY ($1::text[])), \
                 locked AS MATERIALIZED (SELECT {s}.lock_client_deliveries(o.client_id) \
                 FROM (SELECT DISTINCT ON (hashtext(w.client_id)) w.client_id FROM owners AS w \
                 ORDER BY hashtext(w.client_id)) AS o) \
                 SELECT owners.phone_number, owners.client_id FROM owners \
                 WHERE (SELECT count(*) FROM locked) >= 0"
            ),
            // Positions after each inbox's last one, read by a subquery (the
            // statement's snapshot: none of its own rows), in arrival order;
            // rows inserted in message id order.
            batch_insert: format!(
                "WITH i AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                 $5::text[], $6::timestamptz[], $7::text[]) WITH ORDINALITY \
                 AS i(message_id, to_number, to_unparsed, from_address, body, received_at, client_id, n)), \
                 last AS (SELECT o.client_id, (SELECT coalesce(max(r.delivery_seq), 0) \
                 FROM {s}.replies AS r WHERE r.client_id = o.client_id) AS position \
                 FROM (SELECT DISTINCT i.client_id FROM i WHERE i.client_id IS NOT NULL) AS o) \
                 INSERT INTO {s}.replies AS r (message_id, to_number, to_unparsed, from_address, \
                 body, received_at, client_id, delivery_seq, delivery, delivered_at) \
                 SELECT i.message_id, i.to_number, i.to_unparsed, i.from_address, i.body, \
                 i.received_at, i.client_id, CASE WHEN i.client_id IS NOT NULL THEN last.position \
                 + row_number() OVER (PARTITION BY i.client_id ORDER BY i.n) END, \
                 CASE WHEN i.client_id IS NOT NULL THEN 'routed' \
                 WHEN i.to_unparsed IS NOT NULL THEN 'unparsed' ELSE 'held' END, i.received_at \
                 FROM i LEFT JOIN last ON last.client_id = i.client_id \
                 ORDER BY i.message_id, i.n \
                 ON CONFLICT (message_id) DO NOTHING"
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
            // The first page passes '': every client id sorts after it.
            list_clients: format!(
                "SELECT client_id, count(*) AS count FROM {s}.assignments \
                 WHERE client_id > $1 GROUP BY client_id ORDER BY client_id LIMIT $2"
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
        }
    }
}
