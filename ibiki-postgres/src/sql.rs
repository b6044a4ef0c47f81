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
    pub(crate) put_endpoint: String,
    pub(crate) endpoint: String,
    pub(crate) endpoint_secrets: String,
    pub(crate) rotate_secret: String,
    pub(crate) delete_endpoint: String,
    pub(crate) forwards: String,
    pub(crate) forwards_by_status: String,
    pub(crate) forward: String,
    pub(crate) retry_forward: String,
    pub(crate) replay: String,
    pub(crate) claim: String,
    pub(crate) claimed: String,
    pub(crate) finish: String,
    pub(crate) pending_forwards: String,
}

/// The columns a key is read from, as `keys::KeyRow` expects them.
const KEY_COLUMNS: &str = "id, client_id, prefix, created_at, last_used_at";

/// The columns a forward is read from (`f` a row of `forwards`, `r` its
/// reply), as `forward::ForwardRow` expects them.
const FORWARD_COLUMNS: &str = "f.id, f.client_id, r.message_id, f.reply_id, f.status, \
    f.attempts, f.last_attempt_at, f.next_attempt_at, f.last_status, f.last_error";

/// The columns of an endpoint's state (`e` its row), as
/// `forward::EndpointRow` expects them: its forwards counted on
/// `forwards_client_status_idx`.
const ENDPOINT_COLUMNS: &str = "e.client_id, e.url, e.enabled, e.created_at, \
    e.last_delivered_at, e.failing_since";

/// The secrets of an endpoint (`e` its row) that sign now: the previous one
/// only until it expires.
const SECRET_COLUMNS: &str = "e.secret, \
    CASE WHEN e.previous_until > now() THEN e.previous_secret END AS previous_secret";

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
            put_endpoint: format!(
                "SELECT created, created_at FROM {s}.put_endpoint($1, $2, $3, $4)"
            ),
            endpoint: format!(
                "SELECT {ENDPOINT_COLUMNS}, \
                 (SELECT count(*) FROM {s}.forwards AS f \
                 WHERE f.client_id = e.client_id AND f.status = 'pending') AS pending, \
                 (SELECT count(*) FROM {s}.forwards AS f \
                 WHERE f.client_id = e.client_id AND f.status = 'failed') AS failed \
                 FROM {s}.endpoints AS e WHERE e.client_id = $1"
            ),
            endpoint_secrets: format!(
                "SELECT {SECRET_COLUMNS} FROM {s}.endpoints AS e WHERE e.client_id = $1"
            ),
            // The current secret becomes the previous one for $3 seconds
            // (SET reads the row as it was).
            rotate_secret: format!(
                "UPDATE {s}.endpoints AS e SET previous_secret = e.secret, \
                 previous_until = now() + make_interval(secs => $3), secret = $2 \
                 WHERE e.client_id = $1 RETURNING {SECRET_COLUMNS}"
            ),
            delete_endpoint: format!("SELECT {s}.delete_endpoint($1)"),
            // Oldest first, after the forward whose id is the cursor ($2; 0
            // for the first page): forwards_client_idx, or
            // forwards_client_status_idx for one status ($4).
            forwards: format!(
                "SELECT {FORWARD_COLUMNS} FROM {s}.forwards AS f \
                 JOIN {s}.replies AS r ON r.id = f.reply_id \
                 WHERE f.client_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3"
            ),
            forwards_by_status: format!(
                "SELECT {FORWARD_COLUMNS} FROM {s}.forwards AS f \
                 JOIN {s}.replies AS r ON r.id = f.reply_id \
                 WHERE f.client_id = $1 AND f.id > $2 AND f.status = $4 ORDER BY f.id LIMIT $3"
            ),
            forward: format!(
                "SELECT {FORWARD_COLUMNS} FROM {s}.forwards AS f \
                 JOIN {s}.replies AS r ON r.id = f.reply_id WHERE f.id = $1"
            ),
            // Due now whatever its status; its attempts, its lease and its
            // last outcome stay.
            retry_forward: format!(
                "WITH f AS (UPDATE {s}.forwards AS f SET status = 'pending', next_attempt_at = now() \
                 WHERE f.id = $1 RETURNING f.*) \
                 SELECT {FORWARD_COLUMNS} FROM f JOIN {s}.replies AS r ON r.id = f.reply_id"
            ),
            replay: format!("SELECT {s}.replay($1, $2)"),
            claim: claim(&s),
            claimed: claimed(&s),
            finish: finish(&s),
            // Counted on the partial index forwards_due_idx: the pending rows
            // only.
            pending_forwards: format!("SELECT count(*) FROM {s}.forwards WHERE status = 'pending'"),
        }
    }
}

/// The claim, one statement (its own transaction): the schema's
/// `claim_forwards` (`$1` the most forwards, `$2` the lease in seconds, `$3`
/// the most of one client's forwards in flight in the worker, `$4`/`$5` the
/// worker's forwards in flight now, by client): the forwards it leased,
/// oldest due first. What an attempt needs of them is read by the next
/// statement, `claimed`.
fn claim(s: &str) -> String {
    format!(
        "SELECT forward_id, attempt, client_id, reply_id \
         FROM {s}.claim_forwards($1, $2, $3, $4::text[], $5::int8[]) \
         ORDER BY next_attempt_at, forward_id"
    )
}

/// The claimed forwards (`$1` their ids, `$2` their attempts, `$3` their
/// clients, `$4` their replies, in the claim's order) with the endpoint's
/// URL and secrets and the reply as the inbox lists it, in the same order.
/// A statement of its own, after the claim's: the function reads the due
/// forwards with snapshots of its own, newer than its statement's, so a
/// forward whose reply committed after that statement began may be claimed,
/// and a join in the same statement would not see the reply (nor a new
/// endpoint) and leave the forward out, leased, until its lease ended. This
/// statement's snapshot is newer than the claim's. A forward gone since
/// (its endpoint deleted, its reply pruned) is left out.
fn claimed(s: &str) -> String {
    format!(
        "SELECT c.forward_id, c.attempt, c.client_id AS forward_client, e.url, \
            {SECRET_COLUMNS}, r.* \
        FROM unnest($1::int8[], $2::int4[], $3::text[], $4::int8[]) \
            WITH ORDINALITY AS c(forward_id, attempt, client_id, reply_id, n) \
        JOIN {s}.endpoints AS e ON e.client_id = c.client_id \
        CROSS JOIN LATERAL (SELECT {REPLY_COLUMNS}, delivery_seq AS position \
            FROM {s}.replies WHERE id = c.reply_id) AS r \
        ORDER BY c.n"
    )
}

/// Attempts' outcomes, one statement (its own transaction): the schema's
/// `finish_forwards` (`$1` the forwards, `$2` their leases' attempts, `$3`
/// delivered or not, `$4` the HTTP statuses, `$5` the errors, `$6` the waits
/// before the next attempts in seconds, NULL where the forward failed): the
/// ordinals (from 1) of the outcomes recorded.
fn finish(s: &str) -> String {
    format!(
        "SELECT n FROM {s}.finish_forwards($1::int8[], $2::int4[], $3::bool[], $4::int4[], \
            $5::text[], $6::float8[]) AS n"
    )
}
